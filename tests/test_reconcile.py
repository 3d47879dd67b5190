"""Restart reconciliation by tables: (channels, bridges, stored rows) -> commands, no Asterisk, no store."""

from __future__ import annotations

from typing import Any

import pytest

from bridge import reconcile as rc
from bridge.reconcile import (
    CallLost,
    DeleteBridge,
    EndCall,
    HangupChannel,
    LegLost,
    MarkDisconnected,
    PromptAgain,
    ResetStaleDialing,
    RestoreVolunteer,
    Stored,
    Voter,
)

NOW = 1_000.0


def ch(cid: str, name: str = "", context: str = "", app: str = "", caller: str = "") -> dict[str, Any]:
    return {
        "id": cid,
        "name": name or f"Local/{cid}",
        "dialplan": {"context": context, "app_name": app},
        "caller": {"number": caller},
    }


def session(
    sid: int, channel: str | None, state: str = "idle", reason: str = "", call_id: str | None = None, campaign: int = 7
) -> dict[str, Any]:
    return {
        "id": sid,
        "status": "open",
        "campaign_id": campaign,
        "channel_id": channel,
        "state": state,
        "state_reason": reason,
        "current_call_id": call_id,
    }


def call(cid: str, contact: int = 3, outcome: str | None = None, campaign: int = 7) -> dict[str, Any]:
    return {"id": cid, "campaign_id": campaign, "contact_id": contact, "outcome": outcome}


def vol_bridge(sid: int, *members: str, bid: str = "") -> dict[str, Any]:
    return {"id": bid or f"pb-vol-{sid}-abcd", "name": f"pb-vol-{sid}", "channels": list(members)}


def restore(
    sid: int,
    chan: str,
    voter: Voter | None = None,
    state: str = "idle",
    reason: str = "",
    call_id: str | None = None,
    endpoint: str = "",
) -> RestoreVolunteer:
    return RestoreVolunteer(sid, 7, chan, f"pb-vol-{sid}-abcd", endpoint, voter, state, reason, call_id)


CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], Stored, list[rc.Command]]] = [
    ("nothing at all", {}, [], Stored(), [ResetStaleDialing()]),
    (
        "volunteer restored with their voter",
        {"v1": ch("v1"), "pbc-a": ch("pbc-a")},
        [vol_bridge(1, "v1", "pbc-a")],
        Stored({1: session(1, "v1", "talking", call_id="pbc-a")}, {"pbc-a": call("pbc-a")}),
        [restore(1, "v1", Voter("pbc-a", 7, 3), "talking", call_id="pbc-a"), ResetStaleDialing()],
    ),
    (
        "volunteer restored without a voter",
        {"v1": ch("v1")},
        [vol_bridge(1, "v1")],
        Stored({1: session(1, "v1")}),
        [restore(1, "v1"), ResetStaleDialing()],
    ),
    (
        "a pause is kept as the store had it",
        {"v1": ch("v1")},
        [vol_bridge(1, "v1")],
        Stored({1: session(1, "v1", "paused", "paused_by_volunteer")}),
        [restore(1, "v1", state="paused", reason="paused_by_volunteer"), ResetStaleDialing()],
    ),
    (
        "a result still owed keeps its call (the voter left while we were down)",
        {"v1": ch("v1")},
        [vol_bridge(1, "v1")],
        Stored({1: session(1, "v1", "talking", call_id="pbc-old")}),
        [restore(1, "v1", state="talking", call_id="pbc-old"), ResetStaleDialing()],
    ),
    (
        "a voter leg nobody accounts for is hung up and recorded lost",
        {"pbc-x": ch("pbc-x")},
        [],
        Stored(live_calls={"pbc-x": call("pbc-x", contact=9)}),
        [HangupChannel("pbc-x", "voter_unaccounted"), EndCall("pbc-x", 9, "lost", release=True), ResetStaleDialing()],
    ),
    (
        "a call whose channel is gone and whose outcome was written keeps it, contact not released again",
        {},
        [],
        Stored(live_calls={"pbc-y": call("pbc-y", contact=4, outcome="abandoned")}),
        [EndCall("pbc-y", 4, "abandoned", release=False), ResetStaleDialing()],
    ),
    (
        "detector taps of the previous run are cleaned up",
        {"amds-pbc-a": ch("amds-pbc-a"), "amdx-pbc-a": ch("amdx-pbc-a")},
        [{"id": "amdb-pbc-a", "name": "amdb-pbc-a", "channels": ["amds-pbc-a", "amdx-pbc-a"]}],
        Stored(),
        [
            HangupChannel("amds-pbc-a", "detector_tap"),
            HangupChannel("amdx-pbc-a", "detector_tap"),
            DeleteBridge("amdb-pbc-a"),
            ResetStaleDialing(),
        ],
    ),
    (
        "a coaching of the previous run: snoop and captain hung up, holding bridge deleted",
        {"pbks-k1-aa": ch("pbks-k1-aa"), "cap-1": ch("cap-1")},
        [{"id": "pb-coach-k1", "name": "pb-coach-k1", "channels": ["cap-1", "pbks-k1-aa"]}],
        Stored(),
        [
            HangupChannel("pbks-k1-aa", "coach_snoop"),
            DeleteBridge("pb-coach-k1"),
            HangupChannel("cap-1", "coach_gone"),
            ResetStaleDialing(),
        ],
    ),
    (
        "captains barging in a caller's bridge (called in, or from a coaching account) are hung up; the call stays",
        {
            "v1": ch("v1", context="pb-callin", app="Stasis"),
            "pbc-a": ch("pbc-a", context="pb-outbound", app="Stasis"),
            "cap-1": ch("cap-1", context="pb-callin", app="Stasis"),
            "cap-2": ch("cap-2", "PJSIP/pbsipcab12-00000006", context="pb-coach-leg", app="Stasis"),
        },
        [vol_bridge(1, "v1", "cap-1", "pbc-a", "cap-2")],
        Stored({1: session(1, "v1", "talking", call_id="pbc-a")}, {"pbc-a": call("pbc-a")}),
        [
            HangupChannel("cap-1", "coach_gone"),
            HangupChannel("cap-2", "coach_gone"),
            restore(1, "v1", Voter("pbc-a", 7, 3), "talking", call_id="pbc-a"),
            ResetStaleDialing(),
        ],
    ),
    (
        "a caller keying a code is prompted again",
        {
            "in1": ch("in1", context="pb-callin", app="Stasis", caller="+15550001111"),
            "sim": ch("sim", context="pb-sim-pstn", app="Wait"),
        },
        [],
        Stored(),
        [PromptAgain("in1", "+15550001111"), ResetStaleDialing()],
    ),
    (
        "an admin cut off mid-recording is prompted again too (anonymous caller)",
        {"rec": ch("rec", context="pb-callin", app="Stasis")},
        [],
        Stored(),
        [PromptAgain("rec", "anonymous"), ResetStaleDialing()],
    ),
    (
        "a SIP leg still joining is hung up (its device calls again)",
        {"s1": ch("s1", "PJSIP/pbsipab12-00000003", context="pb-sip-leg", app="Stasis")},
        [],
        Stored(),
        [HangupChannel("s1", "sip_leg_joining"), ResetStaleDialing()],
    ),
    (
        "a captain's SIP leg still joining is hung up too",
        {"k1": ch("k1", "PJSIP/pbsipcab12-00000005", context="pb-coach-leg", app="Stasis")},
        [],
        Stored(),
        [HangupChannel("k1", "sip_leg_joining"), ResetStaleDialing()],
    ),
    (
        "a volunteer on a per-session SIP account keeps its endpoint",
        {"s2": ch("s2", "PJSIP/pbsipcd34-00000004", context="pb-sip-leg", app="Stasis")},
        [vol_bridge(2, "s2")],
        Stored({2: session(2, "s2")}),
        [RestoreVolunteer(2, 7, "s2", "pb-vol-2-abcd", "pbsipcd34", None, "idle", "", None), ResetStaleDialing()],
    ),
    (
        "an ended session's bridge is taken down with everyone in it",
        {"v3": ch("v3"), "pbc-b": ch("pbc-b")},
        [vol_bridge(3, "v3", "pbc-b")],
        Stored(live_calls={"pbc-b": call("pbc-b", contact=5)}),
        [
            DeleteBridge("pb-vol-3-abcd"),
            HangupChannel("v3", "volunteer_bridge_gone"),
            HangupChannel("pbc-b", "volunteer_bridge_gone"),
            HangupChannel("pbc-b", "voter_unaccounted"),
            EndCall("pbc-b", 5, "lost", release=True),
            ResetStaleDialing(),
        ],
    ),
    (
        "a bridge without the volunteer's own channel: the stale voter is hung up and recorded, session disconnected",
        {"pbc-c": ch("pbc-c")},
        [vol_bridge(4, "pbc-c")],
        Stored({4: session(4, "gone-leg", "talking", call_id="pbc-c")}, {"pbc-c": call("pbc-c", contact=6)}),
        [
            DeleteBridge("pb-vol-4-abcd"),
            HangupChannel("pbc-c", "volunteer_bridge_gone"),
            HangupChannel("pbc-c", "voter_unaccounted"),
            EndCall("pbc-c", 6, "lost", release=True),
            MarkDisconnected(4),
            ResetStaleDialing(),
        ],
    ),
    (
        "open sessions with no phone left are marked disconnected; waiting or already disconnected ones are not",
        {},
        [],
        Stored(
            {5: session(5, None, "idle"), 6: session(6, None, "waiting_for_phone"), 7: session(7, None, "disconnected")}
        ),
        [MarkDisconnected(5), ResetStaleDialing()],
    ),
]


@pytest.mark.parametrize(("name", "channels", "bridges", "stored", "expected"), CASES, ids=[c[0] for c in CASES])
def test_after_restart(
    name: str, channels: dict[str, Any], bridges: list[dict[str, Any]], stored: Stored, expected: list[rc.Command]
) -> None:
    assert rc.after_restart(channels, bridges, stored, NOW) == expected


def test_stored_of_rows() -> None:
    stored = Stored.of([session(1, "v1")], [call("pbc-a")])
    assert set(stored.sessions) == {1} and set(stored.live_calls) == {"pbc-a"}


@pytest.mark.parametrize(
    ("channels", "calls", "legs", "expected"),
    [
        (["a", "v1"], ["a"], {1: "v1"}, []),
        (["v1"], ["a", "b"], {1: "v1"}, [CallLost("a"), CallLost("b")]),
        (["a"], ["a"], {1: "v1", 2: "a"}, [LegLost(1)]),
    ],
)
def test_after_reconnect(
    channels: list[str], calls: list[str], legs: dict[int, str], expected: list[rc.Command]
) -> None:
    assert rc.after_reconnect(channels, calls, legs) == expected


@pytest.mark.parametrize(
    ("channels", "captains", "expected"),
    [
        (["v1", "cap-1"], {"k1": "cap-1"}, []),
        # The captain hung up while the event WebSocket was down: no ChannelDestroyed will come for it.
        (["v1"], {"k1": "cap-1"}, [rc.CaptainLost("k1")]),
        # Everything gone (Asterisk restarted): the caller's leg first (it ends the coaching too), then the captain.
        ([], {"k1": "cap-1"}, [LegLost(1), rc.CaptainLost("k1")]),
    ],
)
def test_after_reconnect_a_captain_lost_meanwhile_ends_the_coaching(
    channels: list[str], captains: dict[str, str], expected: list[rc.Command]
) -> None:
    assert rc.after_reconnect(channels, [], {1: "v1"}, [], captains) == expected


@pytest.mark.parametrize(("name", "sid"), [("pb-vol-12", 12), ("pb-vol-12-x", 12), ("amdb-x", None), ("pb-vol-", None)])
def test_session_of_bridge(name: str, sid: int | None) -> None:
    assert rc.session_of_bridge(name) == sid
