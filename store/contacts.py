"""Contact list import, the one importer the panel's List step and ``phonebank contacts import`` both run.

:func:`table_text` reads a file (what kind of file it is, its encoding and delimiter) into plain CSV text;
:func:`guess_mapping` says what each column holds from its header (the panel shows it to change; the CLI, which
has no screen, uses it as it is); :func:`check_list` turns the rows into validated contacts with a reason for
every rejected row and a note for every row imported with something to know (a phone extension, a later phone
column called). store.efforts.import_list inserts the checked rows in one transaction. Also the phone-number
rules: E.164, masking for logs, what a caller's screen may show."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumber

from store.messages import M_, N_, reason


@dataclass
class RowError:
    line: int  # 1-based line in the file, header is line 1
    reason: str
    name: str = ""  # the person on that row, when the row names one: admins look for names, not line numbers


def normalize_phone(raw: str, region: str = "US") -> str:
    """E.164 or ValueError with the reason."""
    text = (raw or "").strip()
    if not text:
        raise ValueError(M_("missing phone number"))
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        # The library's own text ("(1) The string supplied did not seem to be a phone number.") is for developers.
        why = _PARSE_REASONS.get(exc.error_type, N_("no number found in it"))
        raise ValueError(M_("not a phone number: %(why)s", why=M_(why))) from exc
    if not phonenumbers.is_valid_number(num):
        raise ValueError(M_("not a valid phone number: check the area code and the number of digits"))
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


_PARSE_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: N_("no country has the code after the +"),
    phonenumbers.NumberParseException.NOT_A_NUMBER: N_("no number found in it"),
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: N_("too few digits after the international prefix"),
    phonenumbers.NumberParseException.TOO_SHORT_NSN: N_("too few digits"),
    phonenumbers.NumberParseException.TOO_LONG: N_("too many digits"),
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


PHONE_NAME = re.compile(r"phone|cell|mobile|landline|tel\b|fax", re.IGNORECASE)
# Where a list's own id for the person (VAN's "Voter File VANID", "VANID") is kept (in ``extra``): shown to
# callers and usable in the script ({external_id}); a 6-9 digit VAN ID is an id, not a phone number.
EXTERNAL_ID = "external_id"
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
    kept, and so is the column the import mapped as the external id (EXTERNAL_ID): its digits are an id."""
    return {k: v for k, v in extra.items() if _shown(k, v)}


def _shown(key: str, value: Any) -> bool:
    if key == EXTERNAL_ID:
        return True
    if PHONE_NAME.search(key):
        return False
    if not _has_number(value):
        return True
    return bool(POSTAL_NAME.search(key)) and sum(ch.isdigit() for ch in str(value)) <= 9


def mask_phone(e164: str) -> str:
    """For logs: numbers are personal data, keep only the last two digits."""
    return (e164[:2] + "*" * max(0, len(e164) - 4) + e164[-2:]) if len(e164) > 4 else "***"


# ---------------------------------------------------------------------------------------------- reading files
class FileRefused(ValueError):
    """A file that is not a contact list we can read; the message says what it is and what to do instead."""


EMPTY_FILE = N_("The file is empty: expected a header row and then one contact per row.")
NO_CONTACTS = N_("The file has a header row but no contacts under it: nothing to import.")


SAVE_AS_CSV = N_("Open it in your spreadsheet program and save it as CSV (File → Save as → CSV), then upload that.")
# Magic numbers of what organisers upload by mistake: (prefix, what it is).
MAGIC = [
    (b"\x89PNG\r\n\x1a\n", N_("a PNG image")),
    (b"\xff\xd8\xff", N_("a JPEG image")),
    (b"GIF8", N_("a GIF image")),
    (b"%PDF-", N_("a PDF document")),
    (b"\x1f\x8b", N_("a gzip archive")),
    (b"Rar!", N_("a RAR archive")),
    (b"7z\xbc\xaf", N_("a 7-Zip archive")),
    (b"{\\rtf", N_("a rich-text (RTF) document")),
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
            raise FileRefused(M_("This is an Excel workbook (.xlsx), not a CSV file. %(how)s", how=M_(SAVE_AS_CSV)))
        if b"opendocument.spreadsheet" in data[:200]:
            raise FileRefused(
                M_("This is an OpenDocument spreadsheet (.ods), not a CSV file. %(how)s", how=M_(SAVE_AS_CSV))
            )
        raise FileRefused(M_("This is a ZIP archive, not a CSV file. Unpack it and upload the CSV file inside."))
    if data.startswith(OLE2):
        raise FileRefused(
            M_(
                "This is an Excel 97-2003 workbook (.xls) or another Office file, not a CSV file. %(how)s",
                how=M_(SAVE_AS_CSV),
            )
        )
    for magic, what in MAGIC:
        if data.startswith(magic):
            raise FileRefused(
                M_("This is not a CSV file: it is %(what)s. Upload the contact list as a CSV file.", what=M_(what))
            )


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
        what = N_("NUL bytes") if bad.group() == "\x00" else N_("control characters")
        raise FileRefused(
            M_(
                "This is not a CSV file: it holds binary data (%(what)s on line %(line)s), not text. "
                "Upload the contact list as a CSV file.",
                what=M_(what),
                line=f"{line:,}",
            )
        )
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
        raise FileRefused(M_(EMPTY_FILE))
    text = decode_text(data)
    if not text.strip():
        raise FileRefused(M_(EMPTY_FILE))
    delimiter = sniff_delimiter(text)
    # newline=None: a line break inside a quoted cell ("Rückruf\r\nnach 18 Uhr") is stored and shown as "\n".
    reader = csv.reader(io.StringIO(text, newline=None), delimiter=delimiter)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    rows = 0
    try:
        header = next(reader, [])
        if not any(h.strip() for h in header):
            raise FileRefused(M_("The file has no header row: the first line must name the columns."))
        if len(header) > MAX_COLUMNS:
            raise FileRefused(
                M_(
                    "The first line has %(n)s columns: a contact list has a header row "
                    "naming its columns (phone, first name…). Is this the right file?",
                    n=f"{len(header):,}",
                )
            )
        if max(len(h) for h in header) > MAX_HEADER_CELL:
            raise FileRefused(
                M_(
                    "The first line is not a header row (a column name is longer than "
                    "%(n)s characters): the first line must name the columns.",
                    n=MAX_HEADER_CELL,
                )
            )
        writer.writerow(header)
        for row in reader:
            writer.writerow(row)
            rows += any(c.strip() for c in row)
    except csv.Error as exc:
        # The csv module's own words ("field larger than field limit (131072)") mean nothing to an admin.
        why = N_("a cell is far too long") if "field limit" in str(exc) else N_("it cannot be read as CSV")
        raise FileRefused(
            M_(
                "Line %(line)s of the file: %(why)s. Is this the right file? Save the list as CSV and upload it again.",
                line=f"{reader.line_num:,}",
                why=M_(why),
            )
        ) from exc
    if rows == 0:
        raise FileRefused(M_(NO_CONTACTS))
    return out.getvalue()


# ---------------------------------------------------------------------------------------------- the importer
MAP_CHOICES: dict[str, str] = {
    "first_name": N_("First name"),
    "last_name": N_("Last name"),
    "phone": N_("Phone (called)"),
    "phone2": N_("Other phone (called when Phone is empty or not a number)"),
    "external_id": N_("External ID (VAN ID)"),
    "address": N_("Address"),
    "city": N_("City"),
    "state": N_("State"),
    "zip": N_("ZIP"),
    "extra": N_("Extra (About pane)"),
    "ignore": N_("Ignore"),
}
# Targets one column at most can hold. "phone2" may be several columns: tried left to right after "phone".
SINGLE_TARGETS = ("first_name", "last_name", "phone", "external_id", "address", "city", "state", "zip")
PHONE_TARGETS = ("phone", "phone2")
# Header names (lower case, runs of spaces, dashes, dots and underscores as one "_") -> what the column holds.
# Any phone column after the first is a fallback ("phone2"): VAN exports have Home Phone and Cell Phone.
GUESSES = {
    **dict.fromkeys(
        ("first", "firstname", "first_name", "fname", "given_name", "name_first", "forename", "name", "full_name"),
        "first_name",
    ),
    **dict.fromkeys(("last", "lastname", "last_name", "lname", "surname", "family_name", "name_last"), "last_name"),
    **dict.fromkeys(
        (
            "phone",
            "phone_number",
            "number",
            "telephone",
            "telephone_number",
            "tel",
            "phone1",
            "phone_1",
            "primary_phone",
            "preferred_phone",
            "mobile",
            "mobile_phone",
            "mobile_number",
            "cell",
            "cellphone",
            "cell_phone",
            "cell_number",
            "home_phone",
            "homephone",
            "landline",
            "land_line",
            "landline_phone",
        ),
        "phone",
    ),
    **dict.fromkeys(
        ("phone2", "phone_2", "second_phone", "alt_phone", "alternate_phone", "other_phone", "work_phone"), "phone2"
    ),
    **dict.fromkeys(
        ("voter_file_vanid", "vanid", "van_id", "myc_vanid", "external_id", "externalid", "voter_id", "voterid"),
        "external_id",
    ),
    **dict.fromkeys(("address", "address1", "address_1", "street", "street_address", "addr"), "address"),
    **dict.fromkeys(("city", "town"), "city"),
    **dict.fromkeys(("state", "st", "province"), "state"),
    **dict.fromkeys(("zip", "zip_code", "zipcode", "postal_code", "postcode", "zip5"), "zip"),
}
_HEADER_SEPARATORS = re.compile(r"[\s_.\-]+")


def csv_headers(text: str) -> list[str]:
    reader = csv.reader(io.StringIO(text))
    return [h.strip() for h in next(reader, [])]


def guess_mapping(headers: list[str]) -> list[str]:
    """A target for every header by its name (GUESSES); each single target used once, phone columns after the
    first become fallbacks, the rest go to the About pane. The panel shows it to change; the CLI imports with it."""
    out: list[str] = []
    used: set[str] = set()
    for h in headers:
        guess = GUESSES.get(_HEADER_SEPARATORS.sub("_", h.strip().lower()).strip("_"), "")
        if guess == "phone" and "phone" in used:
            guess = "phone2"
        if guess == "phone2" or (guess in SINGLE_TARGETS and guess not in used):
            used.add(guess)
            out.append(guess)
        elif not h.strip():
            out.append("ignore")
        else:
            out.append("extra")
    return out


def check_mapping(headers: list[str], mapping: list[str]) -> list[str]:
    """Problems with a column mapping (an empty list: fine)."""
    problems: list[str] = []
    if len(mapping) != len(headers):
        return [M_("The column mapping does not match the file: upload it again.")]
    bad = [m for m in mapping if m not in MAP_CHOICES]
    if bad:
        problems.append(M_("Unknown column type: %(kind)s.", kind=bad[0]))
    for target in SINGLE_TARGETS:
        if mapping.count(target) > 1:
            problems.append(M_("Only one column can be %(kind)s.", kind=M_(MAP_CHOICES[target])))
    if "phone" not in mapping:
        problems.append(M_("Choose the column that holds the phone number."))
    if "first_name" not in mapping and "last_name" not in mapping:
        problems.append(M_("Choose the column(s) that hold the name (first and/or last name)."))
    return problems


_PLAIN_PHONE = re.compile(r"^\+?[0-9 \t().\-]+$")
_PUNCTUATION = str.maketrans("", "", "+ \t().-")


def fast_phone(raw: str, region: str = "US") -> str:
    """``normalize_phone`` with a shortcut for plain North American numbers.

    phonenumbers.parse is most of the import time; a number that is only digits and punctuation, in a NANP
    region, is turned into a PhoneNumber directly and checked with the same ``is_valid_number``. Anything else
    (letters, extensions, other countries) takes the full parser, so the results are the same."""
    text = (raw or "").strip()
    if region == "US" and _PLAIN_PHONE.match(text):
        digits = text.translate(_PUNCTUATION)
        national = ""
        if text.startswith("+"):
            if len(digits) == 11 and digits[0] == "1":
                national = digits[1:]
        elif len(digits) == 10:
            national = digits
        elif len(digits) == 11 and digits[0] == "1":
            national = digits[1:]
        if national and national[0] not in "01":
            number = PhoneNumber(country_code=1, national_number=int(national))
            # Valid for the US is valid (and half the work: is_valid_number first looks for the region).
            if phonenumbers.is_valid_number_for_region(number, "US") or phonenumbers.is_valid_number(number):
                return "+1" + national
            raise ValueError(M_("not a valid phone number"))
    return normalize_phone(text, region)


@dataclass
class ListReport:
    """A checked list: the rows ready to insert, every rejected row with its line and reason, and notes on
    imported rows."""

    headers: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    total: int = 0
    shared_numbers: int = 0  # phone numbers held by more than one (different) person: households
    problems: list[str] = field(default_factory=list)  # file-level: nothing can be imported
    notes: list[RowError] = field(default_factory=list)  # imported rows with something the admin should know
    extensions: int = 0  # notes: an extension kept (PHONE_EXT)
    fallbacks: int = 0  # notes: called on a later phone column, the earlier ones empty or not a number

    @property
    def valid(self) -> int:
        return len(self.rows)

    @property
    def invalid(self) -> int:
        return len(self.errors)


def _why(exc: ValueError) -> str:
    text = reason(exc)
    return M_("not a phone number") if text.startswith("not a phone number") else text


def _name_key(first: str, last: str) -> str:
    return f"{first.strip().casefold()}\x1f{last.strip().casefold()}"


def check_list(
    text: str, mapping: list[str], existing: list[tuple[str, str, str]] | None = None, region: str = "US"
) -> ListReport:
    """Validate every row of a CSV (as :func:`table_text` made it) under ``mapping`` (one target per header, see
    MAP_CHOICES).

    The number called is the Phone column's; when it is empty or not a number, the first good "Other phone"
    column's (left to right), with a note saying which column and why. Other good numbers are kept as phone2,
    phone3… (never shown to callers). A row is rejected when no phone column holds a good number, for a missing
    name, a wrong cell count, or for being a duplicate: the same phone AND the same name as an earlier row (or a
    contact already in the effort, ``existing`` = (phone, first, last)). The same phone with different names is
    a household, not an error. Blank rows are skipped; a row's line is where it starts in the file (quoted cells
    may span lines)."""
    report = ListReport()
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        report.problems.append(M_(EMPTY_FILE))
        return report
    headers = report.headers = [h.strip() for h in header]
    report.problems = check_mapping(headers, mapping)
    if report.problems:
        return report
    ncols = len(header)
    idx = {t: mapping.index(t) if t in mapping else -1 for t in SINGLE_TARGETS}
    i_first, i_last, i_phone, i_ext_id = idx["first_name"], idx["last_name"], idx["phone"], idx["external_id"]
    i_address, i_city, i_state, i_zip = idx["address"], idx["city"], idx["state"], idx["zip"]
    phone_cols = [i_phone] + [i for i, m in enumerate(mapping) if m == "phone2"]
    extra_cols = [(i, headers[i]) for i, m in enumerate(mapping) if m == "extra"]
    seen: dict[tuple[str, str], int] = {}  # (phone, name key) -> line
    phones: dict[str, str] = {}  # phone -> the first name key seen with it
    shared: set[str] = set()
    for phone, first, last in existing or []:
        seen[(phone, _name_key(first, last))] = 0
        phones.setdefault(phone, _name_key(first, last))
    errors = report.errors
    end = reader.line_num
    for cells in reader:
        line, end = end + 1, reader.line_num  # a quoted cell may span lines: report where the row starts
        if not any(c.strip() for c in cells):
            continue  # blank line
        report.total += 1
        first = cells[i_first].strip() if 0 <= i_first < len(cells) else ""
        last = cells[i_last].strip() if 0 <= i_last < len(cells) else ""
        name = f"{first} {last}".strip()[:80]
        if len(cells) != ncols:
            errors.append(
                RowError(
                    line, M_("%(n)s cells where the header has %(columns)s columns", n=len(cells), columns=ncols), name
                )
            )
            continue
        cells.append("")  # index -1: the columns the mapping does not use
        phone = raw_phone = refused = ""
        used = i_phone
        others: list[str] = []
        passed: list[str] = []  # why earlier phone columns were not called, for the note
        for i in phone_cols:
            raw = cells[i].strip()
            if not raw:
                if not phone:
                    passed.append(M_("%(column)s is empty", column=headers[i]))
                continue
            try:
                number = fast_phone(raw, region)
            except ValueError as exc:
                if not phone:
                    refused = refused or M_("bad phone number %(raw)r: %(why)s", raw=raw[:40], why=_why(exc))
                    passed.append(M_("%(column)s %(raw)r is %(why)s", column=headers[i], raw=raw[:40], why=_why(exc)))
                continue  # a bad number in a column not called is not kept
            if phone:
                if number != phone and number not in others:
                    others.append(number)
            else:
                phone, raw_phone, used = number, raw, i
        if not phone:
            errors.append(RowError(line, refused or M_("missing phone number"), name))
            continue
        if not first and not last:
            errors.append(RowError(line, M_("missing name"), name))
            continue
        key = _name_key(first, last)
        earlier = seen.get((phone, key))
        if earlier is not None:
            where = M_("line %(n)s", n=earlier) if earlier else M_("a contact already in this effort's list")
            errors.append(RowError(line, M_("duplicate: same person and phone as %(where)s", where=where), name))
            continue
        seen[(phone, key)] = line
        owner = phones.setdefault(phone, key)
        if owner != key:
            shared.add(phone)
        extra: dict[str, str] = {}
        if passed:
            report.fallbacks += 1
            why = passed[0]
            for more in passed[1:]:  # joined as messages, so each part is translated
                why = M_("%(first)s; %(then)s", first=why, then=more)
            report.notes.append(
                RowError(line, M_("called on %(column)s (%(why)s)", column=headers[used], why=why), name)
            )
        # "202-555-0100 ext 4": E.164 has no room for it, so it is kept beside the number (see PHONE_EXT).
        ext = "" if _PLAIN_PHONE.match(raw_phone) else phone_extension(raw_phone, region)
        if ext:
            extra[PHONE_EXT] = ext
            report.extensions += 1
            report.notes.append(RowError(line, M_("extension %(ext)s kept", ext=ext), name))
        for n, number in enumerate(others, start=2):
            extra[f"phone{n}"] = number
        address = cells[i_address].strip()
        if address:
            extra["address"] = address
        ext_id = cells[i_ext_id].strip()
        if ext_id:
            extra[EXTERNAL_ID] = ext_id
        for i, column in extra_cols:
            value = cells[i].strip()
            if value and column:
                extra[column] = value
        report.rows.append(
            {
                "first_name": first,
                "last_name": last,
                "phone": phone,
                "city": cells[i_city].strip(),
                "state": cells[i_state].strip(),
                "zip": cells[i_zip].strip(),
                "extra": extra,
            }
        )
    report.shared_numbers = len(shared)
    if report.total == 0:
        report.problems.append(M_(NO_CONTACTS))
    return report
