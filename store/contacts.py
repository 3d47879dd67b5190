"""Contact list import: CSV rows to validated contacts, with a reason for every rejected row.

Also the file handling both importers (this CLI one and the panel's, store/efforts.py) share: what kind of file
an upload is, its text encoding and its delimiter (:func:`table_text`)."""

from __future__ import annotations

import csv
import io
import re
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
    name: str = ""  # the person on that row, when the row names one: admins look for names, not line numbers


@dataclass
class ImportResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    notes: list[RowError] = field(default_factory=list)  # imported rows with something to know (an extension)


def normalize_phone(raw: str, region: str = "US") -> str:
    """E.164 or ValueError with the reason."""
    text = (raw or "").strip()
    if not text:
        raise ValueError("missing phone number")
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        # The library's own text ("(1) The string supplied did not seem to be a phone number.") is for developers.
        raise ValueError(f"not a phone number: {_PARSE_REASONS.get(exc.error_type, 'no number found in it')}") from exc
    if not phonenumbers.is_valid_number(num):
        raise ValueError("not a valid phone number: check the area code and the number of digits")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


_PARSE_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "no country has the code after the +",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "no number found in it",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too few digits after the international prefix",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too few digits",
    phonenumbers.NumberParseException.TOO_LONG: "too many digits",
}


# Where an extension written after a contact's number is kept (in ``extra``): E.164 cannot hold one. Callers of
# a personal-phone effort see and dial it; callers of computer-dial efforts are told to ask for it.
PHONE_EXT = "phone_ext"


def phone_extension(raw: str, region: str = "US") -> str:
    """The extension written after a number ("202-555-0100 ext 4", "x12", ";ext=7"), '' if none."""
    try:
        return phonenumbers.parse((raw or "").strip(), region).extension or ""
    except phonenumbers.NumberParseException:
        return ""


PHONE_NAME = re.compile(r"phone|cell|mobile|tel\b|fax", re.IGNORECASE)
POSTAL_NAME = re.compile(r"zip|postal|postcode", re.IGNORECASE)
SEPARATORS = re.compile(r"[\s().\-/+]")
DIGIT_RUN = re.compile(r"\d{7,}")
DATE = re.compile(r"^(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{4})$")


def _has_number(value: Any) -> bool:
    """Seven digits in a row once separators are dropped: "home 202-555-0100", "202/555/0100 ext 12"."""
    if not isinstance(value, str) or DATE.match(value.strip()):
        return False
    return bool(DIGIT_RUN.search(SEPARATORS.sub("", value)))


def about_fields(extra: dict[str, Any]) -> dict[str, Any]:
    """The list's extra columns fit for a caller's screen (About pane, script): other numbers (phone2, "Cell", a
    number written into any column) are as personal as the dialled one and stay on the server. ZIP+4 codes are
    kept."""
    return {k: v for k, v in extra.items()
            if not PHONE_NAME.search(k) and (not _has_number(v) or (POSTAL_NAME.search(k) and len(
                [ch for ch in str(v) if ch.isdigit()]) <= 9))}


def mask_phone(e164: str) -> str:
    """For logs: numbers are personal data, keep only the last two digits."""
    return (e164[:2] + "*" * max(0, len(e164) - 4) + e164[-2:]) if len(e164) > 4 else "***"


# ---------------------------------------------------------------------------------------------- reading files
class FileRefused(ValueError):
    """A file that is not a contact list we can read; the message says what it is and what to do instead."""


SAVE_AS_CSV = "Open it in your spreadsheet program and save it as CSV (File → Save as → CSV), then upload that."
# Magic numbers of what organisers upload by mistake: (prefix, what it is).
MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"%PDF-", "a PDF document"), (b"\x1f\x8b", "a gzip archive"), (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"), (b"{\\rtf", "a rich-text (RTF) document"),
]
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97-2003 .xls (and old .doc) files
DELIMITERS = ",;\t|"
MAX_COLUMNS = 500
MAX_HEADER_CELL = 500
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _refuse_binary(data: bytes) -> None:
    """FileRefused for spreadsheets, documents, images and archives: the CSV reader would make junk of them.

    Workbooks are refused with how to save them as CSV rather than read (openpyxl): that would put an XML and
    ZIP parser on untrusted uploads (bombs, entities) and a dependency in the import path, to save organisers
    one "Save as" that also shows them what the importer sees (dates and numbers as text, one sheet)."""
    if data.startswith(b"PK\x03\x04"):
        if b"xl/" in data:
            raise FileRefused("This is an Excel workbook (.xlsx), not a CSV file. " + SAVE_AS_CSV)
        if b"opendocument.spreadsheet" in data[:200]:
            raise FileRefused("This is an OpenDocument spreadsheet (.ods), not a CSV file. " + SAVE_AS_CSV)
        raise FileRefused("This is a ZIP archive, not a CSV file. Unpack it and upload the CSV file inside.")
    if data.startswith(OLE2):
        raise FileRefused("This is an Excel 97-2003 workbook (.xls) or another Office file, not a CSV file. "
                          + SAVE_AS_CSV)
    for magic, what in MAGIC:
        if data.startswith(magic):
            raise FileRefused(f"This is not a CSV file: it is {what}. Upload the contact list as a CSV file.")


def _utf16(data: bytes) -> str | None:
    """Excel's "Unicode text" is UTF-16 (tab-delimited), with a byte-order mark, sometimes without one."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    else:
        # Mostly-ASCII text in UTF-16: nearly every odd byte is 0 (little-endian) or every even one (big), and
        # hardly any of the others; binary data with many NULs has them anywhere.
        head = data[:4096]
        even, odd = head[0::2], head[1::2]
        if len(head) < 4:
            return None
        if odd.count(0) >= 0.9 * len(odd) and even.count(0) <= 0.1 * len(even):
            encoding = "utf-16-le"
        elif even.count(0) >= 0.9 * len(even) and odd.count(0) <= 0.1 * len(odd):
            encoding = "utf-16-be"
        else:
            return None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def decode_text(data: bytes) -> str:
    """Spreadsheet exports as text: UTF-8 (with or without BOM), UTF-16, else Windows-1252 / Latin-1.
    FileRefused for files that are not text at all."""
    _refuse_binary(data)
    text = _utf16(data)
    if text is None:
        text = next((t for t in (_try_decode(data, e) for e in ("utf-8-sig", "cp1252")) if t is not None), None)
        if text is None:
            text = data.decode("latin-1")  # decodes any byte: the last resort for old exports
    text = text.lstrip("\ufeff").rstrip("\x00")  # some tools pad files with NULs
    bad = _CONTROL.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        what = "NUL bytes" if bad.group() == "\x00" else "control characters"
        raise FileRefused(f"This is not a CSV file: it holds binary data ({what} on line {line:,}), not text. "
                          "Upload the contact list as a CSV file.")
    return text


def _try_decode(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def sniff_delimiter(text: str) -> str:
    """Comma, semicolon (European Excel), tab (VAN's .txt exports, Excel's Unicode text) or pipe.

    csv.Sniffer weighs how consistently a character splits the first lines; its guess is kept only if the
    header row holds it, else the character the header holds most wins (a single-column file: comma)."""
    lines = text[:16384].splitlines()
    header = next((ln for ln in lines if ln.strip()), "")
    sample = "\n".join(lines[:20])
    try:
        guess = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        guess = ""
    if guess and guess in header:
        return guess
    best = max(DELIMITERS, key=header.count)
    return best if header.count(best) else ","


def table_text(data: bytes) -> str:
    """An uploaded contact list as UTF-8 comma-separated text, the one form both importers read.

    Refuses (FileRefused, with what to do instead) anything that is not a readable table: spreadsheets and
    other binary files, an empty file, a header row alone, a cell too long for a contact list. Rows keep their
    line numbers (blank lines and quoted line breaks are kept), so the per-row report points into the file the
    admin has."""
    if not data.strip():
        raise FileRefused("The file is empty: expected a header row and then one contact per row.")
    text = decode_text(data)
    if not text.strip():
        raise FileRefused("The file is empty: expected a header row and then one contact per row.")
    delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    rows = 0
    try:
        header = next(reader, [])
        if not any(h.strip() for h in header):
            raise FileRefused("The file has no header row: the first line must name the columns.")
        if len(header) > MAX_COLUMNS:
            raise FileRefused(f"The first line has {len(header):,} columns: a contact list has a header row "
                              "naming its columns (phone, first name…). Is this the right file?")
        if max(len(h) for h in header) > MAX_HEADER_CELL:
            raise FileRefused("The first line is not a header row (a column name is longer than "
                              f"{MAX_HEADER_CELL} characters): the first line must name the columns.")
        writer.writerow(header)
        for row in reader:
            writer.writerow(row)
            rows += any(c.strip() for c in row)
    except csv.Error as exc:
        # The csv module's own words ("field larger than field limit (131072)") mean nothing to an admin.
        why = "a cell is far too long" if "field limit" in str(exc) else "it cannot be read as CSV"
        raise FileRefused(f"Line {reader.line_num:,} of the file: {why}. Is this the right file? "
                          "Save the list as CSV and upload it again.") from exc
    if rows == 0:
        raise FileRefused("The file has a header row but no contacts under it: nothing to import.")
    return out.getvalue()


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
            name = f"{row.get('first_name', '')} {row.get('last_name', '')}".strip()[:80]
            raw_phone = row.get("phone", "")
            try:
                row["phone"] = normalize_phone(raw_phone, region)
            except ValueError as exc:
                result.errors.append(RowError(line, str(exc), name))
                continue
            ext = phone_extension(raw_phone, region)
            if ext:  # E.164 drops it: kept beside the number, as the panel's importer does
                row["extra"][PHONE_EXT] = ext
                result.notes.append(RowError(line, f"extension {ext} kept", name))
            result.rows.append(row)
    return result
