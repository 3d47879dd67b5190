"""Contact list import: CSV rows to validated contacts, with a reason for every rejected row."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

KNOWN_COLUMNS = ("first_name", "last_name", "phone", "city", "state", "zip")
ALIASES = {
    "first": "first_name", "firstname": "first_name", "first name": "first_name",
    "last": "last_name", "lastname": "last_name", "last name": "last_name",
    "phone_number": "phone", "phone number": "phone", "number": "phone", "telephone": "phone",
    "zip_code": "zip", "zipcode": "zip", "postal_code": "zip",
}


@dataclass
class RowError:
    line: int  # 1-based line in the file, header is line 1
    reason: str


@dataclass
class ImportResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def normalize_phone(raw: str, region: str = "US") -> str:
    """E.164 or ValueError with the reason."""
    text = (raw or "").strip()
    if not text:
        raise ValueError("missing phone number")
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(num):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str) -> str:
    """For logs: numbers are personal data, keep only the last two digits."""
    return (e164[:2] + "*" * max(0, len(e164) - 4) + e164[-2:]) if len(e164) > 4 else "***"


def parse_csv(text: str, region: str = "US") -> ImportResult:
    result = ImportResult()
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        result.errors.append(RowError(1, "empty file: expected a header row"))
        return result
    mapping = {}
    for name in reader.fieldnames:
        key = (name or "").strip().lower()
        mapping[name] = ALIASES.get(key, key.replace(" ", "_"))
    if "phone" not in mapping.values():
        result.errors.append(RowError(1, "no phone column (expected a header named 'phone')"))
        return result
    for line, raw in enumerate(reader, start=2):
        row: dict[str, Any] = {"extra": {}}
        for src, value in raw.items():
            if src is None:  # more cells than headers
                result.errors.append(RowError(line, "more cells than header columns"))
                break
            dest = mapping[src]
            value = (value or "").strip()
            if dest in KNOWN_COLUMNS:
                row[dest] = value
            elif value:
                row["extra"][src.strip()] = value
        else:
            try:
                row["phone"] = normalize_phone(row.get("phone", ""), region)
            except ValueError as exc:
                result.errors.append(RowError(line, str(exc)))
                continue
            result.rows.append(row)
    return result
