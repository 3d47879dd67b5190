"""The coaching adapter (bridge/ari_app.py) when a coaching ends while its SIP account is being made: a captain's
double-click, the caller leaving, the captain dismissed. The first request gets a clean refusal (the panel's 409),
and its account is deleted after its endpoint was pushed, not before (it would stay, with a live password, until a
controller restart). Fake ARI: the interleaving is forced at the account's first PUT."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bridge import coaching as co
from bridge import dialer as d
from bridge.ari_app import Controller, Leg
from store.db import Store
from tests.fakes import FakeAri

BASE = "asterisk/config/dynamic/res_pjsip"


async def _controller(tmp_path: Path, callers: int = 1) -> tuple[Controller, FakeAri, list[int]]:
    store = Store(tmp_path / "pb.db")
    cid = store.create_campaign("Coach")["id"]
    ari = FakeAri()
    ctl = Controller(ari=ari, store=store)
    ctl.refresh_campaigns()
    sids = []
    for n in range(1, callers + 1):
        sid = store.create_session(cid, f"Caller {n}")["id"]
        ctl.legs[sid] = Leg(sid, cid, f"vol-{n}", f"pb-vol-{n}-x")
        await ctl.run(ctl.dialer.handle(d.VolunteerJoined(sid, cid), 1.0))
        sids.append(sid)
    return ctl, ari, sids


def _meanwhile(ari: FakeAri, then: Callable[[], Awaitable[None]]) -> None:
    """Run ``then`` while the first coaching account's first PUT is on its way (once)."""
    fake_put = ari.put
    done: list[bool] = []

    async def put(path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        if not done and f"{BASE}/auth/" in path:
            done.append(True)
            await then()
        return await fake_put(path, body, **params)

    ari.put = put  # type: ignore[method-assign]


def _account_deleted_last(ari: FakeAri, account: str) -> None:
    """Every part of the account was made, and the last thing done to each was its DELETE."""
    for kind in ("auth", "aor", "endpoint"):
        path = f"{BASE}/{kind}/{account}"
        ops = [m for m, p, _ in ari.calls if p == path]
        assert "PUT" in ops and ops[-1] == "DELETE", (kind, ops)


def _pushed_accounts(ari: FakeAri) -> list[str]:
    return [p.rsplit("/", 1)[-1] for m, p, _ in ari.calls if m == "PUT" and p.startswith(f"{BASE}/endpoint/")]


async def test_double_click_refuses_the_first_request_and_deletes_its_account(tmp_path: Path) -> None:
    """The second click's request runs while the first one's account is being made (the reviewer's reproduction):
    the first used to raise KeyError (the panel's 500) and leave its account in Asterisk."""
    ctl, ari, (sid,) = await _controller(tmp_path)
    second: dict[str, Any] = {}

    async def click_again() -> None:
        second.update(await ctl.coach(1, sid, co.Mode.LISTEN, co.LegKind.WEBRTC))

    _meanwhile(ari, click_again)
    first = await ctl.coach(1, sid, co.Mode.LISTEN, co.LegKind.WEBRTC)
    assert first == {"refused": "coaching_gone"}
    assert "account" in second and set(ctl.coaches) == {second["coach_id"]}
    (first_account,) = [a for a in _pushed_accounts(ari) if a != second["account"]]
    _account_deleted_last(ari, first_account)
    # The second coaching's account stays, and the caller shows as coached by it.
    assert [m for m, p, _ in ari.calls if p == f"{BASE}/endpoint/{second['account']}"] == ["PUT"]
    assert ctl.dialer.volunteers[sid].coached == "listen"
    ctl.store.close()


async def test_double_click_on_two_callers_leaves_only_the_second_marked(tmp_path: Path) -> None:
    """The first request's own Coached(listen) would run after the second moved the captain on: the first caller
    must not stay marked as coached by nobody."""
    ctl, ari, (one, two) = await _controller(tmp_path, callers=2)
    second: dict[str, Any] = {}

    async def click_other() -> None:
        second.update(await ctl.coach(1, two, co.Mode.WHISPER, co.LegKind.SOFTPHONE))

    _meanwhile(ari, click_other)
    assert await ctl.coach(1, one, co.Mode.LISTEN, co.LegKind.SOFTPHONE) == {"refused": "coaching_gone"}
    assert second["session_id"] == two and [c.session_id for c in ctl.coaches.values()] == [two]
    assert ctl.dialer.volunteers[one].coached == "" and ctl.dialer.volunteers[two].coached == "whisper"
    (first_account,) = [a for a in _pushed_accounts(ari) if a != second["account"]]
    _account_deleted_last(ari, first_account)
    ctl.store.close()


async def test_caller_leaving_while_the_account_is_made(tmp_path: Path) -> None:
    ctl, ari, (sid,) = await _controller(tmp_path)

    async def caller_hangs_up() -> None:
        await ctl.on_event({"type": "ChannelDestroyed", "cause": 16, "channel": {"id": "vol-1"}})

    _meanwhile(ari, caller_hangs_up)
    assert await ctl.coach(1, sid, co.Mode.BARGE, co.LegKind.WEBRTC) == {"refused": "coaching_gone"}
    assert ctl.coaches == {}
    (account,) = _pushed_accounts(ari)
    _account_deleted_last(ari, account)
    ctl.store.close()


async def test_captain_dismissed_while_the_account_is_made(tmp_path: Path) -> None:
    """An admin takes the captain's right to coach away while their request is making its account."""
    ctl, ari, (sid,) = await _controller(tmp_path)
    dismissed: list[bool] = []

    async def admin_acts() -> None:
        dismissed.append(await ctl.end_coaching_of(1, "role_changed"))

    _meanwhile(ari, admin_acts)
    assert await ctl.coach(1, sid, co.Mode.LISTEN, co.LegKind.SOFTPHONE) == {"refused": "coaching_gone"}
    assert dismissed == [True] and ctl.coaches == {} and ctl.dialer.volunteers[sid].coached == ""
    (account,) = _pushed_accounts(ari)
    _account_deleted_last(ari, account)
    ctl.store.close()
