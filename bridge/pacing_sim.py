"""Seeded discrete-event simulation of a phone bank, for comparing pacing policies.

The simulator drives the same engine the live dialer uses (``bridge.predictive.plan``) and, in the same run and on
the same simulated list and volunteers, the competitor policies: power 1:1 and 3:1, Vicidial's ADAPT_AVERAGE and
ADAPT_HARD_LIMIT, and an Impact-Dialing-style replay simulation. See docs/PACING.md for the model and its
assumptions.

Common random numbers: the n-th dial of every policy meets the same fate (answered or not, by whom, after how many
seconds), the n-th conversation lasts as long, and the volunteers join and leave at the same moments, so differences
between policies come from pacing, not luck.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import re
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bridge import predictive as pe

__all__ = [
    "POLICIES",
    "Result",
    "Scenario",
    "WarmStart",
    "capacity_world",
    "conversation_lengths",
    "dial_fates",
    "forecast_main",
    "main",
    "make_policy",
    "run_engine",
    "run_policy",
    "run_scenario",
]


@dataclass(frozen=True)
class Scenario:
    volunteers: int = 20
    # Share of dials answered within the ring timeout, by a human or a machine.
    answer_rate: float = 0.20
    # Share of answers that are machines (voicemail, fax, carrier messages).
    machine_share: float = 0.40
    talk_mean: float = 120.0
    wrap_mean: float = 20.0
    # Simulated calling hours in total, split into days of ``day_hours``.
    hours: float = 4.0
    day_hours: float = 2.0
    seed: int = 1
    # Compliance floor is 15 s / 4 rings; 30 s lets most voicemail pick up, as real dialers do.
    ring_timeout_s: float = 30.0
    # Talk and wrap-up times are lognormal with these shape parameters (coefficient of variation ≈ 0.95 and 0.53).
    talk_sigma: float = 0.8
    wrap_sigma: float = 0.5
    # Humans answer after a lognormal ring time with this median; machines pick up around 20 s.
    human_ring_median_s: float = 8.0
    human_ring_sigma: float = 0.45
    machine_ring_mean_s: float = 20.0
    machine_ring_sd_s: float = 4.0
    # Unanswered dials that fail fast (busy, unallocated, congestion) instead of ringing out.
    fast_fail_share: float = 0.15
    # Human greeting length; AMD decides HUMAN after the greeting plus 0.8 s of silence.
    greeting_mean_s: float = 1.2
    amd_silence_s: float = 0.8
    # Compliance: a human not connected within 2 s after the greeting ends is abandoned.
    abandon_after_greeting_s: float = 2.0
    machine_detect_min_s: float = 2.5
    machine_detect_max_s: float = 5.0
    # Volunteers: share joining late (first half of the day) and share leaving early (second half).
    late_join_share: float = 0.2
    early_leave_share: float = 0.25
    # Volunteers who log in on time do so within this many seconds of the start of the day.
    login_spread_s: float = 300.0
    # Dialers decide once a second.
    tick_s: float = 1.0
    # No new dials this long before the planned end of a day (every policy), so no call is stranded by the end.
    last_call_s: float = 40.0


@dataclass(frozen=True)
class Result:
    policy: str
    talk_min_per_vol_hour: float
    contacts_per_vol_hour: float
    mean_wait_s: float
    p90_wait_s: float
    abandon_rate: float
    worst_day_abandon_rate: float
    lines_per_volunteer: float
    # Not part of the JSON interface, but handy for the table and the forecast.
    dials: int = 0
    contacts: int = 0
    abandoned: int = 0
    live_answers: int = 0
    vol_hours: float = 0.0

    def public(self) -> dict[str, object]:
        d = asdict(self)
        return {k: d[k] for k in JSON_KEYS}


JSON_KEYS = (
    "policy",
    "talk_min_per_vol_hour",
    "contacts_per_vol_hour",
    "mean_wait_s",
    "p90_wait_s",
    "abandon_rate",
    "worst_day_abandon_rate",
    "lines_per_volunteer",
)

# Event kinds.
_JOIN, _LEAVE, _DETECT, _DEADLINE, _LINE_END, _TALK_END, _WRAP_END, _TICK, _LOG = range(9)
_IDLE, _TALK, _WRAP, _OUT = range(4)
_HUMAN, _MACHINE, _NOANS = range(3)


class _Vol:
    __slots__ = ("leaving", "since", "state")

    def __init__(self, now: float) -> None:
        self.state = _IDLE
        self.since = now
        self.leaving = False


class _Call:
    __slots__ = ("answer_t", "detect_t", "dial_t", "fate")

    def __init__(self, dial_t: float, fate: tuple[int, float, float, float]) -> None:
        self.dial_t = dial_t
        self.fate = fate
        kind, ring, det, _grace = fate
        self.answer_t = dial_t + ring if kind != _NOANS else math.inf
        self.detect_t = self.answer_t + det


class _Fates:
    """The n-th dial's fate, identical for every policy: (kind, ring_s, answer→decision s, grace after it)."""

    def __init__(self, sc: Scenario, seed: Sequence[int]) -> None:
        self.sc = sc
        self.rng = np.random.default_rng(list(seed))
        self.buf: list[tuple[int, float, float, float]] = []
        self.pos = 0

    def _fill(self, n: int = 4096) -> None:
        sc, rng = self.sc, self.rng
        u = rng.random(n)
        p_h = sc.answer_rate * (1 - sc.machine_share)
        p_m = sc.answer_rate * sc.machine_share
        h_ring = np.clip(rng.lognormal(math.log(sc.human_ring_median_s), sc.human_ring_sigma, n), 1.0, None)
        m_ring = np.clip(rng.normal(sc.machine_ring_mean_s, sc.machine_ring_sd_s, n), 6.0, None)
        greet = np.clip(rng.lognormal(math.log(sc.greeting_mean_s) - 0.08, 0.4, n), 0.4, 4.0)
        m_det = rng.uniform(sc.machine_detect_min_s, sc.machine_detect_max_s, n)
        fast = rng.random(n) < sc.fast_fail_share
        fast_t = rng.uniform(1.0, 4.0, n)
        grace = sc.abandon_after_greeting_s - sc.amd_silence_s
        out = []
        to = sc.ring_timeout_s
        for i in range(n):
            if u[i] < p_h:
                # Answer rates are stated within the timeout, so answers land inside it.
                out.append((_HUMAN, float(min(h_ring[i], to - 0.5)), float(greet[i] + sc.amd_silence_s), grace))
            elif u[i] < p_h + p_m:
                out.append((_MACHINE, float(min(m_ring[i], to - 0.5)), float(m_det[i]), 0.0))
            elif fast[i]:
                out.append((_NOANS, float(fast_t[i]), 0.0, 0.0))
            else:
                out.append((_NOANS, to, 0.0, 0.0))
        self.buf.extend(out)

    def next(self) -> tuple[int, float, float, float]:
        if self.pos >= len(self.buf):
            self._fill()
        f = self.buf[self.pos]
        self.pos += 1
        return f


class _Talks:
    """The n-th conversation's (talk_s, wrap_s), identical for every policy."""

    def __init__(self, sc: Scenario, seed: Sequence[int]) -> None:
        self.sc = sc
        self.rng = np.random.default_rng(list(seed))
        self.buf: list[tuple[float, float]] = []
        self.pos = 0

    def peek(self) -> tuple[float, float]:
        r = self.next()
        self.pos -= 1
        return r

    def next(self) -> tuple[float, float]:
        if self.pos >= len(self.buf):
            sc, n = self.sc, 2048
            mu_t = math.log(sc.talk_mean) - sc.talk_sigma**2 / 2
            mu_w = math.log(max(sc.wrap_mean, 0.1)) - sc.wrap_sigma**2 / 2
            t = np.clip(self.rng.lognormal(mu_t, sc.talk_sigma, n), 5.0, 3600.0)
            w = self.rng.lognormal(mu_w, sc.wrap_sigma, n) if sc.wrap_mean > 0 else np.zeros(n)
            self.buf.extend(zip(t.tolist(), w.tolist(), strict=True))
        r = self.buf[self.pos]
        self.pos += 1
        return r


def volunteer_schedule(sc: Scenario) -> list[tuple[float, float]]:
    """(join, leave) times of every volunteer session, all days."""
    rng = np.random.default_rng([sc.seed, 7])
    day_s = sc.day_hours * 3600.0
    days = max(1, math.ceil(sc.hours / sc.day_hours - 1e-9))
    total = sc.hours * 3600.0
    out = []
    for d in range(days):
        start = d * day_s
        end = min(start + day_s, total)
        length = end - start
        for _ in range(sc.volunteers):
            if rng.random() < sc.late_join_share:
                join = start + rng.uniform(0.0, length / 2)
            else:
                join = start + rng.uniform(0.0, min(sc.login_spread_s, length / 4))
            if rng.random() < sc.early_leave_share:
                leave = start + rng.uniform(max(length / 2, join - start + 60.0), length)
            else:
                leave = end
            out.append((join, min(max(leave, join + 60.0), end)))
    return out


# ----------------------------------------------------------------------------------------------------------------
# Policies. Each sees the simulation through a _View and returns how many dials to place now.


class _View:
    """What a policy may look at: live state, recent history, abandon counts and today's dial counts."""

    def __init__(self, sim: _Sim) -> None:
        self.sim = sim

    @property
    def now(self) -> float:
        return self.sim.now

    def live_state(self) -> pe.LiveState:
        return self.sim.live_state()

    def counts(self) -> pe.AbandonCounts:
        return self.sim.ledger.counts(self.sim.day)


class Policy:
    name = "base"

    def decide(self, view: _View) -> int:
        raise NotImplementedError


class EnginePolicy(Policy):
    """Any mode of the real engine (bridge/predictive.py): the same ``pe.plan`` call the live dialer makes for
    power and predictive efforts (bridge.dialer.Dialer.plan), on the simulated state."""

    def __init__(self, name: str, cfg: pe.PacingConfig, refresh_s: float = 30.0) -> None:
        self.name = name
        self.cfg = cfg
        self.refresh_s = refresh_s
        self._stats: pe.HistoryStats | None = None
        self._stats_t = -math.inf

    def decide(self, view: _View) -> int:
        if self.cfg.mode is pe.Mode.PREDICTIVE and view.now - self._stats_t >= self.refresh_s:
            self._stats = view.sim.history.stats()
            self._stats_t = view.now
        return pe.plan(self.cfg, view.live_state(), self._stats, view.counts()).new_calls


class VicidialAdapt(Policy):
    """Vicidial's ADAPT_* dial-level controller, re-implemented from its published description (AST_VDadapt.pl).

    Every 15 s: differential = one-minute average of (ready agents − calls waiting for an agent);
    level ← level × (1 + differential / average agents), clamped to [1, adaptive_maximum_level]. If more than half of
    the last minute's calls (over 20) dropped, halve. Once more than 50 calls were placed today and today's drops
    exceed the limit (as a share of answers), HARD_LIMIT sets the level to 1.0 and AVERAGE halves it.
    The dialer (AST_VDauto_dial.pl) keeps level × (non-paused agents) calls up, counting calls already connected;
    agents in wrap-up are paused in the disposition screen and not counted.
    """

    def __init__(self, hard_limit: bool, max_level: float = 3.0, drop_limit: float = 0.03) -> None:
        self.name = "vicidial_adapt_hard_limit" if hard_limit else "vicidial_adapt_average"
        self.hard = hard_limit
        self.max_level = max_level
        self.drop_limit = drop_limit
        self.level = 1.0
        self.samples: deque[tuple[float, int, int]] = deque()
        self.next_adapt = 15.0

    def decide(self, view: _View) -> int:
        sim = view.sim
        now = sim.now
        ready, talking, logged = sim.n_idle, sim.n_talk, sim.n_logged
        self.samples.append((ready - len(sim.waiting), logged, 0))
        if len(self.samples) > 60:
            self.samples.popleft()
        if now >= self.next_adapt:
            self.next_adapt = now + 15.0
            diff = sum(s[0] for s in self.samples) / len(self.samples)
            agents = sum(s[1] for s in self.samples) / len(self.samples)
            mul = diff / agents if agents else 0.0
            level = min(max(self.level * (1 + mul), 1.0), self.max_level)
            calls_1m, drops_1m = sim.recent_dials(60.0), sim.recent_drops(60.0)
            if calls_1m > 20 and drops_1m / calls_1m > 0.5:
                level /= 2
            if sim.dials_today > 50 and sim.drops_today > self.drop_limit * max(sim.answers_today, 1):
                level = 1.0 if self.hard else level / 2
            self.level = max(level, 1.0)
        goal = round(self.level * (ready + talking))
        return max(0, goal - (sim.n_dialing + talking))


class ImpactReplay(Policy):
    """Impact-Dialing-style pacing (from its published description): every few seconds, replay the last ≤100
    attempts of the last 30 minutes through a 4-minute simulation of the current callers for several candidate
    ratios, pick the highest utilisation whose simulated abandon rate is under the target; 1:1 with fewer than 5
    callers or 50 attempts; × 0.75 while the live abandon rate is over the target. The ratio is lines per idle
    caller. To bound the cost the replay models at most 25 callers (ratios are per caller, so this only adds noise).
    """

    name = "impact_replay"
    RATIOS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0)

    def __init__(self, target: float = 0.03, every_s: float = 10.0, seed: int = 0) -> None:
        self.target = target
        self.every_s = every_s
        self.ratio = 1.0
        self.next_t = 0.0
        self.rng = np.random.default_rng([seed, 99])

    def decide(self, view: _View) -> int:
        sim = view.sim
        if sim.now >= self.next_t:
            self.next_t = sim.now + self.every_s
            self.ratio = self._choose(sim)
        return max(0, math.floor(self.ratio * sim.n_idle + 1e-9) - sim.n_dialing)

    def _choose(self, sim: _Sim) -> float:
        recent = [r for r in sim.replay_log if r[0] >= sim.now - 1800.0][-100:]
        if sim.n_logged < 5 or len(recent) < 50 or len(sim.history.conversations) < 5:
            return 1.0
        convs = list(sim.history.conversations)[-200:]
        callers = min(sim.n_logged, 25)
        best, best_util = 1.0, -1.0
        for ratio in self.RATIOS:
            util, ab = self._replay(recent, convs, callers, ratio, sim)
            if ab < self.target and util > best_util + 1e-9:
                best, best_util = ratio, util
        ab, live = sim.ledger.totals(sim.day)
        if live and ab / live > self.target:
            best *= 0.75
        return max(best, 1.0)

    def _replay(
        self,
        recent: list[tuple[float, int, float, float]],
        convs: list[tuple[float, float]],
        callers: int,
        ratio: float,
        sim: _Sim,
    ) -> tuple[float, float]:
        rng = self.rng
        horizon = 240
        busy_frac = (sim.n_logged - sim.n_idle) / max(sim.n_logged, 1)
        free_at = np.zeros(callers)
        nbusy = round(busy_frac * callers)
        for i in range(nbusy):
            t, w = convs[int(rng.integers(len(convs)))]
            free_at[i] = (t + w) * rng.random()
        pending: list[tuple[float, int]] = []  # (resolve time, is_human)
        talk = 0.0
        humans = abandons = 0
        for sec in range(horizon):
            now = float(sec)
            while pending and pending[0][0] <= now:
                _, human = heapq.heappop(pending)
                if human:
                    humans += 1
                    i = int(np.argmin(free_at))
                    if free_at[i] <= now:
                        t, w = convs[int(rng.integers(len(convs)))]
                        talk += min(t, horizon - now)
                        free_at[i] = now + t + w
                    else:
                        abandons += 1
            idle = int(np.count_nonzero(free_at <= now))
            want = math.floor(ratio * idle + 1e-9) - len(pending)
            for _ in range(max(0, want)):
                _t, kind, ring, det = recent[int(rng.integers(len(recent)))]
                heapq.heappush(pending, (now + ring + det, kind == _HUMAN))
        return talk / (callers * horizon), abandons / humans if humans else 0.0


POLICIES: dict[str, Callable[[Scenario], Policy]] = {
    "ours": lambda sc: EnginePolicy("ours", pe.PacingConfig(mode=pe.Mode.PREDICTIVE)),
    "power_1_1": lambda sc: EnginePolicy("power_1_1", pe.PacingConfig(mode=pe.Mode.POWER, power_ratio=1.0)),
    "power_3_1": lambda sc: EnginePolicy("power_3_1", pe.PacingConfig(mode=pe.Mode.POWER, power_ratio=3.0)),
    "vicidial_adapt_average": lambda sc: VicidialAdapt(hard_limit=False),
    "vicidial_adapt_hard_limit": lambda sc: VicidialAdapt(hard_limit=True),
    "impact_replay": lambda sc: ImpactReplay(seed=sc.seed),
}


# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WarmStart:
    """What an effort already knows when the simulated shift starts: earlier dials and conversations, and the
    abandon ledger's counts so far (recorded as today's). Lets the simulator start where a live effort with a
    history does."""

    attempts: tuple[pe.Attempt, ...] = ()
    conversations: tuple[tuple[float, float], ...] = ()
    abandoned: int = 0
    live_answers: int = 0


class _Sim:
    def __init__(
        self, sc: Scenario, policy: Policy, warm: WarmStart | None = None, answers_at_hangup: bool = False
    ) -> None:
        self.sc = sc
        # Before bridge/dialer.py put a live answer into the history at its verdict it did so at hang-up; this
        # replays that (for the before/after of bench/pacing.py --cold-start).
        self.answers_at_hangup = answers_at_hangup
        self.policy = policy
        self.now = 0.0
        self.day = 0
        self.events: list[tuple[float, int, int, Any]] = []
        self.seq = 0
        self.fates = _Fates(sc, [sc.seed, 1])
        self.talks = _Talks(sc, [sc.seed, 2])
        self.vols: dict[int, _Vol] = {}
        self.calls: dict[int, _Call] = {}
        self.waiting: deque[int] = deque()  # humans waiting for a volunteer, oldest first
        self.next_call_id = 0
        self.history = pe.HistoryWindow(ring_timeout_s=sc.ring_timeout_s)
        self.ledger = pe.AbandonLedger()
        self.replay_log: deque[tuple[float, int, float, float]] = deque(maxlen=400)
        self.n_idle = self.n_talk = self.n_logged = 0
        self.dial_times: deque[float] = deque()
        self.drop_times: deque[float] = deque()
        self.dials_today = self.drops_today = self.answers_today = 0
        # metrics
        self.vol_seconds = 0.0
        self.talk_seconds = 0.0
        self.contacts = 0
        self.dials = 0
        self.waits: list[float] = []
        self.day_counts: dict[int, list[int]] = {}
        self.line_sum = 0.0
        self.logged_sum = 0.0
        self._live_cache: tuple[float, pe.LiveState] | None = None
        if warm is not None:
            for a in warm.attempts:
                self.history.add_attempt(a)
            for talk, wrap in warm.conversations:
                self.history.add_conversation(talk, wrap)
            self.ledger.record(0, abandoned=warm.abandoned, live=warm.live_answers)

    # -- bookkeeping -------------------------------------------------------------------------------------------

    @property
    def n_dialing(self) -> int:
        return len(self.calls)

    def push(self, t: float, kind: int, obj: Any) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, obj))

    def recent_dials(self, window: float) -> int:
        while self.dial_times and self.dial_times[0] < self.now - window:
            self.dial_times.popleft()
        return len(self.dial_times)

    def recent_drops(self, window: float) -> int:
        while self.drop_times and self.drop_times[0] < self.now - window:
            self.drop_times.popleft()
        return len(self.drop_times)

    def live_state(self) -> pe.LiveState:
        if self._live_cache and self._live_cache[0] == self.now:
            return self._live_cache[1]
        now = self.now
        vols = []
        for v in self.vols.values():
            if v.state == _IDLE:
                vols.append(pe.Volunteer(pe.VolunteerStatus.IDLE, now - v.since))
            elif v.state == _TALK:
                vols.append(pe.Volunteer(pe.VolunteerStatus.TALKING, now - v.since))
            elif v.state == _WRAP:
                vols.append(pe.Volunteer(pe.VolunteerStatus.WRAPUP, now - v.since))
        calls = []
        for c in self.calls.values():
            if now < c.answer_t:
                calls.append(pe.Call(pe.CallStatus.RINGING, now - c.dial_t))
            elif now < c.detect_t:
                calls.append(pe.Call(pe.CallStatus.AMD, now - c.answer_t))
            else:
                calls.append(pe.Call(pe.CallStatus.WAITING, now - c.detect_t))
        st = pe.LiveState(tuple(vols), tuple(calls))
        self._live_cache = (now, st)
        return st

    def _day_row(self) -> list[int]:
        return self.day_counts.setdefault(self.day, [0, 0])

    # -- run ---------------------------------------------------------------------------------------------------

    def run(self) -> Result:
        sc = self.sc
        total = sc.hours * 3600.0
        day_s = sc.day_hours * 3600.0
        for i, (join, leave) in enumerate(volunteer_schedule(sc)):
            self.push(join, _JOIN, i)
            self.push(leave, _LEAVE, i)
        self.push(0.0, _TICK, None)
        view = _View(self)
        last_t = 0.0
        while self.events:
            t, _, kind, obj = heapq.heappop(self.events)
            # Volunteer-time and line integrals between events.
            if t > last_t:
                self.vol_seconds += self.n_logged * (t - last_t)
                last_t = t
            self.now = t
            day = int(t // day_s)
            if day != self.day:
                self.day = day
                self.dials_today = self.drops_today = self.answers_today = 0
            if kind == _TICK:
                if self.n_logged:
                    self.line_sum += self.n_dialing
                    self.logged_sum += self.n_logged
                day_end = (self.day + 1) * day_s
                if t < min(day_end, total) - sc.last_call_s and self.n_logged:
                    for _ in range(policy_decide(self.policy, view)):
                        self.dial()
                if t + sc.tick_s < total:
                    self.push(t + sc.tick_s, _TICK, None)
            elif kind == _JOIN:
                self.vols[obj] = _Vol(t)
                self.n_logged += 1
                self.n_idle += 1
                self.serve_waiting(obj)
            elif kind == _LEAVE:
                v = self.vols.get(obj)
                if v is not None:
                    if v.state == _IDLE:
                        self.logout(obj)
                    else:
                        v.leaving = True
            elif kind == _DETECT:
                self.human_detected(obj)
            elif kind == _DEADLINE:
                self.deadline(obj)
            elif kind == _LINE_END:
                self.line_end(obj)
            elif kind == _LOG:
                self._log_attempt(obj, now=True)
            elif kind == _TALK_END:
                vid, talk_s, wrap_s = obj
                v = self.vols[vid]
                v.state, v.since = _WRAP, t
                self.n_talk -= 1
                self.push(t + wrap_s, _WRAP_END, (vid, talk_s, wrap_s))
            elif kind == _WRAP_END:
                vid, talk_s, wrap_s = obj
                self.history.add_conversation(talk_s, wrap_s)
                v = self.vols[vid]
                if v.leaving:
                    v.state = _OUT
                    del self.vols[vid]
                    self.n_logged -= 1
                else:
                    v.state, v.since = _IDLE, t
                    self.n_idle += 1
                    self.serve_waiting(vid)
        return self.result()

    def logout(self, vid: int) -> None:
        del self.vols[vid]
        self.n_logged -= 1
        self.n_idle -= 1

    def dial(self) -> None:
        cid = self.next_call_id
        self.next_call_id += 1
        fate = self.fates.next()
        c = _Call(self.now, fate)
        self.calls[cid] = c
        self.dials += 1
        self.dials_today += 1
        self.dial_times.append(self.now)
        kind, ring, _det, _ = fate
        if kind == _HUMAN:
            self.push(c.detect_t, _DETECT, cid)
        elif kind == _MACHINE:
            self.push(c.detect_t, _LINE_END, cid)
        else:
            self.push(self.now + ring, _LINE_END, cid)

    def _log_attempt(self, c: _Call, now: bool = False) -> None:
        kind, ring, det, _ = c.fate
        if kind == _HUMAN and self.answers_at_hangup and not now:
            # Connected: at the end of its conversation; abandoned: after the apology (about 3 s).
            self.push(self.now + (self.talks.peek()[0] if self.vols and self.n_idle else 3.0), _LOG, c)
            return
        outcome = (pe.Outcome.HUMAN, pe.Outcome.MACHINE, pe.Outcome.NO_ANSWER)[kind]
        self.history.add_attempt(pe.Attempt(ring, outcome, det))
        self.replay_log.append((self.now, kind, ring, det))

    def line_end(self, cid: int) -> None:
        c = self.calls.pop(cid)
        self._log_attempt(c)

    def human_detected(self, cid: int) -> None:
        c = self.calls[cid]
        self._log_attempt(c)
        self.answers_today += 1
        self._day_row()[1] += 1
        self.ledger.record(self.day, live=1)
        vid = self._longest_idle()
        if vid is not None:
            del self.calls[cid]
            self.connect(vid)
        else:
            self.waiting.append(cid)
            self.push(self.now + c.fate[3], _DEADLINE, cid)

    def deadline(self, cid: int) -> None:
        if cid not in self.calls:
            return
        del self.calls[cid]
        self.waiting.remove(cid)
        self.drops_today += 1
        self.drop_times.append(self.now)
        self._day_row()[0] += 1
        self.ledger.record(self.day, abandoned=1)

    def _longest_idle(self) -> int | None:
        best, best_t = None, math.inf
        for vid, v in self.vols.items():
            if v.state == _IDLE and v.since < best_t:
                best, best_t = vid, v.since
        return best

    def serve_waiting(self, vid: int) -> None:
        if self.waiting:
            cid = self.waiting.popleft()
            del self.calls[cid]
            self.connect(vid)

    def connect(self, vid: int) -> None:
        v = self.vols[vid]
        self.waits.append(self.now - v.since)
        v.state, v.since = _TALK, self.now
        self.n_idle -= 1
        self.n_talk += 1
        self.contacts += 1
        talk_s, wrap_s = self.talks.next()
        self.talk_seconds += talk_s
        self.push(self.now + talk_s, _TALK_END, (vid, talk_s, wrap_s))

    def result(self) -> Result:
        vol_h = self.vol_seconds / 3600.0
        ab = sum(r[0] for r in self.day_counts.values())
        live = sum(r[1] for r in self.day_counts.values())
        worst = max((r[0] / r[1] for r in self.day_counts.values() if r[1]), default=0.0)
        mean_w, p90_w = pe.summarize(self.waits)
        return Result(
            policy=self.policy.name,
            talk_min_per_vol_hour=round(self.talk_seconds / 60.0 / vol_h, 2) if vol_h else 0.0,
            contacts_per_vol_hour=round(self.contacts / vol_h, 2) if vol_h else 0.0,
            mean_wait_s=round(mean_w, 1),
            p90_wait_s=round(p90_w, 1),
            abandon_rate=round(ab / live, 4) if live else 0.0,
            worst_day_abandon_rate=round(worst, 4),
            lines_per_volunteer=round(self.line_sum / self.logged_sum, 2) if self.logged_sum else 0.0,
            dials=self.dials,
            contacts=self.contacts,
            abandoned=ab,
            live_answers=live,
            vol_hours=round(vol_h, 2),
        )


def policy_decide(policy: Policy, view: _View) -> int:
    return max(0, int(policy.decide(view)))


def make_policy(sc: Scenario, name: str) -> Policy:
    """A policy by name: one of POLICIES, ``power_R_1`` for any fixed ratio R, ``ours@T`` for our engine with
    abandon target T (a fraction), or ``ours_fixed@A`` for our engine with the governor off and a fixed marginal
    abandon allowance A per call (to map the engine's wait/abandon trade-off)."""
    if name in POLICIES:
        return POLICIES[name](sc)
    m = re.fullmatch(r"ours@(0?\.\d+)", name)
    if m:
        return EnginePolicy(name, pe.PacingConfig(abandon_target=float(m.group(1))))
    m = re.fullmatch(r"ours_fixed@(0?\.\d+)", name)
    if m:
        # Governor off: every extra call may carry this marginal abandon risk, whatever the running rate.
        a = float(m.group(1))
        cfg = pe.PacingConfig(abandon_target=1.0, risk_share=a, min_risk_share=a, daily_guard=False)
        return EnginePolicy(name, cfg)
    m = re.fullmatch(r"power_(\d+(?:\.\d+)?)_1", name)
    if m:
        return EnginePolicy(name, pe.PacingConfig(mode=pe.Mode.POWER, power_ratio=float(m.group(1))))
    raise KeyError(name)


def run_policy(sc: Scenario, name: str) -> Result:
    """Simulate one scenario under one policy."""
    return _Sim(sc, make_policy(sc, name)).run()


def run_engine(
    sc: Scenario,
    cfg: pe.PacingConfig,
    name: str = "ours",
    warm: WarmStart | None = None,
    answers_at_hangup: bool = False,
) -> Result:
    """Simulate one scenario under our engine with a given configuration (e.g. an effort's pacing settings),
    optionally starting from an effort's history (``answers_at_hangup``: live answers reach the history when their
    call ends, as the live dialer recorded them before it did so at the verdict)."""
    return _Sim(sc, EnginePolicy(name, cfg), warm, answers_at_hangup).run()


def capacity_world(volunteers: int, minutes: float = 3.0, seed: int = 1) -> Scenario:
    """One step of bench/capacity.py from a cold start, as the simulator models it: the carrier's list (36 %
    people, 26 % machines, 24 % busy or not in service, 14 % never answered; rings of 2–8 s), conversations of
    15–45 s, wrap-ups of 3–8 s, AMD judging a person about 2.8 s after the answer, no grace after the verdict (the
    live dialer abandons at once when nobody is free), everybody logged in within 10 s. Dials stop after
    ``minutes``; the volunteers stay a minute longer so every call placed is answered or ends, as in the benchmark."""
    h = (minutes + 1.0) / 60.0
    return Scenario(
        volunteers=volunteers,
        answer_rate=0.62,
        machine_share=26 / 62,
        talk_mean=30.0,
        wrap_mean=5.5,
        hours=h,
        day_hours=h,
        seed=seed,
        ring_timeout_s=25.0,
        talk_sigma=0.3,
        wrap_sigma=0.25,
        human_ring_median_s=4.6,
        human_ring_sigma=0.35,
        machine_ring_mean_s=5.0,
        machine_ring_sd_s=1.7,
        fast_fail_share=24 / 38,
        greeting_mean_s=2.0,
        amd_silence_s=0.8,
        abandon_after_greeting_s=0.8,
        late_join_share=0.0,
        early_leave_share=0.0,
        login_spread_s=10.0,
        last_call_s=60.0,
    )


def dial_fates(sc: Scenario, n: int) -> list[tuple[str, float, float]]:
    """The first ``n`` dial fates the simulator would draw for ``sc``: (kind, ring_s, answer→verdict s) with kind
    "human", "machine", "fast_fail" (busy, unallocated, congestion) or "no_answer". For building a live network
    with the same statistics (phonebank.sim.network_for_scenario)."""
    fates = _Fates(sc, [sc.seed, 1])
    out = []
    for _ in range(n):
        kind, ring, det, _ = fates.next()
        if kind == _HUMAN:
            out.append(("human", ring, det))
        elif kind == _MACHINE:
            out.append(("machine", ring, det))
        else:
            out.append(("fast_fail" if ring < sc.ring_timeout_s else "no_answer", ring, 0.0))
    return out


def conversation_lengths(sc: Scenario, n: int) -> list[tuple[float, float]]:
    """The first ``n`` (talk_s, wrap_s) the simulator would draw for ``sc``."""
    talks = _Talks(sc, [sc.seed, 2])
    return [talks.next() for _ in range(n)]


def run_scenario(sc: Scenario, policies: Sequence[str] | None = None) -> list[Result]:
    """Simulate one scenario under every policy (same seed, same list, same volunteers)."""
    return [run_policy(sc, name) for name in (policies or POLICIES)]


# ----------------------------------------------------------------------------------------------------------------
# Command line


def _scenario_args(p: argparse.ArgumentParser) -> None:
    d = Scenario()
    p.add_argument("--volunteers", type=int, default=d.volunteers)
    p.add_argument("--answer-rate", type=float, default=d.answer_rate)
    p.add_argument("--machine-share", type=float, default=d.machine_share)
    p.add_argument("--talk-mean", type=float, default=d.talk_mean, help="seconds")
    p.add_argument("--wrap-mean", type=float, default=d.wrap_mean, help="seconds")
    p.add_argument("--hours", type=float, default=d.hours, help="simulated calling hours")
    p.add_argument("--day-hours", type=float, default=d.day_hours, help="length of one day's shift")
    p.add_argument("--seed", type=int, default=d.seed)


def format_table(rows: Sequence[Result]) -> str:
    head = ("policy", "talk/vol-h", "contacts/vol-h", "wait s", "p90 wait", "abandon", "worst day", "lines/vol")
    lines = ["{:<26}{:>11}{:>15}{:>8}{:>10}{:>9}{:>11}{:>10}".format(*head)]
    for r in rows:
        lines.append(
            f"{r.policy:<26}{r.talk_min_per_vol_hour:>11.1f}{r.contacts_per_vol_hour:>15.1f}{r.mean_wait_s:>8.1f}"
            f"{r.p90_wait_s:>10.1f}{r.abandon_rate:>9.2%}{r.worst_day_abandon_rate:>11.2%}"
            f"{r.lines_per_volunteer:>10.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``phonebank bench pacing``: one scenario, every policy."""
    p = argparse.ArgumentParser(prog="phonebank bench pacing", description=main.__doc__)
    _scenario_args(p)
    p.add_argument("--policy", action="append", choices=list(POLICIES), help="only these (repeatable)")
    p.add_argument("--json", action="store_true", help="one JSON object per policy per line")
    a = p.parse_args(argv)
    sc = Scenario(
        volunteers=a.volunteers,
        answer_rate=a.answer_rate,
        machine_share=a.machine_share,
        talk_mean=a.talk_mean,
        wrap_mean=a.wrap_mean,
        hours=a.hours,
        day_hours=min(a.day_hours, a.hours),
        seed=a.seed,
    )
    rows = run_scenario(sc, a.policy)
    if a.json:
        for r in rows:
            sys.stdout.write(json.dumps(r.public()) + "\n")
    else:
        sys.stdout.write(
            f"{sc.volunteers} volunteers, answer rate {sc.answer_rate:.0%}, machines {sc.machine_share:.0%}, "
            f"talk {sc.talk_mean:.0f} s, wrap {sc.wrap_mean:.0f} s, {sc.hours:g} h, seed {sc.seed}\n"
        )
        sys.stdout.write(format_table(rows) + "\n")
    return 0


def forecast(
    *,
    list_size: int,
    answer_rate: float,
    shift_hours: float,
    conversations: int | None = None,
    machine_share: float = 0.4,
    talk_mean: float = 120.0,
    wrap_mean: float = 20.0,
    max_attempts: int = 3,
    shifts: int = 1,
    seed: int = 1,
    max_volunteers: int = 200,
    max_sim_hours: float = 1.0,
) -> dict[str, object]:
    """How many volunteers (per shift) and volunteer-hours it takes to reach ``conversations`` live conversations.

    Each attempt reaches a human with probability answer_rate × (1 − machine_share); a contact reached once is not
    called again, so the list can yield at most list_size × (1 − (1 − p)^max_attempts) conversations. Throughput per
    volunteer-hour comes from simulating a shift (at most ``max_sim_hours`` of it, scaled up) of our predictive pacing
    with candidate team sizes (small teams wait longer between calls), looking for the smallest team that gets there
    in ``shifts`` shifts.
    """
    p_h = answer_rate * (1 - machine_share)
    reachable = list_size * (1 - (1 - p_h) ** max_attempts)
    goal = min(conversations if conversations is not None else int(reachable), int(reachable))
    per_shift: dict[int, Result] = {}
    sim_hours = min(shift_hours, max_sim_hours)

    def sim(v: int) -> Result:
        if v not in per_shift:
            sc = Scenario(
                volunteers=v,
                answer_rate=answer_rate,
                machine_share=machine_share,
                talk_mean=talk_mean,
                wrap_mean=wrap_mean,
                hours=sim_hours,
                day_hours=sim_hours,
                seed=seed,
            )
            per_shift[v] = run_policy(sc, "ours")
        return per_shift[v]

    def shift_contacts(v: int) -> float:
        return sim(v).contacts * shift_hours / sim_hours

    # Conversations grow about linearly with the team: a few fixed-point steps from a rough guess, then make sure
    # the team found really gets there.
    v = min(max(1, math.ceil(goal / (shifts * shift_hours * 15.0))), max_volunteers)
    for _ in range(6):
        got = shift_contacts(v) * shifts
        need = min(max(1, math.ceil(v * goal / got)) if got else 2 * v, max_volunteers)
        if need == v:
            break
        v = need
    while shift_contacts(v) * shifts < goal and v < max_volunteers:
        v += 1
    while v > 1 and shift_contacts(v - 1) * shifts >= goal:
        v -= 1
    hi = v
    r = sim(hi)
    enough = shift_contacts(hi) * shifts >= goal
    vol_hours = goal / r.contacts_per_vol_hour if r.contacts_per_vol_hour else math.inf
    dials = goal / p_h if p_h else math.inf
    return {
        "conversations_goal": goal,
        "conversations_reachable_from_list": int(reachable),
        "volunteers_per_shift": hi if enough else None,
        "shifts": shifts,
        "shift_hours": shift_hours,
        "volunteer_hours": round(vol_hours, 1),
        "contacts_per_vol_hour": r.contacts_per_vol_hour,
        "talk_min_per_vol_hour": r.talk_min_per_vol_hour,
        "abandon_rate": r.abandon_rate,
        "dials": math.ceil(dials),
    }


def forecast_main(argv: list[str] | None = None) -> int:
    """``phonebank forecast``: volunteers and hours needed to reach N conversations."""
    p = argparse.ArgumentParser(prog="phonebank forecast", description=forecast_main.__doc__)
    p.add_argument("--list-size", type=int, required=True)
    p.add_argument("--answer-rate", type=float, required=True)
    p.add_argument("--shift-hours", type=float, required=True)
    p.add_argument("--conversations", type=int, help="goal; default: all the list can yield")
    p.add_argument("--shifts", type=int, default=1)
    p.add_argument("--machine-share", type=float, default=0.4)
    p.add_argument("--talk-mean", type=float, default=120.0, help="seconds")
    p.add_argument("--wrap-mean", type=float, default=20.0, help="seconds")
    p.add_argument("--max-attempts", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    out = forecast(
        list_size=a.list_size,
        answer_rate=a.answer_rate,
        shift_hours=a.shift_hours,
        conversations=a.conversations,
        machine_share=a.machine_share,
        talk_mean=a.talk_mean,
        wrap_mean=a.wrap_mean,
        max_attempts=a.max_attempts,
        shifts=a.shifts,
        seed=a.seed,
    )
    if a.json:
        sys.stdout.write(json.dumps(out) + "\n")
        return 0
    vols = out["volunteers_per_shift"]
    lines = [
        f"Goal: {out['conversations_goal']} conversations "
        f"(the list can yield about {out['conversations_reachable_from_list']}).",
        f"Throughput with predictive pacing: {out['contacts_per_vol_hour']} conversations per volunteer-hour, "
        f"{out['talk_min_per_vol_hour']} talk-minutes per volunteer-hour, abandon {out['abandon_rate']:.1%}.",
        f"Volunteer-hours needed: {out['volunteer_hours']}; dials: about {out['dials']}.",
        (
            f"Volunteers per shift: {vols} for {out['shifts']} shift(s) of {out['shift_hours']} h."
            if vols is not None
            else "More than 200 volunteers per shift would be needed: add shifts."
        ),
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
