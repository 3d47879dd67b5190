"""Failed SIP logins throttled per address, pure (bridge/sip_guard.py)."""

from __future__ import annotations

import pytest

from bridge import sip_guard as sg

T0 = 1000.0
LINE = (
    '[2026-12-02 08:00:07.741] SECURITY[23850] res_security_log.c: SecurityEvent="{ev}",EventTV="x",'
    'Severity="Error",Service="{svc}",EventVersion="1",AccountID="pbsipdeadbeef",SessionID="{sid}",'
    'LocalAddress="IPV4/UDP/127.0.0.1/5060",RemoteAddress="IPV4/UDP/{ip}/33552"'
)


@pytest.mark.parametrize(
    ("ev", "svc", "expected"),
    [
        ("InvalidAccountID", "PJSIP", sg.Failure("203.0.113.9", "s1", "pbsipdeadbeef")),
        ("ChallengeResponseFailed", "PJSIP", sg.Failure("203.0.113.9", "s1", "pbsipdeadbeef")),
        ("InvalidPassword", "PJSIP", sg.Failure("203.0.113.9", "s1", "pbsipdeadbeef")),
        ("ChallengeSent", "PJSIP", None),
        ("SuccessfulAuth", "PJSIP", None),
        ("InvalidAccountID", "AMI", None),
    ],
)
def test_parse_line(ev: str, svc: str, expected: sg.Failure | None) -> None:
    assert sg.parse_line(LINE.format(ev=ev, svc=svc, sid="s1", ip="203.0.113.9")) == expected
    assert sg.parse_line("[2026-12-02] VERBOSE[1] pbx.c: nothing") is None


def run(g: sg.Guard, events: list[tuple[float, sg.GuardEvent]]) -> tuple[sg.Guard, list[sg.Banned]]:
    out: list[sg.Banned] = []
    for now, event in events:
        g, cmds = sg.step(g, event, now)
        out += cmds
    return g, out


def test_ban_after_limit_in_window_then_lifted() -> None:
    g = sg.Guard(sg.Limits(failures=3, window_s=60, ban_s=100))
    # Two events of one attempt count once.
    g, out = run(g, [(T0, sg.Failure("a", "s1")), (T0, sg.Failure("a", "s1")), (T0 + 1, sg.Failure("a", "s2"))])
    assert out == []
    g, out = run(g, [(T0 + 2, sg.Failure("a", "s3"))])
    assert out == [sg.Banned(("a",), added="a")]
    # Banned: more failures change nothing; another address is counted on its own.
    g, out = run(g, [(T0 + 3, sg.Failure("a", "s4")), (T0 + 3, sg.Failure("b", "s5")), (T0 + 50, sg.Tick())])
    assert out == []
    g, out = run(g, [(T0 + 102, sg.Tick())])
    assert out == [sg.Banned(())]
    assert g.bans == ()


def test_failures_outside_the_window_do_not_add_up() -> None:
    g = sg.Guard(sg.Limits(failures=3, window_s=10, ban_s=100))
    g, out = run(g, [(T0, sg.Failure("a", "1")), (T0 + 6, sg.Failure("a", "2")), (T0 + 12, sg.Failure("a", "3"))])
    assert out == [] and not g.bans


def test_exempt_addresses_are_never_banned() -> None:
    g = sg.Guard(sg.Limits(failures=1, window_s=10, ban_s=100, exempt=("10.0.0.1",)))
    _, out = run(g, [(T0, sg.Failure("10.0.0.1", "1")), (T0, sg.Failure("10.0.0.1", "2"))])
    assert out == []


@pytest.mark.parametrize(
    ("spec", "ok"), [("", True), ("5/30/60", True), ("5/30", False), ("0/1/1", False), ("a/b/c", False)]
)
def test_limits_parse(spec: str, ok: bool) -> None:
    if ok:
        assert sg.Limits.parse(spec, "1.2.3.4, ").exempt == ("1.2.3.4",)
    else:
        with pytest.raises(ValueError):
            sg.Limits.parse(spec)


def test_acl_config() -> None:
    conf = sg.acl_config(("203.0.113.9", "2001:db8::1"))
    assert "[pb-guard]" in conf and "deny = 203.0.113.9/32" in conf and "deny = 2001:db8::1/128" in conf
    assert "deny" not in sg.acl_config(())


OURS = "pbsip" + "5" * 32  # a valid account's name (37 characters); Asterisk logs its first 36
CUT = OURS[:36]


@pytest.mark.parametrize(
    ("failures", "banned"),
    [
        # What Asterisk logs for a device whose account it lost in a restart: InvalidAccountID naming it (cut),
        # then the same attempt's ChallengeResponseFailed with "<unknown>". Repeated, never counted.
        ([("s1", CUT), ("s1", "<unknown>")] * 3 + [("s2", CUT), ("s2", "<unknown>")], False),
        ([("s1", OURS)] * 5, False),
        # Named in a later event of the attempt only: what was counted for it is taken back.
        ([("s1", "<unknown>"), ("s1", CUT), ("s2", "<unknown>")], False),
        # Not ours: a guessed name, one we never made, a prefix too short to be unguessable, an empty one.
        ([("s1", "pbsip" + "0" * 32), ("s2", "<unknown>")], True),
        ([("s1", OURS[:20]), ("s2", "admin")], True),
        ([("s1", ""), ("s2", "")], True),
        # Without a SessionID an attempt cannot be tied to its other events: only its own naming counts.
        ([("", CUT), ("", "<unknown>"), ("s9", "<unknown>")], True),
    ],
)
def test_attempts_naming_a_valid_account_are_not_counted(failures: list[tuple[str, str]], banned: bool) -> None:
    g = sg.Guard(sg.Limits(failures=2, window_s=60, ban_s=600))
    out: list[sg.Banned] = []
    for i, (attempt, account) in enumerate(failures):
        g, cmds = sg.step(g, sg.Failure("198.51.100.7", attempt, account), T0 + i, ours={OURS, "pbsip" + "6" * 32})
        out += cmds
    assert bool(out) == banned, out


def test_an_account_no_longer_valid_is_counted_again() -> None:
    g = sg.Guard(sg.Limits(failures=2, window_s=60, ban_s=600))
    g, out = sg.step(g, sg.Failure("198.51.100.7", "s1", CUT), T0, ours=())
    assert out == []
    g, out = sg.step(g, sg.Failure("198.51.100.7", "s2", CUT), T0 + 1, ours=())
    assert out == [sg.Banned(("198.51.100.7",), added="198.51.100.7")]
