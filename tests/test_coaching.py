"""Tables for the coaching core (bridge.coaching), the volunteer core's part in it and the call-in's coach codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridge import coaching as co
from bridge import dialer as d
from bridge import volunteer as vol
from bridge.ari_app import Controller, Leg
from callin import entry as en
from callin import guard as g
from store.db import Store
from tests.fakes import FakeAri

CAPTAIN, OTHER = 7, 8


def requested(
    coaches: co.Coaches, coach_id: str = "k1", user: int = CAPTAIN, sid: int = 1, mode: co.Mode = co.Mode.LISTEN
) -> tuple[co.Coaches, list[co.Command]]:
    return co.step(coaches, co.Requested(coach_id, f"12345{coach_id[-1]}", user, sid, mode), 100.0)


def test_request_then_call_in_attaches_in_the_mode_asked() -> None:
    coaches, cmds = requested({})
    assert cmds == [co.Coached(1, "listen")]
    assert co.by_code(coaches, "123451") is not None and co.next_timer(coaches) == 100.0 + co.CODE_TTL_S
    coaches, cmds = co.step(coaches, co.CaptainJoined("k1", "chan-cap"), 101.0)
    assert cmds == [co.Attach("k1", "chan-cap", 1, co.Mode.LISTEN)]
    # A keyed code is spent, and no longer expires.
    assert co.by_code(coaches, "123451") is None and co.next_timer(coaches) is None


@pytest.mark.parametrize(
    ("joined", "mode", "expected"),
    [
        (True, co.Mode.WHISPER, [co.Attach("k1", "chan-cap", 1, co.Mode.WHISPER), co.Coached(1, "whisper")]),
        (True, co.Mode.BARGE, [co.Attach("k1", "chan-cap", 1, co.Mode.BARGE), co.Coached(1, "barge")]),
        (True, co.Mode.LISTEN, []),  # no change
        (False, co.Mode.WHISPER, [co.Coached(1, "whisper")]),  # not called in yet: attached so when they do
    ],
)
def test_mode_change(joined: bool, mode: co.Mode, expected: list[co.Command]) -> None:
    coaches, _ = requested({})
    if joined:
        coaches, _ = co.step(coaches, co.CaptainJoined("k1", "chan-cap"), 101.0)
    coaches, cmds = co.step(coaches, co.ModeChanged("k1", mode), 102.0)
    assert cmds == expected and coaches["k1"].mode is mode


@pytest.mark.parametrize(
    ("event", "channel"),
    [
        (co.CaptainLeft("k1"), "chan-cap"),
        (co.VolunteerGone(1), "chan-cap"),
    ],
)
def test_captain_or_caller_leaving_ends_the_coaching(event: co.Event, channel: str) -> None:
    coaches, _ = requested({})
    coaches, _ = co.step(coaches, co.CaptainJoined("k1", "chan-cap"), 101.0)
    coaches, cmds = co.step(coaches, event, 102.0)
    assert coaches == {} and cmds == [co.Release("k1", channel), co.Coached(1, "")]


def test_caller_leg_replaced_attaches_again() -> None:
    coaches, _ = requested({})
    # Not called in yet: nothing to move.
    assert co.step(coaches, co.VolunteerLegReplaced(1), 101.0) == (coaches, [])
    coaches, _ = co.step(coaches, co.CaptainJoined("k1", "chan-cap"), 101.0)
    same, cmds = co.step(coaches, co.VolunteerLegReplaced(1), 102.0)
    assert same == coaches and cmds == [co.Attach("k1", "chan-cap", 1, co.Mode.LISTEN)]
    assert co.step(coaches, co.VolunteerLegReplaced(2), 102.0) == (coaches, [])


def test_unkeyed_code_expires() -> None:
    coaches, _ = requested({})
    assert co.step(coaches, co.Tick(), 100.0 + co.CODE_TTL_S - 1) == (coaches, [])
    coaches, cmds = co.step(coaches, co.Tick(), 100.0 + co.CODE_TTL_S)
    assert coaches == {} and cmds == [co.Release("k1", None), co.Coached(1, "")]


def test_one_captain_per_caller_one_caller_per_captain() -> None:
    coaches, _ = requested({})
    same, cmds = requested(coaches, "k2", user=OTHER)
    assert same == coaches and cmds == [co.Refused("k2", "caller_coached")]
    # The same captain asking for another caller leaves the first.
    coaches, cmds = requested(coaches, "k3", sid=2)
    assert set(coaches) == {"k3"}
    assert cmds == [co.Release("k1", None), co.Coached(1, ""), co.Coached(2, "listen")]


def test_events_for_unknown_coachings_do_nothing() -> None:
    for event in (
        co.CaptainJoined("x", "c"),
        co.ModeChanged("x", co.Mode.BARGE),
        co.CaptainLeft("x"),
        co.VolunteerGone(9),
    ):
        assert co.step({}, event, 1.0) == ({}, [])


@pytest.mark.parametrize("state", list(vol.VState))
@pytest.mark.parametrize("mode", ["listen", "whisper", "barge", ""])
def test_volunteer_core_coached_changes_only_the_mark(state: vol.VState, mode: str) -> None:
    v = vol.Volunteer(1, 1, state=state, since=5.0, call_id="pbc-1" if state is vol.VState.TALKING else None)
    nv, cmds = vol.step(v, vol.Coached(mode), 50.0)
    assert cmds == []
    if state is vol.VState.ENDED:
        assert nv == v
    else:
        assert nv.state is state and nv.since == 5.0 and nv.call_id == v.call_id and nv.coached == mode


def test_coached_volunteer_pacing_unchanged() -> None:
    """The dialer plans the same lines with or without a captain on a volunteer."""

    def dialer() -> d.Dialer:
        dl = d.Dialer()
        dl.handle(d.CampaignUpdated(d.CampaignConfig(campaign_id=1, active=True, dial_ratio=2.0)), 0.0)
        dl.handle(d.VolunteerJoined(1, 1), 0.0)
        dl.handle(d.VolunteerJoined(2, 1), 0.0)
        return dl

    plain, coached = dialer(), dialer()
    # Power pacing decides on every event: the coaching event asks exactly what any no-op event would.
    assert coached.handle(d.VolunteerEvent(1, vol.Coached("listen")), 1.0) == plain.handle(
        d.VolunteerEvent(1, vol.Tick()), 1.0
    )
    assert coached.volunteers[1].coached == "listen" and coached.volunteers[1].state is vol.VState.IDLE
    assert plain.lines_wanted(1, 2.0) == coached.lines_wanted(1, 2.0) > 0


def test_callin_coach_code() -> None:
    event, learned = en.code_checked("123456", "555", en.CodeFacts(None, coach_id="k1"))
    assert event == en.CoachCode("k1") and learned == g.Right("555")
    # A session's own code comes first.
    event, _ = en.code_checked("123456", "555", en.CodeFacts(3, coach_id="k1"))
    assert event == en.Validated(3)
    e = en.Entry("ch", state=en.EState.VALIDATING)
    e, cmds = en.step(e, en.CoachCode("k1"), 1.0)
    assert e.state is en.EState.COACHING and cmds == [en.StartCoaching("ch", "k1")]


async def _volunteer_on_line(tmp_path: Path) -> tuple[Store, FakeAri, Controller, int]:
    """A controller on the fake ARI with one volunteer (session sid) joined and on the line."""
    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign("Coach")["id"]
    ari = FakeAri()
    ctl = Controller(ari=ari, store=store)
    ctl.refresh_campaigns()
    sid = store.create_session(cid, "Lee")["id"]
    ctl.legs[sid] = Leg(sid, cid, "vol-1", "pb-vol-1-x")
    await ctl.run(ctl.dialer.handle(d.VolunteerJoined(sid, cid), 1.0))
    return store, ari, ctl, sid


async def test_adapter_carries_out_listen_barge_whisper_and_leaving(tmp_path: Path) -> None:
    """The ARI requests behind each mode, through the call-in path a captain takes (the sound itself: the
    real-Asterisk test, tests/test_e2e_coaching.py)."""
    store, ari, ctl, sid = await _volunteer_on_line(tmp_path)
    assert (await ctl.coach(1, sid + 1, co.Mode.LISTEN)) == {"refused": "caller_not_on_line"}
    got = await ctl.coach(1, sid, co.Mode.LISTEN)
    holding = f"bridges/pb-coach-{got['coach_id']}"
    cap = {"id": "cap-1", "name": "Local/callin@pb-callin-0001;2", "caller": {"number": "2025550199"}}
    await ctl.on_event({"type": "StasisStart", "args": ["callin"], "channel": cap})
    for digit in got["code"]:
        await ctl.on_event({"type": "ChannelDtmfReceived", "digit": digit, "channel": {"id": "cap-1"}})

    def posts_since(n: int) -> list[tuple[str, dict[str, object]]]:
        return [(path, {k: v for k, v in p.items() if k != "body"}) for m, path, p in ari.calls[n:] if m == "POST"]

    posts = posts_since(0)
    assert ("bridges", {"type": "mixing", "bridgeId": holding[8:], "name": holding[8:]}) in posts
    assert (f"{holding}/addChannel", {"channel": "cap-1"}) in posts
    ((_, snoop),) = [p for p in posts if p[0] == "channels/vol-1/snoop"]
    assert snoop["spy"] == "both" and snoop["whisper"] == "none"
    assert (f"{holding}/addChannel", {"channel": snoop["snoopId"]}) in posts
    assert ctl.dialer.volunteers[sid].coached == "listen"

    mark = len(ari.calls)
    assert await ctl.coach_mode(1, co.Mode.BARGE)
    assert ("DELETE", f"channels/{snoop['snoopId']}", {}) in ari.calls[mark:]
    assert posts_since(mark) == [
        (f"{holding}/removeChannel", {"channel": "cap-1"}),
        ("bridges/pb-vol-1-x/addChannel", {"channel": "cap-1"}),
    ]

    mark = len(ari.calls)
    assert await ctl.coach_mode(1, co.Mode.WHISPER)
    posts = posts_since(mark)
    assert posts[:2] == [
        ("bridges/pb-vol-1-x/removeChannel", {"channel": "cap-1"}),
        (f"{holding}/addChannel", {"channel": "cap-1"}),
    ]
    ((_, whisper),) = [p for p in posts if p[0] == "channels/vol-1/snoop"]
    assert whisper["spy"] == "both" and whisper["whisper"] == "out"

    # The captain hangs up: their snoop and holding bridge go, the volunteer's bridge and state stay.
    mark = len(ari.calls)
    await ctl.on_event({"type": "ChannelDestroyed", "cause": 16, "channel": {"id": "cap-1"}})
    deletes = [path for m, path, _ in ari.calls[mark:] if m == "DELETE"]
    assert f"channels/{whisper['snoopId']}" in deletes and holding in deletes
    assert not [p for p in deletes if "pb-vol-" in p or "vol-1" == p.rsplit("/", 1)[-1]]
    assert ctl.coaches == {} and ctl.dialer.volunteers[sid].coached == ""
    assert not await ctl.coach_mode(1, co.Mode.LISTEN)
    store.close()


# ---------------------------------------------------------------- a captain's own SIP leg (browser, softphone)
ACC = "pbsipc" + "ab" * 16


@pytest.mark.parametrize("leg", [co.LegKind.WEBRTC, co.LegKind.SOFTPHONE])
def test_sip_captain_gets_an_account_revoked_when_the_coaching_ends(leg: co.LegKind) -> None:
    coaches, cmds = co.step({}, co.Requested("k1", "", CAPTAIN, 1, co.Mode.LISTEN, leg, ACC), 100.0)
    expires = 100.0 + co.ACCOUNT_TTL_S
    assert cmds == [co.OpenAccount("k1", ACC, leg, expires), co.Coached(1, "listen")]
    assert coaches["k1"].leg is leg and co.next_timer(coaches) == expires
    # No code to key: the account, not a code, decides where its call goes.
    assert co.by_code(coaches, "") is None and co.by_account(coaches, ACC) == coaches["k1"]
    assert co.by_account(coaches, "pbsipc" + "cd" * 16) is None and co.by_account(coaches, "") is None
    coaches, cmds = co.step(coaches, co.CaptainJoined("k1", "chan-sip"), 101.0)
    assert cmds == [co.Attach("k1", "chan-sip", 1, co.Mode.LISTEN)]
    # Joined: a second call from the same account finds nothing to join.
    assert co.by_account(coaches, ACC) is None and co.next_timer(coaches) is None
    # Mode switches move the leg already there: no new account, no new join.
    for mode in (co.Mode.WHISPER, co.Mode.BARGE, co.Mode.LISTEN):
        coaches, cmds = co.step(coaches, co.ModeChanged("k1", mode), 102.0)
        assert cmds == [co.Attach("k1", "chan-sip", 1, mode), co.Coached(1, mode.value)]
    coaches, cmds = co.step(coaches, co.CaptainLeft("k1"), 103.0)
    assert coaches == {} and cmds == [co.RevokeAccount("k1", ACC), co.Release("k1", "chan-sip"), co.Coached(1, "")]


@pytest.mark.parametrize(
    "event", [co.VolunteerGone(1), co.Tick(), co.Requested("k2", "", CAPTAIN, 2, co.Mode.LISTEN, co.LegKind.PHONE)]
)
def test_sip_captain_account_goes_with_the_caller_the_clock_or_a_new_request(event: co.Event) -> None:
    coaches, _ = co.step({}, co.Requested("k1", "", CAPTAIN, 1, co.Mode.LISTEN, co.LegKind.SOFTPHONE, ACC), 100.0)
    if isinstance(event, co.Requested):
        event = co.Requested("k2", "222222", CAPTAIN, 2, co.Mode.LISTEN)
    # Not called from yet: the account stays until its time to join is over, not the shorter code's.
    assert co.step(coaches, co.Tick(), 100.0 + co.CODE_TTL_S + 1) == (coaches, [])
    _, cmds = co.step(coaches, event, 100.0 + co.ACCOUNT_TTL_S)
    assert cmds[:3] == [co.RevokeAccount("k1", ACC), co.Release("k1", None), co.Coached(1, "")]


@pytest.mark.parametrize(
    ("ended_by", "expected"),
    [
        (None, []),  # still there: nothing to do
        (co.CaptainLeft("k1"), [co.RevokeAccount("k1", ACC), co.Refused("k1", "coaching_gone")]),
        (co.VolunteerGone(1), [co.RevokeAccount("k1", ACC), co.Refused("k1", "coaching_gone")]),
        (co.CaptainDismissed(CAPTAIN), [co.RevokeAccount("k1", ACC), co.Refused("k1", "coaching_gone")]),
        # A double-click: the second request ends the first while its account is being made.
        (
            co.Requested("k2", "", CAPTAIN, 1, co.Mode.LISTEN, co.LegKind.WEBRTC, "pbsipc" + "cd" * 16),
            [co.RevokeAccount("k1", ACC), co.Refused("k1", "coaching_gone")],
        ),
    ],
)
def test_account_pushed_after_its_coaching_ended_is_deleted_again(
    ended_by: co.Event | None, expected: list[co.Command]
) -> None:
    """The adapter makes the account while other events run: one that ended the coaching meanwhile revoked an
    account that did not exist yet, so the push's report deletes it (and refuses the request that made it)."""
    coaches, _ = co.step({}, co.Requested("k1", "", CAPTAIN, 1, co.Mode.LISTEN, co.LegKind.WEBRTC, ACC), 100.0)
    if ended_by is not None:
        coaches, _ = co.step(coaches, ended_by, 100.5)
    after, cmds = co.step(coaches, co.AccountPushed("k1", ACC), 101.0)
    assert after == coaches and cmds == expected


@pytest.mark.parametrize("joined", [False, True])
@pytest.mark.parametrize("leg", [co.LegKind.PHONE, co.LegKind.SOFTPHONE])
def test_dismissed_captain_coaching_ends_at_once(joined: bool, leg: co.LegKind) -> None:
    """Permission or role taken away, user disabled, deleted or banned, logged out: the captain's coaching ends
    however long the caller's leg lasts, its account revoked; another captain's coaching stays."""
    account = ACC if leg is co.LegKind.SOFTPHONE else ""
    coaches, _ = co.step({}, co.Requested("k1", "111111", CAPTAIN, 1, co.Mode.WHISPER, leg, account), 100.0)
    coaches, _ = co.step(coaches, co.Requested("k2", "222222", OTHER, 2, co.Mode.LISTEN), 100.0)
    channel = "chan-cap" if joined else None
    if joined:
        coaches, _ = co.step(coaches, co.CaptainJoined("k1", "chan-cap"), 101.0)
    coaches, cmds = co.step(coaches, co.CaptainDismissed(CAPTAIN), 5000.0)
    revoke = [co.RevokeAccount("k1", ACC)] if account else []
    assert cmds == [*revoke, co.Release("k1", channel), co.Coached(1, "")]
    assert set(coaches) == {"k2"} and co.mark(coaches, 1) == "" and co.mark(coaches, 2) == "listen"
    # Nobody left to dismiss: nothing happens.
    assert co.step(coaches, co.CaptainDismissed(CAPTAIN), 5001.0) == (coaches, [])


def test_leg_kind_and_account_go_together() -> None:
    for leg, account in ((co.LegKind.PHONE, ACC), (co.LegKind.WEBRTC, ""), (co.LegKind.SOFTPHONE, "")):
        ev = co.Requested("k1", "", CAPTAIN, 1, co.Mode.LISTEN, leg, account)
        assert co.step({}, ev, 1.0) == ({}, [co.Refused("k1", "bad_leg")])


async def test_adapter_sip_captain_account_joins_only_its_coaching(tmp_path: Path) -> None:
    """A captain's account is made with the coach context and no session to restore, its call joins the holding
    bridge, a second call or a stranger's is hung up, and the account is deleted when the coaching ends."""
    from bridge import sip_accounts as sa

    store, ari, ctl, sid = await _volunteer_on_line(tmp_path)
    bodies: dict[str, Any] = {}
    fake_put = ari.put

    async def put(path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        bodies[path] = body  # the fake records no bodies of PUTs
        return await fake_put(path, body, **params)

    ari.put = put  # type: ignore[method-assign]
    got = await ctl.coach(1, sid, co.Mode.LISTEN, co.LegKind.WEBRTC)
    user, password = got["account"], got["password"]
    assert "code" not in got and user.startswith(sa.COACH_PREFIX) and len(user) >= 32 + 5 and len(password) >= 32
    assert user not in ctl.sip_accounts  # never a caller's account: the sessions' rules never see it
    endpoint = bodies[f"asterisk/config/dynamic/res_pjsip/endpoint/{user}"]["fields"]
    fields = {(f["attribute"], f["value"]) for f in endpoint}
    assert ("context", sa.COACH_CONTEXT) in fields and ("webrtc", "yes") in fields
    assert ("set_var", "PB_COACH=1") in fields and not [f for f in fields if f[1].startswith("PB_SESSION")]
    assert ("allow_transfer", "no") in fields
    assert sa.restored(user, {f["attribute"]: f["value"] for f in endpoint}) is None  # a restart deletes it

    # A stranger's endpoint, and a channel whose name disagrees with the endpoint passed: hung up.
    for ch_id, endpoint_name, name in (
        ("x-1", "pbsipc" + "00" * 16, f"PJSIP/pbsipc{'00' * 16}-00000001"),
        ("x-2", user, "PJSIP/pbsipzz-00000002"),
    ):
        mark = len(ari.calls)
        await ctl.on_event(
            {"type": "StasisStart", "args": ["coachleg", endpoint_name], "channel": {"id": ch_id, "name": name}}
        )
        assert ("DELETE", f"channels/{ch_id}", {}) in ari.calls[mark:]
        assert not [c for c in ari.calls[mark:] if c[0] == "POST" and "bridges" in c[1]]
    holding = f"bridges/pb-coach-{got['coach_id']}"
    chan = {"id": "cap-sip", "name": f"PJSIP/{user}-00000003"}
    await ctl.on_event({"type": "StasisStart", "args": ["coachleg", user], "channel": chan})
    assert ("POST", f"{holding}/addChannel", {"channel": "cap-sip", "body": None}) in ari.calls
    assert ctl.coaches[got["coach_id"]].channel_id == "cap-sip"
    # The same account calling again while its leg is up: hung up, the coaching untouched.
    mark = len(ari.calls)
    await ctl.on_event({"type": "StasisStart", "args": ["coachleg", user], "channel": {**chan, "id": "cap-sip-2"}})
    assert ("DELETE", "channels/cap-sip-2", {}) in ari.calls[mark:]
    assert ctl.coaches[got["coach_id"]].channel_id == "cap-sip"

    mark = len(ari.calls)
    await ctl.on_event({"type": "ChannelDestroyed", "cause": 16, "channel": {"id": "cap-sip"}})
    deletes = [path for m, path, _ in ari.calls[mark:] if m == "DELETE"]
    assert f"asterisk/config/dynamic/res_pjsip/endpoint/{user}" in deletes and holding in deletes
    assert ctl.coaches == {} and ctl.dialer.volunteers[sid].coached == ""
    store.close()


async def test_adapter_account_refused_by_asterisk_leaves_nobody_coached(tmp_path: Path) -> None:
    """Asterisk refusing the coaching's account: the request is refused, and the caller is not left marked as
    coached (the core's Coached(mode) came after the OpenAccount that failed)."""
    from bridge.ari import AriError

    store, ari, ctl, sid = await _volunteer_on_line(tmp_path)

    async def put(path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        raise AriError("PUT: HTTP 500")

    ari.put = put  # type: ignore[method-assign]
    assert await ctl.coach(1, sid, co.Mode.LISTEN, co.LegKind.WEBRTC) == {"refused": "account_failed"}
    assert ctl.coaches == {} and ctl.dialer.volunteers[sid].coached == ""
    store.close()


@pytest.mark.parametrize("leg", [co.LegKind.PHONE, co.LegKind.WEBRTC])
async def test_adapter_coaching_ended_while_the_captain_joins_hangs_the_leg_up(tmp_path: Path, leg: co.LegKind) -> None:
    """The coaching ends (Stop, the caller leaving, its time to join running out) while the captain's leg is being
    put into the holding bridge (other channels' events and the panel run meanwhile): the leg is hung up and the
    bridge deleted, not left in a bridge nothing tracks any more."""
    store, ari, ctl, sid = await _volunteer_on_line(tmp_path)
    got = await ctl.coach(1, sid, co.Mode.LISTEN, leg)
    holding = f"bridges/pb-coach-{got['coach_id']}"
    fake_post = ari.post

    async def post(path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        if path == "bridges":  # the holding bridge being made: meanwhile the captain pressed Stop
            assert await ctl.coach_mode(1, None)
        return await fake_post(path, body, **params)

    ari.post = post  # type: ignore[method-assign]
    if leg is co.LegKind.PHONE:
        cap = {"id": "cap-1", "name": "Local/callin@pb-callin-0001;2", "caller": {"number": "2025550199"}}
        await ctl.on_event({"type": "StasisStart", "args": ["callin"], "channel": cap})
        for digit in got["code"]:
            await ctl.on_event({"type": "ChannelDtmfReceived", "digit": digit, "channel": {"id": "cap-1"}})
    else:
        chan = {"id": "cap-1", "name": f"PJSIP/{got['account']}-00000003"}
        await ctl.on_event({"type": "StasisStart", "args": ["coachleg", got["account"]], "channel": chan})
    assert ("POST", f"{holding}/addChannel", {"channel": "cap-1", "body": None}) in ari.calls
    deletes = [i for i, (m, path, _) in enumerate(ari.calls) if m == "DELETE"]
    joined = ari.calls.index(("POST", f"{holding}/addChannel", {"channel": "cap-1", "body": None}))
    late = [ari.calls[i][1] for i in deletes if i > joined]
    assert "channels/cap-1" in late and holding in late
    assert not [p for m, p, _ in ari.calls if m == "POST" and p.endswith("/snoop")]
    assert ctl.coaches == {} and ctl.dialer.volunteers[sid].coached == ""
    store.close()


async def test_adapter_captain_gone_while_the_event_socket_was_down_ends_the_coaching(tmp_path: Path) -> None:
    """The captain hangs up while the controller's event WebSocket is down (no ChannelDestroyed ever comes): the
    resync on reconnect ends the coaching, so the caller stops showing as coached and the snoop goes."""
    store, ari, ctl, sid = await _volunteer_on_line(tmp_path)
    got = await ctl.coach(1, sid, co.Mode.LISTEN, co.LegKind.WEBRTC)
    chan = {"id": "cap-1", "name": f"PJSIP/{got['account']}-00000003"}
    await ctl.on_event({"type": "StasisStart", "args": ["coachleg", got["account"]], "channel": chan})
    ((_, _, snoop),) = [c for c in ari.calls if c[0] == "POST" and c[1] == "channels/vol-1/snoop"]
    assert ctl.dialer.volunteers[sid].coached == "listen"

    async def get(path: str, **params: Any) -> Any:
        return [{"id": "vol-1"}, {"id": snoop["snoopId"]}] if path == "channels" else []

    ari.get = get  # type: ignore[method-assign]
    ctl._synced = True  # a reconnect, not the first connect
    mark = len(ari.calls)
    await ctl.resync()
    deletes = [path for m, path, _ in ari.calls[mark:] if m == "DELETE"]
    assert f"channels/{snoop['snoopId']}" in deletes and f"bridges/pb-coach-{got['coach_id']}" in deletes
    assert f"asterisk/config/dynamic/res_pjsip/endpoint/{got['account']}" in deletes
    assert ctl.coaches == {} and ctl.dialer.volunteers[sid].coached == ""
    assert sid in ctl.legs, "the caller's leg is still there"
    store.close()
