"""Pacing engine: how many new calls to place now.

Pure and sans-IO: every function takes the campaign's live state and recent history as plain values and returns
a decision. Nothing here reads a clock, touches the network or draws random numbers, so the live dialer and the
simulator in ``bridge/pacing_sim.py`` run exactly the same code.

Modes:

* ``power``: ``power_ratio`` lines per idle volunteer, rounded down (``power_lines``), never fewer than one each.
* ``predictive``: place as many calls as keep volunteers busy while the *marginal* expected abandon rate of each
  extra call stays under the governor's allowance. The expected number of abandons is computed from a short-horizon
  model: calls ringing or in answering-machine detection produce live humans at times given by the measured ring-time
  distribution, busy volunteers come free at times given by the measured talk and wrap-up distributions conditioned on
  how long they have been busy, and a human who finds nobody free within the grace period is abandoned. With thin data
  the engine falls back to 1:1 (one line per idle volunteer, which can never abandon).

The abandon governor spends a budget: the rolling 30-day abandon count may grow to ``target × live answers``; the
per-call risk allowance shrinks linearly to zero as the remaining budget shrinks, so dialing is trimmed as the rate
approaches the target and is 1:1 once it is reached.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property, lru_cache

import numpy as np

__all__ = [
    "AbandonCounts",
    "AbandonLedger",
    "Attempt",
    "Call",
    "CallStatus",
    "Decision",
    "HistoryStats",
    "HistoryWindow",
    "LiveState",
    "Mode",
    "Outcome",
    "PacingConfig",
    "Volunteer",
    "VolunteerStatus",
    "governor_allowance",
    "plan",
    "power_lines",
]

# Time grid of the forecast, in seconds. One second is finer than any decision the dialer can act on.
BIN_S = 1.0
# Talk times beyond this are treated as this long when tabulating; only the tail probability matters there.
MAX_TALK_S = 3600


class Mode(StrEnum):
    # No preview mode: a volunteer-started dial of a contact they see first needs its own screen and call path
    # (see docs/PACING.md); the engine does not pretend to have one.
    POWER = "power"
    PREDICTIVE = "predictive"


class VolunteerStatus(StrEnum):
    IDLE = "idle"
    TALKING = "talking"
    WRAPUP = "wrapup"


class CallStatus(StrEnum):
    RINGING = "ringing"
    # Answered, answering-machine detection still running.
    AMD = "amd"
    # Detected as a live human, waiting (at most the grace period) for a volunteer.
    WAITING = "waiting"


class Outcome(StrEnum):
    HUMAN = "human"
    MACHINE = "machine"
    # Busy, no answer, unallocated, congestion: the call ended without being answered.
    NO_ANSWER = "no_answer"


@dataclass(frozen=True, slots=True)
class Volunteer:
    status: VolunteerStatus
    # Seconds spent in the current status.
    elapsed_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Call:
    status: CallStatus
    # Seconds in the current status (ringing time for RINGING, time since answer for AMD, since detection for WAITING).
    elapsed_s: float = 0.0


@dataclass(frozen=True, slots=True)
class LiveState:
    volunteers: tuple[Volunteer, ...] = ()
    calls: tuple[Call, ...] = ()

    @property
    def idle(self) -> int:
        return sum(1 for v in self.volunteers if v.status is VolunteerStatus.IDLE)

    @property
    def in_flight(self) -> int:
        return len(self.calls)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One finished dial, as the history keeps it."""

    ring_s: float
    outcome: Outcome
    # Answer to AMD decision (HUMAN or MACHINE); 0 for unanswered calls.
    detect_s: float = 0.0


@dataclass(frozen=True)
class HistoryStats:
    """Recent history of one campaign, the engine's only view of the past."""

    ring_timeout_s: float
    # Per one-second ring bin: probability that a dial is answered by a human in that second.
    human_ring_pmf: tuple[float, ...]
    # Per one-second ring bin: probability that a dial ends any other way in that second (machine, busy, timeout…).
    end_ring_pmf: tuple[float, ...]
    attempts: int
    human_share: float
    human_detect_s: float
    machine_detect_s: float
    talk_samples: tuple[float, ...]
    wrap_samples: tuple[float, ...]

    @classmethod
    def from_records(
        cls,
        attempts: Sequence[Attempt],
        conversations: Sequence[tuple[float, float]],
        *,
        ring_timeout_s: float,
    ) -> HistoryStats:
        """Summarise finished dials and (talk_s, wrap_s) pairs of finished conversations."""
        nbins = math.ceil(ring_timeout_s / BIN_S) + 1
        human = np.zeros(nbins)
        end = np.zeros(nbins)
        humans = machines = 0
        hdet: list[float] = []
        mdet: list[float] = []
        for a in attempts:
            b = min(int(a.ring_s / BIN_S), nbins - 1)
            if a.outcome is Outcome.HUMAN:
                human[b] += 1
                humans += 1
                hdet.append(a.detect_s)
            else:
                end[b] += 1
                if a.outcome is Outcome.MACHINE:
                    machines += 1
                    mdet.append(a.detect_s)
        n = max(len(attempts), 1)
        answered = humans + machines
        return cls(
            ring_timeout_s=ring_timeout_s,
            human_ring_pmf=tuple((human / n).tolist()),
            end_ring_pmf=tuple((end / n).tolist()),
            attempts=len(attempts),
            human_share=humans / answered if answered else 0.0,
            human_detect_s=float(np.mean(hdet)) if hdet else 2.0,
            machine_detect_s=float(np.mean(mdet)) if mdet else 4.0,
            talk_samples=tuple(t for t, _ in conversations),
            wrap_samples=tuple(w for _, w in conversations),
        )

    @property
    def human_rate(self) -> float:
        """Share of dials that reach a live human."""
        return float(sum(self.human_ring_pmf))

    # The tables below depend only on the history, so they are built once per HistoryStats and reused by every
    # decision until the controller refreshes its history.

    @cached_property
    def _detect_bins(self) -> int:
        return round(self.human_detect_s / BIN_S)

    @cached_property
    def horizon(self) -> int:
        """Number of bins after which no call placed now can still produce a human."""
        return len(self.human_ring_pmf) + self._detect_bins + 1

    @cached_property
    def ringing_table(self) -> np.ndarray:
        """[age, k]: probability that a call ringing for ``age`` bins yields a detected human in bin k from now."""
        h = np.asarray(self.human_ring_pmf)
        e = np.asarray(self.end_ring_pmf)
        nring = len(h)
        hz = self.horizon
        d = self._detect_bins
        alive = 1.0 - np.concatenate(([0.0], np.cumsum(h + e)[:-1]))
        table = np.zeros((nring, hz))
        for age in range(nring):
            if alive[age] <= 1e-9:
                continue
            seg = h[age:] / alive[age]
            table[age, d : d + len(seg)] = seg[: hz - d]
        return table

    @cached_property
    def new_call_pmf(self) -> np.ndarray:
        return self.ringing_table[0]

    def _cond_free_table(self, samples: Sequence[float], then: np.ndarray | None) -> np.ndarray:
        """[elapsed, k]: P(free by the end of bin k | busy for ``elapsed`` s in a phase whose length has
        distribution ``samples``), followed by a phase with CDF ``then`` (None: nothing follows)."""
        hz = self.horizon
        if not samples:
            return np.zeros((1, hz))
        top = int(min(max(samples), MAX_TALK_S)) + 1
        hist = np.bincount(np.minimum(np.asarray(samples, dtype=float), top - 1).astype(int), minlength=top)
        hist = hist.astype(float)
        tail = np.cumsum(hist[::-1])[::-1]  # tail[a] = count of samples >= a
        padded = np.concatenate((hist, np.zeros(hz)))
        # win[a, j] = count of samples equal to a + j
        win = np.lib.stride_tricks.sliding_window_view(padded, hz)[:top]
        if then is None:
            conv = np.tril(np.ones((hz, hz)))  # finish in bin j <= k
        else:
            idx = np.arange(hz)
            diff = idx[None, :] - idx[:, None]  # k - j
            conv = np.where(diff >= 0, then[np.clip(diff, 0, hz - 1)], 0.0)
        num = win @ conv
        with np.errstate(invalid="ignore", divide="ignore"):
            table = np.where(tail[:, None] > 0, num / tail[:, None], 0.0)
        # Past the longest sample nobody is known to have talked that long: assume a memoryless remainder with the
        # mean of the longest fifth, so very long calls still free up now and then.
        longest = np.sort(np.asarray(samples))[-max(1, len(samples) // 5) :]
        rate = 1.0 / max(float(np.mean(longest)), 1.0)
        tail_row = 1.0 - np.exp(-rate * (np.arange(hz) + 1) * BIN_S)
        if then is not None:
            tail_row = tail_row * then
        return np.vstack((table, tail_row))

    @cached_property
    def wrap_cdf(self) -> np.ndarray:
        """P(wrap-up shorter than k+1 bins)."""
        hz = self.horizon
        if not self.wrap_samples:
            return np.ones(hz)
        w = np.sort(np.asarray(self.wrap_samples))
        return np.searchsorted(w, (np.arange(hz) + 1) * BIN_S, side="right") / len(w)

    @cached_property
    def talk_free_table(self) -> np.ndarray:
        return self._cond_free_table(self.talk_samples, self.wrap_cdf)

    @cached_property
    def wrap_free_table(self) -> np.ndarray:
        return self._cond_free_table(self.wrap_samples, None)


@dataclass(frozen=True, slots=True)
class AbandonCounts:
    """What the governor needs: abandons and live answers, rolling 30 days and today."""

    abandoned: int = 0
    live_answers: int = 0
    abandoned_today: int = 0
    live_answers_today: int = 0


@dataclass(frozen=True)
class PacingConfig:
    mode: Mode = Mode.PREDICTIVE
    # Power mode: lines per idle volunteer.
    power_ratio: float = 1.0
    # Abandoned ÷ live answers over the rolling 30 days.
    abandon_target: float = 0.03
    # While the budget is comfortable the governor lets each extra call carry a marginal abandon risk of
    # ``target × risk_share``. The marginal risk of the last call is well above the average risk of all calls,
    # so this is more than 1; the budget feedback pulls it down if the realised rate gets close to the target.
    risk_share: float = 2.0
    # Allowance once the budget is spent (see governor_allowance).
    min_risk_share: float = 0.1
    # Remaining budget (in abandons) below which the allowance shrinks: max(cushion_abandons, cushion_share × live).
    # Up to three, not one: abandons come in bursts (the calls already out when the volunteers are all busy cannot
    # be taken back), and with a cushion of one a short shift (a 3-minute capacity step, ~100 answers at 25
    # volunteers) spent its whole budget in one burst and ended over 3 % (bench/pacing.py --cold-start). A burst
    # grows with the team, so the cushion is ``cushion_per_volunteer`` abandons per volunteer, at least 1 and at
    # most ``cushion_abandons``: a team of 3 keeps the cushion of 1 (3 cost it a tenth of its talk time).
    cushion_abandons: float = 3.0
    cushion_per_volunteer: float = 0.3
    cushion_share: float = 0.01
    # Also keep each day under the target (with one abandon of grace), not just the 30-day window.
    daily_guard: bool = True
    # Seconds a detected human may wait for a volunteer: 2 s after the greeting, less AMD's 0.8 s of silence.
    grace_s: float = 1.2
    max_lines_per_volunteer: float = 40.0
    # Trunk limit on concurrent dialing lines; None: no limit.
    max_lines: int | None = None
    # Most new calls per decision; the next decision a second later can add more.
    max_new_per_decision: int = 48
    # Seconds per step of the abandon forecast: 2 s halves the cost of a decision and moves the expected abandons
    # by a few percent.
    chain_bin_s: int = 2
    # Up to this many calls out (ringing plus candidates), live answers are modelled as sums of Bernoulli trials
    # (expected_abandons_few); above it as a Poisson stream, which is what many independent calls converge to.
    few_calls_max: int = 64
    # Thin data: 1:1 below any of these.
    min_attempts: int = 50
    min_humans: int = 5
    min_conversations: int = 5


@dataclass(frozen=True)
class Decision:
    new_calls: int
    reason: str
    # Per-call abandon risk the governor allowed (predictive mode).
    allowed_risk: float = 0.0
    # Expected abandons among calls in flight after placing new_calls (predictive mode, forecast horizon).
    expected_abandons: float = 0.0
    # Expected live humans from calls in flight after placing new_calls (predictive mode, forecast horizon).
    expected_humans: float = 0.0


def governor_allowance(cfg: PacingConfig, counts: AbandonCounts, volunteers: int | None = None) -> float:
    """Per-call probability of abandoning that may be spent now.

    ``budget = target × live − abandoned`` is how many more abandons the 30-day window can absorb. At or above
    the cushion the full allowance applies; below it the allowance falls linearly to ``min_risk_share``: a
    marginal risk far below the target, so the rolling rate keeps falling while dialing stays well above 1:1.
    Before the campaign has enough live answers to afford a single abandon, the allowance is 0: strict 1:1.
    ``volunteers``: the team now, which sizes the cushion (None: the largest cushion).
    """
    small = cfg.cushion_abandons
    if volunteers is not None:
        small = max(1.0, min(small, cfg.cushion_per_volunteer * volunteers))

    def scale(abandoned: int, live: int, grace: float) -> float:
        budget = cfg.abandon_target * live - abandoned + grace
        cushion = max(small, cfg.cushion_share * live)
        return min(max(budget / cushion, 0.0), 1.0)

    if cfg.abandon_target * counts.live_answers < 1.0:
        return cfg.abandon_target * cfg.risk_share * scale(counts.abandoned, counts.live_answers, 0.0)
    s = scale(counts.abandoned, counts.live_answers, 0.0)
    if cfg.daily_guard:
        s = min(s, scale(counts.abandoned_today, counts.live_answers_today, 1.0))
    return cfg.abandon_target * (cfg.min_risk_share + (cfg.risk_share - cfg.min_risk_share) * s)


def power_lines(ratio: float, idle: int) -> int:
    """Lines to keep out for ``idle`` idle volunteers at ``ratio`` lines each: the one power rule, for the live
    dialer (placing and cancelling lines) and the simulator alike.

    Rounded down: the ratio is the most an organiser agreed to risk, and every line beyond the idle volunteers
    can only add abandons, so 1.5 with one volunteer idle is one line, not two. Never fewer than one line per
    idle volunteer: power dialing is never slower than 1:1, which cannot abandon.
    """
    return max(idle, math.floor(ratio * idle + 1e-9))


def _power(state: LiveState, ratio: float) -> int:
    return max(0, power_lines(ratio, state.idle) - state.in_flight)


def _line_cap(cfg: PacingConfig, state: LiveState) -> int:
    cap = math.floor(cfg.max_lines_per_volunteer * len(state.volunteers))
    if cfg.max_lines is not None:
        cap = min(cap, cfg.max_lines)
    return max(0, cap - state.in_flight)


def plan(
    cfg: PacingConfig, state: LiveState, stats: HistoryStats | None, counts: AbandonCounts | None = None
) -> Decision:
    """How many new calls to place now.

    ``stats`` is the recent history (None before any); ``counts`` the abandon ledger (None: nothing yet, which
    leaves no abandon budget, so predictive mode dials 1:1).
    """
    if not state.volunteers:
        return Decision(0, "no volunteers")
    if cfg.mode is Mode.POWER:
        return Decision(min(_power(state, cfg.power_ratio), _line_cap(cfg, state)), "power")
    floor = min(_power(state, 1.0), _line_cap(cfg, state))
    if stats is None or thin_data(cfg, stats):
        return Decision(floor, "thin data: 1:1")
    allowed = governor_allowance(cfg, counts or AbandonCounts(), len(state.volunteers))
    if allowed <= 0.0:
        return Decision(floor, "abandon budget spent: 1:1")
    return _predictive(cfg, state, stats, allowed, floor)


def thin_data(cfg: PacingConfig, stats: HistoryStats) -> bool:
    humans = stats.human_rate * stats.attempts
    return (
        stats.attempts < cfg.min_attempts
        or humans < cfg.min_humans - 1e-9
        or len(stats.talk_samples) < cfg.min_conversations
    )


def _arrivals_and_frees(
    cfg: PacingConfig, state: LiveState, stats: HistoryStats
) -> tuple[np.ndarray, int, list[list[float]], np.ndarray, int, int]:
    """What the calls in flight and the busy volunteers are expected to do over the horizon.

    Returns the expected detected humans per bin from ringing calls and how many calls are ringing, the human
    probability of each call in AMD by the bin its verdict is due, the expected volunteers coming free per bin,
    the volunteers idle now and the humans already waiting.
    """
    hz = stats.horizon
    ring = stats.ringing_table
    amd: list[list[float]] = [[] for _ in range(hz)]
    ages = np.zeros(ring.shape[0])
    waiting = 0
    for c in state.calls:
        if c.status is CallStatus.RINGING:
            ages[min(int(c.elapsed_s / BIN_S), ring.shape[0] - 1)] += 1
        elif c.status is CallStatus.AMD:
            # A human is decided about human_detect_s after answering; still undecided well past that, it is a
            # machine. Between the two, the chance fades linearly.
            left = stats.human_detect_s - c.elapsed_s
            if left > -1.0:
                p = stats.human_share * min(1.0, 1.0 + left) if left < 0 else stats.human_share
                amd[min(max(math.ceil(left / BIN_S), 0), hz - 1)].append(p)
        else:
            waiting += 1
    lam_ring = ages @ ring
    talk_t = stats.talk_free_table
    wrap_t = stats.wrap_free_table
    cdf = np.zeros(hz)
    idle = 0
    for v in state.volunteers:
        if v.status is VolunteerStatus.IDLE:
            idle += 1
        elif v.status is VolunteerStatus.TALKING:
            cdf += talk_t[min(int(v.elapsed_s), talk_t.shape[0] - 1)]
        else:
            cdf += wrap_t[min(int(v.elapsed_s), wrap_t.shape[0] - 1)]
    # The grace period lets a human detected in bin k take a volunteer freed up to grace_s later. The chain lets a
    # volunteer freed anywhere in a bin serve any human of that bin, worth about half a bin of grace already.
    shift = max(0, round((cfg.grace_s - cfg.chain_bin_s / 2) / BIN_S))
    if shift:
        cdf = np.concatenate((cdf[shift:], np.full(shift, cdf[-1])))
    mu = np.diff(np.concatenate(([0.0], cdf)))
    return lam_ring, int(ages.sum()), amd, np.maximum(mu, 0.0), idle, waiting


def _poisson_pmf(lam: np.ndarray, jmax: int) -> np.ndarray:
    """[c, j] Poisson pmf for j = 0..jmax-1, the tail mass folded into the last column."""
    ratios = lam[:, None] / _ARANGE1[1:jmax][None, :]
    out = np.empty((len(lam), jmax))
    out[:, 0] = 1.0
    np.cumprod(ratios, axis=1, out=out[:, 1:])
    out *= np.exp(-lam)[:, None]
    out[:, -1] += np.maximum(0.0, 1.0 - out.sum(axis=1))
    return out


_ARANGE1 = np.arange(4096, dtype=float)


@lru_cache(maxsize=64)
def _chain_indices(k1: int, jmax: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    f = np.arange(k1)
    up = f[None, :] - f[:, None]  # [f, g] = g - f
    up_idx = np.clip(up, 0, k1)
    up_mask = (up >= 0).astype(float)
    down = -up
    down_idx = np.clip(down, 0, jmax - 1)
    down_mask = ((down >= 0) & (down < jmax)).astype(float)
    down_mask[:, 0] = 0.0
    fcap = np.minimum(f, jmax)
    return up_idx, up_mask, down_idx, down_mask, fcap


def expected_abandons(
    lam: np.ndarray, q_new: np.ndarray, n: np.ndarray, mu: np.ndarray, idle: int, kmax: int
) -> tuple[np.ndarray, np.ndarray]:
    """Expected abandons and humans over the horizon for each candidate count ``n`` of extra calls.

    A Markov chain on the number of free volunteers, one bin at a time: volunteers come free (Poisson with mean
    ``mu[k]``), then humans arrive (Poisson with mean ``lam[k] + n·q_new[k]``) and each takes a free volunteer
    or is abandoned.
    """
    c = len(n)
    k1 = kmax + 1
    p = np.zeros((c, k1))
    p[:, min(idle, kmax)] = 1.0
    ab = np.zeros(c)
    lam_all = lam[None, :] + n[:, None] * q_new[None, :]
    humans = lam_all.sum(axis=1)
    tops = lam_all.max(axis=0)
    jmax = min(int(tops.max() + 5.0 * math.sqrt(tops.max()) + 3), 4 * k1 + 8)
    _, _, down_idx, down_mask, fcap = _chain_indices(k1, jmax)
    zeros = np.zeros((c, 1))
    for k in range(len(lam)):
        m = float(mu[k])
        if m > 1e-6:
            p = p @ _free_matrix(m, k1)
        if tops[k] <= 1e-9:
            continue
        pa = _poisson_pmf(lam_all[:, k], jmax)
        cdf = np.cumsum(pa, axis=1)
        # E[(a - f)^+] = E[a] - sum_{j < f} P(a > j): abandons in this bin with f volunteers free.
        csurv = np.cumsum(np.concatenate((zeros, 1.0 - cdf), axis=1), axis=1)
        excess = csurv[:, -1:] - csurv[:, fcap]
        ab += (p * np.maximum(excess, 0.0)).sum(axis=1)
        # New free count g = max(f - a, 0); g = 0 takes every a >= f.
        t = pa[:, down_idx] * down_mask
        t[:, :, 0] = 1.0 - t.sum(axis=2)
        p = np.einsum("cf,cfg->cg", p, t)
    return ab, humans


def _free_matrix(m: float, k1: int) -> np.ndarray:
    """[f, g]: from f free volunteers to g after Poisson(m) more come free (capped at the top state)."""
    up_idx, up_mask = _chain_indices(k1, 1)[:2]
    pf = np.empty(k1 + 1)
    term = math.exp(-m)
    for j in range(k1 + 1):
        pf[j] = term
        term *= m / (j + 1)
    t = pf[up_idx] * up_mask
    t[:, -1] += 1.0 - t.sum(axis=1)  # more free than tracked: stay at the top
    return t


@lru_cache(maxsize=16)
def _comb_table(r1: int, a1: int) -> np.ndarray:
    """[r, a] = C(r, a) for r < r1, a < a1."""
    out = np.zeros((r1, a1))
    for r in range(r1):
        for a in range(min(r, a1 - 1) + 1):
            out[r, a] = math.comb(r, a)
    return out


def _binomial_arrivals(h: np.ndarray, out_now: np.ndarray, a1: int) -> np.ndarray:
    """[c, m, a]: P(a humans in this bin) when ``out_now[c, m]`` calls are out and each turns into a human with
    probability ``h[c]``; the tail beyond a1 - 1 is folded into the last possible count (a pessimistic rounding:
    more humans at once)."""
    r = out_now.astype(int)
    a = np.arange(a1, dtype=float)
    hh = np.clip(h, 0.0, 1.0)[:, None, None]
    expo = np.clip(r[:, :, None] - a[None, None, :], 0.0, None)
    comb = _comb_table(int(r.max()) + 1, a1)[r]
    out = comb * hh ** a[None, None, :] * (1.0 - hh) ** expo
    out *= a[None, None, :] <= r[:, :, None]
    left = np.maximum(0.0, 1.0 - out.sum(axis=2))
    ci, mi = np.indices(r.shape)
    out[ci, mi, np.minimum(r, a1 - 1)] += left
    return out


def _arrive(p: np.ndarray, w: np.ndarray, consume: bool) -> tuple[np.ndarray, np.ndarray]:
    """One batch of arrivals on the (candidate, humans so far, free volunteers) chain.

    ``w[c, m, a]`` is the probability of ``a`` humans in state ``m``; each takes a free volunteer or is
    abandoned. ``consume``: they count towards the humans so far (capped at the last state, which then keeps
    more calls out than there are: pessimistic). Returns the new state and the expected abandons per candidate.
    """
    c, m1, k1 = p.shape
    out = np.zeros_like(p)
    ab = np.zeros(c)
    fidx = np.arange(k1)
    for a in range(w.shape[2]):
        q = p * w[:, :, a, None]
        if a:
            ab += q.sum(axis=1) @ np.maximum(a - fidx, 0).astype(float)
        # Free volunteers after the arrivals: max(f - a, 0).
        moved = np.zeros_like(q)
        moved[:, :, 0] = q[:, :, : a + 1].sum(axis=2)
        if a + 1 < k1:
            moved[:, :, 1 : k1 - a] = q[:, :, a + 1 :]
        if consume and a:
            if a < m1:
                out[:, a:, :] += moved[:, : m1 - a, :]
            out[:, m1 - 1, :] += moved[:, max(m1 - a, 0) :, :].sum(axis=1)
        else:
            out += moved
    return out, ab


def _bernoulli_sum_pmf(probs: Sequence[float]) -> np.ndarray:
    """Distribution of the number of successes of independent trials (Poisson-binomial), by convolution."""
    pmf = np.ones(1)
    for q in probs:
        pmf = np.concatenate((pmf * (1.0 - q), [0.0])) + np.concatenate(([0.0], pmf * q))
    return pmf


def expected_abandons_few(
    lam_ring: np.ndarray,
    n_ring: int,
    amd: Sequence[Sequence[float]],
    q_new: np.ndarray,
    n: np.ndarray,
    mu: np.ndarray,
    idle: int,
    kmax: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``expected_abandons`` for a handful of calls: live answers as sums of Bernoulli trials, not Poisson.

    Each call reaches at most one human. Poisson arrivals ignore that and, with few calls out, overstate the
    chance of two humans at once: a single call alone would already risk an abandon. Here the chain also counts
    the calls still out (``r``): in bin ``k`` each of them turns into a human with the hazard
    ``h_k = λ_k ÷ S_k``, where ``λ_k`` is the expected humans in bin ``k`` from the ringing and new calls and
    ``S_k`` the expected calls not yet answered by a human at its start (the chain's state is the number of humans
    so far, ``m``, so ``r`` is the calls placed less ``m``). That is exact when the calls are alike
    (only new calls out) and keeps every bin's expected humans exact otherwise; pooling calls of different ages
    gives the count the largest variance a sum of Bernoullis with that mean can have, so it errs on the side of
    more abandons. Calls in AMD have their own probability in the bin their verdict is due (``amd[k]``): their
    count per bin is an exact Poisson-binomial.
    """
    c = len(n)
    k1 = kmax + 1
    total = n_ring + n
    lam_all = lam_ring[None, :] + n[:, None] * q_new[None, :]
    before = np.cumsum(lam_all, axis=1) - lam_all
    out_k = total[:, None] - before
    with np.errstate(invalid="ignore", divide="ignore"):
        hazard = np.where(out_k > 1e-9, lam_all / np.maximum(out_k, 1e-9), 0.0)
    humans = lam_all.sum(axis=1) + sum(sum(b) for b in amd)
    # The chain tracks m, the humans the ringing and new calls have produced so far (calls out: total - m). Its
    # mass stays near the expected count; states beyond the cap are merged into the last one.
    top_h = float(lam_all.sum(axis=1).max())
    m1 = int(min(total.max(), math.ceil(top_h + 5.0 * math.sqrt(top_h) + 3))) + 1
    out_now = np.maximum(total[:, None] - np.arange(m1)[None, :], 0)
    p = np.zeros((c, m1, k1))
    p[:, 0, min(idle, kmax)] = 1.0
    ab = np.zeros(c)
    for k in range(len(mu)):
        m = float(mu[k])
        if m > 1e-6:
            p = p @ _free_matrix(m, k1)
        if k < len(amd) and amd[k]:
            pm = _bernoulli_sum_pmf(amd[k])
            p, a = _arrive(p, np.broadcast_to(pm, (c, m1, len(pm))), consume=False)
            ab += a
        top = float(lam_all[:, k].max())
        if top > 1e-12:
            # Enough counts for the humans of one bin (r·h is at most about 1.2 λ: few calls end as humans);
            # the rest of the tail is folded in pessimistically.
            a1 = int(min(total.max() + 1, int(1.2 * top + 5.0 * math.sqrt(1.2 * top) + 3)))
            p, a = _arrive(p, _binomial_arrivals(hazard[:, k], out_now, a1), consume=True)
            ab += a
    return ab, humans


def _coarsen(x: np.ndarray, step: int) -> np.ndarray:
    pad = (-len(x)) % step
    return np.concatenate((x, np.zeros(pad))).reshape(-1, step).sum(axis=1)


def _predictive(cfg: PacingConfig, state: LiveState, stats: HistoryStats, allowed: float, floor: int) -> Decision:
    cap = min(_line_cap(cfg, state), floor + cfg.max_new_per_decision)
    lam_ring, n_ring, amd, mu, idle, waiting = _arrivals_and_frees(cfg, state, stats)
    idle_eff = max(0, idle - waiting)
    q_new = stats.new_call_pmf
    p_h = float(q_new.sum())
    if cap <= floor or p_h <= 0:
        return Decision(floor, "predictive: at line cap", allowed)
    total_free = float(mu.sum())
    kmax = max(1, min(len(state.volunteers), idle_eff + int(total_free + 5 * math.sqrt(total_free) + 2)))
    step = max(1, int(cfg.chain_bin_s / BIN_S))
    if step > 1:
        lam_ring, mu, q_new = (_coarsen(x, step) for x in (lam_ring, mu, q_new))
        amd = [[q for b in amd[i : i + step] for q in b] for i in range(0, len(amd), step)]
    # Most decisions add a handful of calls: try a small batch first, the full range only if all of it passes.
    for top in (min(cap, floor + 11), cap):
        n = np.arange(floor, top + 1, dtype=float)
        if n_ring + top <= cfg.few_calls_max:
            ab, humans = expected_abandons_few(lam_ring, n_ring, amd, q_new, n, mu, idle_eff, kmax)
        else:
            # Many calls out: their humans are a Poisson stream to a good approximation, and far cheaper.
            lam = lam_ring.copy()
            for k, probs in enumerate(amd):
                lam[k] += sum(probs)
            ab, humans = expected_abandons(lam, q_new, n, mu, idle_eff, kmax)
        over = np.nonzero(np.diff(ab) > allowed * p_h)[0]
        if len(over) or top == cap:
            break
    extra = int(over[0]) if len(over) else len(n) - 1
    return Decision(
        floor + extra,
        "predictive",
        allowed,
        float(ab[extra]),
        float(humans[extra]),
    )


@dataclass
class AbandonLedger:
    """Abandons and live answers per day; the governor reads the last ``window_days``."""

    window_days: int = 30
    days: dict[int, list[int]] = field(default_factory=dict)

    def record(self, day: int, *, abandoned: int = 0, live: int = 0) -> None:
        row = self.days.setdefault(day, [0, 0])
        row[0] += abandoned
        row[1] += live

    def totals(self, today: int) -> tuple[int, int]:
        ab = live = 0
        for day, (a, lv) in self.days.items():
            if today - self.window_days < day <= today:
                ab += a
                live += lv
        return ab, live

    def counts(self, today: int) -> AbandonCounts:
        ab, live = self.totals(today)
        ab_t, live_t = self.days.get(today, (0, 0))
        return AbandonCounts(ab, live, ab_t, live_t)


@dataclass
class HistoryWindow:
    """Rolling record of recent dials and conversations, turned into HistoryStats on demand.

    Keeps the last ``max_attempts`` dials and ``max_conversations`` conversations: recent enough to follow a list
    whose answer rate drifts through the evening, large enough for stable estimates.
    """

    ring_timeout_s: float
    max_attempts: int = 3000
    max_conversations: int = 400
    attempts: deque[Attempt] = field(default_factory=deque)
    conversations: deque[tuple[float, float]] = field(default_factory=deque)

    def add_attempt(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        if len(self.attempts) > self.max_attempts:
            self.attempts.popleft()

    def add_conversation(self, talk_s: float, wrap_s: float) -> None:
        self.conversations.append((talk_s, wrap_s))
        if len(self.conversations) > self.max_conversations:
            self.conversations.popleft()

    def stats(self) -> HistoryStats:
        return HistoryStats.from_records(
            list(self.attempts), list(self.conversations), ring_timeout_s=self.ring_timeout_s
        )


def summarize(values: Iterable[float]) -> tuple[float, float]:
    """Mean and 90th percentile; (0, 0) for nothing."""
    arr = np.asarray(list(values), dtype=float)
    if not len(arr):
        return 0.0, 0.0
    return float(arr.mean()), float(np.percentile(arr, 90))
