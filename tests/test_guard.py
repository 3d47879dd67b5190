"""The call-in guard as tables: codes keyed from calling numbers over time, and what the guard decides."""

from __future__ import annotations

import pytest

from callin.guard import (
    ANONYMOUS,
    Alarm,
    Check,
    Guard,
    Hold,
    Limits,
    Locked,
    LockedOut,
    Right,
    Submit,
    Wrong,
    alert,
    from_json,
    number_of,
    step,
    summary,
    tarpit_s,
    to_json,
)

LIM = Limits()  # the real defaults
A, B = "+15550000001", "+15550000002"


def run(script: list[tuple[float, str, str]], g: Guard | None = None) -> tuple[Guard, list[tuple[float, object]]]:
    """(now, number, "?" keyed (looked up when let through) / "x" a wrong code / "r" a right code)."""
    g = g or Guard()
    out: list[tuple[float, object]] = []
    for now, number, what in script:
        if what == "x":
            g, ds = step(g, Wrong(number), now)
        elif what == "r":
            g, ds = step(g, Right(number), now)
        else:
            g, ds = step(g, Submit(number, now), now)
        out += [(now, d) for d in ds]
    return g, out


def wrong_calls(number: str, n: int, start: float = 0.0, gap: float = 60.0) -> list[tuple[float, str, str]]:
    """``n`` wrong codes from ``number``, each keyed after the previous one's tarpit is over."""
    return [(start + i * gap, number, "x") for i in range(n)]


@pytest.mark.parametrize(
    ("wrong", "delay"),
    [(0, 0.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 30.0), (9, 30.0)],
)
def test_the_tarpit_doubles_per_wrong_code_and_is_capped(wrong: int, delay: float) -> None:
    assert tarpit_s(LIM, wrong) == delay


@pytest.mark.parametrize(
    ("history", "now", "number", "decision"),
    [
        # A clean number: looked up at once.
        ([], 100.0, A, Check()),
        # One wrong code a minute ago: the next code waits 2 s from when it was keyed.
        (wrong_calls(A, 1), 60.0, A, Hold(62.0, "tarpit")),
        # ... but only that number's codes.
        (wrong_calls(A, 1), 60.0, B, Check()),
        # Five wrong codes: 30 s (16 s doubled, capped).
        (wrong_calls(A, 5), 300.0, A, Hold(330.0, "tarpit")),
        # The sixth wrong code locks the number out for an hour from it.
        (wrong_calls(A, 6), 301.0, A, Locked(300.0 + 3600.0)),
        (wrong_calls(A, 6), 3899.0, A, Locked(3900.0)),
        # After the lock and once the wrong codes have left the window: a clean number again.
        (wrong_calls(A, 6), 3901.0, A, Check()),
        # Wrong codes older than the window are forgotten: no tarpit.
        (wrong_calls(A, 2), 3600.0 + 60.0 + 0.1, A, Check()),
        # Withheld caller IDs share one number: one anonymous guesser slows the others.
        (wrong_calls(ANONYMOUS, 1), 60.0, ANONYMOUS, Hold(62.0, "tarpit")),
    ],
)
def test_limits_per_calling_number(
    history: list[tuple[float, str, str]], now: float, number: str, decision: object
) -> None:
    g, _ = run(history)
    _, ds = step(g, Submit(number, now), now)
    assert ds[-1] == decision


def test_a_locked_number_is_logged_once_with_its_count() -> None:
    _, out = run(wrong_calls(A, 8))
    assert [d for _, d in out if isinstance(d, LockedOut)] == [LockedOut(A, 300.0 + 3600.0, 6)]


def test_a_right_code_forgives_nothing() -> None:
    # A volunteer keying their own code between guesses stays on the clock.
    g, _ = run([*wrong_calls(A, 5), (400.0, A, "r")])
    _, ds = step(g, Submit(A, 400.5), 400.5)
    assert ds == [Hold(430.5, "tarpit")]
    _, ds = step(g, Wrong(A), 401.0)
    assert LockedOut(A, 4001.0, 6) in ds


def spoofed(n: int, start: float = 0.0, gap: float = 1.0) -> list[tuple[float, str, str]]:
    """``n`` wrong codes, each from a different (spoofed) number: no per-number limit ever applies."""
    return [(start + i * gap, f"+1555100{i:04d}", "x") for i in range(n)]


@pytest.mark.parametrize(
    ("history", "now", "decision"),
    [
        # 19 wrong codes overall in the hour: no pace yet.
        (spoofed(19), 30.0, Check()),
        # The 20th: the alarm is on, codes from anyone are looked up one per 10 s at most. The last lookup was
        # none yet (0): the first is at once ...
        (spoofed(20), 30.0, Check()),
        # ... and the next one waits its turn, whoever keys it.
        ([*spoofed(20), (30.0, "+15559999999", "?")], 31.0, Hold(40.0, "pace")),
        ([*spoofed(20), (30.0, "+15559999999", "?")], 40.0, Check()),
        # The alarm ends when the wrong codes fall out of the window below the threshold.
        ([*spoofed(20), (30.0, "+15559999999", "?")], 3600.0 + 0.5, Check()),
    ],
)
def test_the_overall_pace_when_wrong_codes_from_all_numbers_pass_the_threshold(
    history: list[tuple[float, str, str]], now: float, decision: object
) -> None:
    g, _ = run(history)
    _, ds = step(g, Submit("+15552222222", now), now)
    assert ds[-1] == decision


def test_the_alarm_is_raised_and_cleared_once() -> None:
    g, out = run(spoofed(25))
    assert [d for _, d in out if isinstance(d, Alarm)] == [Alarm(True, 20)]
    assert g.alarm and summary(g, 30.0).wrong_last_window == 25
    g, ds = step(g, Submit(A, 4000.0), 4000.0)
    assert ds == [Alarm(False, 0), Check()]
    assert not g.alarm


def test_a_caller_who_hangs_up_while_held_takes_no_turn() -> None:
    # Turns go by the last lookup, not by reservations: a thousand codes keyed and abandoned while held
    # leave the next caller's wait where it was.
    g, _ = run([*spoofed(20), (30.0, B, "?")])
    for i in range(1000):
        g, ds = step(g, Submit(f"+1666{i:07d}", 31.0), 31.0)
        assert ds == [Hold(40.0, "pace")]
    _, ds = step(g, Submit(A, 40.0), 40.0)
    assert ds == [Check()]


def test_the_worst_case_guesses_a_day_under_the_pace() -> None:
    # An attacker with a new spoofed number for every code and as many lines as they like, keying as soon as
    # they are let through, for a day: the lookups are what the docs' arithmetic says at most.
    g, now, looked_up, i = Guard(), 0.0, 0, 0
    while now < 86400.0:
        number = f"+1777{i:07d}"
        i += 1
        g, ds = step(g, Submit(number, now), now)
        if ds[-1] == Check():
            looked_up += 1
            g, _ = step(g, Wrong(number), now)
        else:
            hold = ds[-1]
            assert isinstance(hold, Hold)
            now = hold.until
    assert looked_up <= 24 * LIM.guesses_per_hour()
    assert LIM.guesses_per_hour() == 20 + 360 + 1
    assert 8000 < looked_up < 8700  # about 360 an hour: the pace, not the attacker, sets it


def test_summary_for_the_dashboard() -> None:
    g, _ = run(wrong_calls(A, 7) + spoofed(3, start=500.0))
    s = summary(g, 600.0)
    assert (s.wrong_last_window, s.numbers_locked, s.alarm) == (10, 1, False)
    s = summary(g, 300.0 + 3600.0 + 1)  # A's lock is over; its codes and most others left the window
    assert s.numbers_locked == 0


def test_the_guard_survives_a_restart_as_json() -> None:
    g, _ = run(wrong_calls(A, 6) + spoofed(20, start=400.0))
    back = from_json(to_json(g), LIM)
    assert back == g
    _, ds = step(back, Submit(A, 500.0), 500.0)
    assert ds[-1] == Locked(3900.0)


@pytest.mark.parametrize("raw", [None, "", "not json", "[1, 2]", '{"wrong": [["x"]]}', '{"wrong": 5}'])
def test_an_unreadable_stored_guard_starts_empty(raw: str | None) -> None:
    assert from_json(raw, LIM) == Guard()


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ('{"lock_afterr": 3}', "unknown call-in limits: lock_afterr"),
        ('{"lock_after": 0}', "lock_after >= 1"),
        ("[]", "must be a JSON object"),
    ],
)
def test_bad_limits_are_refused(raw: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Limits.from_json(raw)


def test_limits_from_settings() -> None:
    assert Limits.from_json("") == Limits()
    lim = Limits.from_json('{"tarpit_base_s": 0.5, "lock_after": 4, "alarm_spacing_s": 1}')
    assert (lim.tarpit_base_s, lim.lock_after, lim.alarm_spacing_s, lim.window_s) == (0.5, 4, 1.0, 3600.0)


@pytest.mark.parametrize(
    ("caller", "number"),
    [
        ("+15550000001", "+15550000001"),
        ("", ANONYMOUS),
        (None, ANONYMOUS),
        ("Anonymous", ANONYMOUS),
        (" 2025550100 ", "2025550100"),
    ],
)
def test_calling_numbers(caller: str | None, number: str) -> None:
    assert number_of(caller) == number


@pytest.mark.parametrize(
    ("history", "now", "text"),
    [
        ([], 10.0, ""),
        (wrong_calls(A, 5), 300.0, ""),  # a volunteer fumbling is no alert
        (wrong_calls(A, 6), 301.0, "6 wrong call-in codes in the last hour, 1 number locked out."),
        (
            [*wrong_calls(A, 6), *spoofed(14, start=400.0)],
            500.0,
            "20 wrong call-in codes in the last hour, 1 number locked out. Someone may be guessing codes: every "
            "caller's code is checked at most one per 10 s until it calms down, so volunteers calling in may wait.",
        ),
        (spoofed(1), 10.0, ""),
    ],
)
def test_the_dashboard_alert(history: list[tuple[float, str, str]], now: float, text: str) -> None:
    g, _ = run(history)
    assert alert(g, now) == text


@pytest.mark.parametrize(
    ("history", "now", "number", "decision"),
    [
        # A number that keyed a right code skips the overall pace: a volunteer calling back from their usual
        # phone is not queued behind an attack ...
        ([(0.0, A, "r"), *spoofed(20, start=10.0), (30.0, B, "?")], 31.0, A, Check()),
        # ... a withheld number is never trusted ...
        ([(0.0, ANONYMOUS, "r"), *spoofed(20, start=10.0), (30.0, B, "?")], 31.0, ANONYMOUS, Hold(40.0, "pace")),
        # ... nor one whose trust ran out (30 days).
        (
            [(0.0, A, "r"), *spoofed(20, start=LIM.trust_s), (LIM.trust_s + 30, B, "?")],
            LIM.trust_s + 31,
            A,
            Hold(LIM.trust_s + 40, "pace"),
        ),
        # Its own tarpit and lockout still apply.
        ([(0.0, A, "r"), *wrong_calls(A, 2, start=10.0)], 70.5, A, Hold(74.5, "tarpit")),
        ([(0.0, A, "r"), *wrong_calls(A, 6, start=10.0)], 400.0, A, Locked(3910.0)),
    ],
)
def test_numbers_that_keyed_a_right_code_skip_the_pace(
    history: list[tuple[float, str, str]], now: float, number: str, decision: object
) -> None:
    g, _ = run(history)
    _, ds = step(g, Submit(number, now), now)
    assert ds[-1] == decision


def test_a_trusted_lookup_takes_nobody_s_turn() -> None:
    g, _ = run([(0.0, A, "r"), *spoofed(20, start=10.0), (30.0, B, "?")])
    g, ds = step(g, Submit(A, 35.0), 35.0)
    assert ds == [Check()] and g.last_check == 30.0
    _, ds = step(g, Submit("+15553333333", 40.0), 40.0)
    assert ds == [Check()]


def test_trust_survives_a_restart() -> None:
    g, _ = run([(0.0, A, "r"), *spoofed(20, start=10.0)])
    back = from_json(to_json(g), LIM)
    assert back == g and back.trusted == ((A, LIM.trust_s),)
