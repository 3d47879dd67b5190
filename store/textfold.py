"""Text as people type it into a search box: no case, no accents ("JOSÉ" finds "José", "nguyen" finds "Nguyễn").

SQLite's LIKE folds ASCII case only, and a Python function called per row costs ~0.2 s per search on a
100k-contact effort (the panel searches on the event loop the calls share), so each contact keeps its folded
name and city in ``contacts.search_text`` (migration 8) and a search folds its query the same way.
"""

from __future__ import annotations

import unicodedata

# Letters that Unicode does not decompose into a base letter and a mark (NFKD leaves them whole) but that a
# person types as plain ASCII: "Łukasz" as "lukasz", "Đặng" as "dang", "Søren" as "soren".
_PLAIN = str.maketrans(
    {"đ": "d", "ð": "d", "ł": "l", "ø": "o", "æ": "ae", "œ": "oe", "ħ": "h", "ı": "i", "þ": "th", "ŀ": "l"}
)
# Between the name and the city in search_text: a query never spans the two (it cannot contain this character).
SEPARATOR = "\x1f"


def fold(text: str | None) -> str:
    """Casefolded, without combining marks (NFKD): what ``search_text`` holds and what a query is matched as."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", str(text).casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).translate(_PLAIN)


def search_text(first_name: str | None, last_name: str | None, city: str | None) -> str:
    """A contact's folded search column: "first last" (one space between words, as a query is), then the city."""
    name = " ".join(fold(f"{first_name or ''} {last_name or ''}").split())
    return name + SEPARATOR + " ".join(fold(city).split())
