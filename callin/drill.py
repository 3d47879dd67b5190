"""Drills: simulated volunteers calling in over Local channels, recording what they hear.

The drill is a real call through Asterisk's core: ``Local/callin@pb-callin`` reaches the call-in exactly
as a phone would; the other half runs ``pb-drill``, which keys in the code and records what arrives.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from bridge.ari import AriClient
from phonebank.asterisk import AsteriskRuntime


@dataclass(frozen=True)
class Drill:
    drill_id: str
    channel_id: str
    heard_wav: Path  # what the volunteer heard (host path)
    both_wav: Path  # both directions mixed


async def volunteer(
    ari: AriClient,
    rt: AsteriskRuntime,
    code: str,
    *,
    stay_s: int = 3600,
    delay_s: float = 1.5,
    drill_id: str | None = None,
    later_keys: str = "",
    later_keys_after_s: float = 0.0,
    say: str = "",
    caller: str = "",
) -> Drill:
    """Place a simulated volunteer call-in that keys ``code`` then stays on the line for ``stay_s``
    (pressing ``later_keys`` ``later_keys_after_s`` seconds after the code, if given, after playing the
    recording ``say`` — an Asterisk path without extension — if given). ``caller``: the calling number the
    call-in sees (default: one made from the drill id)."""
    drill_id = drill_id or f"drill-{uuid.uuid4().hex[:10]}"
    heard = f"{rt.rec_dir}/{drill_id}-heard.wav"
    both = f"{rt.rec_dir}/{drill_id}-both.wav"
    channel_id = f"{drill_id}-leg"
    await ari.post(
        f"channels/{channel_id}",
        endpoint="Local/callin@pb-callin/n",
        context="pb-drill",
        extension="volunteer",
        priority=1,
        timeout=30,
        callerId=f'"Drill" <{caller or drill_id[-6:]}>',
        body={
            "variables": {
                "PB_DRILL_CODE": code,
                "PB_DRILL_DELAY": str(delay_s),
                "PB_DRILL_STAY": str(stay_s),
                "PB_DRILL_HEARD": heard,
                "PB_DRILL_BOTH": both,
                "PB_DRILL_KEYS": later_keys,
                "PB_DRILL_KEYS_AT": str(later_keys_after_s),
                "PB_DRILL_SAY": say,
            }
        },
    )
    return Drill(drill_id, channel_id, rt.host_path(heard), rt.host_path(both))
