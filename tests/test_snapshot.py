"""Controller.snapshot(): what the panel reads of the live state, copied at one instant and read-only."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge import dialer as d
from bridge.ari_app import Controller, Leg
from bridge.volunteer import Volunteer, VState
from phonebank.offline import FakeAri
from store.db import Store


def controller(tmp_path: Path) -> Controller:
    ctl = Controller(ari=FakeAri(), store=Store(tmp_path / "pb.db"))
    ctl.dialer.volunteers[1] = Volunteer(1, 7, state=VState.IDLE)
    ctl.dialer.volunteers[2] = Volunteer(2, 7, state=VState.PAUSED)
    ctl.dialer.volunteers[3] = Volunteer(3, 8, state=VState.TALKING)
    ctl.dialer.calls["a"] = d.Call("a", 7, 100, state=d.CState.RINGING)
    ctl.dialer.calls["b"] = d.Call("b", 7, 101, state=d.CState.CONNECTED)
    ctl.dialer.calls["c"] = d.Call("c", 8, 102, state=d.CState.AMD)
    ctl.legs[1] = Leg(1, 7, "vol-1", "br-1")
    return ctl


def test_snapshot_holds_what_the_panel_reads(tmp_path: Path) -> None:
    snap = controller(tmp_path).snapshot()
    assert snap.volunteer(1) == Volunteer(1, 7, state=VState.IDLE)
    assert snap.volunteer(9) is None
    assert [c.call_id for c in snap.calls_for(7)] == ["a", "b"]
    assert snap.in_flight(7) == 1  # ringing counts; connected does not
    assert snap.in_flight(8) == 1  # AMD counts
    assert snap.in_pool(7) == 1  # idle counts; paused does not
    assert snap.in_pool(8) == 1  # talking counts
    assert snap.legs == frozenset({1})


def test_snapshot_is_a_copy_the_panel_cannot_change(tmp_path: Path) -> None:
    ctl = controller(tmp_path)
    snap = ctl.snapshot()
    ctl.dialer.volunteers.pop(1)
    ctl.dialer.calls.pop("a")
    ctl.legs.clear()
    assert snap.volunteer(1) is not None and len(snap.calls) == 3 and snap.legs == frozenset({1})
    with pytest.raises(TypeError):
        snap.volunteers[5] = Volunteer(5, 7)  # type: ignore[index]
    assert ctl.snapshot().legs == frozenset()
