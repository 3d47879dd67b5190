"""The pacing engine: modes, thin-data fallback, abandon governor, forecast model."""

from __future__ import annotations

import numpy as np
import pytest

from bridge import predictive as pe
from bridge.predictive import (
    AbandonCounts,
    Attempt,
    Call,
    CallStatus,
    LiveState,
    Mode,
    Outcome,
    PacingConfig,
    Volunteer,
    VolunteerStatus,
    plan,
    power_lines,
)

IDLE, TALK, WRAP = VolunteerStatus.IDLE, VolunteerStatus.TALKING, VolunteerStatus.WRAPUP


def vols(idle: int = 0, talking: int = 0, wrap: int = 0, talk_elapsed: float = 10.0) -> tuple[Volunteer, ...]:
    return (
        tuple(Volunteer(IDLE, 5.0) for _ in range(idle))
        + tuple(Volunteer(TALK, talk_elapsed) for _ in range(talking))
        + tuple(Volunteer(WRAP, 3.0) for _ in range(wrap))
    )


def ringing(n: int, elapsed: float = 2.0) -> tuple[Call, ...]:
    return tuple(Call(CallStatus.RINGING, elapsed) for _ in range(n))


def history(
    attempts: int = 2000, human_rate: float = 0.12, machine_rate: float = 0.08, convs: int = 200
) -> pe.HistoryStats:
    """A deterministic history: humans answer after 5-12 s, machines at 20 s, the rest ring out at 30 s."""
    recs: list[Attempt] = []
    n_h = round(attempts * human_rate)
    n_m = round(attempts * machine_rate)
    for i in range(n_h):
        recs.append(Attempt(5.0 + (i % 8), Outcome.HUMAN, 2.0))
    recs += [Attempt(20.0, Outcome.MACHINE, 3.5)] * n_m
    recs += [Attempt(30.0, Outcome.NO_ANSWER)] * (attempts - n_h - n_m)
    conv = [(60.0 + (i * 37) % 240, 10.0 + (i * 7) % 20) for i in range(convs)]
    return pe.HistoryStats.from_records(recs, conv, ring_timeout_s=30.0)


RICH = history()
COMFY = AbandonCounts(abandoned=0, live_answers=5000, abandoned_today=0, live_answers_today=200)


@pytest.mark.parametrize(
    ("ratio", "idle", "talking", "in_flight", "expected"),
    [
        (1.0, 4, 6, 0, 4),
        (2.0, 4, 6, 0, 8),
        (3.0, 4, 6, 0, 12),
        (3.0, 4, 6, 5, 7),
        (3.0, 0, 10, 0, 0),
        (2.5, 3, 0, 0, 7),  # floor(7.5)
        (1.0, 2, 0, 5, 0),  # never negative
    ],
)
def test_power_places_ratio_lines_per_idle_volunteer(
    ratio: float, idle: int, talking: int, in_flight: int, expected: int
) -> None:
    st = LiveState(vols(idle=idle, talking=talking), ringing(in_flight))
    assert plan(PacingConfig(mode=Mode.POWER, power_ratio=ratio), st, RICH, COMFY).new_calls == expected


@pytest.mark.parametrize(
    ("ratio", "idle", "lines"),
    [
        (1.0, 1, 1),
        (1.5, 1, 1),  # rounded down: never more than the organiser's ratio per idle volunteer
        (1.5, 2, 3),
        (1.5, 3, 4),
        (2.0, 3, 6),
        (0.5, 2, 2),  # never under 1:1
        (3.0, 0, 0),
    ],
)
def test_power_lines_is_the_one_power_rule(ratio: float, idle: int, lines: int) -> None:
    assert power_lines(ratio, idle) == lines


@pytest.mark.parametrize(
    ("stats", "counts", "reason"),
    [
        (None, COMFY, "thin data: 1:1"),
        (history(attempts=30), COMFY, "thin data: 1:1"),
        (history(convs=2), COMFY, "thin data: 1:1"),
        (history(human_rate=0.001, attempts=1000), COMFY, "thin data: 1:1"),
        (RICH, AbandonCounts(), "abandon budget spent: 1:1"),
        (RICH, AbandonCounts(abandoned=1, live_answers=20), "abandon budget spent: 1:1"),
    ],
)
def test_thin_data_and_spent_budget_fall_back_to_one_to_one(
    stats: pe.HistoryStats | None, counts: AbandonCounts, reason: str
) -> None:
    st = LiveState(vols(idle=4, talking=6), ringing(1))
    d = plan(PacingConfig(), st, stats, counts)
    assert d.reason == reason
    assert d.new_calls == 3


def test_predictive_dials_ahead_with_rich_data() -> None:
    st = LiveState(vols(idle=4, talking=6), ())
    d = plan(PacingConfig(), st, RICH, COMFY)
    assert d.reason == "predictive"
    assert d.new_calls > 4  # more than 1:1: most dials reach nobody


def test_predictive_forecasts_volunteers_about_to_come_free() -> None:
    """All busy: volunteers in wrap-up (about to be free) justify dials; long fresh talks justify fewer."""
    wrapping = LiveState(vols(idle=0, wrap=5, talking=5), ())
    just_started = LiveState(tuple(Volunteer(TALK, 1.0) for _ in range(10)), ())
    n_wrap = plan(PacingConfig(), wrapping, RICH, COMFY).new_calls
    n_talk = plan(PacingConfig(), just_started, RICH, COMFY).new_calls
    assert n_wrap > n_talk
    assert n_wrap > 0


def test_predictive_counts_calls_in_flight() -> None:
    st0 = LiveState(vols(idle=3, talking=7), ())
    st1 = LiveState(vols(idle=3, talking=7), ringing(15))
    assert plan(PacingConfig(), st1, RICH, COMFY).new_calls < plan(PacingConfig(), st0, RICH, COMFY).new_calls


def test_waiting_humans_and_amd_calls_reduce_dialing() -> None:
    base = LiveState(vols(idle=3, talking=7), ())
    amd = LiveState(vols(idle=3, talking=7), tuple(Call(CallStatus.AMD, 0.5) for _ in range(3)))
    assert plan(PacingConfig(), amd, RICH, COMFY).new_calls < plan(PacingConfig(), base, RICH, COMFY).new_calls


def test_respects_line_caps() -> None:
    st = LiveState(vols(idle=10), ())
    assert plan(PacingConfig(max_lines=12), st, RICH, COMFY).new_calls <= 12
    assert plan(PacingConfig(max_lines_per_volunteer=1.5), st, RICH, COMFY).new_calls <= 15
    assert plan(PacingConfig(mode=Mode.POWER, power_ratio=3, max_lines=5), st, RICH, COMFY).new_calls == 5


@pytest.mark.parametrize(
    ("abandoned", "live", "expected"),
    [
        (0, 0, 0.0),  # nothing answered yet: no budget, strict 1:1
        (0, 10, 0.06 * 0.3 / 3),  # ramp: 0.03 × 10 = 0.3 abandons of budget, a tenth of the 3-abandon cushion
        (1, 20, 0.0),  # ramp, budget already spent
        # A short shift (a 3-minute capacity step): the cushion is 3 abandons, not 1, so the allowance is already
        # trimmed with 1-2 abandons of budget left, before a burst of answers can spend it all.
        (0, 60, 0.03 * (0.1 + 1.9 * 0.6)),  # budget 1.8 of 3
        (1, 100, 0.03 * (0.1 + 1.9 * 2 / 3)),  # budget 2 of 3
        (0, 100, 0.06),  # full allowance: target × risk_share
        (20, 1000, 0.06),  # budget 30 - 20 = 10 abandons = the cushion (1 % of live answers)
        (25, 1000, 0.03 * (0.1 + 1.9 * 0.5)),  # 2.5 %: half-way down
        (30, 1000, 0.003),  # at the target: the small floor, far below the target
        (40, 1000, 0.003),
    ],
)
def test_governor_trims_as_rate_approaches_target(abandoned: int, live: int, expected: float) -> None:
    cfg = PacingConfig(daily_guard=False)
    assert pe.governor_allowance(cfg, AbandonCounts(abandoned, live)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("volunteers", "expected"),
    [
        (3, 0.06),  # a burst of a team of 3 is small: cushion 1, and 1.8 abandons of budget is comfortable
        (5, 0.06),  # 1.5
        (8, 0.03 * (0.1 + 1.9 * 1.8 / 2.4)),  # 0.3 × 8 = 2.4
        (10, 0.03 * (0.1 + 1.9 * 0.6)),  # 3: the largest cushion
        (100, 0.03 * (0.1 + 1.9 * 0.6)),
    ],
)
def test_governor_cushion_grows_with_the_team(volunteers: int, expected: float) -> None:
    cfg = PacingConfig(daily_guard=False)
    assert pe.governor_allowance(cfg, AbandonCounts(0, 60), volunteers) == pytest.approx(expected)


def test_governor_is_monotone_in_abandons() -> None:
    cfg = PacingConfig(daily_guard=False)
    vals = [pe.governor_allowance(cfg, AbandonCounts(a, 2000)) for a in range(0, 70, 5)]
    assert vals == sorted(vals, reverse=True)
    assert vals[0] == pytest.approx(0.06)
    assert vals[-1] == pytest.approx(0.003)


def test_governor_trims_dialing_end_to_end() -> None:
    st = LiveState(vols(idle=2, talking=8, wrap=2), ringing(4, 3.0))
    n = [plan(PacingConfig(), st, RICH, AbandonCounts(a, 2000, 0, 100)).new_calls for a in (0, 40, 50, 55, 60, 70)]
    assert n == sorted(n, reverse=True)
    assert n[0] > n[-1]
    # Over the target the allowance is a tenth of it: a little predictive dialing is still worth it.
    over = plan(PacingConfig(), st, RICH, AbandonCounts(70, 2000, 0, 100))
    assert over.allowed_risk == pytest.approx(0.003)


def test_daily_guard_limits_a_bad_day() -> None:
    st = LiveState(vols(idle=4, talking=6), ())
    good = AbandonCounts(0, 5000, 0, 100)
    bad_day = AbandonCounts(10, 5000, 10, 100)
    assert plan(PacingConfig(), st, RICH, bad_day).allowed_risk == pytest.approx(0.003)
    assert plan(PacingConfig(daily_guard=False), st, RICH, bad_day).allowed_risk == pytest.approx(0.06)
    assert plan(PacingConfig(), st, RICH, good).allowed_risk == pytest.approx(0.06)


def test_plan_is_pure_and_deterministic() -> None:
    st = LiveState(vols(idle=2, talking=8, wrap=2), ringing(6, 4.0))
    a = plan(PacingConfig(), st, RICH, COMFY)
    b = plan(PacingConfig(), st, RICH, COMFY)
    assert a == b


def test_expected_abandons_matches_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    h = 12
    lam, q, mu = rng.random(h) * 0.3, rng.random(h) * 0.02, rng.random(h) * 0.2
    n = np.array([0.0, 10.0])
    ab, humans = pe.expected_abandons(lam, q, n, mu, idle=2, kmax=8)
    runs = 40000
    for i, extra in enumerate(n):
        free = np.full(runs, 2)
        tot = np.zeros(runs)
        for k in range(h):
            free = np.minimum(free + rng.poisson(mu[k], runs), 8)
            arr = rng.poisson(lam[k] + extra * q[k], runs)
            tot += np.maximum(arr - free, 0)
            free = np.maximum(free - arr, 0)
        assert ab[i] == pytest.approx(tot.mean(), rel=0.05, abs=0.01)
    assert humans[1] > humans[0]


def test_history_stats_from_records() -> None:
    s = RICH
    assert s.attempts == 2000
    assert s.human_rate == pytest.approx(0.12)
    assert s.human_share == pytest.approx(0.6)
    assert s.human_detect_s == pytest.approx(2.0)
    # A call that has rung 20 s has no human left in it (humans answered by 12 s here).
    assert s.ringing_table[20].sum() == pytest.approx(0.0)
    assert s.new_call_pmf.sum() == pytest.approx(0.12)


def test_abandon_ledger_rolls_over_thirty_days() -> None:
    led = pe.AbandonLedger()
    led.record(0, abandoned=5, live=100)
    led.record(10, abandoned=1, live=100)
    led.record(10, live=50)
    assert led.totals(10) == (6, 250)
    assert led.totals(29) == (6, 250)
    assert led.totals(30) == (1, 150)  # day 0 fell out of the window
    assert led.counts(10) == AbandonCounts(6, 250, 1, 150)


def _true_abandons(
    pmfs: list[np.ndarray],
    amd: list[list[float]],
    mu: np.ndarray,
    idle: int,
    kmax: int,
    rng: np.random.Generator,
    runs: int = 60000,
) -> float:
    """Monte Carlo of what really happens: each call reaches at most one human, in the bin its own pmf says."""
    h = len(mu)
    arr = np.zeros((runs, h))
    for pm in pmfs:
        k = np.searchsorted(np.cumsum(pm), rng.random(runs), side="right")
        ok = k < h
        arr[np.nonzero(ok)[0], k[ok]] += 1
    for k, probs in enumerate(amd):
        for q in probs:
            arr[:, k] += rng.random(runs) < q
    free = np.full(runs, idle)
    tot = np.zeros(runs)
    for k in range(h):
        free = np.minimum(free + rng.poisson(mu[k], runs), kmax)
        tot += np.maximum(arr[:, k] - free, 0)
        free = np.maximum(free - arr[:, k], 0)
    return float(tot.mean())


@pytest.mark.parametrize(
    ("ring_ages", "amd_p", "idle", "free_rate"),
    [
        ((), (), 1, 0.0),  # new calls only: the chain is exact
        ((), (), 2, 0.05),
        ((2, 4), (0.6,), 1, 0.05),  # calls of several ages and one in AMD
        ((0, 1, 3, 5), (0.6, 0.3), 2, 0.1),
        ((1,), (), 0, 0.2),  # nobody free now, volunteers about to be
    ],
)
def test_few_calls_model_matches_monte_carlo(
    ring_ages: tuple[int, ...], amd_p: tuple[float, ...], idle: int, free_rate: float
) -> None:
    """Sums of Bernoulli trials, checked against a simulation where every call has its own fate."""
    rng = np.random.default_rng(1)
    h, kmax = 12, 6
    q = np.zeros(h)
    q[3:9] = 0.12 / 6
    pmfs = [np.concatenate((q[age:], np.zeros(age))) for age in ring_ages]
    lam_ring = np.sum(pmfs, axis=0) if pmfs else np.zeros(h)
    amd: list[list[float]] = [[] for _ in range(h)]
    amd[1] = list(amd_p)
    mu = np.full(h, free_rate)
    n = np.arange(0, 5, dtype=float)
    ab, humans = pe.expected_abandons_few(lam_ring, len(ring_ages), amd, q, n, mu, idle, kmax)
    lam = lam_ring.copy()
    lam[1] += sum(amd_p)
    ab_poisson, _ = pe.expected_abandons(lam, q, n, mu, idle, kmax)
    for i, extra in enumerate(n.astype(int)):
        truth = _true_abandons(pmfs + [q] * extra, amd, mu, idle, kmax, rng)
        assert ab[i] == pytest.approx(truth, rel=0.06, abs=0.002)
        # Poisson arrivals overstate the risk of a few calls: never less than the Bernoulli model.
        assert ab_poisson[i] >= ab[i] - 1e-9
    assert humans[-1] == pytest.approx(lam.sum() + 4 * 0.12)


def test_one_call_per_idle_volunteer_cannot_abandon() -> None:
    """The small-count error Poisson made: one call and one free volunteer can never abandon."""
    h = 12
    q = np.zeros(h)
    q[3:9] = 0.3 / 6
    amd: list[list[float]] = [[] for _ in range(h)]
    ab, _ = pe.expected_abandons_few(np.zeros(h), 0, amd, q, np.array([1.0, 2.0]), np.zeros(h), 1, 3)
    assert ab[0] == pytest.approx(0.0, abs=1e-12)
    assert ab[1] > 0
    ab_p, _ = pe.expected_abandons(np.zeros(h), q, np.array([1.0]), np.zeros(h), 1, 3)
    assert ab_p[0] > 0.03  # Poisson: P(two humans from one call) > 0


@pytest.mark.parametrize(
    ("volunteers", "calls"),
    [
        (vols(idle=1, talking=2, talk_elapsed=100.0), ()),
        (vols(idle=2, talking=2, talk_elapsed=100.0), ()),
        (vols(idle=4), ()),
        (vols(idle=2, talking=1, wrap=1), ringing(2, 3.0)),
    ],
)
def test_small_teams_dial_at_least_as_far_ahead_as_with_poisson(
    volunteers: tuple[Volunteer, ...], calls: tuple[Call, ...]
) -> None:
    st = LiveState(volunteers, calls)
    few = plan(PacingConfig(), st, RICH, COMFY)
    poisson = plan(PacingConfig(few_calls_max=0), st, RICH, COMFY)
    assert few.new_calls >= poisson.new_calls
    assert few.new_calls >= st.idle - len(calls)


def test_small_team_dials_ahead_of_idle_volunteers() -> None:
    """Four idle volunteers and a list where one dial in eight reaches a person: more than 1:1."""
    st = LiveState(vols(idle=4), ())
    assert (
        plan(PacingConfig(), st, RICH, COMFY).new_calls > plan(PacingConfig(few_calls_max=0), st, RICH, COMFY).new_calls
    )
