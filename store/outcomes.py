"""One vocabulary for how a dial (and so a contact) ended, and the one table of waits before the next try.

A leaf module: it imports nothing from the project, so the store (``store/db.py``: calls.outcome,
contacts.last_outcome, ``release_contact``), the dialer core (``bridge/dialer.py``: what it records), the list
rules the simulator and tests run (``store/listengine.py``) and the panel all spell outcomes and recycle
intervals from here. It lives in ``store/`` because the store is what the strings are written to, and the store
never imports ``bridge/``.

The values are the strings already stored; a StrEnum member compares equal to its string, so rows written before
this module existed read the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

__all__ = [
    "DEFAULT_RECYCLE_S",
    "ENDS_CONTACT",
    "NOT_AN_ATTEMPT",
    "RECYCLE_OF",
    "Outcome",
    "Recycle",
    "recycle_column",
    "recycle_wait_s",
]


class Outcome(StrEnum):
    # --- How a dial ended, as the dialer records it (calls.outcome, then contacts.last_outcome).
    # Bridged to a volunteer; their saved result decides what becomes of the contact.
    CONNECTED = "connected"
    # A live answer nobody was free for: they heard the recorded message.
    ABANDONED = "abandoned"
    MACHINE = "machine"
    VOICEMAIL_LEFT = "voicemail_left"
    # Answered, then gone (or unusable) before reaching a volunteer.
    HANGUP_BEFORE_CONNECT = "hangup_before_connect"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    CONGESTION = "congestion"
    FAILED = "failed"
    # The number does not exist: removed and put on the do-not-call list for every effort.
    UNALLOCATED = "unallocated"
    # We hung up while it rang (its volunteer left): not an attempt, no recycle wait, the last real outcome stays.
    CANCELLED = "cancelled"
    # The carrier failed the call (congestion or a 5xx, no response, a refused dial) before any phone rang: the
    # voter was never reached, so, like CANCELLED, not an attempt, no recycle wait, the last real outcome stays.
    TRUNK_FAILED = "trunk_failed"
    # A call the controller found unfinished after a restart (calls.outcome only; its contact is released as FAILED).
    LOST = "lost"
    # Asterisk itself went away (restart, crash) while the call was out and before a volunteer was talking: the
    # voter may have heard a ring or a "hello?" and then nothing, through no doing of theirs. Like TRUNK_FAILED,
    # not an attempt, no recycle wait, the last real outcome stays (bridge.dialer.Dialer's CallLost).
    PBX_LOST = "pbx_lost"
    # --- What a volunteer's result makes of the contact (store.listengine's attempt records; the store keeps the
    # disposition code itself in contacts.last_outcome, and acts on the code's kind: contact, no_contact, remove).
    # Spoke; asked to be called again at a set time (also the built-in disposition code).
    CALLBACK = "callback"
    CONTACTED = "contacted"
    REFUSED = "refused"
    WRONG_NUMBER = "wrong_number"
    DISCONNECTED = "disconnected"
    # Remove-number request: ends this contact here and, through the do-not-call list, everywhere.
    DO_NOT_CALL = "do_not_call"


class Recycle(StrEnum):
    """The effort's retry settings: each is the column ``campaigns.recycle_<value>_s``."""

    BUSY = "busy"
    NO_ANSWER = "noanswer"
    MACHINE = "machine"
    ABANDON = "abandon"


# THE table: which wait follows which outcome. Outcomes not in it either end the contact (ENDS_CONTACT) or are
# handled apart (CONNECTED waits for the volunteer's result, CANCELLED is undone, CALLBACK waits for its time).
RECYCLE_OF: Mapping[Outcome, Recycle] = {
    Outcome.BUSY: Recycle.BUSY,
    Outcome.CONGESTION: Recycle.BUSY,
    Outcome.FAILED: Recycle.BUSY,
    Outcome.NO_ANSWER: Recycle.NO_ANSWER,
    Outcome.MACHINE: Recycle.MACHINE,
    Outcome.VOICEMAIL_LEFT: Recycle.MACHINE,
    Outcome.ABANDONED: Recycle.ABANDON,
    Outcome.HANGUP_BEFORE_CONNECT: Recycle.ABANDON,
}

# Defaults for a new effort (the panel's settings page changes busy, no answer and machine per effort):
# * busy 10 min: the line is in use now; it is free again soon.
# * no answer 1 h: a second (and third) try later in the same evening's shift, when people come home.
# * machine 2 h: nobody picks up for a while yet; a little longer than no answer.
# * abandoned 1 day: they picked up and heard our recorded apology (or hung up on the silence before we put them
#   through); ringing again within the hour repeats the intrusion, and the UK regulator's rule is no repeat within
#   72 hours without a live caller guaranteed. A day is our floor for that, not a legal claim.
# These are the live store's values (what efforts dialled with) except abandoned, which was 10 minutes there and
# 1 day in the simulator's rules; the simulator's 3 h / 4 h were never what ran.
DEFAULT_RECYCLE_S: Mapping[Recycle, int] = {
    Recycle.BUSY: 600,
    Recycle.NO_ANSWER: 3600,
    Recycle.MACHINE: 7200,
    Recycle.ABANDON: 86400,
}

# Outcomes after which the contact is never dialled again in this effort.
ENDS_CONTACT = frozenset(
    {
        Outcome.UNALLOCATED,
        Outcome.CONTACTED,
        Outcome.REFUSED,
        Outcome.WRONG_NUMBER,
        Outcome.DISCONNECTED,
        Outcome.DO_NOT_CALL,
    }
)

# Dials that say nothing about the voter: the contact's attempt is given back (Store.release_contact) and the list
# rules skip them (store.listengine).
NOT_AN_ATTEMPT = frozenset({Outcome.CANCELLED, Outcome.TRUNK_FAILED, Outcome.PBX_LOST})


def recycle_column(kind: Recycle) -> str:
    return f"recycle_{kind.value}_s"


def recycle_wait_s(outcome: str, effort: Mapping[str, Any] | None = None) -> int | None:
    """Seconds before a contact whose last dial ended with ``outcome`` may be dialled again, by the effort's
    settings (a campaigns row; missing columns take the defaults). None: no retry wait applies to it."""
    try:
        kind = RECYCLE_OF.get(Outcome(outcome))
    except ValueError:
        return None
    if kind is None:
        return None
    value = (effort or {}).get(recycle_column(kind))
    return int(value) if value is not None else DEFAULT_RECYCLE_S[kind]
