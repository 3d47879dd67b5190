"""Guessing the call-in code on the real Asterisk: wrong codes from several calls of one number slow it down and
lock it out (a controller restart keeps the lock), wrong codes from many numbers slow everyone down, and the
owner of the code still gets in from their own phone — and, once in, calls back from it without queueing.

The limits are made small for the test (PHONEBANK_CALLIN_LIMITS); the defaults, and the arithmetic behind them,
are in callin/guard.py and docs/OPERATIONS.md."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.ari import AriClient
from callin import drill
from callin.entry import CODE_LENGTH
from callin.guard import Limits, from_json
from phonebank.harness import ControllerProcess, Pbx, until
from store import callin_guard
from store.contacts import mask_phone
from store.db import Store

pytestmark = pytest.mark.asterisk

LIMITS = {"tarpit_base_s": 0.5, "tarpit_max_s": 2.0, "lock_after": 3, "alarm_wrong": 5, "alarm_spacing_s": 4.0}
GUESSER = "+12025550181"
OWNER_PHONE = "+12025550199"


@pytest.fixture
def guarded(pbx: Pbx, tmp_path: Path) -> Iterator[ControllerProcess]:
    """A controller with small limits, on a guard memory wiped before and after (the PBX's store is shared by
    the whole test session)."""
    store = Store(pbx.settings.db_path)
    store.conn.execute("DELETE FROM callin_guard")
    ctl = ControllerProcess(pbx, tmp_path / "controller.log", extra_env={"PHONEBANK_CALLIN_LIMITS": json.dumps(LIMITS)})
    ctl.start()
    try:
        yield ctl
    finally:
        ctl.stop()
        store.conn.execute("DELETE FROM callin_guard")
        store.close()


def guard_now(store: Store) -> Any:
    return from_json(callin_guard.load(store), Limits(**LIMITS))  # type: ignore[arg-type]


def wrong_from(store: Store, number: str) -> int:
    return sum(1 for n, _ in guard_now(store).wrong if n == number)


def log_events(ctl: ControllerProcess, event: str) -> list[dict[str, Any]]:
    out = []
    for line in ctl.log_path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("event") == event:
            out.append(row)
    return out


async def test_a_burst_of_wrong_codes_locks_out_and_slows_down_but_the_owner_gets_in(
    pbx: Pbx, guarded: ControllerProcess, ari: AriClient, tmp_path: Path
) -> None:
    ctl = guarded
    store = Store(pbx.settings.db_path)
    cid = store.create_campaign("Guarded call-in", status="paused")["id"]
    status, session = ctl.call("POST", "/api/sessions", {"campaign_id": cid, "name": "Owner"})
    assert status == 201 and len(session["code"]) == CODE_LENGTH
    code = session["code"]
    wrong_codes = [str(int(code) + i) for i in range(1, 12)]  # near misses: wrong all the same

    async def guess(caller: str, keyed: str, counted: int) -> None:
        """One call from ``caller`` keying ``keyed``; hung up once the guard has counted it."""
        leg = await drill.volunteer(ari, pbx.rt, keyed, stay_s=60, caller=caller)
        await until(lambda: wrong_from(store, caller) >= counted, 30, f"wrong code {counted} from {caller}")
        await ari.delete(f"channels/{leg.channel_id}")

    try:
        # 1. Three calls from one number, one wrong code each: the second and third wait (tarpit), the third locks
        #    the number out.
        for i in range(3):
            await guess(GUESSER, wrong_codes[i], i + 1)
        held = log_events(ctl, "callin.code_held")
        assert [h["reason"] for h in held] == ["tarpit", "tarpit"], held
        assert log_events(ctl, "callin.number_locked_out")[0]["caller"] == mask_phone(GUESSER)  # masked in the log
        assert [n for n, _ in guard_now(store).locked] == [GUESSER]

        # 2. The controller is killed and started again: the lock is still there. From the locked number even
        #    the right code is not looked up: the call is told to try later and hung up.
        ctl.kill()
        ctl.start()
        leg = await drill.volunteer(ari, pbx.rt, code, stay_s=60, caller=GUESSER)
        await until(lambda: log_events(ctl, "callin.locked_number_refused"), 30, "the locked number refused")
        for _ in range(60):  # "I'm sorry, please try your call again later", goodbye, hung up
            if not any(ch["id"] == leg.channel_id for ch in await ari.get("channels")):
                break
            await asyncio.sleep(0.25)
        else:
            raise AssertionError("the locked number's call was not hung up")
        view = ctl.call("GET", f"/api/sessions/{session['id']}")[1]
        assert not view["phone_connected"] and view["state"] == "waiting_for_phone"
        assert wrong_from(store, GUESSER) == 3  # not looked up, so not counted either

        # 3. Wrong codes from other numbers (caller ID is easy to fake): the fifth overall raises the alarm ...
        await guess("+12025550182", wrong_codes[3], 1)
        await guess("+12025550183", wrong_codes[4], 1)
        assert log_events(ctl, "callin.guessing_alarm") and guard_now(store).alarm

        # 4. ... and from then on codes from anyone are looked up one per 4 s: a guesser and the owner keying at
        #    the same moment, one of them waits its turn. The owner, from their own phone, gets in.
        guesser = asyncio.create_task(guess("+12025550184", wrong_codes[5], 1))
        owner = await drill.volunteer(ari, pbx.rt, code, stay_s=120, caller=OWNER_PHONE)
        joined = await until(
            lambda: (
                (v := ctl.call("GET", f"/api/sessions/{session['id']}")[1])["phone_connected"]
                and v["state"] == "idle"
                and v
            ),
            40,
            "the owner to join",
        )
        await guesser
        assert joined["status"] == "open"
        assert "pace" in [h["reason"] for h in log_events(ctl, "callin.code_held")]
        leg_row = store.session(session["id"])
        assert leg_row is not None and leg_row["channel_id"]
        assert owner.channel_id  # the drill's own half; the call-in half is the session's channel

        # 5. While the owner's phone is on the line their code is no code at all: a second call keying it is wrong.
        await guess("+12025550185", code, 1)
        view = ctl.call("GET", f"/api/sessions/{session['id']}")[1]
        assert view["phone_connected"] and store.session(session["id"])["channel_id"] == leg_row["channel_id"]  # type: ignore[index]

        # 6. The owner's phone drops; they call back from it while the alarm still holds: a number that keyed a
        #    right code skips the queue (its own limits still apply), even with a guesser keying at that moment.
        await ari.delete(f"channels/{owner.channel_id}")
        await until(
            lambda: ctl.call("GET", f"/api/sessions/{session['id']}")[1]["state"] == "disconnected",
            20,
            "the owner's phone to drop",
        )
        assert guard_now(store).alarm
        held_before = len(log_events(ctl, "callin.code_held"))
        # The owner keys 2 s after the guesser, inside the guesser's 4 s turn: untrusted, they would be held.
        guesser = asyncio.create_task(guess("+12025550186", wrong_codes[6], 1))
        await drill.volunteer(ari, pbx.rt, code, stay_s=120, caller=OWNER_PHONE, delay_s=3.5)
        await until(
            lambda: (
                (v := ctl.call("GET", f"/api/sessions/{session['id']}")[1])["phone_connected"]
                and v["state"] != "disconnected"
            ),
            40,
            "the owner to rejoin",
        )
        await guesser
        assert mask_phone(OWNER_PHONE) not in [h["caller"] for h in log_events(ctl, "callin.code_held")[held_before:]]

        # The admin sees it (the dashboard's alert is tested in tests/test_panel_results.py): every wrong code and
        # lockout was logged with the number masked.
        wrongs = log_events(ctl, "callin.wrong_code")
        assert len(wrongs) >= 3 and all("*" in w["caller"] for w in wrongs)
        assert GUESSER not in ctl.log_path.read_text()
    finally:
        store.close()
