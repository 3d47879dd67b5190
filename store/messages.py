"""Messages the server composes for people to read, marked for translation (``pybabel extract``, babel.toml) and
kept English here: the panel shows them in the page's language (panel/i18n.py ``translate``, the templates'
``|translate``). A leaf module, so the store can mark its own messages without importing the panel."""

from __future__ import annotations

from collections.abc import Callable


def N_(message: str) -> str:
    """Marks a fixed message for extraction; it stays English here."""
    return message


class Message(str):
    """A message with values in it (``M_``): the English text as a plain ``str`` (logs, tests, the JSON API), and
    through the panel's ``translate`` the msgid translated first, then the values put in."""

    msgid: str
    params: dict[str, object]

    def __new__(cls, msgid: str, params: dict[str, object]) -> Message:
        self = super().__new__(cls, fill(str, msgid, params))
        self.msgid, self.params = msgid, params
        return self

    def __reduce__(self) -> tuple[type[Message], tuple[str, dict[str, object]]]:
        # Pickled whole (a list checked in the panel's worker process comes back with its row reasons).
        return Message, (self.msgid, self.params)


def M_(msgid: str, **params: object) -> Message:
    """``N_`` with values: ``M_("Not saved: %(reason)s.", reason=...)``. A value that is itself a ``Message`` (or
    an ``M_("...")`` with none) is translated too, a tuple of them joined with commas; any other value (a name, a
    number, text someone typed) is shown as it is."""
    return Message(msgid, params)


def fill(gettext: Callable[[str], str], msgid: str, params: dict[str, object]) -> str:
    """``msgid`` through ``gettext`` with its values put in (themselves translated when they are messages)."""
    said = gettext(msgid)
    if not params:
        return said
    return said % {k: _value(gettext, v) for k, v in params.items()}


def _value(gettext: Callable[[str], str], value: object) -> object:
    if isinstance(value, Message):
        return fill(gettext, value.msgid, value.params)
    if isinstance(value, tuple):  # a list of messages (the permissions a role lacks): each translated
        return ", ".join(str(_value(gettext, v)) for v in value)
    return value


def reason(exc: BaseException) -> str:
    """An error's message as raised (``str(exc)`` would turn a ``Message`` back into plain English)."""
    first = exc.args[0] if exc.args else ""
    return first if isinstance(first, str) else str(exc)
