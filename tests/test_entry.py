"""Call-in code entry, as tables of keypad sequences."""

from __future__ import annotations

import pytest

from callin.entry import (
    CODE_LENGTH,
    DIGIT_TIMEOUT_S,
    GOODBYE,
    HOLD,
    PROMPT,
    WRONG,
    CheckCode,
    Digit,
    Entry,
    EState,
    Hold,
    Join,
    Locked,
    Play,
    RecordingCode,
    Refuse,
    SetLanguage,
    Started,
    StartRecording,
    StopPrompts,
    Tick,
    Validated,
    step,
)

GOOD = "1234567890"
VALID = {GOOD: 42}
# Wrong codes of the right length.
W1, W2, W3 = "1" * CODE_LENGTH, "2" * CODE_LENGTH, "3" * CODE_LENGTH
REC = "6543210987"


def test_codes_are_ten_digits() -> None:
    assert CODE_LENGTH == len(GOOD) == 10


def run(keys: str, *, waits: int = 0) -> tuple[Entry, list[object]]:
    """Start a call-in, press ``keys`` (``.`` waits past the digit timeout), validating against VALID."""
    now = 0.0
    e, cmds = step(Entry("ch"), Started(), now)
    out: list[object] = list(cmds)
    for k in keys:
        if k == ".":
            now += DIGIT_TIMEOUT_S + 0.1
            e, cmds = step(e, Tick(), now)
        else:
            now += 0.3
            e, cmds = step(e, Digit(k), now)
        out += cmds
        for cmd in cmds:
            if isinstance(cmd, CheckCode):
                e, more = step(e, Validated(VALID.get(cmd.code)), now)
                out += more
    return e, out


@pytest.mark.parametrize(
    ("keys", "state", "joined"),
    [
        (GOOD, EState.JOINED, 42),
        ("12345#", EState.COLLECTING, None),  # wrong, re-prompted
        ("123456#", EState.COLLECTING, None),  # an old six-digit code is simply wrong
        ("9*" + GOOD, EState.JOINED, 42),  # star clears a mistake
        (W1 + GOOD, EState.JOINED, 42),  # second try right
        (W1 + W2 + W3, EState.REFUSED, None),  # three wrong codes
        (W1 + "..", EState.REFUSED, None),  # one wrong then silence twice
        ("...", EState.REFUSED, None),  # a phone left off the hook
        ("#", EState.COLLECTING, None),  # a lone # is not a try
    ],
)
def test_code_entry(keys: str, state: EState, joined: int | None) -> None:
    e, cmds = run(keys)
    assert e.state is state
    joins = [c.session_id for c in cmds if isinstance(c, Join)]
    assert joins == ([joined] if joined else [])
    assert cmds[0] == Play("ch", (PROMPT,))
    refused = [c for c in cmds if isinstance(c, Refuse)]
    assert len(refused) == (1 if state is EState.REFUSED else 0)


def test_wrong_code_reprompts_then_refuses_after_three() -> None:
    _, cmds = run(W1 + W2 + W3)
    plays = [c for c in cmds if isinstance(c, Play)]
    assert plays == [Play("ch", (PROMPT,)), Play("ch", (WRONG, PROMPT)), Play("ch", (WRONG, PROMPT))]
    assert isinstance(cmds[-1], Refuse)
    assert GOODBYE.startswith("sound:")


def test_digits_after_refusal_are_ignored() -> None:
    e, _ = run("...")
    e2, cmds = step(e, Digit("1"), 100.0)
    assert e2 == e and cmds == []


@pytest.mark.parametrize(
    ("event", "state", "command"),
    [
        (RecordingCode(REC), EState.RECORDING, StartRecording("ch", REC)),
        (Validated(7), EState.JOINED, Join("ch", 7)),
    ],
)
def test_a_recording_code_records_instead_of_joining(event: object, state: EState, command: object) -> None:
    e, _ = step(Entry("ch"), Started(), 0.0)
    for d in REC:
        e, cmds = step(e, Digit(d), 1.0)
    assert cmds == [CheckCode("ch", REC, "", 1.0)]
    e, cmds = step(e, event, 1.1)  # type: ignore[arg-type]
    assert e.state is state and cmds == [command]
    # Keys pressed while recording (# ends the recording in Asterisk) are not code digits.
    e2, cmds = step(e, Digit("#"), 2.0)
    assert e2 == e and cmds == []


def _keyed(code: str, caller: str = "+15550001111") -> Entry:
    e, _ = step(Entry("ch", caller=caller), Started(), 0.0)
    for d in code:
        e, _ = step(e, Digit(d), 1.0)
    return e


@pytest.mark.parametrize(
    ("events", "state", "commands"),
    [
        # The guard lets it through at once: looked up.
        ([], EState.VALIDATING, []),
        # Held: "one moment please", then asked again (same code, same submission time) once the time has come.
        ([(Hold(5.0), 1.0)], EState.HOLDING, [Play("ch", (HOLD,))]),
        ([(Hold(5.0), 1.0), (Tick(), 4.9)], EState.HOLDING, [Play("ch", (HOLD,))]),
        (
            [(Hold(5.0), 1.0), (Tick(), 5.0)],
            EState.VALIDATING,
            [Play("ch", (HOLD,)), CheckCode("ch", GOOD, "+15550001111", 1.0)],
        ),
        # Held again (the overall pace): no second "one moment please".
        (
            [(Hold(5.0), 1.0), (Tick(), 5.0), (Hold(9.0), 5.0), (Tick(), 9.0)],
            EState.VALIDATING,
            [
                Play("ch", (HOLD,)),
                CheckCode("ch", GOOD, "+15550001111", 1.0),
                CheckCode("ch", GOOD, "+15550001111", 1.0),
            ],
        ),
        # Keys pressed while held are not a new code, and silence while held is not a try.
        ([(Hold(50.0), 1.0), (Digit("5"), 2.0), (Tick(), 30.0)], EState.HOLDING, [Play("ch", (HOLD,))]),
        # Locked out: not looked up, told to try later, hung up.
        ([(Locked(), 1.0)], EState.REFUSED, [Refuse("ch", locked=True)]),
        (
            [(Hold(5.0), 1.0), (Tick(), 5.0), (Locked(), 5.0)],
            EState.REFUSED,
            [Play("ch", (HOLD,)), CheckCode("ch", GOOD, "+15550001111", 1.0), Refuse("ch", locked=True)],
        ),
        # The held code turns out right after the wait.
        (
            [(Hold(5.0), 1.0), (Tick(), 5.0), (Validated(42), 5.0)],
            EState.JOINED,
            [Play("ch", (HOLD,)), CheckCode("ch", GOOD, "+15550001111", 1.0), Join("ch", 42)],
        ),
    ],
)
def test_the_guard_holds_or_locks_a_keyed_code(
    events: list[tuple[object, float]], state: EState, commands: list[object]
) -> None:
    e = _keyed(GOOD)
    assert e.state is EState.VALIDATING and e.submitted_at == 1.0
    out: list[object] = []
    for event, now in events:
        e, cmds = step(e, event, now)  # type: ignore[arg-type]
        out += cmds
    assert e.state is state
    assert out == commands


def test_each_code_is_submitted_with_its_own_time_and_the_caller() -> None:
    e = _keyed(W1, caller="+15550002222")
    e, cmds = step(e, Validated(None), 2.0)
    assert cmds == [Play("ch", (WRONG, PROMPT))]
    for i, d in enumerate(GOOD):
        e, cmds = step(e, Digit(d), 3.0 + i)
    assert cmds == [CheckCode("ch", GOOD, "+15550002222", 12.0)]


# ---------------------------------------------------------------- the entry's timer (get_timer)
@pytest.mark.parametrize(
    ("steps", "timer"),
    [
        ([], None),  # not started: nothing to time (a tick before Started must not count as a try)
        ([(Started(), 1.0)], 1.0 + DIGIT_TIMEOUT_S),
        ([(Started(), 1.0), (Digit("5"), 4.0)], 4.0 + DIGIT_TIMEOUT_S),
        ([(Started(), 1.0), *((Digit(x), 2.0) for x in GOOD)], None),  # validating: the lookup answers
        ([(Started(), 1.0), *((Digit(x), 2.0) for x in GOOD), (Hold(7.5), 2.0)], 7.5),  # the guard's hold
        ([(Started(), 1.0), *((Digit(x), 2.0) for x in GOOD), (Validated(42), 2.0)], None),  # joined
    ],
)
def test_get_timer(steps: list[tuple[object, float]], timer: float | None) -> None:
    from callin.entry import get_timer

    e = Entry("ch")
    for event, now in steps:
        e, _ = step(e, event, now)  # type: ignore[arg-type]
    assert get_timer(e) == timer
    if timer is not None:
        assert step(e, Tick(), timer - 0.01)[1] == [], "nothing before the timer"
        assert step(e, Tick(), timer)[1], "something at the timer"


# ---------------------------------------------------------------- the guard's answer and the code's facts
def test_guard_answer() -> None:
    from callin import guard as g
    from callin.entry import guard_answer

    assert guard_answer(g.Check()) is None
    assert guard_answer(g.Hold(9.0, "tarpit")) == Hold(9.0)
    assert guard_answer(g.Locked(99.0)) == Locked()


@pytest.mark.parametrize(
    ("facts", "event", "learned"),
    [
        ({"session_id": 42}, Validated(42), "right"),
        ({"session_id": None}, Validated(None), "wrong"),
        ({"session_id": 42, "has_leg": True}, Validated(None), "wrong"),  # its phone is on already
        ({"session_id": None, "recording": True}, RecordingCode(REC), "right"),
        ({"session_id": 42, "recording": True}, Validated(42), "right"),  # a live session's code wins
    ],
)
def test_code_checked(facts: dict[str, object], event: object, learned: str) -> None:
    from callin import guard as g
    from callin.entry import CodeFacts, code_checked

    got, guard_event = code_checked(REC, "+15550001111", CodeFacts(**facts))  # type: ignore[arg-type]
    assert got == event
    assert guard_event == (g.Right("+15550001111") if learned == "right" else g.Wrong("+15550001111"))


# ---------------------------------------------------------------------------------------------- languages
BILINGUAL = ("en", "es")


def _bilingual_run(events: list[object], languages: tuple[str, ...] = BILINGUAL) -> tuple[Entry, list[object]]:
    e = Entry("ch", languages=languages)
    out: list[object] = []
    for i, event in enumerate(events):
        e, cmds = step(e, event, float(i))  # type: ignore[arg-type]
        out += cmds
    return e, out


@pytest.mark.parametrize(
    ("languages", "events", "commands"),
    [
        # Before a code is known the prompt is said in each of the call-in's languages, the first being the channel's.
        (BILINGUAL, [Started()], [Play("ch", (PROMPT,), "en"), Play("ch", (PROMPT,), "es")]),
        (
            ("es", "en"),
            [Started()],
            [SetLanguage("ch", "es"), Play("ch", (PROMPT,), "es"), Play("ch", (PROMPT,), "en")],
        ),
        (("es",), [Started()], [SetLanguage("ch", "es"), Play("ch", (PROMPT,))]),
        (("en",), [Started()], [Play("ch", (PROMPT,))]),
        # The first key of a try stops the prompts; the next keys do not ask again.
        (
            BILINGUAL,
            [Started(), Digit("1"), Digit("2")],
            [*[Play("ch", (PROMPT,), x) for x in BILINGUAL], StopPrompts("ch")],
        ),
        (BILINGUAL, [Started(), Digit("#")], [*[Play("ch", (PROMPT,), x) for x in BILINGUAL], StopPrompts("ch")]),
        # A Spanish session's code: the channel turns Spanish before the join (so the welcome is Spanish).
        (
            BILINGUAL,
            [*(Digit(d) for d in GOOD), Validated(42, "es")],
            [StopPrompts("ch"), CheckCode("ch", GOOD, "", 9.0), SetLanguage("ch", "es"), Join("ch", 42)],
        ),
        # An English session on a call-in that starts in English: nothing to switch.
        (
            BILINGUAL,
            [*(Digit(d) for d in GOOD), Validated(42, "en")],
            [StopPrompts("ch"), CheckCode("ch", GOOD, "", 9.0), Join("ch", 42)],
        ),
        # A session with no language (made by a script): the call-in's first language stays.
        (
            BILINGUAL,
            [*(Digit(d) for d in GOOD), Validated(42)],
            [StopPrompts("ch"), CheckCode("ch", GOOD, "", 9.0), Join("ch", 42)],
        ),
        # An English session on a Spanish-first call-in switches back to English.
        (
            ("es", "en"),
            [*(Digit(d) for d in GOOD), Validated(42, "en")],
            [StopPrompts("ch"), CheckCode("ch", GOOD, "", 9.0), SetLanguage("ch", "en"), Join("ch", 42)],
        ),
        # A wrong code and a held code: still no language known, both said in each.
        (
            BILINGUAL,
            [*(Digit(d) for d in W1), Validated(None)],
            [
                StopPrompts("ch"),
                CheckCode("ch", W1, "", 9.0),
                Play("ch", (WRONG, PROMPT), "en"),
                Play("ch", (WRONG, PROMPT), "es"),
            ],
        ),
        (
            BILINGUAL,
            [*(Digit(d) for d in GOOD), Hold(99.0)],
            [StopPrompts("ch"), CheckCode("ch", GOOD, "", 9.0), Play("ch", (HOLD,), "en"), Play("ch", (HOLD,), "es")],
        ),
        # Refused (three wrong codes, or a locked-out number): no code known either, so goodbye in each language.
        (
            BILINGUAL,
            [*(Digit(d) for d in GOOD), Locked()],
            [StopPrompts("ch"), CheckCode("ch", GOOD, "", 9.0), Refuse("ch", locked=True, languages=BILINGUAL)],
        ),
        (
            ("es", "en"),
            [*(Digit(d) for d in GOOD), Locked()],
            [StopPrompts("ch"), CheckCode("ch", GOOD, "", 9.0), Refuse("ch", locked=True, languages=("es", "en"))],
        ),
        # One language: the channel's own, as it is.
        (
            ("es",),
            [*(Digit(d) for d in GOOD), Locked()],
            [StopPrompts("ch"), CheckCode("ch", GOOD, "", 9.0), Refuse("ch", locked=True)],
        ),
    ],
)
def test_the_callin_speaks_each_language_until_the_code_says_which(
    languages: tuple[str, ...], events: list[object], commands: list[object]
) -> None:
    _, out = _bilingual_run(events, languages)
    assert out == commands


@pytest.mark.parametrize(
    ("languages", "wrong_first"),
    [(("en",), False), (("en",), True), (BILINGUAL, False), (BILINGUAL, True), (("es", "en"), True)],
)
def test_a_caller_gets_the_whole_prompt_in_every_language_before_silence_counts(
    languages: tuple[str, ...], wrong_first: bool
) -> None:
    """The silence timer runs from the prompts' start: in two languages the second one's prompt comes only after
    the first's (after a wrong code about 8 s in English, then 10 s in Spanish), so each language gets its own
    allowance; a key (which stops the prompts) brings back the single one."""
    from callin.entry import get_timer

    e, _ = step(Entry("ch", languages=languages), Started(), 0.0)
    now = 0.0
    if wrong_first:
        for d in W1:
            e, _ = step(e, Digit(d), now)
        now = 1.0
        e, _ = step(e, Validated(None), now)
        assert e.tries == 1
    allowance = DIGIT_TIMEOUT_S * len(languages)
    assert get_timer(e) == now + allowance
    assert step(e, Tick(), now + allowance - 0.01)[1] == [], "no try counted while a language's prompt is still due"
    assert step(e, Tick(), now + allowance)[0].tries == e.tries + 1
    e, _ = step(e, Digit("5"), now + 2.0)
    assert get_timer(e) == now + 2.0 + DIGIT_TIMEOUT_S


def test_a_spanish_sessions_code_reports_its_language() -> None:
    from callin.entry import CodeFacts, code_checked
    from callin.guard import Right

    event, learned = code_checked(GOOD, "+15550001111", CodeFacts(42, language="es"))
    assert event == Validated(42, "es") and learned == Right("+15550001111")
    # A wrong code carries no language (no session).
    assert code_checked(GOOD, "x", CodeFacts(42, language="es", has_leg=True))[0] == Validated(None)


@pytest.mark.parametrize(
    ("languages", "refusal"),
    [(BILINGUAL, Refuse("ch", languages=BILINGUAL)), (("es", "en"), Refuse("ch", languages=("es", "en")))],
)
def test_three_wrong_codes_are_refused_in_each_language(languages: tuple[str, ...], refusal: Refuse) -> None:
    e, _ = _bilingual_run([Started(), *(Digit(d) for d in W1), Validated(None)], languages)
    for wrong in (W2, W3):
        for d in wrong:
            e, cmds = step(e, Digit(d), 20.0)
        e, cmds = step(e, Validated(None), 21.0)
    assert e.state is EState.REFUSED and cmds == [refusal]
    silent, _ = step(Entry("ch", languages=languages, tries=2), Started(), 0.0)
    assert step(silent, Tick(), 100.0)[1] == [refusal]  # silence as the last try: the same goodbye
