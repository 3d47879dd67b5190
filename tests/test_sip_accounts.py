"""Per-session SIP accounts, pure: issue, revoke, sweep, admit (bridge/sip_accounts.py)."""

from __future__ import annotations

import hashlib

import pytest

from bridge import sip_accounts as sa
from bridge.sip_accounts import Account, CreateAccount, DeleteAccount, Join, Kind, SessionFacts

T0 = 1_000_000.0
OPEN = SessionFacts(1, True)


def acc(name: str = "pbsipa", sid: int = 1, kind: Kind = Kind.WEBRTC, expires: float = T0 + 3600) -> Account:
    return Account(name, sid, kind, expires)


def test_issue_makes_one_account_and_revokes_the_sessions_old_ones() -> None:
    old = {"pbsipa": acc("pbsipa"), "pbsipb": acc("pbsipb", sid=2)}
    out, cmds = sa.issue(old, OPEN, "softphone", T0, "pbsipc", "pw")
    assert out == {"pbsipb": old["pbsipb"], "pbsipc": Account("pbsipc", 1, Kind.SOFTPHONE, T0 + sa.MAX_TTL_S)}
    assert cmds == [DeleteAccount("pbsipa", "replaced"), CreateAccount(out["pbsipc"], "pw")]
    assert "pw" not in repr(cmds[1]), "the password never shows in a repr (logs)"


def test_an_account_lives_no_longer_than_the_shift_login() -> None:
    out, _ = sa.issue({}, SessionFacts(1, True, login_expires_at=T0 + 600), "webrtc", T0, "pbsipa", "pw")
    assert out["pbsipa"].expires_at == T0 + 600


@pytest.mark.parametrize(
    ("session", "kind", "status"),
    [
        (None, "webrtc", 404),
        (SessionFacts(1, False), "webrtc", 409),
        (SessionFacts(1, True, login_expires_at=T0 - 1), "webrtc", 409),
        (OPEN, "fax", 400),
        (OPEN, "", 400),
    ],
)
def test_issue_refusals(session: SessionFacts | None, kind: str, status: int) -> None:
    with pytest.raises(sa.Refused) as err:
        sa.issue({}, session, kind, T0, "pbsipa", "pw")
    assert err.value.status == status


@pytest.mark.parametrize(
    ("facts", "now", "reason"),
    [
        ({1: OPEN}, T0, ""),
        ({}, T0, "session_ended"),
        ({1: SessionFacts(1, False)}, T0, "session_ended"),
        ({1: OPEN}, T0 + 3600, "expired"),
        ({1: SessionFacts(1, True, login_expires_at=T0 + 10)}, T0 + 10, "login_expired"),
    ],
)
def test_sweep(facts: dict[int, SessionFacts], now: float, reason: str) -> None:
    out, cmds = sa.sweep({"pbsipa": acc()}, facts, now)
    assert cmds == ([DeleteAccount("pbsipa", reason)] if reason else [])
    assert ("pbsipa" in out) == (not reason)


def test_revoke_session_deletes_only_its_accounts() -> None:
    out, cmds = sa.revoke_session({"pbsipa": acc(), "pbsipb": acc("pbsipb", sid=2)}, 1, "session_ended")
    assert list(out) == ["pbsipb"] and cmds == [DeleteAccount("pbsipa", "session_ended")]


@pytest.mark.parametrize(
    ("endpoint", "session", "now", "has_leg", "expected"),
    [
        ("pbsipa", OPEN, T0, False, (Join.JOIN, 1)),
        ("pbsipa", OPEN, T0, True, (Join.REPLACE, 1)),
        ("pbsipz", OPEN, T0, False, (Join.REFUSE, None)),  # not an account we made (or revoked)
        ("pbsipa", SessionFacts(2, True), T0, False, (Join.REFUSE, None)),  # facts of another session
        ("pbsipa", SessionFacts(1, False), T0, False, (Join.REFUSE, None)),
        ("pbsipa", None, T0, False, (Join.REFUSE, None)),
        ("pbsipa", OPEN, T0 + 3600, False, (Join.REFUSE, None)),
        ("pbsipa", SessionFacts(1, True, login_expires_at=T0), T0, False, (Join.REFUSE, None)),
    ],
)
def test_admit(
    endpoint: str, session: SessionFacts | None, now: float, has_leg: bool, expected: tuple[Join, int | None]
) -> None:
    assert sa.admit({"pbsipa": acc()}, endpoint, session, now, has_leg) == expected


def test_credentials_are_long_and_random() -> None:
    names = {sa.new_username() for _ in range(50)}
    assert len(names) == 50 and all(n.startswith(sa.PREFIX) and len(n) == len(sa.PREFIX) + 32 for n in names)
    assert len(sa.new_password()) >= 32


def test_endpoint_fields_keep_the_account_in_its_own_context() -> None:
    for kind in Kind:
        fields = sa.endpoint_fields(acc(kind=kind))
        assert ("context", "pb-sip-leg") in fields and ("allow_transfer", "no") in fields
        assert ("rtp_timeout", "20") in fields
        names = [k for k, _ in fields]
        assert names.index("disallow") < names.index("allow"), "allow survives disallow=all"
    assert ("webrtc", "yes") in sa.endpoint_fields(acc(kind=Kind.WEBRTC))
    restored = sa.restored(
        "pbsipa",
        {
            k.split("=")[0]: v.split("=", 1)[1]
            for k, v in [(f"{v}", v) for n, v in sa.endpoint_fields(acc()) if n == "set_var"]
        },
    )
    assert restored == Account("pbsipa", 1, Kind.WEBRTC, float(int(T0 + 3600)))
    assert restored is not None and restored.md5_cred == ""  # an auth without one: cannot be pushed again
    assert sa.restored("pbsipa", {"PB_SESSION": "x"}) is None
    again = sa.restored("pbsipa", {"PB_SESSION": "1", "PB_KIND": "webrtc", "PB_EXPIRES": "5"}, {"md5_cred": "ab"})
    assert again is not None and again.md5_cred == "ab"


@pytest.mark.parametrize(
    ("accounts", "session", "has_leg", "status"),
    [
        ({"pbsipa": acc(kind=Kind.SOFTPHONE)}, OPEN, False, 0),
        ({"pbsipa": acc(kind=Kind.WEBRTC)}, OPEN, False, 409),  # the PBX rings softphones only
        ({"pbsipa": acc(kind=Kind.SOFTPHONE, expires=T0)}, OPEN, False, 409),
        ({"pbsipa": acc(kind=Kind.SOFTPHONE)}, OPEN, True, 409),  # already connected
        ({"pbsipa": acc(kind=Kind.SOFTPHONE, sid=2)}, OPEN, False, 409),  # another session's
        ({"pbsipa": acc(kind=Kind.SOFTPHONE)}, SessionFacts(1, False), False, 409),
        ({}, None, False, 404),
    ],
)
def test_call_back(accounts: dict[str, Account], session: SessionFacts | None, has_leg: bool, status: int) -> None:
    if status == 0:
        assert sa.call_back(accounts, session, T0, has_leg) == accounts["pbsipa"]
        return
    with pytest.raises(sa.Refused) as err:
        sa.call_back(accounts, session, T0, has_leg)
    assert err.value.status == status


def test_the_auth_carries_the_digest_never_the_password() -> None:
    out, cmds = sa.issue({}, OPEN, "softphone", T0, "pbsipa", "s3cret")
    account = out["pbsipa"]
    # RFC 2617's HA1, as Asterisk checks it for auth_type=md5: md5("user:realm:password").
    assert account.md5_cred == hashlib.md5(b"pbsipa:asterisk:s3cret").hexdigest()
    fields = dict(sa.auth_fields(account))
    assert fields == {"auth_type": "md5", "username": "pbsipa", "realm": sa.REALM, "md5_cred": account.md5_cred}
    assert "s3cret" not in repr(cmds) and account.md5_cred not in repr(cmds), "no secret in a repr (logs)"


def pushed(account: Account) -> Account:
    return Account(account.username, account.session_id, account.kind, account.expires_at, md5_cred="0" * 32)


@pytest.mark.parametrize(
    ("account", "present", "facts", "now", "expected"),
    [
        # Asterisk restarted and lost it: still valid, so pushed again as it was.
        (pushed(acc(kind=Kind.SOFTPHONE)), set(), {1: OPEN}, T0, "again"),
        (pushed(acc(kind=Kind.WEBRTC)), {"pbsipother"}, {1: OPEN}, T0, "again"),
        (pushed(acc()), set(), {1: SessionFacts(1, True, login_expires_at=T0 + 60)}, T0, "again"),
        # Asterisk still has it (the WebSocket only blinked): nothing to do.
        (pushed(acc()), {"pbsipa"}, {1: OPEN}, T0, "kept"),
        (pushed(acc()), {"pbsipa"}, {}, T0, "kept"),  # ended: the sweep's business, not this
        # Lost and no longer valid: forgotten, not pushed.
        (pushed(acc()), set(), {}, T0, "session_ended"),
        (pushed(acc()), set(), {1: SessionFacts(1, False)}, T0, "session_ended"),
        (pushed(acc()), set(), {1: OPEN}, T0 + 3600, "expired"),
        (pushed(acc()), set(), {1: SessionFacts(1, True, login_expires_at=T0)}, T0, "login_expired"),
        # Learnt back from an Asterisk whose auth had no digest (made before digests): cannot be made the same.
        (acc(), set(), {1: OPEN}, T0, "no_credentials"),
    ],
)
def test_lost_accounts_pushed_again_with_the_same_credentials(
    account: Account, present: set[str], facts: dict[int, SessionFacts], now: float, expected: str
) -> None:
    other = pushed(acc("pbsipb", sid=2))
    out, cmds = sa.lost({"pbsipa": account, "pbsipb": other}, {*present, "pbsipb"}, facts, now)
    assert out["pbsipb"] is other  # present in Asterisk: untouched
    if expected == "again":
        assert cmds == [sa.PushAgain(account)] and out["pbsipa"] is account
        assert isinstance(cmds[0], sa.PushAgain) and cmds[0].account.md5_cred == account.md5_cred
    elif expected == "kept":
        assert cmds == [] and out["pbsipa"] is account
    else:
        assert cmds == [DeleteAccount("pbsipa", expected)] and "pbsipa" not in out


def test_an_issued_account_survives_a_restart_with_its_login() -> None:
    """The whole path: issued, Asterisk restarts (nothing present), pushed again with the digest of the password
    the device was given."""
    accounts, _ = sa.issue({}, OPEN, "softphone", T0, "pbsipa", "pw")
    out, cmds = sa.lost(accounts, set(), {1: OPEN}, T0 + 60)
    assert out == accounts
    assert cmds == [sa.PushAgain(accounts["pbsipa"])] and isinstance(cmds[0], sa.PushAgain)
    assert dict(sa.auth_fields(cmds[0].account))["md5_cred"] == sa.md5_cred("pbsipa", "pw")
