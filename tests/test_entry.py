"""Call-in code entry, as tables of keypad sequences."""

from __future__ import annotations

import pytest

from callin.entry import (
    DIGIT_TIMEOUT_S,
    GOODBYE,
    PROMPT,
    WRONG,
    CheckCode,
    Digit,
    Entry,
    EState,
    Join,
    Play,
    RecordingCode,
    Refuse,
    Started,
    StartRecording,
    Tick,
    Validated,
    step,
)

VALID = {"123456": 42}


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
        ("123456", EState.JOINED, 42),
        ("12345#", EState.COLLECTING, None),  # wrong, re-prompted
        ("9*123456", EState.JOINED, 42),  # star clears a mistake
        ("111111123456", EState.JOINED, 42),  # second try right
        ("111111222222333333", EState.REFUSED, None),  # three wrong codes
        ("111111..", EState.REFUSED, None),  # one wrong then silence twice
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
    _, cmds = run("111111222222333333")
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
        (RecordingCode("654321"), EState.RECORDING, StartRecording("ch", "654321")),
        (Validated(7), EState.JOINED, Join("ch", 7)),
    ],
)
def test_a_recording_code_records_instead_of_joining(event: object, state: EState, command: object) -> None:
    e, _ = step(Entry("ch"), Started(), 0.0)
    for d in "654321":
        e, cmds = step(e, Digit(d), 1.0)
    assert cmds == [CheckCode("ch", "654321")]
    e, cmds = step(e, event, 1.1)  # type: ignore[arg-type]
    assert e.state is state and cmds == [command]
    # Keys pressed while recording (# ends the recording in Asterisk) are not code digits.
    e2, cmds = step(e, Digit("#"), 2.0)
    assert e2 == e and cmds == []
