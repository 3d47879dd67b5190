"""The thin adapter between Asterisk (ARI) and the sans-IO cores.

ARI events become core events (``bridge.dialer``, ``bridge.volunteer``, ``callin.entry``); the cores'
commands become ARI requests and store writes. Nothing here decides what happens to a call: that is the
cores' job, tested with tables. Store writes happen as each fact is learned, so a killed controller loses
nothing already reported; on restart the controller resyncs from ``GET /channels`` and ``GET /bridges``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import structlog

from bridge import amd_live
from bridge import coaching as co
from bridge import commands as c
from bridge import dialer as d
from bridge import language as lang
from bridge import predictive as pr
from bridge import reconcile as rc
from bridge import sip_accounts as sa
from bridge import sip_guard as sg
from bridge import volunteer as vol
from bridge import waiting as wt
from bridge.amd import AmdParams
from bridge.amd import Event as AmdEvent
from bridge.ari import AriConflict, AriError, AriNotFound, AriPort, Event
from bridge.snapshot import Snapshot
from bridge.stats import VerdictStats
from bridge.write_queue import WriteQueue
from callin import entry as en
from callin import guard as g
from store import callin_guard, recordings
from store import users as u
from store.contacts import mask_phone
from store.db import Store, calling_now, new_code

log = structlog.get_logger(__name__)

VOLUNTEER_BRIDGE_PREFIX = rc.VOLUNTEER_BRIDGE_PREFIX
CALL_PREFIX = "pbc-"
# Keypad key a volunteer presses to end the voter's call (their own line stays up).
END_CALL_KEY = "*"
# app_amd parameter order, as AMD() takes them.
AMD_ARGS = (
    "initial_silence",
    "greeting",
    "after_greeting_silence",
    "total_analysis_time",
    "min_word_length",
    "between_words_silence",
    "maximum_number_of_words",
    "silence_threshold",
    "maximum_word_length",
)
AMD_DEFAULTS = {
    "initial_silence": 2500,
    "greeting": 1500,
    "after_greeting_silence": 800,
    "total_analysis_time": 5000,
    "min_word_length": 100,
    "between_words_silence": 50,
    "maximum_number_of_words": 3,
    "silence_threshold": 256,
    "maximum_word_length": 5000,
}


def ari_time(event: Event) -> float:
    """Asterisk's own timestamp of an event, as epoch seconds (falls back to now). Not the controller's clock (see
    Controller.on_event): the benchmarks read it to time Asterisk itself."""
    ts = event.get("timestamp")
    if ts:
        with contextlib.suppress(ValueError):
            return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    return time.time()


@dataclass
class Leg:
    """A volunteer's phone leg once it has joined a session."""

    session_id: int
    campaign_id: int
    channel_id: str
    bridge_id: str
    endpoint: str = ""  # the session's own SIP account, when the leg came from one


@dataclass
class Controller:
    ari: AriPort  # bridge.ari.AriClient, or a stand-in for the panel's tests (phonebank.offline.FakeAri)
    store: Store
    dial_template: str = "Local/{number}@pb-sim-pstn/n"
    sounds_dir: str = ""  # Asterisk's view of the instance sounds dir (generated prompts)
    # How often the adapter polls what reaches it without an event: Asterisk's security log (SIP login failures),
    # and the store for campaign settings the panel or the CLI changed (and sessions that ended, for SIP accounts).
    # The cores' own timers are not polled: they say when they are due (_timers).
    poll_s: float = 0.5
    campaign_refresh_s: float = 3.0
    # (text, asterisk path without ext, language) -> made?
    prompt_maker: Callable[[str, str, str], bool] | None = None
    # The call-in's languages, said in this order until a code says which is the caller's (callin.entry).
    callin_languages: tuple[str, ...] = (lang.DEFAULT,)
    _prompt_playbacks: dict[str, list[str]] = field(default_factory=dict)  # call-in channel -> its prompts playing
    dialer: d.Dialer = field(default_factory=d.Dialer)
    entries: dict[str, en.Entry] = field(default_factory=dict)
    # Limits on guessing codes across calls; its memory is loaded from the store at start.
    guard: g.Guard = field(default_factory=g.Guard)
    legs: dict[int, Leg] = field(default_factory=dict)  # session id -> leg
    _campaign_rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _prompting: set[int] = field(default_factory=set)
    _synced: bool = False
    _took_stock: bool = False  # a resync has finished: from then on a lost connection holds the dialer
    amd_server: amd_live.AmdRtpServer | None = None
    # call id -> (snoop channel, external media channel, bridge) feeding our detector. Its windows (no verdict
    # after 7.5 s, listening for 17.5 s) are the dialer's timers (bridge.dialer AMD_VERDICT_S, AMD_LISTEN_S).
    _amd_taps: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    # Told (session id or None, campaign id) whenever a volunteer's or a campaign's live state changes: the
    # panel pushes fresh views to browsers from here. Observers must not block.
    observers: list[Callable[[int | None, int], None]] = field(default_factory=list)
    # Asterisk's view of where ARI recordings land (messages recorded by phone).
    recordings_dir: str = ""
    _recordings: set[str] = field(default_factory=set)  # names of the recordings this run started
    # Dials refused in a row per effort, and why callers wait (bridge.waiting): the panel's screens read these.
    trunk: wt.TrunkWatch = field(default_factory=wt.TrunkWatch)
    waiting: wt.Reasons = field(default_factory=wt.Reasons)
    # Per-session SIP accounts (computer audio, softphones) that exist in Asterisk now: username -> account.
    sip_accounts: dict[str, sa.Account] = field(default_factory=dict)
    # What devices are told with their account: ws_url, sip_server, domain, ice_servers (phonebank.service).
    sip_public: dict[str, Any] = field(default_factory=dict)
    # Failed SIP logins throttled per address: Asterisk's security log in (host path), banned addresses out as a
    # PJSIP ACL file (host path) that res_pjsip reloads. None: not watched (fake ARI in unit tests).
    sip_guard: sg.Guard = field(default_factory=sg.Guard)
    security_log: Path | None = None
    guard_conf: Path | None = None
    _security_log_pos: int = 0
    # Set after every event and command: a core may want to be woken earlier than the timer loop is sleeping.
    _rearm: asyncio.Event = field(default_factory=asyncio.Event)
    # AMD verdicts and answer -> verdict latency, read by /metrics at scrape time (panel/ops.py).
    amd_stats: VerdictStats = field(default_factory=VerdictStats)
    # Captains coaching callers (bridge.coaching decides); coach id -> the snoop channel now carrying them, if any.
    coaches: co.Coaches = field(default_factory=dict)
    _coach_snoops: dict[str, str] = field(default_factory=dict)
    # The call path's writes (bridge.write_queue): queued in order while the database refuses them.
    facts: WriteQueue = field(init=False)

    def __post_init__(self) -> None:
        self.facts = WriteQueue(self.store, on_change=self._store_changed)

    @property
    def store_down(self) -> bool:
        """The database refuses writes: the dialer is held, /healthz says so, screens and dashboards too."""
        return self.facts.down

    def _store_changed(self, down: bool) -> None:
        # Told from inside a write (sync): the dialer's hold is carried out on the loop, at once.
        cmds = self.dialer.handle(d.HoldChanged(d.Hold.STORE_DOWN, down), time.time())
        try:
            self._tasks.append(asyncio.get_running_loop().create_task(self.run(cmds)))
        except RuntimeError:  # not on the loop (a worker thread): the hold is set; the timer loop dials again
            log.error("dialer.hold" if down else "dialer.hold_released", hold=d.Hold.STORE_DOWN.value)
        self._notify_everyone()

    def _notify_everyone(self) -> None:
        """Every screen and dashboard: something all of them show changed (Asterisk or the store down or back)."""
        for sid, v in list(self.dialer.volunteers.items()):
            self._notify(sid, v.campaign_id)
        for cid in list(self._campaign_rows):
            self._notify(None, cid)

    async def _watch_health(self, now: float) -> None:
        """The timer loop's poll: Asterisk lost (hold the dialer until the resync after reconnecting has taken
        stock), and the store's queued writes written out."""
        connected = self.ari.connected
        lost = self._took_stock and connected is not None and not connected.is_set()
        if lost and d.Hold.PBX_DOWN not in self.dialer.holds:
            await self.run(self.dialer.handle(d.HoldChanged(d.Hold.PBX_DOWN, True), now), now)
            self._notify_everyone()
        if self.facts.pending:
            self.facts.flush()
        elif self.facts.down:
            self.facts.probe()

    def _notify_session(self, session_id: int) -> None:
        # The dialer forgets volunteers who left or ended: their last change must still reach the screen.
        v = self.dialer.volunteers.get(session_id)
        campaign_id = v.campaign_id if v else (self.store.session(session_id) or {}).get("campaign_id")
        if campaign_id is not None:
            self._notify(session_id, int(campaign_id))

    def _notify(self, session_id: int | None, campaign_id: int) -> None:
        for observer in self.observers:
            try:
                observer(session_id, campaign_id)
            except Exception:
                log.exception("controller.observer_failed")

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.guard = g.from_json(callin_guard.load(self.store), self.guard.limits)
        self.amd_server = amd_live.AmdRtpServer(on_event=self._on_detector_event)
        await self.amd_server.start()
        self._start_sip_guard()
        self.refresh_campaigns()
        self._tasks.append(asyncio.create_task(self.ari.run_events(self.on_event, self.resync)))
        self._tasks.append(asyncio.create_task(self._timers()))
        if self.ari.connected is not None:  # a stand-in without events has nothing to wait for
            await asyncio.wait_for(self.ari.connected.wait(), timeout=30)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        if self.amd_server is not None:
            self.amd_server.close()
        await self.ari.close()

    def next_wake(self) -> float | None:
        """The earliest time a core asked to be woken (aioquic's get_timer, asked of each core)."""
        times = [self.dialer.get_timer(), sa.next_expiry(self.sip_accounts), co.next_timer(self.coaches)]
        times += [en.get_timer(e) for e in self.entries.values()]
        return min((t for t in times if t is not None), default=None)

    async def _timers(self) -> None:
        """Sleep until a core's timer is due (or the next poll), then let each core handle what is due. Events
        re-arm the sleep, since they can bring a timer forward."""
        next_refresh = next_poll = 0.0
        handled = float("-inf")  # the time the cores were last handed
        while True:
            self._rearm.clear()
            now = time.time()
            wake = min(t for t in (self.next_wake(), next_refresh, next_poll) if t is not None)
            # A timer that was due already when its core last had the time was not consumed (a bug, or a failure
            # below): wait a poll period rather than spin on it.
            delay = max(wake - now, self.poll_s if wake <= handled else 0.0)
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._rearm.wait(), timeout=delay)
            # One clock reading for everything this wake-up does (see on_event).
            now = handled = time.time()
            try:
                if now >= next_refresh:
                    next_refresh = now + self.campaign_refresh_s
                    await self.run(self.refresh_campaigns(now), now)
                    await self.sweep_sip_accounts(now)
                    await self.recheck_coaches()
                elif (expiry := sa.next_expiry(self.sip_accounts)) is not None and expiry <= now:
                    await self.sweep_sip_accounts(now)
                await self.handle_timers(now)
                if now >= next_poll:
                    next_poll = now + self.poll_s
                    await self._watch_health(now)
                    await self._watch_security_log(now)
            except Exception:
                log.exception("controller.timers_failed")

    async def handle_timers(self, now: float) -> None:
        """What the call cores said is due by ``now`` (aioquic's handle_timer)."""
        for ch, entry in list(self.entries.items()):
            due = en.get_timer(entry)
            if due is not None and due <= now:
                await self._entry_step(ch, en.Tick(), now)
        if (due := self.dialer.get_timer()) is not None and due <= now:
            await self.run(self.dialer.handle_timer(now), now)
        if (due := co.next_timer(self.coaches)) is not None and due <= now:
            await self._coach_step(co.Tick(), now)

    def refresh_campaigns(self, now: float | None = None) -> list[c.Command]:
        """Reload campaign settings the store may have changed (CLI, panel)."""
        out: list[c.Command] = []
        now = time.time() if now is None else now
        for row in self.store.campaigns():
            # Scheduled efforts dial only inside their window; personal-phone efforts never (callers dial).
            row["_dials"] = row["dial_mode"] != "personal" and calling_now(row, now)
            if self._campaign_rows.get(row["id"]) == row:
                continue
            first_sight = row["id"] not in self._campaign_rows
            self._campaign_rows[row["id"]] = row
            self._ensure_prompts(row)
            # The mode and the power ratio are the effort's columns (CampaignConfig.engine_config).
            pacing = pr.PacingConfig(
                abandon_target=float(row["abandon_target"]), **json.loads(row["pacing_params"] or "{}")
            )
            config = d.CampaignConfig(
                campaign_id=row["id"],
                active=row["_dials"],
                dial_ratio=float(row["dial_ratio"]),
                wrapup_limit=float(row["wrapup_limit_s"]),
                voicemail=row["machine_action"] == "voicemail" and bool(row["voicemail_media"]),
                mode=row["dial_mode"],
                pacing=pacing,
                ring_timeout=float(row["ring_timeout_s"]),
            )
            out += self.dialer.handle(d.CampaignUpdated(config), now)
            if first_sight:
                # The 30-day abandon governor and the pacing history outlive a restart.
                loaded = d.history_from_rows(self.store.pacing_history(row["id"], now - 30 * d.DAY_S))
                if loaded:
                    out += self.dialer.handle(loaded, now)
        return out

    def _ensure_prompts(self, row: dict[str, Any]) -> None:
        """Campaigns without a recorded abandon message get one spoken: the admin's text if any, always followed
        by who called and the number to call back (the law's safe harbour asks for both). One in the effort's
        language, and one in each other language the phone side speaks, for voters whose list says they speak it
        (bridge.language: the admin's own sentence is in the effort's language, so the others say a standard one).

        Speech synthesis runs in a thread: it takes a few hundred milliseconds the event loop cannot spare.
        Until it is there, an abandoned call hears Asterisk's generic "all circuits busy" prompt."""
        missing = lang.abandon_prompts_missing(row)
        if not missing or not self.prompt_maker or not self.sounds_dir or row["id"] in self._prompting:
            return
        own = lang.effort_language(row)
        custom = (row.get("abandon_message") or "").strip()
        org, number = row["org_name"] or row["name"], row["callback_number"]
        texts = {x: lang.abandon_text(x, org, number, custom if x == own else "") for x in missing}
        self._prompting.add(row["id"])
        self._tasks.append(asyncio.create_task(self._make_abandon_prompts(row["id"], own, texts)))

    async def _make_abandon_prompts(self, campaign_id: int, own: str, texts: dict[str, str]) -> None:
        try:
            assert self.prompt_maker is not None
            for language, text in texts.items():
                current = self.store.campaign(campaign_id) or {}
                # The effort's own message keeps its path (store.efforts.save_settings drops it by that name when
                # what it says changes); each spoken message is also filed under its language.
                own_missing = language == own and not current.get("abandon_media")
                path = f"{self.sounds_dir}/abandon-{campaign_id}{'' if own_missing else f'-{language}'}"
                if not await asyncio.to_thread(self.prompt_maker, text, path, language):
                    continue
                # The next campaign refresh picks the new row up.
                media = lang.other_media(current)
                media[language] = {**media.get(language, {}), "abandon": path}
                values: dict[str, Any] = {"media_by_language": media}
                if own_missing:
                    values["abandon_media"] = path
                self.store.update_campaign(campaign_id, **values)
        except Exception:
            log.exception("controller.prompt_failed", campaign_id=campaign_id)
        finally:
            self._prompting.discard(campaign_id)

    # ------------------------------------------------------------------ resync after (re)connect
    async def resync(self) -> None:
        """Run on every (re)connect of the event WebSocket: the decisions are ``bridge.reconcile``'s."""
        channels = {ch["id"]: ch for ch in await self.ari.get("channels")}
        bridges = await self.ari.get("bridges")
        now = time.time()
        if not self._synced:
            self._synced = True
            await self._restore_sip_accounts()
            await self._restore_after_restart(channels, bridges, now)
        else:
            # First, so a device whose account Asterisk forgot (it restarted) can register again at once.
            await self._push_lost_sip_accounts(now)
        await self._reconcile(
            rc.after_reconnect(
                channels,
                list(self.dialer.calls),
                {sid: leg.channel_id for sid, leg in self.legs.items()},
                list(self.entries),
                {x.coach_id: x.channel_id for x in self.coaches.values() if x.channel_id},
            ),
            now,
        )
        self._took_stock = True
        if d.Hold.PBX_DOWN in self.dialer.holds:
            # Taken stock of what Asterisk lost: dial again for whoever is (still, or back) on the line.
            await self.run(self.dialer.handle(d.HoldChanged(d.Hold.PBX_DOWN, False), now), now)
            self._notify_everyone()

    async def _restore_after_restart(self, channels: dict[str, Event], bridges: list[Event], now: float) -> None:
        stored = rc.Stored.of(self.store.open_sessions(), self.store.live_calls())
        await self._reconcile(rc.after_restart(channels, bridges, stored, now), now)
        log.info("controller.resynced", volunteers=len(self.legs))

    async def _reconcile(self, cmds: list[rc.Command], now: float) -> None:
        """Carry out what ``bridge.reconcile`` decided, in its order."""
        for cmd in cmds:
            match cmd:
                case rc.HangupChannel(channel_id, _):
                    await self._quietly(self.ari.delete(f"channels/{channel_id}"))
                case rc.DeleteBridge(bridge_id):
                    await self._quietly(self.ari.delete(f"bridges/{bridge_id}"))
                case rc.RestoreVolunteer(
                    sid, campaign_id, channel_id, bridge_id, endpoint, voter, state, reason, call_id
                ):
                    self.legs[sid] = Leg(sid, campaign_id, channel_id, bridge_id, endpoint)
                    call = d.Call(voter.call_id, voter.campaign_id, voter.contact_id) if voter else None
                    await self.run(
                        self.dialer.restore(
                            sid,
                            campaign_id,
                            now,
                            call,
                            stored_state=state,
                            stored_reason=reason,
                            stored_call_id=call_id,
                        ),
                        now,
                    )
                    log.info(
                        "controller.volunteer_restored", session_id=sid, channel_id=channel_id, voter=voter is not None
                    )
                case rc.PromptAgain(channel_id, caller):
                    self.entries[channel_id] = en.Entry(channel_id, caller=caller, languages=self.callin_languages)
                    await self._entry_step(channel_id, en.Started(), now)
                    log.info("callin.prompt_again_after_restart")
                case rc.EndCall(call_id, contact_id, outcome, release):
                    self.facts.update_call(
                        call_id, ended_at=now, hangup_cause_txt="controller restarted", outcome=outcome
                    )
                    if release:
                        self.facts.release_contact(contact_id, "failed", now)
                case rc.MarkDisconnected(sid):
                    self.facts.update_session(sid, state="disconnected", state_reason="controller_restart")
                case rc.ResetStaleDialing():
                    reset = self.store.reset_stale_dialing()
                    log.info("controller.stale_contacts_reset", count=reset)
                case rc.CallLost(call_id):
                    # Gone while we were not listening (Asterisk restarted): not the voter's doing (bridge.dialer).
                    self._record_call_end(call_id, {"cause": 0, "cause_txt": "lost: Asterisk restarted"}, now)
                    await self._untap(call_id, now)
                    await self.run(self.dialer.handle(d.CallLost(call_id), now), now)
                case rc.LegLost(sid):
                    leg = self.legs.get(sid)
                    if leg is not None:
                        self.facts.update_leg(leg.channel_id, ended_at=now)
                        await self._volunteer_leg_gone(leg, now, pbx_lost=True)
                case rc.EntryLost(channel_id):
                    self.entries.pop(channel_id, None)
                    self.facts.update_leg(channel_id, ended_at=now)
                    log.info("callin.lost_with_asterisk")
                case rc.CaptainLost(coach_id):
                    # Ended already when their caller's leg was lost with it (LegLost, above): then a no-op.
                    coaching = self.coaches.get(coach_id)
                    if coaching is not None and coaching.channel_id:
                        self.facts.update_leg(coaching.channel_id, ended_at=now)
                    await self._coach_step(co.CaptainLeft(coach_id), now)

    # ------------------------------------------------------------------ ARI events
    async def on_event(self, event: Event) -> None:
        kind = event["type"]
        chan = event.get("channel") or {}
        ch_id = chan.get("id", "")
        # One clock for a call's whole timeline: the controller's wall clock, read once as it handles the event.
        # It is the clock the cores' timers are set and fired with (so a timer and an event are ordered as the
        # controller saw them), the one our detector's verdicts (which carry no Asterisk timestamp) and the panel's
        # actions are stamped with, and an epoch time the store can keep. Asterisk's own event timestamps come from
        # another clock (another host's, in production) and are not used for the timeline.
        now = time.time()
        structlog.contextvars.bind_contextvars(channel_id=ch_id or None)
        try:
            if kind == "StasisStart":
                await self._stasis_start(event, ch_id, now)
            elif kind == "ChannelStateChange" and ch_id in self.dialer.calls:
                await self._call_state(ch_id, chan.get("state", ""), now)
            elif kind == "ChannelDtmfReceived":
                await self._dtmf(ch_id, event.get("digit", ""), now)
            elif kind == "ChannelEnteredBridge" and ch_id in self.dialer.calls:
                self.facts.update_call(ch_id, bridged_at=now)
                self.facts.update_leg(ch_id, bridged_at=now)
                log.info("call.bridged", call_id=ch_id, bridge_id=event.get("bridge", {}).get("id"))
                await self.run(self.dialer.handle(d.CallBridged(ch_id), now), now)
            elif kind == "ChannelUserevent" and event.get("eventname") == "pb_voicemail_played":
                self.facts.update_call(ch_id, voicemail_left=1)
            elif kind == "PhonebankAmd":
                await self._detector_event(ch_id, event["event"], now)
            elif kind == "PlaybackFinished" and event["playback"]["id"].startswith("vm-"):
                call_id = event["playback"]["id"][3:]
                self.facts.update_call(call_id, voicemail_left=1)
                log.info("call.voicemail_left", call_id=call_id)
                await self._quietly(self.ari.delete(f"channels/{call_id}"))
            elif kind in ("RecordingFinished", "RecordingFailed"):
                await self._recording_done(event, now)
            elif kind == "ChannelDestroyed":
                await self._destroyed(ch_id, event, now)
        finally:
            structlog.contextvars.unbind_contextvars("channel_id")
            self._rearm.set()

    async def _stasis_start(self, event: Event, ch_id: str, now: float) -> None:
        args = event.get("args") or []
        role = args[0] if args else ""
        if role == "callin":
            self.facts.insert_leg(ch_id, "volunteer", now, name=event["channel"].get("name", ""))
            caller = g.number_of((event["channel"].get("caller") or {}).get("number"))
            self.entries[ch_id] = en.Entry(ch_id, caller=caller, languages=self.callin_languages)
            log.info("callin.answered", caller=mask_phone(caller))
            await self._quietly(self.ari.post(f"channels/{ch_id}/answer"))
            self.facts.update_leg(ch_id, answered_at=now)
            await self._entry_step(ch_id, en.Started(), now)
        elif role == "sipleg":
            await self._sip_leg(ch_id, args[1] if len(args) > 1 else "", event["channel"].get("name", ""), now)
        elif role == "coachleg":
            await self._coach_leg(ch_id, args[1] if len(args) > 1 else "", event["channel"].get("name", ""), now)
        elif role == "outbound" and ch_id in self.dialer.calls:
            await self._amd_verdict(
                ch_id, args[1] if len(args) > 1 else "NOTSURE", args[2] if len(args) > 2 else "", now
            )
        elif role == "outbound-ours" and ch_id in self.dialer.calls:
            await self._tap_for_detector(ch_id, now)
        elif role in ("outbound", "outbound-ours"):
            # Not ours (any more): a leftover from before a restart.
            await self._quietly(self.ari.delete(f"channels/{ch_id}"))

    async def _call_state(self, call_id: str, state: str, now: float) -> None:
        if state in ("Ringing", "Up"):
            self.trunk.ok(self.dialer.calls[call_id].campaign_id)  # the trunk carries calls
        if state == "Ringing":
            self.facts.update_call(call_id, ringing_at=now)
            await self.run(self.dialer.handle(d.CallRinging(call_id), now), now)
        elif state == "Up":
            self.facts.update_call(call_id, answered_at=now)
            self.facts.update_leg(call_id, answered_at=now)
            await self.run(self.dialer.handle(d.CallAnswered(call_id), now), now)

    async def _dtmf(self, ch_id: str, digit: str, now: float) -> None:
        if ch_id in self.entries:
            await self._entry_step(ch_id, en.Digit(digit), now)
            return
        leg = self._leg_by_channel(ch_id)
        if leg and digit == END_CALL_KEY:
            await self.run(self.dialer.handle(d.VolunteerEvent(leg.session_id, vol.EndVoterCall()), now), now)

    async def _destroyed(self, ch_id: str, event: Event, now: float) -> None:
        cause = int(event.get("cause") or 0)
        if ch_id in self._amd_taps:
            await self._untap(ch_id, now)
        if ch_id in self.dialer.calls:
            self._record_call_end(ch_id, event, now)
            await self.run(self.dialer.handle(d.CallEnded(ch_id, cause), now), now)
            return
        self._prompt_playbacks.pop(ch_id, None)
        if ch_id in self.entries:
            entry = self.entries.pop(ch_id)
            self.facts.update_leg(ch_id, ended_at=now, hangup_cause=cause)
            log.info("callin.ended", entry_state=entry.state.value, tries=entry.tries)
            return
        coaching = co.by_channel(self.coaches, ch_id)
        if coaching is not None:
            self.facts.update_leg(ch_id, ended_at=now, hangup_cause=cause)
            await self._coach_step(co.CaptainLeft(coaching.coach_id), now)
            return
        leg = self._leg_by_channel(ch_id)
        if leg:
            self.facts.update_leg(ch_id, ended_at=now, hangup_cause=cause)
            await self._volunteer_leg_gone(leg, now, cause)

    def _record_call_end(self, call_id: str, event: Event, now: float) -> None:
        self.facts.update_call(
            call_id,
            ended_at=now,
            hangup_cause=int(event.get("cause") or 0),
            hangup_cause_txt=event.get("cause_txt", ""),
        )
        self.facts.update_leg(call_id, ended_at=now, hangup_cause=int(event.get("cause") or 0))
        log.info("call.ended", call_id=call_id, cause=event.get("cause"), cause_txt=event.get("cause_txt"))

    async def _volunteer_leg_gone(self, leg: Leg, now: float, cause: int = 0, pbx_lost: bool = False) -> None:
        self.legs.pop(leg.session_id, None)
        await self._coach_step(co.VolunteerGone(leg.session_id), now)
        await self.run(self.dialer.handle(d.VolunteerEvent(leg.session_id, vol.LegGone(cause, pbx_lost)), now), now)
        await self._quietly(self.ari.delete(f"bridges/{leg.bridge_id}"))
        session = self.store.session(leg.session_id)
        if session and session["state"] != "ended":
            self.facts.update_session(leg.session_id, channel_id=None, bridge_id=None)
        log.info("volunteer.leg_gone", session_id=leg.session_id)

    def _leg_by_channel(self, ch_id: str) -> Leg | None:
        return next((leg for leg in self.legs.values() if leg.channel_id == ch_id), None)

    # ------------------------------------------------------------------ call-in
    async def _entry_step(self, ch_id: str, event: en.EntryEvent, now: float) -> None:
        entry = self.entries.get(ch_id)
        if entry is None:
            return
        entry, cmds = en.step(entry, event, now)
        self.entries[ch_id] = entry
        for cmd in cmds:
            match cmd:
                case en.Play(channel_id, media, language):
                    # Named, so the first key can stop it (StopPrompts); ``lang`` picks the sounds' language.
                    playback = f"pbp-{uuid.uuid4().hex[:12]}"
                    self._prompt_playbacks.setdefault(channel_id, []).append(playback)
                    extra: dict[str, Any] = {"lang": language} if language else {}
                    await self._quietly(
                        self.ari.post(
                            f"channels/{channel_id}/play", media=",".join(media), playbackId=playback, **extra
                        )
                    )
                case en.SetLanguage(channel_id, language):
                    await self._set_language(channel_id, language)
                case en.StopPrompts(channel_id):
                    for playback in self._prompt_playbacks.pop(channel_id, []):
                        await self._quietly(self.ari.delete(f"playbacks/{playback}"))
                case en.CheckCode(channel_id, code, caller, submitted_at):
                    await self._check_code(channel_id, code, caller, submitted_at, now)
                case en.StartRecording(channel_id, code):
                    self.entries.pop(channel_id, None)
                    await self._record_message(channel_id, code)
                case en.Join(channel_id, session_id):
                    self.entries.pop(channel_id, None)
                    await self._join(channel_id, session_id, now)
                case en.StartCoaching(channel_id, coach_id):
                    self.entries.pop(channel_id, None)
                    await self._captain_joined(channel_id, coach_id, now)
                case en.Refuse(channel_id, locked, languages):
                    # The entry stays until the channel is gone, so its hangup is recorded on the leg.
                    log.info("callin.refused", locked=locked)
                    if languages:
                        # The dialplan (pb-say) says the goodbye in each of them in turn.
                        await self._quietly(
                            self.ari.post(
                                f"channels/{channel_id}/variable", variable="PB_LANGUAGES", value=",".join(languages)
                            )
                        )
                    await self._quietly(
                        self.ari.post(
                            f"channels/{channel_id}/continue",
                            context="pb-callin",
                            extension="locked" if locked else "goodbye",
                            priority=1,
                        )
                    )

    async def _check_code(self, ch_id: str, code: str, caller: str, submitted_at: float, now: float) -> None:
        """The guard first (it may hold the code back or refuse the number), then the store's facts about the code;
        what they mean for the caller and for the guard is callin.entry's rule (guard_answer, code_checked)."""
        decisions = self._guard(g.Submit(caller, submitted_at), now)
        decision = next(x for x in decisions if isinstance(x, g.Check | g.Hold | g.Locked))
        held = en.guard_answer(decision)
        if held is not None:
            if isinstance(decision, g.Hold):
                log.info(
                    "callin.code_held",
                    caller=mask_phone(caller),
                    reason=decision.reason,
                    wait_s=round(decision.until - now, 1),
                )
            elif isinstance(decision, g.Locked):
                log.warning("callin.locked_number_refused", caller=mask_phone(caller), until=decision.until)
            await self._entry_step(ch_id, held, now)
            return
        session = self.store.live_session_by_code(code)
        sid = int(session["id"]) if session else None
        coaching = co.by_code(self.coaches, code)
        facts = en.CodeFacts(
            sid,
            language=lang.of(session.get("language")) if session else "",
            has_leg=sid is not None and sid in self.legs,
            recording=recordings.pending(self.store, code) is not None,
            coach_id=coaching.coach_id if coaching else None,
        )
        result, learned = en.code_checked(code, caller, facts)
        if isinstance(result, en.Validated):
            log.info("callin.code_checked", valid=result.session_id is not None, session_id=result.session_id)
        else:
            log.info("callin.recording_code", caller=mask_phone(caller))
        self._guard(learned, now)
        await self._entry_step(ch_id, result, now)

    def _guard(self, event: g.GuardEvent, now: float) -> list[g.Decision]:
        before = self.guard
        self.guard, decisions = g.step(self.guard, event, now)
        for decision in decisions:
            match decision:
                case g.LockedOut(number, until, wrong):
                    log.warning("callin.number_locked_out", caller=mask_phone(number), wrong_codes=wrong, until=until)
                case g.Alarm(True, wrong):
                    log.warning("callin.guessing_alarm", wrong_codes=wrong, window_s=self.guard.limits.window_s)
                case g.Alarm(False, wrong):
                    log.info("callin.guessing_alarm_over", wrong_codes=wrong)
        if isinstance(event, g.Wrong):
            n = sum(1 for num, _ in self.guard.wrong if num == event.number)
            log.warning(
                "callin.wrong_code",
                caller=mask_phone(event.number),
                wrong_from_number=n,
                wrong_overall=len(self.guard.wrong),
            )
        if self.guard != before:
            callin_guard.save(self.store, g.to_json(self.guard), now)
        return decisions

    async def _record_message(self, ch_id: str, code: str) -> None:
        """An admin records the effort's voicemail: beep, speak, # (or hang up) to finish."""
        name = f"pb-rec-{code}-{uuid.uuid4().hex[:8]}"
        self._recordings.add(name)
        try:
            await self.ari.post(
                f"channels/{ch_id}/record",
                name=name,
                format="wav",
                maxDurationSeconds=180,
                maxSilenceSeconds=10,
                beep="true",
                terminateOn="#",
                ifExists="overwrite",
            )
        except AriError as exc:
            self._recordings.discard(name)
            log.warning("recording.failed_to_start", error=str(exc))
            await self._quietly(self.ari.delete(f"channels/{ch_id}"))

    async def _recording_done(self, event: Event, now: float) -> None:
        rec = event.get("recording") or {}
        name, target = rec.get("name", ""), rec.get("target_uri", "")
        if not name.startswith("pb-rec-") or not target.startswith("channel:"):
            return
        # The name carries the code (pb-rec-<code>-<random>), the target the admin's channel.
        code, ch_id = name.split("-")[2], target[len("channel:") :]
        if name not in self._recordings:
            # Started before a restart, and the restart prompted the caller for a code over it: not a clean
            # message. The code stays good; the admin records again.
            self.entries.pop(ch_id, None)
            log.warning("recording.interrupted_by_restart")
            extension = "goodbye"
        elif event["type"] == "RecordingFinished" and float(rec.get("duration") or 0) >= 1:
            recordings.complete(self.store, code, f"{self.recordings_dir}/{name}", now)
            log.info("recording.saved", duration_s=rec.get("duration"))
            extension = "saved"
        else:
            log.warning("recording.not_saved", kind=event["type"], cause=rec.get("cause"), duration=rec.get("duration"))
            extension = "goodbye"
        self._recordings.discard(name)
        await self._quietly(
            self.ari.post(f"channels/{ch_id}/continue", context="pb-callin", extension=extension, priority=1)
        )

    async def _join(self, ch_id: str, session_id: int, now: float, kind: str = "phone", endpoint: str = "") -> None:
        session = self.store.session(session_id)
        assert session is not None
        bridge_id = f"{VOLUNTEER_BRIDGE_PREFIX}{session_id}-{uuid.uuid4().hex[:8]}"
        try:
            await self.ari.post(
                "bridges", type="mixing", bridgeId=bridge_id, name=f"{VOLUNTEER_BRIDGE_PREFIX}{session_id}"
            )
            await self.ari.post(f"bridges/{bridge_id}/addChannel", channel=ch_id)
        except AriError as exc:
            log.warning("volunteer.join_failed", session_id=session_id, error=str(exc))
            await self._quietly(self.ari.delete(f"bridges/{bridge_id}"))
            return
        self.legs[session_id] = Leg(session_id, session["campaign_id"], ch_id, bridge_id, endpoint)
        self._prompt_playbacks.pop(ch_id, None)
        if kind != "phone" and (spoken := lang.of(session.get("language"))) != lang.DEFAULT:
            # A call-in's language is set by callin.entry (SetLanguage); a SIP leg's session is known from the start.
            await self._set_language(ch_id, spoken)
        self.facts.update_session(session_id, channel_id=ch_id, bridge_id=bridge_id, joined_at=now)
        self.facts.update_leg(ch_id, session_id=session_id, bridged_at=now)
        await self._quietly(self.ari.post(f"channels/{ch_id}/play", media=en.WELCOME))
        log.info("volunteer.joined", session_id=session_id, campaign_id=session["campaign_id"], bridge_id=bridge_id)
        await self.run(
            self.dialer.handle(
                d.VolunteerJoined(session_id, session["campaign_id"], paused=bool(session["start_on_click"]), leg=kind),
                now,
            ),
            now,
        )

    # ------------------------------------------------------------------ answering-machine detection
    async def _amd_verdict(self, call_id: str, status: str, cause: str, now: float) -> None:
        """app_amd's verdict (via the dialplan), or NOTSURE when our detector's tap failed. The dialer's commands put
        the voter through first and then have the verdict stored (RecordVerdict)."""
        await self.run(self.dialer.handle(d.AmdDecided(call_id, status, cause), now), now)

    async def _tap_for_detector(self, call_id: str, now: float) -> None:
        """Let our detector hear the answered voter: snoop their audio into a bridge with an external-media
        channel that streams it to the controller's RTP socket. The dialer times the detector from now on."""
        assert self.amd_server is not None
        snoop, ext, bridge = f"amds-{call_id}", f"amdx-{call_id}", f"amdb-{call_id}"
        self._amd_taps[call_id] = (snoop, ext, bridge)
        # Run after the tap is up: setting it up must not wait behind new dials.
        listening = self.dialer.handle(d.DetectorListening(call_id), now)
        campaign = self._campaign_rows.get(self._campaign_of(call_id), {})
        bias = float(json.loads(campaign.get("amd_params") or "{}").get("human_bias", 0.0))
        try:
            await self.ari.post(
                f"channels/{call_id}/snoop", spy="in", app=self.ari.app, appArgs="amd-tap", snoopId=snoop
            )
            media = await self.ari.post(
                "channels/externalMedia",
                app=self.ari.app,
                channelId=ext,
                external_host=self.amd_server.address,
                format="slin16",
            )
            self.amd_server.register(
                int(media["channelvars"]["UNICASTRTP_LOCAL_PORT"]), call_id, AmdParams(human_bias=bias)
            )
            await self.ari.post("bridges", type="mixing", bridgeId=bridge, name=bridge)
            # New snoop and external-media channels enter the app a moment after the request returns.
            for _ in range(50):
                try:
                    await self.ari.post(f"bridges/{bridge}/addChannel", channel=f"{snoop},{ext}")
                    break
                except AriConflict:
                    await asyncio.sleep(0.01)
            else:
                raise AriConflict("POST", f"bridges/{bridge}/addChannel", 422, "tap channels never entered the app")
        except (AriError, KeyError, ValueError) as exc:
            # The voter hung up while we set up, or Asterisk refused: never leave a call unjudged; NOTSURE
            # puts it through to a volunteer, the cheaper mistake.
            log.warning("amd.tap_failed", call_id=call_id, error=str(exc))
            await self.run(listening, now)
            await self._untap(call_id, now)
            # 404: the voter is gone already; their hang-up settles the call.
            if call_id in self.dialer.calls and not isinstance(exc, AriNotFound):
                await self._amd_verdict(call_id, "NOTSURE", "TAP-FAILED", now)
            return
        await self.run(listening, now)

    def _on_detector_event(self, call_id: str, event: AmdEvent) -> None:
        """From the RTP socket: queue the verdict behind the call's own ARI events."""
        self.ari.inject({"type": "PhonebankAmd", "channel": {"id": call_id}, "event": event})

    async def _detector_event(self, call_id: str, event: AmdEvent, now: float) -> None:
        """What it means (a verdict, a late correction, a voicemail's cue) is the dialer's to say."""
        cause = f"OURS-{event.reason}-{event.at_ms}"
        await self.run(self.dialer.handle(d.DetectorHeard(call_id, event.kind, cause), now), now)

    async def _untap(self, call_id: str, now: float) -> None:
        tap = self._amd_taps.pop(call_id, None)
        if tap is not None:
            # The dialer stops timing a detector that no longer listens.
            await self.run(self.dialer.handle(d.DetectorDone(call_id), now), now)
        if self.amd_server is not None:
            self.amd_server.unregister(call_id)
        if tap is None:
            return
        snoop, ext, bridge = tap
        for path in (f"channels/{snoop}", f"channels/{ext}", f"bridges/{bridge}"):
            with contextlib.suppress(AriError):
                await self.ari.delete(path)

    # ------------------------------------------------------------------ per-session SIP accounts
    def _session_facts(self, session_id: int) -> sa.SessionFacts | None:
        s = self.store.session(session_id)
        if s is None:
            return None
        user = u.user_by_id(self.store, s["user_id"]) if s.get("user_id") else None
        return sa.SessionFacts(session_id, s["status"] == "open", (user or {}).get("expires_at"))

    async def issue_sip_account(self, session_id: int, kind: str) -> tuple[sa.Account, str]:
        """A fresh account for the session (the old one, if any, is revoked). Raises sa.Refused or AriError."""
        now = time.time()
        self.sip_accounts, cmds = sa.issue(
            self.sip_accounts, self._session_facts(session_id), kind, now, sa.new_username(), sa.new_password()
        )
        await self._sip_run(cmds)
        create = next(cmd for cmd in cmds if isinstance(cmd, sa.CreateAccount))
        return create.account, create.password

    async def call_softphone(self, session_id: int) -> None:
        """Ring the session's registered softphone; when it answers it joins like a call from it. Raises
        sa.Refused (no account, already connected, not registered)."""
        acc = sa.call_back(
            self.sip_accounts, self._session_facts(session_id), time.time(), has_leg=session_id in self.legs
        )
        try:
            await self.ari.post(
                "channels",
                endpoint=f"PJSIP/{acc.username}",
                app=self.ari.app,
                appArgs=f"sipleg,{acc.username}",
                timeout=30,
                callerId="Phone bank <join>",
            )
        except AriError as exc:
            log.info("sip.call_back_failed", session_id=session_id, error=str(exc))
            raise sa.Refused(
                409, "your softphone is not registered: check its account settings, then try again"
            ) from exc
        log.info("sip.calling_softphone", session_id=session_id)

    async def revoke_sip_accounts(self, session_id: int, reason: str) -> None:
        self.sip_accounts, cmds = sa.revoke_session(self.sip_accounts, session_id, reason)
        await self._sip_run(cmds)

    async def sweep_sip_accounts(self, now: float) -> None:
        if not self.sip_accounts:
            return
        ids = {acc.session_id for acc in self.sip_accounts.values()}
        facts = {sid: f for sid in ids if (f := self._session_facts(sid)) is not None}
        self.sip_accounts, cmds = sa.sweep(self.sip_accounts, facts, now)
        await self._sip_run(cmds)

    async def _sip_run(self, cmds: list[sa.Command]) -> None:
        base = "asterisk/config/dynamic/res_pjsip"
        for cmd in cmds:
            match cmd:
                case sa.CreateAccount(account, _) | sa.PushAgain(account):
                    name = account.username
                    again = isinstance(cmd, sa.PushAgain)
                    try:
                        # The endpoint last: until it exists nothing can authenticate as it.
                        await self.ari.put(f"{base}/auth/{name}", body=_fields(sa.auth_fields(account)))
                        await self.ari.put(f"{base}/aor/{name}", body=_fields(sa.aor_fields()))
                        await self.ari.put(f"{base}/endpoint/{name}", body=_fields(sa.endpoint_fields(account)))
                    except AriError as exc:
                        self.sip_accounts.pop(name, None)
                        await self._sip_run([sa.DeleteAccount(name, "create_failed")])
                        if not again:
                            raise
                        # Its device fails to register from now on: its volunteer fetches a new login.
                        log.warning("sip.account_push_failed", session_id=account.session_id, error=str(exc))
                        continue
                    log.info(
                        "sip.account_pushed_again" if again else "sip.account_created",
                        session_id=account.session_id,
                        kind=account.kind.value,
                        expires_at=int(account.expires_at),
                    )
                case sa.DeleteAccount(name, reason):
                    # The endpoint first: from then on nothing can register or call as it.
                    for kind in ("endpoint", "aor", "auth"):
                        with contextlib.suppress(AriError):
                            await self.ari.delete(f"{base}/{kind}/{name}")
                    leg = next((lg for lg in self.legs.values() if lg.endpoint == name), None)
                    if leg is not None and reason in ("expired", "login_expired"):
                        await self._quietly(self.ari.delete(f"channels/{leg.channel_id}"))
                    log.info("sip.account_deleted", reason=reason)

    async def _restore_sip_accounts(self) -> None:
        """After a controller restart the accounts are still in Asterisk: learn them back from the variables their
        endpoints carry; the next sweep revokes those whose session is over."""
        try:
            endpoints = await self.ari.get("endpoints/PJSIP")
        except AriNotFound:
            return  # Asterisk says 404 when there is no PJSIP endpoint at all
        except AriError as exc:
            log.warning("sip.restore_failed", error=str(exc))
            return
        for ep in endpoints:
            name = ep.get("resource", "")
            if not name.startswith(sa.PREFIX) or name in self.sip_accounts:
                continue
            try:
                fields = await self.ari.get(f"asterisk/config/dynamic/res_pjsip/endpoint/{name}")
            except AriError:
                continue
            try:
                auth = await self.ari.get(f"asterisk/config/dynamic/res_pjsip/auth/{name}")
            except AriError:
                auth = []
            acc = sa.restored(
                name, {f["attribute"]: f["value"] for f in fields}, {f["attribute"]: f["value"] for f in auth}
            )
            if acc is None:
                await self._sip_run([sa.DeleteAccount(name, "unreadable")])
            else:
                self.sip_accounts[name] = acc
        log.info("sip.accounts_restored", count=len(self.sip_accounts))

    async def _push_lost_sip_accounts(self, now: float) -> None:
        """On a reconnect: the accounts Asterisk forgot (it restarted) are pushed again if still valid (sa.lost)."""
        if not self.sip_accounts:
            return
        try:
            present = {ep.get("resource", "") for ep in await self.ari.get("endpoints/PJSIP")}
        except AriNotFound:
            present = set()  # no PJSIP endpoint at all
        except AriError as exc:
            log.warning("sip.push_again_failed", error=str(exc))
            return
        ids = {acc.session_id for acc in self.sip_accounts.values()}
        facts = {sid: f for sid in ids if (f := self._session_facts(sid)) is not None}
        self.sip_accounts, cmds = sa.lost(self.sip_accounts, present, facts, now)
        await self._sip_run(cmds)

    def _start_sip_guard(self) -> None:
        """Bans do not outlive the controller that made them; old log lines are not counted again."""
        if self.security_log is not None:
            self._security_log_pos = self.security_log.stat().st_size if self.security_log.exists() else 0
        if self.guard_conf is not None and "deny" in (self.guard_conf.read_text() if self.guard_conf.exists() else ""):
            self.guard_conf.write_text(sg.acl_config(()))
            self._tasks.append(asyncio.create_task(self._reload_pjsip()))

    async def _watch_security_log(self, now: float) -> None:
        events: list[sg.GuardEvent] = []
        if self.security_log is not None and self.security_log.exists():
            size = self.security_log.stat().st_size
            if size < self._security_log_pos:  # rotated
                self._security_log_pos = 0
            if size > self._security_log_pos:
                with self.security_log.open("rb") as f:
                    f.seek(self._security_log_pos)
                    chunk = f.read(size - self._security_log_pos)
                # Only whole lines; a line Asterisk is still writing waits for the next tick.
                end = chunk.rfind(b"\n") + 1
                self._security_log_pos += end
                for line in chunk[:end].decode("utf-8", "replace").splitlines():
                    failure = sg.parse_line(line)
                    if failure is not None:
                        events.append(failure)
        events.append(sg.Tick())
        for event in events:
            self.sip_guard, changes = sg.step(self.sip_guard, event, now, self.sip_accounts.keys())
            for change in changes:
                if change.added:
                    # An address, not a person: fine to log (it is what ops block upstream).
                    log.warning("sip.address_banned", address=change.added, ban_s=self.sip_guard.limits.ban_s)
                else:
                    log.info("sip.bans_changed", banned=len(change.addresses))
                if self.guard_conf is not None:
                    self.guard_conf.write_text(sg.acl_config(change.addresses))
                    await self._reload_pjsip()

    async def _reload_pjsip(self) -> None:
        """res_pjsip re-reads pjsip.conf (and the ban list in it); the accounts in memory stay."""
        try:
            await self.ari.put("asterisk/modules/res_pjsip.so")
        except AriError as exc:
            log.warning("sip.guard_reload_failed", error=str(exc))

    async def _sip_leg(self, ch_id: str, endpoint: str, channel_name: str, now: float) -> None:
        """A call from a per-session account: into that session's own bridge, or hung up. Asterisk authenticated
        the endpoint; the channel's own name must agree with what the dialplan passed."""
        acc = self.sip_accounts.get(endpoint)
        facts = self._session_facts(acc.session_id) if acc else None
        decision, session_id = sa.admit(
            self.sip_accounts, endpoint, facts, now, has_leg=acc is not None and acc.session_id in self.legs
        )
        if sa.channel_endpoint(channel_name) != endpoint:
            decision = sa.Join.REFUSE
        self.facts.insert_leg(ch_id, "volunteer", now, name=channel_name)
        if decision is sa.Join.REFUSE or session_id is None or acc is None:
            log.warning("sip.leg_refused", known=acc is not None)
            self.facts.update_leg(ch_id, ended_at=now)
            await self._quietly(self.ari.delete(f"channels/{ch_id}"))
            return
        await self._quietly(self.ari.post(f"channels/{ch_id}/answer"))
        self.facts.update_leg(ch_id, answered_at=now)
        if decision is sa.Join.JOIN:
            await self._join(ch_id, session_id, now, kind=acc.kind.value, endpoint=endpoint)
        else:
            await self._replace_leg(ch_id, session_id, acc, now)

    async def _replace_leg(self, ch_id: str, session_id: int, acc: sa.Account, now: float) -> None:
        """The session's new leg takes the old one's place in the same bridge, voter and all."""
        old = self.legs[session_id]
        try:
            await self.ari.post(f"bridges/{old.bridge_id}/addChannel", channel=ch_id)
        except AriError as exc:
            log.warning("volunteer.replace_failed", session_id=session_id, error=str(exc))
            await self._quietly(self.ari.delete(f"channels/{ch_id}"))
            return
        self.legs[session_id] = Leg(session_id, old.campaign_id, ch_id, old.bridge_id, acc.username)
        session = self.store.session(session_id) or {}
        if (spoken := lang.of(session.get("language"))) != lang.DEFAULT:
            # As _join's: the old leg's language went with it; the beeps and hold messages on this one are its own.
            await self._set_language(ch_id, spoken)
        self.facts.update_session(session_id, channel_id=ch_id)
        self.facts.update_leg(ch_id, session_id=session_id, bridged_at=now)
        self.facts.update_leg(old.channel_id, ended_at=now)
        await self.run(self.dialer.handle(d.VolunteerEvent(session_id, vol.LegReplaced(acc.kind.value)), now), now)
        await self._quietly(self.ari.delete(f"channels/{old.channel_id}"))
        await self._coach_step(co.VolunteerLegReplaced(session_id), now)
        log.info("volunteer.leg_replaced", session_id=session_id, kind=acc.kind.value)
        self._notify_session(session_id)

    # ------------------------------------------------------------------ API entry points
    async def volunteer_action(self, session_id: int, action: str) -> None:
        events: dict[str, vol.VEvent] = {
            "hangup": vol.EndVoterCall(),
            "pause": vol.Pause(),
            "resume": vol.Resume(),
            "stop": vol.Stop(),
            "disposed": vol.Disposed(),
        }
        now = time.time()
        if action == "stop" and session_id not in self.dialer.volunteers:
            self.facts.update_session(session_id, status="ended", state="ended", ended_at=now)
            await self.revoke_sip_accounts(session_id, "session_ended")
            leg = self.legs.pop(session_id, None)
            if leg:
                await self._quietly(self.ari.delete(f"channels/{leg.channel_id}"))
            self._notify_session(session_id)
            return
        await self.run(self.dialer.handle(d.VolunteerEvent(session_id, events[action]), now), now)

    # ------------------------------------------------------------------ captains coaching callers
    async def coach(
        self, user_id: int, session_id: int, mode: co.Mode, leg: co.LegKind = co.LegKind.PHONE
    ) -> dict[str, Any]:
        """A captain asks to coach a caller: a one-off code to call in with (``leg`` phone), or a SIP account made
        for this coaching alone (webrtc, softphone: ``account`` + ``password``), or why not (``refused``)."""
        if session_id not in self.dialer.volunteers or session_id not in self.legs:
            return {"refused": "caller_not_on_line"}
        coach_id = uuid.uuid4().hex[:12]
        code = account = password = ""
        if leg is co.LegKind.PHONE:
            code = new_code()
            # Unlike any code a caller could key now: a session's or a recording's would be taken first.
            while (
                self.store.live_session_by_code(code)
                or recordings.pending(self.store, code)
                or co.by_code(self.coaches, code)
            ):
                code = new_code()
        else:
            account, password = sa.new_coach_username(), sa.new_password()
        refused = await self._coach_step(
            co.Requested(coach_id, code, user_id, session_id, mode, leg, account), time.time(), password=password
        )
        if refused:
            return {"refused": refused}
        coaching = self.coaches.get(coach_id)
        if coaching is None:
            # Ended while its commands ran (another request of the captain's, the caller leaving, the captain
            # dismissed): its account, if any, is deleted already (co.AccountPushed); a code would join nothing.
            log.info("coach.ended_before_it_started", coach_id=coach_id, user_id=user_id)
            return {"refused": "coaching_gone"}
        log.info(
            "coach.requested", coach_id=coach_id, user_id=user_id, session_id=session_id, mode=mode.value, leg=leg.value
        )
        got: dict[str, Any] = {"coach_id": coach_id, "mode": mode.value, "session_id": session_id, "leg": leg.value}
        if account:
            return {**got, "account": account, "password": password, "expires_at": coaching.expires_at}
        return {**got, "code": code}

    async def coach_mode(self, user_id: int, mode: co.Mode | None) -> bool:
        """The captain's own coaching changes mode, or ends (``None``); False: they coach nobody."""
        coaching = co.of_captain(self.coaches, user_id)
        if coaching is None:
            return False
        event: co.Event = co.CaptainLeft(coaching.coach_id) if mode is None else co.ModeChanged(coaching.coach_id, mode)
        await self._coach_step(event, time.time())
        return True

    async def end_coaching_of(self, user_id: int, reason: str) -> bool:
        """The captain may no longer coach (``reason``: role_changed, logged_out, or a store.users.coach_standing
        reason): their coaching ends now, its account revoked. False: they coach nobody."""
        if co.of_captain(self.coaches, user_id) is None:
            return False
        log.info("coach.captain_dismissed", user_id=user_id, reason=reason)
        await self._coach_step(co.CaptainDismissed(user_id), time.time())
        return True

    async def recheck_coaches(self) -> None:
        """Every live coaching's captain must still be allowed to coach its caller (store.users.coach_standing):
        the panel calls this after changing roles or banning; the timers call it every campaign refresh, for what
        changes elsewhere (a user disabled or deleted by ops, a login expiring)."""
        for coaching in list(self.coaches.values()):
            if coaching.user_id == co.TOKEN_USER:
                continue  # the API token is no stored user: it coaches while the panel holds it
            session = self.store.session(coaching.session_id)
            why = u.coach_standing(self.store, coaching.user_id, session["campaign_id"] if session else None)
            if why:
                await self.end_coaching_of(coaching.user_id, why)

    async def _coach_leg(self, ch_id: str, endpoint: str, channel_name: str, now: float) -> None:
        """A call from a captain's coaching account: into that coaching's holding bridge, or hung up. Asterisk
        authenticated the endpoint; the channel's own name must agree with what the dialplan passed."""
        coaching = co.by_account(self.coaches, endpoint)
        self.facts.insert_leg(ch_id, "volunteer", now, name=channel_name)
        if coaching is None or sa.channel_endpoint(channel_name) != endpoint:
            log.warning("coach.leg_refused", known=coaching is not None)
            self.facts.update_leg(ch_id, ended_at=now)
            await self._quietly(self.ari.delete(f"channels/{ch_id}"))
            return
        await self._quietly(self.ari.post(f"channels/{ch_id}/answer"))
        self.facts.update_leg(ch_id, answered_at=now)
        await self._captain_joined(ch_id, coaching.coach_id, now)

    async def _captain_joined(self, ch_id: str, coach_id: str, now: float) -> None:
        """The captain's leg waits in its own holding bridge (like a volunteer's), then goes on the caller's audio."""
        bridge = f"{rc.COACH_BRIDGE_PREFIX}{coach_id}"
        try:
            await self.ari.post("bridges", type="mixing", bridgeId=bridge, name=bridge)
            await self.ari.post(f"bridges/{bridge}/addChannel", channel=ch_id)
        except AriError as exc:
            log.warning("coach.join_failed", coach_id=coach_id, error=str(exc))
            await self._quietly(self.ari.delete(f"channels/{ch_id}"))
            return
        self.facts.update_leg(ch_id, bridged_at=now)
        log.info("coach.joined", coach_id=coach_id)
        await self._coach_step(co.CaptainJoined(coach_id, ch_id), now)
        coaching = self.coaches.get(coach_id)
        if coaching is None or coaching.channel_id != ch_id:
            # The coaching ended while the leg was being bridged (other channels' events, the panel and the timers
            # run during the awaits above): its Release found no leg to hang up, and nothing tracks this one now.
            log.info("coach.ended_while_joining", coach_id=coach_id)
            self.facts.update_leg(ch_id, ended_at=now)
            await self._quietly(self.ari.delete(f"channels/{ch_id}"))
            await self._quietly(self.ari.delete(f"bridges/{bridge}"))

    async def _coach_step(self, event: co.Event, now: float, password: str = "") -> str:
        """Run the coaching core and carry out its commands; returns a refusal's reason, else "". ``password``:
        the new account's, when ``event`` may open one (a secret: it is not part of the event, never logged)."""
        self.coaches, cmds = co.step(self.coaches, event, now)
        refused = ""
        for cmd in cmds:
            try:
                match cmd:
                    case co.OpenAccount(coach_id, username, leg, expires_at):
                        sid = self.coaches[coach_id].session_id if coach_id in self.coaches else 0
                        account = sa.Account(
                            username,
                            sid,
                            sa.Kind(leg.value),
                            expires_at,
                            captain=True,
                            md5_cred=sa.md5_cred(username, password),
                        )
                        try:
                            await self._sip_run([sa.CreateAccount(account, password)])
                        except AriError:
                            refused = "account_failed"
                            await self._coach_step(co.CaptainLeft(coach_id), now)
                            # What follows is this request's Coached(mode): it would mark the caller coached again
                            # after CaptainLeft's Coached("") cleared it.
                            break
                        # The pushes awaited: the coaching may have ended meanwhile (the core says, and deletes
                        # the account again: its revocation ran before the endpoint existed).
                        if refused := await self._coach_step(co.AccountPushed(coach_id, username), now):
                            break
                    case co.RevokeAccount(coach_id, username):
                        await self._sip_run([sa.DeleteAccount(username, "coaching_ended")])
                    case co.Attach(coach_id, channel_id, session_id, mode):
                        await self._coach_attach(coach_id, channel_id, session_id, mode)
                    case co.Release(coach_id, channel_id):
                        if snoop := self._coach_snoops.pop(coach_id, None):
                            await self._quietly(self.ari.delete(f"channels/{snoop}"))
                        if channel_id:
                            await self._quietly(self.ari.delete(f"channels/{channel_id}"))
                        await self._quietly(self.ari.delete(f"bridges/{rc.COACH_BRIDGE_PREFIX}{coach_id}"))
                        log.info("coach.ended", coach_id=coach_id)
                    case co.Coached(session_id, _):
                        # As the coachings stand now: this batch's awaits let other steps run, and their newer
                        # mark must not be undone by this older one.
                        mark = co.mark(self.coaches, session_id)
                        await self.run(self.dialer.handle(d.VolunteerEvent(session_id, vol.Coached(mark)), now), now)
                        self._notify_session(session_id)
                    case co.Refused(coach_id, reason):
                        refused = reason
            except AriError as exc:
                log.warning("coach.command_failed", command=type(cmd).__name__, error=str(exc))
        self._rearm.set()
        return refused

    async def _coach_attach(self, coach_id: str, channel_id: str, session_id: int, mode: co.Mode) -> None:
        """Listen: a snoop on the volunteer's leg hearing both directions (the volunteer's own voice and what
        reaches them: the voter) joins the captain's holding bridge. Whisper: the same snoop also speaks into
        the volunteer's ear (whisper=out), and only theirs. Barge: the captain's leg moves into the volunteer's
        own bridge, where all three talk. The voter's channel is never touched."""
        leg = self.legs.get(session_id)
        holding = f"{rc.COACH_BRIDGE_PREFIX}{coach_id}"
        if old := self._coach_snoops.pop(coach_id, None):
            await self._quietly(self.ari.delete(f"channels/{old}"))
        if leg is None:
            return
        if mode is co.Mode.BARGE:
            await self._quietly(self.ari.post(f"bridges/{holding}/removeChannel", channel=channel_id))
            await self.ari.post(f"bridges/{leg.bridge_id}/addChannel", channel=channel_id)
            log.info("coach.attached", coach_id=coach_id, session_id=session_id, mode=mode.value)
            return
        # Back from a barge: out of the volunteer's bridge, into the holding one (harmless when already there).
        with contextlib.suppress(AriError):
            await self.ari.post(f"bridges/{leg.bridge_id}/removeChannel", channel=channel_id)
        with contextlib.suppress(AriError):
            await self.ari.post(f"bridges/{holding}/addChannel", channel=channel_id)
        snoop = f"{rc.COACH_SNOOP_PREFIX}{coach_id}-{uuid.uuid4().hex[:6]}"
        whisper = "out" if mode is co.Mode.WHISPER else "none"
        await self.ari.post(
            f"channels/{leg.channel_id}/snoop",
            spy="both",
            whisper=whisper,
            app=self.ari.app,
            appArgs="coach-snoop",
            snoopId=snoop,
        )
        self._coach_snoops[coach_id] = snoop
        # A new snoop channel enters the app a moment after the request returns (as the detector's tap).
        for _ in range(50):
            try:
                await self.ari.post(f"bridges/{holding}/addChannel", channel=snoop)
                break
            except AriConflict:
                await asyncio.sleep(0.01)
        log.info("coach.attached", coach_id=coach_id, session_id=session_id, mode=mode.value)

    def volunteer_state(self, session_id: int) -> vol.Volunteer | None:
        return self.dialer.volunteers.get(session_id)

    def snapshot(self) -> Snapshot:
        """The live state the panel reads, copied now (it never reaches into the dialer)."""
        return Snapshot(
            volunteers=MappingProxyType(dict(self.dialer.volunteers)),
            calls=tuple(self.dialer.calls.values()),
            legs=frozenset(self.legs),
            callin_guard=self.guard,
        )

    # ------------------------------------------------------------------ commands
    async def run(self, cmds: list[c.Command], now: float | None = None) -> None:
        """Carry out the cores' commands; ``now``: the clock reading of the event they answer (see on_event)."""
        at = time.time() if now is None else now
        for cmd in cmds:
            try:
                await self._execute(cmd, at)
            except AriError as exc:
                log.warning("controller.command_failed", command=type(cmd).__name__, error=str(exc))
            except sqlite3.OperationalError as exc:
                # A write that needs its answer now (a claim of contacts) refused: the store is down (the
                # dialer is held from here on); facts are queued by self.facts and never end up here.
                self.facts.refused(exc, type(cmd).__name__)
        self._rearm.set()

    async def _execute(self, cmd: c.Command, now: float) -> None:
        match cmd:
            case c.NeedContacts(campaign_id, _):
                # Count afresh and place every claimed call with the dialer before the first await: a
                # request computed earlier may be stale, and another task could otherwise dial the same
                # idle volunteers again while we wait for Asterisk.
                placed: list[c.Command] = []
                wanted = self.dialer.lines_wanted(campaign_id, now)
                for contact in self.facts.claim_contacts(campaign_id, wanted, now):
                    call_id = f"{CALL_PREFIX}{uuid.uuid4().hex[:20]}"
                    self.facts.insert_call(call_id, campaign_id, contact["id"], contact["attempts"], call_id, now)
                    placed += self.dialer.handle(d.CallPlaced(call_id, campaign_id, contact["id"]), now)
                await self.run(placed, now)
            case c.Originate(call_id, campaign_id, contact_id):
                await self._originate(call_id, campaign_id, contact_id, now)
            case c.Connect(call_id, session_id):
                await self._connect(call_id, session_id, now)
            case c.PullBack(call_id, session_id):
                leg = self.legs.get(session_id)
                if leg:
                    await self._quietly(self.ari.post(f"bridges/{leg.bridge_id}/removeChannel", channel=call_id))
            case c.PlayAbandonMessage(call_id):
                media, language = self._voter_message(call_id, "abandon")
                # The channel's language too: with no message at all the dialplan's generic prompt is said in it.
                await self._to_dialplan(call_id, "abandon", {"PB_MEDIA": media, "CHANNEL(language)": language})
            case c.DropVoicemail(call_id, on_cue):
                # on_cue: the message starts on our detector's beep (or end of greeting), PlayVoicemail.
                if not on_cue or call_id not in self._amd_taps:
                    media, language = self._voter_message(call_id, "voicemail")
                    await self._to_dialplan(call_id, "vmdrop", {"PB_MEDIA": media, "CHANNEL(language)": language})
            case c.PlayVoicemail(call_id):
                media, _ = self._voter_message(call_id, "voicemail")
                await self._quietly(
                    self.ari.post(f"channels/{call_id}/play", media=f"sound:{media}", playbackId=f"vm-{call_id}")
                )
            case c.RecordVerdict(call_id, status, cause, late):
                if late:
                    # A correction: when the call was first decided stays as it was.
                    self.facts.update_call(call_id, amd_status=status, amd_cause=cause)
                else:
                    live = self.dialer.calls.get(call_id)
                    self.amd_stats.record(status, live.answered_at if live else None, now)
                    self.facts.update_call(call_id, amd_status=status, amd_cause=cause, amd_decided_at=now)
                log.info("call.amd", call_id=call_id, amd=status, amd_cause=cause, late=late)
            case c.StopListening(call_id):
                await self._untap(call_id, now)
            case c.HangupCall(call_id, reason):
                log.info("call.hangup", call_id=call_id, reason=reason)
                await self._quietly(self.ari.delete(f"channels/{call_id}"))
            case c.HangupVolunteer(session_id):
                leg = self.legs.pop(session_id, None)
                self.facts.update_session(session_id, status="ended", ended_at=now)
                await self.revoke_sip_accounts(session_id, "session_ended")
                if leg:
                    await self._quietly(self.ari.delete(f"channels/{leg.channel_id}"))
                    await self._quietly(self.ari.delete(f"bridges/{leg.bridge_id}"))
            case c.RecordOutcome(call_id, outcome, abandoned):
                call = self.store.call(call_id)
                if call is None:
                    return
                values: dict[str, Any] = {"outcome": outcome}
                if abandoned:
                    values["abandoned"] = 1
                self.facts.update_call(call_id, **values)
                self.facts.release_contact(call["contact_id"], outcome, now)
                if outcome in ("congestion", "failed"):
                    self.trunk.failed(call["campaign_id"], f"{outcome}: {call.get('hangup_cause_txt') or 'no cause'}")
                log.info("call.outcome", call_id=call_id, outcome=outcome, campaign_id=call["campaign_id"])
                self._notify(None, call["campaign_id"])
            case c.VolunteerChanged(session_id, state, reason, call_id):
                values = {"state": state, "state_reason": reason, "current_call_id": call_id}
                if state == "talking" and call_id:
                    self.facts.update_call(call_id, session_id=session_id)
                self.facts.update_session(session_id, **values)
                log.info("volunteer.state", session_id=session_id, state=state, reason=reason, call_id=call_id)
                self._notify_session(session_id)
            case c.Log(event, fields, level):
                getattr(log, level, log.info)(event, **fields)

    def _voter_message(self, call_id: str, kind: str) -> tuple[str, str]:
        """The effort's abandon message or voicemail (``kind``) in the voter's language (their list's language
        column, else the effort's: bridge.language), and that language."""
        campaign = self._campaign_rows.get(self._campaign_of(call_id), {})
        call = self.dialer.calls.get(call_id)
        contact = self.store.contact(call.contact_id) if call else None
        language = lang.voter_language((contact or {}).get("extra"), lang.effort_language(campaign))
        return lang.message_media(campaign, kind, language), language

    async def _set_language(self, channel_id: str, language: str) -> None:
        """Every sound played to the channel from now on is looked up in ``sounds/<language>/`` first."""
        await self._quietly(
            self.ari.post(f"channels/{channel_id}/variable", variable="CHANNEL(language)", value=language)
        )

    def _campaign_of(self, call_id: str) -> int:
        call = self.dialer.calls.get(call_id)
        if call:
            return call.campaign_id
        row = self.store.call(call_id)
        return int(row["campaign_id"]) if row else 0

    async def _originate(self, call_id: str, campaign_id: int, contact_id: int, now: float) -> None:
        campaign = self._campaign_rows.get(campaign_id) or self.store.campaign(campaign_id) or {}
        contact = self.store.contact(contact_id)
        assert contact is not None
        e164 = contact["phone"]
        params = {**AMD_DEFAULTS, **_amd_params(campaign.get("amd_params"))}
        amd = ",".join(str(int(params[k])) for k in AMD_ARGS)
        endpoint = self.dial_template.format(number=e164.lstrip("+"), e164=e164)
        log.info(
            "call.originate", call_id=call_id, campaign_id=campaign_id, contact_id=contact_id, number=mask_phone(e164)
        )
        mode = campaign.get("amd_mode", "ours")
        if mode == "ours":
            # Straight into the app on answer: the controller taps the audio for its own detector.
            route: dict[str, Any] = {"app": self.ari.app, "appArgs": "outbound-ours"}
        else:
            route = {"context": "pb-outbound", "extension": "amd" if mode == "app_amd" else "noamd", "priority": 1}
        try:
            await self.ari.post(
                f"channels/{call_id}",
                endpoint=endpoint,
                **route,
                timeout=int(campaign.get("ring_timeout_s", 25)),
                callerId=campaign.get("caller_id") or None,
                body={"variables": {"PB_CALL": call_id, "PB_AMD": amd}},
            )
        except AriError as exc:
            log.warning("call.originate_failed", call_id=call_id, error=str(exc))
            self.trunk.failed(campaign_id, f"Asterisk refused the dial: {exc}")
            self.facts.update_call(call_id, ended_at=now, hangup_cause_txt=str(exc)[:200])
            await self.run(self.dialer.handle(d.CallEnded(call_id, 0), now), now)

    async def _connect(self, call_id: str, session_id: int, now: float) -> None:
        leg = self.legs.get(session_id)
        if leg is None:
            await self.run(self.dialer.handle(d.ConnectFailed(call_id), now), now)
            return
        add = self.ari.post(f"bridges/{leg.bridge_id}/addChannel", channel=call_id)
        beep = self.ari.post(f"channels/{leg.channel_id}/play", media="sound:beep")
        added: Any = (await asyncio.gather(add, beep, return_exceptions=True))[0]  # a lost beep changes nothing
        # ARI answers addChannel with 404 only for a missing bridge (a missing channel is 400/422): the
        # volunteer's leg is gone, so the voter goes to someone else.
        if isinstance(added, AriNotFound):
            await self.run(self.dialer.handle(d.ConnectFailed(call_id), now), now)
        elif isinstance(added, Exception):
            log.warning("call.connect_failed", call_id=call_id, session_id=session_id, error=str(added))
        else:
            log.info("call.connecting", call_id=call_id, session_id=session_id)
        self.facts.update_leg(call_id, session_id=session_id)

    async def _to_dialplan(self, call_id: str, extension: str, variables: dict[str, str]) -> None:
        for name, value in variables.items():
            await self.ari.post(f"channels/{call_id}/variable", variable=name, value=value)
        await self.ari.post(f"channels/{call_id}/continue", context="pb-outbound", extension=extension, priority=1)

    async def _quietly(self, aw: Awaitable[Any]) -> Any:
        """For requests racing a hangup: a 404 only means the channel or bridge is already gone."""
        try:
            return await aw
        except AriNotFound:
            return None


def _fields(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """ARI push configuration's body."""
    return {"fields": [{"attribute": k, "value": v} for k, v in pairs]}


def _amd_params(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return {k: v for k, v in raw.items() if k in AMD_DEFAULTS}
    if isinstance(raw, str) and raw:
        return _amd_params(json.loads(raw))
    return {}
