"""The register file: a DTKS/DTSEN "BNBA" export as e-JSiKa imports it, read as a stream of households.

Offices pass the register around as BNBA spreadsheets (by name, by address): one row per person, the
rows of a household one after the other under the register's own household id. e-JSiKa imports such
a file saved as CSV. A header row is required; the columns are found by name (case and stray spaces
ignored), in any order, and columns not listed here are ignored (an export also carries occupation,
education and more).

| column | required | on | what it holds |
|---|---|---|---|
| `id_dtks` | yes | every row | the register's household id; the rows of one household are consecutive |
| `nik` | yes | every row | 16 digits; may be empty for a newborn or a person not yet matched |
| `status_nik` | no | every row | empty, `pending`, `unmatched` (`padan`, `tidak padan`, `belum padan`, `verified`) |
| `nama` | yes | every row | the name as written (often upper case, abbreviations like `MAWARDI.Z`) |
| `jenis_kelamin` | yes | every row | `L` / `P`, also `LAKI-LAKI` / `PEREMPUAN` |
| `tanggal_lahir` | yes | every row | DD/MM/YYYY, D/M/YYYY, DD-MM-YYYY, DD.MM.YYYY or YYYY-MM-DD |
| `hubungan` | yes | every row | `KEPALA KELUARGA`, `ISTRI`/`SUAMI`, `ANAK`, `ORANG TUA`/`MERTUA`, `CUCU`, `LAINNYA`, ... |
| `sekolah` | no | every row | Y/N: attends school (empty = N) |
| `hamil` | no | every row | Y/N: pregnant (empty = N) |
| `disabilitas` | no | every row | Y/N: lives with a disability (empty = N) |
| `no_kk` | yes | head's row | No. KK, 16 digits |
| `kode_desa` | yes | head's row | 10-digit Kemendagri village code, dots allowed (`36.01.01.2001`) |
| `alamat` | yes | head's row | street or kampung with RT/RW |
| `program` | no | head's row | programme code, e.g. `jamsosratu` (the default when empty) or `jscm` |
| `desil` | no | head's row | the register's welfare decile, 1-10 |
| `floor_area_per_person_m2` | no | head's row | a number (decimal point or comma) |
| `installed_power_va` | no | head's row | a whole number of VA (`1300`, `1.300`, `1300.0`) |
| every other field of `WelfareIndicators` | no | head's row | Y/N, empty = not observed; named exactly as the field |

A BNBA export repeats the household's columns on every row; they are read from the head's row only,
and a member's row may leave them empty. A register household (rumah tangga) may hold more than one
family card: the head's No. KK is the household's.

What spreadsheets do to the data is undone where it loses nothing: stray and repeated spaces, mixed
case, a NIK or No. KK saved as a number (`3601011708050001.0`, a leading `'`). Where digits are lost
(`3.60101E+15`, a 15-digit value that lost a digit) the row is refused (`nik_format`, `kk_format`):
digits are never guessed. Names are kept as written, spaces tidied.

A member's `nik_status` is `status_nik` when given, else verified when the row has a NIK and pending
when it has none (a newborn): a row without a NIK is valid, a "verified" one without a NIK is not.

Rules a row can break: `required`, `nik_format`, `kk_format`, `date_format` (not a date as written
above; a two-digit year is never given a century), `birth_date` (no such day, before 1900 or after
today), `sex`, `relation`, `yes_no`, `number`, `desil`, `region_code` (not 10 digits, or no village of
the Kemendagri table), `programme`, `status_nik`, `too_long`, `pregnant_sex`; and a household:
`one_head` (none, or a second one) and `members` (more than a registration takes).

Rows are numbered as a spreadsheet shows them: the header is row 1, the first data row is row 2.
A household with any broken row yields one `RowProblem` per broken field and no `FileHousehold`:
a problem names the row, the household id, the column, the rule and why, never the value (no NIK,
no name), so an import report can be shared. What only the registry can judge (NIK districts, a NIK
that contradicts the declared birth date, a programme's regions, duplicates) is left to the
registration: this module reads the file.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, get_args
from uuid import UUID, uuid5

from ejsika_contracts import WelfareIndicators
from ejsika_runtime.programme_time import programme_today

from .domain.regions import VILLAGES

DEFAULT_PROGRAMME = "jamsosratu"
OLDEST_BIRTH_DATE = date(1900, 1, 1)
#: As many members as a registration accepts: more under one id means ids were merged in the export.
MAX_MEMBERS = 30
MAX_NAME = 200
MAX_ADDRESS = 500

#: Never change: the request ids of households already imported are derived from it.
IMPORT_NAMESPACE = UUID("6f1c0a52-3c1e-5b7a-9d64-2f7e0c8b4a91")

MEMBER_COLUMNS = ("id_dtks", "nik", "status_nik", "nama", "jenis_kelamin", "tanggal_lahir", "hubungan",
                  "sekolah", "hamil", "disabilitas")
HOUSEHOLD_COLUMNS = ("no_kk", "kode_desa", "alamat", "program", "desil")
WELFARE_COLUMNS = tuple(WelfareIndicators.model_fields)
COLUMNS = MEMBER_COLUMNS + HOUSEHOLD_COLUMNS + WELFARE_COLUMNS
REQUIRED_COLUMNS = ("id_dtks", "no_kk", "nik", "nama", "jenis_kelamin", "tanggal_lahir", "hubungan",
                    "kode_desa", "alamat")


def household_request_id(register_id: str, programme: str) -> UUID:
    """The import's idempotency key: re-importing the same file finds the same households."""
    return uuid5(IMPORT_NAMESPACE, f"dtks:{programme}:{register_id}")


@dataclass(frozen=True, slots=True)
class FileHousehold:
    """A household of the file, read and tidied.

    `registration` is the body of a registration as the registry's API takes it (request_id, programme,
    region_code, kk_number, address, members, welfare), with two member fields the register adds:
    `nik` is None for a person without one yet, and `nik_status` says verified, pending or unmatched.
    `desil` is the register's own ranking, kept beside it. `member_rows` holds the row of each member, in
    the order of `registration["members"]`, for a report on a member (a blank row may lie between two).
    """

    register_id: str
    first_row: int  # the spreadsheet's row number: header = 1, first data row = 2
    desil: int | None
    registration: dict[str, Any]
    member_rows: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A broken field of a row: where, which rule, and why, never the value."""

    row: int  # the spreadsheet's row number: header = 1, first data row = 2
    register_id: str  # the register's household id, not personal data
    field: str  # the column
    rule: str
    reason: str


class RegisterFileError(ValueError):
    """The file as a whole cannot be read: no header, or required columns missing."""


class CellError(ValueError):
    """A cell that breaks `rule`; `reason` completes a sentence that starts with the column's name."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.rule, self.reason = rule, reason


# ---- values -----------------------------------------------------------------------------------------

def _digits16(raw: str, rule: str) -> str:
    """A NIK or No. KK: spaces, a leading `'` and a trailing `.0` are spreadsheet dress; digits are not."""
    value = "".join(raw.split())
    if value.startswith("'"):
        value = value[1:]
    if value.endswith(".0"):
        value = value[:-2]
    if len(value) != 16 or not (value.isascii() and value.isdigit()):
        raise CellError(rule, "must be 16 digits (a number saved by a spreadsheet may have lost digits)")
    return value


def read_nik_cell(raw: str) -> str | None:
    """The NIK of a cell, None when empty; `CellError` when it is not 16 digits."""
    return _digits16(raw, "nik_format") if raw.strip() else None


def read_kk_cell(raw: str) -> str:
    if not raw.strip():
        raise CellError("required", "is required")
    return _digits16(raw, "kk_format")


_DMY = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4})")
_YMD = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]00:00(?::00)?)?")


def read_date_cell(raw: str) -> date:
    """DD/MM/YYYY as Indonesian offices write it (day first always), or ISO; a two-digit year is refused."""
    value = raw.strip()
    if not value:
        raise CellError("required", "is required")
    if match := _DMY.fullmatch(value):
        day, month, year = int(match[1]), int(match[3]), int(match[4])
    elif match := _YMD.fullmatch(value):
        year, month, day = int(match[1]), int(match[2]), int(match[3])
    else:
        raise CellError("date_format", "must be a date as DD/MM/YYYY or YYYY-MM-DD")
    try:
        return date(year, month, day)
    except ValueError:
        raise CellError("birth_date", "is no day of the calendar") from None


_SEX = {"L": "M", "LK": "M", "LAKI-LAKI": "M", "LAKI LAKI": "M", "LAKI": "M", "PRIA": "M",
        "P": "F", "PR": "F", "PEREMPUAN": "F", "WANITA": "F"}


def read_sex_cell(raw: str) -> str:
    sex = _SEX.get(raw.strip().upper()) or _SEX.get(" ".join(raw.upper().split()))
    if sex is None:
        raise CellError("sex", "must be L or P (LAKI-LAKI or PEREMPUAN)")
    return sex


_RELATION = {
    "KEPALA KELUARGA": "head", "KEPALA RUMAH TANGGA": "head", "KEPALA": "head", "KRT": "head",
    "ISTRI": "spouse", "SUAMI": "spouse", "ISTRI/SUAMI": "spouse", "SUAMI/ISTRI": "spouse",
    "ANAK": "child", "ANAK KANDUNG": "child", "ANAK TIRI": "child", "ANAK ANGKAT": "child",
    "ORANG TUA": "parent", "ORANGTUA": "parent", "MERTUA": "parent", "ORANG TUA/MERTUA": "parent",
    "AYAH": "parent", "IBU": "parent",
    "LAINNYA": "other", "FAMILI LAIN": "other", "FAMILI": "other", "MENANTU": "other", "CUCU": "other",
    "SAUDARA": "other", "KEPONAKAN": "other", "PEMBANTU": "other", "PEMBANTU RUMAH TANGGA": "other",
}
_AROUND_SLASH = re.compile(r"\s*/\s*")


def read_relation_cell(raw: str) -> str:
    value = raw.strip().upper()
    relation = _RELATION.get(value)
    if relation is None:
        relation = _RELATION.get(_AROUND_SLASH.sub("/", " ".join(value.split())))
        if relation is None:
            raise CellError("relation", "must be a relation to the head (KEPALA KELUARGA, ISTRI, SUAMI, ANAK, ...)")
    return relation


_YES_NO = {"Y": True, "YA": True, "YES": True, "1": True, "TRUE": True,
           "N": False, "TIDAK": False, "NO": False, "0": False, "FALSE": False}


def read_flag_cell(raw: str) -> bool | None:
    """Y/N; None when empty (not observed). `T` is refused: Tidak to some, True to others."""
    value = raw.strip()
    if not value:
        return None
    flag = _YES_NO.get(value.upper())
    if flag is None:
        raise CellError("yes_no", "must be Y or N")
    return flag


def _member_flag(raw: str) -> bool:
    return read_flag_cell(raw) or False


_DECIMAL = re.compile(r"\d+(?:\.\d+)?")


def read_decimal_cell(raw: str) -> float | None:
    """A decimal number with a point or, as Indonesian spreadsheets write it, a comma."""
    value = raw.strip().replace(",", ".")
    if not value:
        return None
    if not _DECIMAL.fullmatch(value):
        raise CellError("number", "must be a number that is not negative")
    return float(value)


_THOUSANDS = re.compile(r"\d{1,3}(?:([.,])\d{3})(?:\1\d{3})*")
_WHOLE = re.compile(r"(\d+)(?:\.0+)?")


def read_whole_cell(raw: str) -> int | None:
    """A whole number, with thousands grouped (`1.300` VA is 1300: a 1.3 VA connection does not exist)."""
    value = raw.strip()
    if not value:
        return None
    if _THOUSANDS.fullmatch(value):
        return int(value.replace(".", "").replace(",", ""))
    if match := _WHOLE.fullmatch(value):
        return int(match[1])
    raise CellError("number", "must be a whole number that is not negative")


def read_desil_cell(raw: str) -> int | None:
    value = raw.strip()
    if not value:
        return None
    match = _WHOLE.fullmatch(value)
    if match is None or not 1 <= int(match[1]) <= 10:
        raise CellError("desil", "must be a decile from 1 to 10")
    return int(match[1])


def read_village_cell(raw: str) -> str:
    value = "".join(raw.split())
    if not value:
        raise CellError("required", "is required")
    if value.endswith(".0") and value.count(".") == 1:  # a code saved as a number
        value = value[:-2]
    value = value.replace(".", "")
    if len(value) != 10 or not (value.isascii() and value.isdigit()):
        raise CellError("region_code", "must be a 10-digit Kemendagri village code")
    if value not in VILLAGES:
        raise CellError("region_code", "is not a desa or kelurahan of the Kemendagri table")
    return value


_PROGRAMME = re.compile(r"[a-z][a-z0-9-]{1,31}")


def read_programme_cell(raw: str) -> str:
    value = raw.strip().lower() or DEFAULT_PROGRAMME
    if not _PROGRAMME.fullmatch(value):
        raise CellError("programme", "must be a programme code such as jamsosratu or jscm")
    return value


def read_name_cell(raw: str) -> str:
    value = " ".join(raw.split())
    if not value:
        raise CellError("required", "is required")
    if len(value) > MAX_NAME:
        raise CellError("too_long", f"must be at most {MAX_NAME} characters")
    return value


def read_address_cell(raw: str) -> str:
    value = " ".join(raw.split())
    if len(value) > MAX_ADDRESS:
        raise CellError("too_long", f"must be at most {MAX_ADDRESS} characters")
    return value


_NIK_STATUS = {"PENDING": "pending", "BELUM PADAN": "pending", "UNMATCHED": "unmatched",
               "TIDAK PADAN": "unmatched", "VERIFIED": "verified", "PADAN": "verified"}


def read_status_cell(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    status = _NIK_STATUS.get(" ".join(value.upper().split()))
    if status is None:
        raise CellError("status_nik", "must be empty, pending or unmatched")
    return status


def _welfare_reader(field: str) -> Callable[[str], Any]:
    """The cell reader of a WelfareIndicators field, by its type: so a new field needs no code here."""
    types = get_args(WelfareIndicators.model_fields[field].annotation)
    if bool in types:
        return read_flag_cell
    if int in types:
        return read_whole_cell
    if float in types:
        return read_decimal_cell
    raise TypeError(f"no cell reader for WelfareIndicators.{field}")


_WELFARE_READERS = tuple((field, _welfare_reader(field)) for field in WELFARE_COLUMNS)

# Cells as nearly every export writes them, read without calling a reader: most of a row's cost is in calls.
_PLAIN_MEMBER_FLAGS = {"Y": True, "N": False, "": False}
_PLAIN_WELFARE = {read_flag_cell: {"Y": True, "N": False, "": None}, read_whole_cell: {"": None},
                  read_decimal_cell: {"": None}}


# ---- rows and households ----------------------------------------------------------------------------

class _Columns:
    """Where each column is in a row; an absent optional column points at the empty cell appended last."""

    def __init__(self, header: list[str]) -> None:
        names = [name.strip().lstrip("\ufeff").strip().lower() for name in header]
        missing = [column for column in REQUIRED_COLUMNS if column not in names]
        if missing:
            raise RegisterFileError(f"the header lacks the required columns {', '.join(missing)}")
        self.width = len(names)
        found = {name: names.index(name) for name in COLUMNS if name in names}  # the first of repeats
        self.of = {name: found.get(name, self.width) for name in COLUMNS}
        self.welfare = tuple((field, self.of[field], reader, _PLAIN_WELFARE[reader])
                             for field, reader in _WELFARE_READERS)

    def fit(self, row: list[str]) -> list[str]:
        """The row cut or padded to the header's width, plus the empty cell of absent columns."""
        if len(row) != self.width:
            row = row[:self.width] + [""] * (self.width - len(row))
        row.append("")
        return row


class _Household:
    """The rows of one household while they are read: what each says, and what is broken."""

    def __init__(self, register_id: str, today: date) -> None:
        self.register_id, self.today = register_id, today
        self.problems: list[RowProblem] = []
        self.members: list[dict[str, Any]] = []
        self.rows: list[int] = []
        self.heads: list[tuple[int, list[str]]] = []
        self.relations_read = True

    def cell(self, row_no: int, column: str, read: Callable[[str], Any], raw: str) -> Any:
        try:
            return read(raw)
        except CellError as bad:
            self.problems.append(RowProblem(row_no, self.register_id, column, bad.rule, f"{column} {bad.reason}"))
            return None

    def add_row(self, row_no: int, row: list[str], at: _Columns) -> None:
        # Each cell as nearly every export writes it is read inline; anything else goes to its reader,
        # which tidies it or names the rule it breaks (the import reads millions of rows).
        cell, of, plain = self.cell, at.of, _PLAIN_MEMBER_FLAGS
        raw = row[of["nik"]]
        nik = raw if len(raw) == 16 and raw.isdigit() and raw.isascii() else cell(row_no, "nik", read_nik_cell, raw)
        raw = row[of["status_nik"]]
        status = cell(row_no, "status_nik", read_status_cell, raw) if raw else None
        raw = row[of["nama"]]
        name = " ".join(raw.split())
        if not name or len(name) > MAX_NAME:
            name = cell(row_no, "nama", read_name_cell, raw)
        raw = row[of["jenis_kelamin"]]
        sex = _SEX.get(raw) or cell(row_no, "jenis_kelamin", read_sex_cell, raw)
        raw = row[of["tanggal_lahir"]]
        born = None
        if len(raw) == 10 and raw[2] == "/" and raw[5] == "/" and (digits := raw[:2] + raw[3:5] + raw[6:]).isdigit() \
                and digits.isascii():
            try:
                born = date(int(raw[6:]), int(raw[3:5]), int(raw[:2]))
            except ValueError:
                pass
        if born is None:
            born = cell(row_no, "tanggal_lahir", read_date_cell, raw)
        raw = row[of["hubungan"]]
        relation = _RELATION.get(raw) or cell(row_no, "hubungan", read_relation_cell, raw)
        raw = row[of["sekolah"]]
        in_school = plain[raw] if raw in plain else cell(row_no, "sekolah", _member_flag, raw)
        raw = row[of["hamil"]]
        pregnant = plain[raw] if raw in plain else cell(row_no, "hamil", _member_flag, raw)
        raw = row[of["disabilitas"]]
        disability = plain[raw] if raw in plain else cell(row_no, "disabilitas", _member_flag, raw)
        if born is not None and not OLDEST_BIRTH_DATE <= born <= self.today:
            self._problem(row_no, "tanggal_lahir", "birth_date", "tanggal_lahir must lie between 1900 and today")
        if pregnant and sex == "M":
            self._problem(row_no, "hamil", "pregnant_sex", "hamil is Y for a man: only a woman can be pregnant")
        if nik is None and status == "verified":
            self._problem(row_no, "status_nik", "status_nik", "status_nik says verified but the row has no NIK")
        if relation is None:
            self.relations_read = False
        elif relation == "head":
            self.heads.append((row_no, row))
        self.rows.append(row_no)
        self.members.append({
            "name": name, "sex": sex, "birth_date": born, "relation": relation,
            "nik": nik, "nik_status": status or ("verified" if nik else "pending"),
            "in_school": in_school, "pregnant": pregnant, "disability": disability,
        })

    def _problem(self, row_no: int, column: str, rule: str, reason: str) -> None:
        self.problems.append(RowProblem(row_no, self.register_id, column, rule, reason))

    def result(self, first_row: int, at: _Columns) -> Iterator[FileHousehold | RowProblem]:
        if not self.members:  # rows without an id_dtks: nothing to check but that
            yield from self.problems
            return
        if len(self.members) > MAX_MEMBERS:
            self._problem(first_row, "id_dtks", "members",
                          f"id_dtks holds more than {MAX_MEMBERS} rows: were households merged?")
        if self.relations_read and len(self.heads) != 1:
            if self.heads:
                for row_no, _ in self.heads[1:]:
                    self._problem(row_no, "hubungan", "one_head", "hubungan names a second head of the household")
            else:
                self._problem(first_row, "hubungan", "one_head", "hubungan names no head (KEPALA KELUARGA)")
        household = self._household_columns(at) if len(self.heads) == 1 else None
        if self.problems:
            self.problems.sort(key=lambda problem: problem.row)  # stable: within a row, column order
            yield from self.problems
        elif household is not None:
            desil, registration = household
            yield FileHousehold(self.register_id, first_row, desil, registration, tuple(self.rows))

    def _household_columns(self, at: _Columns) -> tuple[int | None, dict[str, Any]]:
        """The household's columns, read from its head's row."""
        row_no, row = self.heads[0]
        cell, of = self.cell, at.of
        programme = cell(row_no, "program", read_programme_cell, row[of["program"]])
        registration = {
            "request_id": household_request_id(self.register_id, programme or DEFAULT_PROGRAMME),
            "programme": programme,
            "region_code": cell(row_no, "kode_desa", read_village_cell, row[of["kode_desa"]]),
            "kk_number": cell(row_no, "no_kk", read_kk_cell, row[of["no_kk"]]),
            "address": cell(row_no, "alamat", read_address_cell, row[of["alamat"]]),
            "members": self.members,
            "welfare": {field: plain[raw] if (raw := row[index]) in plain else cell(row_no, field, read, raw)
                        for field, index, read, plain in at.welfare},
        }
        return cell(row_no, "desil", read_desil_cell, row[of["desil"]]), registration


def read_households(lines: Iterable[str], *, today: date | None = None) -> Iterator[FileHousehold | RowProblem]:
    """Each household of a register file, or the problems of its broken rows, as the lines stream in.

    A household is yielded once the first row of the next one is read: the file is never held.
    Blank rows are skipped (and counted, as a spreadsheet counts them). `today` bounds birth dates.
    Raises RegisterFileError when the header is absent or lacks a required column.
    """
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise RegisterFileError("the file is empty: a header row is required")
    at = _Columns(header)
    today = today or programme_today()
    id_index = at.of["id_dtks"]
    current: _Household | None = None
    first_row = 0
    for row_no, row in enumerate(reader, start=2):
        if not any(row):
            continue
        row = at.fit(row)
        register_id = row[id_index].strip()
        if current is None or register_id != current.register_id:
            if current is not None:
                yield from current.result(first_row, at)
            current, first_row = _Household(register_id, today), row_no
        if not register_id:
            current.problems.append(RowProblem(row_no, "", "id_dtks", "required", "id_dtks is required"))
            continue
        current.add_row(row_no, row, at)
    if current is not None:
        yield from current.result(first_row, at)
