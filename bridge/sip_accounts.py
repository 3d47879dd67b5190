"""Per-session SIP accounts (computer audio over WebRTC, softphones), pure: who gets an account, when it dies,
and which session a call from it may join.

An account is an Asterisk endpoint + aor + auth made at runtime (ARI push configuration into the sorcery memory
wizard, see config/asterisk/sorcery.conf) for exactly one volunteer session. It lives only while the session is
open and its shift login is valid; asking again replaces it. A call from it reaches the controller with the
authenticated endpoint's name (dialplan context ``pb-sip-leg``) and joins that session's own bridge, never
anything else: the number it dialled plays no part. The adapter (bridge/ari_app.py) turns the commands into
ARI requests; randomness comes in from outside so the decisions stay table-testable.

Asterisk keeps the accounts in memory only. The controller keeps no password, only the digest Asterisk checks
against (``md5_cred``, HA1 = md5(user:realm:password)), and pushes the auth as that: so when Asterisk restarts and
forgets them, ``lost`` decides which to push again with the same name and credentials, and a softphone registers
again by itself without its volunteer fetching a new login.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

# Endpoint names start with this; nothing in pjsip.conf does, so a restart can tell ours apart.
PREFIX = "pbsip"
# A captain's account (bridge.coaching): same prefix, so a restart finds it too (and, lacking PB_SESSION, deletes
# it: coaching lives in memory); the "c" only helps a person reading logs or `pjsip show endpoints`.
COACH_PREFIX = f"{PREFIX}c"
# A captain's account's calls go here: Stasis(phonebank,coachleg,<endpoint>), nothing else (extensions.conf).
COACH_CONTEXT = "pb-coach-leg"
# An account outlives no shift: a caller's login expires sooner, this caps a manager's or a script's.
MAX_TTL_S = 12 * 3600.0
# Hang-up cause Asterisk gives a channel it cut for lack of RTP (rtp_timeout): AST_CAUSE_REQUESTED_CHAN_UNAVAIL.
CAUSE_NO_MEDIA = 44
# Asterisk drops the leg after this many seconds without audio (endpoint rtp_timeout).
RTP_TIMEOUT_S = 20
# The digest realm every account's auth carries: md5_cred is computed with it, so it must be the one Asterisk
# challenges with (pjsip's own default_realm; explicit so the two cannot drift apart).
REALM = "asterisk"


class Kind(StrEnum):
    WEBRTC = "webrtc"
    SOFTPHONE = "softphone"


@dataclass(frozen=True)
class Account:
    username: str  # also the endpoint, aor and auth id
    session_id: int
    kind: Kind
    expires_at: float
    captain: bool = False  # a captain's coaching account (bridge.coaching): never in the sessions' accounts
    # HA1 of the password, what Asterisk's auth checks (auth_type=md5): enough to make the account again after an
    # Asterisk restart, while the password itself is kept nowhere. A secret all the same: out of reprs (logs).
    md5_cred: str = field(default="", repr=False, compare=False)


@dataclass(frozen=True)
class SessionFacts:
    """What the rules need to know about a session (from the store)."""

    session_id: int
    open: bool
    login_expires_at: float | None = None  # the shift login's expiry, if the session belongs to one


@dataclass(frozen=True)
class CreateAccount:
    account: Account
    password: str

    def __repr__(self) -> str:  # the password never reaches a log line through a repr
        return f"CreateAccount(account={self.account!r}, password=<hidden>)"


@dataclass(frozen=True)
class DeleteAccount:
    username: str
    reason: str


@dataclass(frozen=True)
class PushAgain:
    """Asterisk lost a valid account (it restarted): make it again, same name and credentials (``md5_cred``)."""

    account: Account


Command = CreateAccount | DeleteAccount | PushAgain


class Refused(Exception):
    """No account for this session: ``status`` is the HTTP status the route answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Join(StrEnum):
    JOIN = "join"  # into a new bridge for the session
    REPLACE = "replace"  # the session has a leg already: the new one takes its place in the same bridge
    REFUSE = "refuse"


def new_username() -> str:
    """128 random bits: the name is as hard to guess as a password, so nobody can probe which accounts exist."""
    return f"{PREFIX}{secrets.token_hex(16)}"


def new_coach_username() -> str:
    return f"{COACH_PREFIX}{secrets.token_hex(16)}"  # 128 random bits, as a volunteer's


def new_password() -> str:
    return secrets.token_urlsafe(24)  # 192 bits


def md5_cred(username: str, password: str, realm: str = REALM) -> str:
    """HA1 of RFC 2617 digest (what Asterisk's md5_cred holds). MD5 because SIP digest is MD5 for the devices we
    serve (JsSIP, most softphones), not as a choice of ours."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode(), usedforsecurity=False).hexdigest()


def issue(
    accounts: Mapping[str, Account], session: SessionFacts | None, kind: str, now: float, username: str, password: str
) -> tuple[dict[str, Account], list[Command]]:
    """A fresh account for the session; any the session had are revoked (one device per session)."""
    if session is None:
        raise Refused(404, "no such session")
    if not session.open:
        raise Refused(409, "this session has ended")
    try:
        k = Kind(kind)
    except ValueError as exc:
        raise Refused(400, "kind must be 'webrtc' or 'softphone'") from exc
    expires = now + MAX_TTL_S
    if session.login_expires_at is not None:
        if session.login_expires_at <= now:
            raise Refused(409, "the shift login has expired")
        expires = min(expires, session.login_expires_at)
    out, cmds = revoke_session(accounts, session.session_id, "replaced")
    account = Account(username, session.session_id, k, expires, md5_cred=md5_cred(username, password))
    out[username] = account
    return out, [*cmds, CreateAccount(account, password)]


def revoke_session(
    accounts: Mapping[str, Account], session_id: int, reason: str
) -> tuple[dict[str, Account], list[Command]]:
    out = dict(accounts)
    cmds: list[Command] = []
    for name, acc in accounts.items():
        if acc.session_id == session_id:
            del out[name]
            cmds.append(DeleteAccount(name, reason))
    return out, cmds


def sweep(
    accounts: Mapping[str, Account], sessions: Mapping[int, SessionFacts], now: float
) -> tuple[dict[str, Account], list[Command]]:
    """Revoke accounts whose session ended (or vanished) or whose time is up."""
    out = dict(accounts)
    cmds: list[Command] = []
    for name, acc in accounts.items():
        if reason := _ended(acc, sessions.get(acc.session_id), now):
            del out[name]
            cmds.append(DeleteAccount(name, reason))
    return out, cmds


def _ended(acc: Account, session: SessionFacts | None, now: float) -> str:
    """Why the account may no longer be used ("" while it may)."""
    if session is None or not session.open:
        return "session_ended"
    if acc.expires_at <= now:
        return "expired"
    if session.login_expires_at is not None and session.login_expires_at <= now:
        return "login_expired"
    return ""


def lost(
    accounts: Mapping[str, Account], present: Collection[str], sessions: Mapping[int, SessionFacts], now: float
) -> tuple[dict[str, Account], list[Command]]:
    """After the controller reconnects: the accounts Asterisk no longer has (``present``: the endpoint names it
    does have) because it restarted. Each one still valid is pushed again with the same name and credentials, so
    its device registers and calls again with the login it has; the others go (their leftovers, if any, deleted).
    Accounts Asterisk still has are not touched (``sweep`` looks after them).

    A captain's coaching account is never here: coaching needs the caller's leg, which an Asterisk restart takes
    with it, so that coaching has ended (and its account been revoked) by the time anything is pushed again."""
    out = dict(accounts)
    cmds: list[Command] = []
    for name, acc in accounts.items():
        if name in present:
            continue
        reason = _ended(acc, sessions.get(acc.session_id), now) or ("" if acc.md5_cred else "no_credentials")
        if reason:
            del out[name]
            cmds.append(DeleteAccount(name, reason))
        else:
            cmds.append(PushAgain(acc))
    return out, cmds


def admit(
    accounts: Mapping[str, Account], endpoint: str, session: SessionFacts | None, now: float, has_leg: bool
) -> tuple[Join, int | None]:
    """A call arrived from ``endpoint`` (Asterisk authenticated it): where does it go?"""
    acc = accounts.get(endpoint)
    if acc is None or session is None or session.session_id != acc.session_id or not session.open:
        return Join.REFUSE, None
    if acc.expires_at <= now or (session.login_expires_at is not None and session.login_expires_at <= now):
        return Join.REFUSE, None
    return (Join.REPLACE if has_leg else Join.JOIN), acc.session_id


def call_back(accounts: Mapping[str, Account], session: SessionFacts | None, now: float, has_leg: bool) -> Account:
    """ "Register and we'll call you": the session's softphone account the PBX may ring (Refused otherwise)."""
    if session is None:
        raise Refused(404, "no such session")
    if not session.open:
        raise Refused(409, "this session has ended")
    if has_leg:
        raise Refused(409, "your line is already connected")
    acc = next(
        (
            a
            for a in accounts.values()
            if a.session_id == session.session_id and a.kind is Kind.SOFTPHONE and a.expires_at > now
        ),
        None,
    )
    if acc is None:
        raise Refused(409, "get a softphone login for this session first")
    return acc


def leg_kind(endpoint: str, accounts: Mapping[str, Account]) -> str:
    acc = accounts.get(endpoint)
    return acc.kind.value if acc else "phone"


def channel_endpoint(channel_name: str) -> str:
    """ "PJSIP/pbsip1234-00000007" -> "pbsip1234" for a per-session account's channel, else ""."""
    if not channel_name.startswith(f"PJSIP/{PREFIX}"):
        return ""
    return channel_name[len("PJSIP/") :].rsplit("-", 1)[0]


def next_expiry(accounts: Mapping[str, Account]) -> float | None:
    """When ``sweep`` next has an account to revoke for its time: the adapter is woken then. An account's expiry
    is capped by its shift login's at issue; a login shortened or a session ended later is a store fact, which
    the adapter's periodic sweep learns."""
    return min((acc.expires_at for acc in accounts.values()), default=None)


def restored(username: str, fields: Mapping[str, str], auth: Mapping[str, str] | None = None) -> Account | None:
    """An account found in Asterisk after a controller restart, from the variables the endpoint carries and its
    auth's ``md5_cred`` (so a later Asterisk restart can push it again; without one it cannot be)."""
    try:
        return Account(
            username,
            int(fields["PB_SESSION"]),
            Kind(fields["PB_KIND"]),
            float(fields["PB_EXPIRES"]),
            md5_cred=(auth or {}).get("md5_cred", ""),
        )
    except (KeyError, ValueError):
        return None


def endpoint_fields(
    account: Account, *, webrtc_transport: str = "transport-wss", softphone_transport: str = "transport-udp"
) -> list[tuple[str, str]]:
    """The endpoint object Asterisk gets (ARI push configuration takes no templates, so every field is here)."""
    # Read back after a controller restart (restored()); a captain's account has no session to read back.
    restore = (
        [("set_var", "PB_COACH=1")]
        if account.captain
        else [
            ("set_var", f"PB_SESSION={account.session_id}"),
            ("set_var", f"PB_KIND={account.kind.value}"),
            ("set_var", f"PB_EXPIRES={int(account.expires_at)}"),
        ]
    )
    common = [
        ("aors", account.username),
        ("auth", account.username),
        ("context", COACH_CONTEXT if account.captain else "pb-sip-leg"),
        ("disallow", "all"),
        ("direct_media", "no"),
        ("dtmf_mode", "rfc4733"),
        # No media for this long: Asterisk hangs up and the session pauses as when a phone hangs up.
        ("rtp_timeout", str(RTP_TIMEOUT_S)),
        # Toll fraud: no transfers (REFER would run a dialplan lookup), no subscriptions, no overlap dialling.
        ("allow_transfer", "no"),
        ("allow_subscribe", "no"),
        ("allow_overlap", "no"),
        ("device_state_busy_at", "1"),
        # Privacy: the voter's caller ID never reaches the volunteer's device (no connected-line updates, no
        # P-Asserted-Identity or Remote-Party-ID).
        ("send_connected_line", "no"),
        ("send_pai", "no"),
        ("send_rpid", "no"),
        ("trust_id_outbound", "no"),
        *restore,
    ]
    # "allow" after common's "disallow=all": fields apply in order.
    if account.kind is Kind.WEBRTC:
        # webrtc=yes: DTLS-SRTP with fingerprint checks, ICE, AVPF, rtcp-mux, media over the received transport.
        return [
            ("transport", webrtc_transport),
            ("webrtc", "yes"),
            ("dtls_auto_generate_cert", "yes"),
            *common,
            ("allow", "opus,ulaw"),
        ]
    return [
        ("transport", softphone_transport),
        ("rtp_symmetric", "yes"),
        ("force_rport", "yes"),
        ("rewrite_contact", "yes"),
        *common,
        ("allow", "ulaw,alaw,opus"),
    ]


def aor_fields() -> list[tuple[str, str]]:
    # One device per session; a re-registration from elsewhere replaces it.
    return [
        ("max_contacts", "1"),
        ("remove_existing", "yes"),
        ("default_expiration", "300"),
        ("maximum_expiration", "600"),
        ("minimum_expiration", "30"),
    ]


def auth_fields(account: Account) -> list[tuple[str, str]]:
    """The digest, not the password: Asterisk never holds it in plain either (nor shows it to an ARI reader)."""
    return [
        ("auth_type", "md5"),
        ("username", account.username),
        ("realm", REALM),
        ("md5_cred", account.md5_cred),
    ]
