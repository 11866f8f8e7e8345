"""The register file: each spreadsheet quirk undone or refused by its rule, households grouped, read as a stream."""

from collections.abc import Iterator
from datetime import date
from uuid import UUID

import pytest
from hypothesis import given, strategies as st

from ejsika_contracts import WelfareIndicators
from ejsika_registry.register_file import (
    WELFARE_COLUMNS, CellError, FileHousehold, RegisterFileError, RowProblem, household_request_id,
    read_date_cell, read_decimal_cell, read_households, read_nik_cell, read_whole_cell,
)

TODAY = date(2026, 11, 28)
HEAD_NIK = "3601011708850001"
WIFE_NIK = "3601015203880002"
CHILD_NIK = "3601011005120003"
KK = "3601012001150001"
VILLAGE = "3601012001"

HEADER = ["id_dtks", "no_kk", "nik", "status_nik", "nama", "jenis_kelamin", "tanggal_lahir", "hubungan",
          "kode_desa", "alamat", "program", "sekolah", "hamil", "disabilitas", "desil", *WELFARE_COLUMNS]


def person(register_id: str = "D1", **cells: str) -> dict[str, str]:
    """A head's row unless told otherwise; welfare cells empty."""
    row = {"id_dtks": register_id, "no_kk": KK, "nik": HEAD_NIK, "status_nik": "", "nama": "MAWARDI ZAKARIA",
           "jenis_kelamin": "L", "tanggal_lahir": "17/08/1985", "hubungan": "KEPALA KELUARGA",
           "kode_desa": VILLAGE, "alamat": "KP. SUKAMAJU RT 002 RW 003", "program": "", "sekolah": "N",
           "hamil": "N", "disabilitas": "N", "desil": "2"}
    row.update(cells)
    return row


def wife(register_id: str = "D1", **cells: str) -> dict[str, str]:
    return person(register_id, **{"nik": WIFE_NIK, "nama": "SITI AISYAH", "jenis_kelamin": "P",
                                  "tanggal_lahir": "12/03/1988", "hubungan": "ISTRI"} | cells)


def child(register_id: str = "D1", **cells: str) -> dict[str, str]:
    return person(register_id, **{"nik": CHILD_NIK, "nama": "DEDI", "tanggal_lahir": "10/05/2012",
                                  "hubungan": "ANAK", "sekolah": "Y"} | cells)


def lines(*rows: dict[str, str], header: list[str] = HEADER) -> list[str]:
    """The CSV lines of the rows, quoting only what needs it."""
    def cell(value: str) -> str:
        return f'"{value}"' if "," in value or '"' in value else value
    return [",".join(header) + "\n"] + [",".join(cell(row.get(c, "")) for c in header) + "\n" for row in rows]


def read(*rows: dict[str, str], header: list[str] = HEADER) -> list[FileHousehold | RowProblem]:
    return list(read_households(lines(*rows, header=header), today=TODAY))


def one_household(*rows: dict[str, str]) -> FileHousehold:
    [household] = read(*rows)
    assert isinstance(household, FileHousehold), household
    return household


def problems(*rows: dict[str, str]) -> list[RowProblem]:
    found = read(*rows)
    assert found and all(isinstance(item, RowProblem) for item in found), found
    return found  # type: ignore[return-value]


def refused(field: str, rule: str, *rows: dict[str, str]) -> RowProblem:
    """The one problem of the rows: on `field` by `rule`, and never repeating a NIK, a No. KK or a name."""
    [problem] = problems(*rows)
    assert (problem.field, problem.rule) == (field, rule), problem
    said = repr(problem)
    for row in rows:
        for column in ("nik", "no_kk", "nama", "tanggal_lahir"):
            value = row.get(column, "").strip()
            assert len(value) < 4 or value not in said, f"the problem echoes {column}"
    return problem


# ---- a household read -------------------------------------------------------------------------------

def test_a_household_becomes_a_registration_body():
    household = one_household(person(), wife(), child())
    registration = household.registration
    assert household.register_id == "D1"
    assert household.first_row == 2, "the header is row 1"
    assert household.desil == 2
    assert registration["request_id"] == household_request_id("D1", "jamsosratu")
    assert registration["programme"] == "jamsosratu", "the default programme"
    assert (registration["region_code"], registration["kk_number"]) == (VILLAGE, KK)
    assert registration["address"] == "KP. SUKAMAJU RT 002 RW 003"
    head, spouse, son = registration["members"]
    assert head == {"name": "MAWARDI ZAKARIA", "sex": "M", "birth_date": date(1985, 8, 17), "relation": "head",
                    "nik": HEAD_NIK, "nik_status": "verified", "in_school": False, "pregnant": False,
                    "disability": False}
    assert (spouse["relation"], spouse["sex"], spouse["birth_date"]) == ("spouse", "F", date(1988, 3, 12))
    assert (son["relation"], son["in_school"]) == ("child", True)
    assert registration["welfare"] == dict.fromkeys(WELFARE_COLUMNS), "empty welfare cells are not observed"


def test_welfare_columns_are_the_fields_of_welfare_indicators_read_from_the_heads_row():
    assert WELFARE_COLUMNS == tuple(WelfareIndicators.model_fields)
    cells = {field: "Y" for field in WELFARE_COLUMNS} | {
        "floor_area_per_person_m2": "7,5", "installed_power_va": "1.300", "no_electricity": "n",
        "no_private_toilet": " ya ", "unprotected_water": "TIDAK", "cannot_pay_clinic": ""}
    household = one_household(wife(**{field: "N" for field in WELFARE_COLUMNS if field != "installed_power_va"}),
                              person(**cells))
    welfare = household.registration["welfare"]
    assert welfare["floor_area_per_person_m2"] == 7.5
    assert welfare["installed_power_va"] == 1300
    assert [welfare[f] for f in ("no_electricity", "no_private_toilet", "unprotected_water")] == [False, True, False]
    assert welfare["cannot_pay_clinic"] is None
    assert welfare["earth_or_bamboo_floor"] is True, "the head's row, not the first row"
    WelfareIndicators(**welfare)


def test_household_columns_may_be_empty_on_members_rows():
    household = one_household(person(), child(no_kk="", kode_desa="", alamat="", desil="", program=""))
    assert household.registration["kk_number"] == KK


def test_programme_is_read_and_gives_the_request_id():
    household = one_household(person(register_id="3672-9", program=" JSCM ", kode_desa="3672011001"))
    assert household.registration["programme"] == "jscm"
    assert household.registration["request_id"] == household_request_id("3672-9", "jscm")


def test_request_id_is_stable_and_differs_by_programme_and_household():
    assert household_request_id("D1", "jamsosratu") == household_request_id("D1", "jamsosratu")
    assert household_request_id("D1", "jamsosratu") != household_request_id("D1", "jscm")
    assert household_request_id("D1", "jamsosratu") != household_request_id("D2", "jamsosratu")
    # pinned: a changed namespace would re-import every household of every file as a new one
    assert household_request_id("D1", "jamsosratu") == UUID("3c9addec-8672-5a0b-960a-517667aebf0c")


# ---- quirks undone ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", [HEAD_NIK, f" {HEAD_NIK} ", f"{HEAD_NIK}.0", f"'{HEAD_NIK}", "3601 0117 0885 0001"])
def test_a_nik_saved_as_a_number_or_with_spaces_keeps_its_digits(cell):
    assert one_household(person(nik=cell)).registration["members"][0]["nik"] == HEAD_NIK


@pytest.mark.parametrize("cell", [f"{KK}.0", f" {KK}", f"'{KK}"])
def test_a_kk_saved_as_a_number_keeps_its_digits(cell):
    assert one_household(person(no_kk=cell)).registration["kk_number"] == KK


@pytest.mark.parametrize("cell", ["17/08/1985", "17-08-1985", "17.08.1985", "1985-08-17", " 1985-08-17 00:00:00 ",
                                  "17/8/1985"])
def test_dates_in_the_formats_offices_use(cell):
    assert one_household(person(tanggal_lahir=cell)).registration["members"][0]["birth_date"] == date(1985, 8, 17)


def test_day_first_always():
    assert one_household(person(tanggal_lahir="5/8/1985")).registration["members"][0]["birth_date"] == \
        date(1985, 8, 5)


@pytest.mark.parametrize(("cell", "sex"), [("L", "M"), ("l", "M"), (" LAKI-LAKI ", "M"), ("Laki Laki", "M"),
                                           ("P", "F"), ("Perempuan", "F"), ("WANITA", "F")])
def test_sex_as_spreadsheets_write_it(cell, sex):
    assert one_household(person(jenis_kelamin=cell)).registration["members"][0]["sex"] == sex


@pytest.mark.parametrize(("cell", "relation"), [
    ("ISTRI", "spouse"), ("suami", "spouse"), ("Istri / Suami", "spouse"), ("ANAK", "child"),
    ("ANAK  KANDUNG", "child"), (" Anak Tiri", "child"), ("ORANG TUA", "parent"), ("MERTUA", "parent"),
    ("CUCU", "other"), ("FAMILI LAIN", "other"), ("Lainnya", "other"), ("MENANTU", "other"),
])
def test_relations_map_to_the_registrys(cell, relation):
    household = one_household(person(), child(hubungan=cell))
    assert household.registration["members"][1]["relation"] == relation


def test_head_relation_in_any_case():
    assert one_household(person(hubungan=" kepala  keluarga ")).registration["members"][0]["relation"] == "head"


def test_names_kept_as_written_with_spaces_tidied():
    household = one_household(person(nama="  MAWARDI.Z  "), child(nama="Dedi   Kurniawan"))
    assert [m["name"] for m in household.registration["members"]] == ["MAWARDI.Z", "Dedi Kurniawan"]


@pytest.mark.parametrize("cell", ["36.01.01.2001", " 3601012001 ", "3601012001.0", "36.01.01.2001 "])
def test_village_codes_with_dots_or_saved_as_numbers(cell):
    assert one_household(person(kode_desa=cell)).registration["region_code"] == VILLAGE


@pytest.mark.parametrize(("cell", "value"), [("Y", True), ("ya", True), ("1", True), ("N", False),
                                             ("tidak", False), ("0", False), ("", False)])
def test_member_flags(cell, value):
    assert one_household(person(disabilitas=cell)).registration["members"][0]["disability"] is value


def test_a_newborn_without_a_nik_is_pending_and_valid():
    household = one_household(person(), child(nik="", status_nik="PENDING", tanggal_lahir="01/10/2026"),
                              child(nik="", status_nik=""), child(nik=" ", status_nik="unmatched"),
                              child(nik=CHILD_NIK[:-1] + "9", status_nik="pending"))
    statuses = [(m["nik"], m["nik_status"]) for m in household.registration["members"][1:]]
    assert statuses == [(None, "pending"), (None, "pending"), (None, "unmatched"), (CHILD_NIK[:-1] + "9", "pending")]


def test_header_in_any_order_and_case_with_extra_columns_and_a_bom():
    header = ["\ufeffID_DTKS", " Nama ", "pekerjaan", *reversed([c for c in HEADER if c not in ("id_dtks", "nama")])]
    rows = [person() | {"\ufeffID_DTKS": "D1", " Nama ": "MAWARDI", "pekerjaan": "PETANI"}]
    [household] = read(*rows, header=header)
    assert isinstance(household, FileHousehold)
    assert household.registration["members"][0]["name"] == "MAWARDI"


def test_optional_columns_may_be_absent():
    header = ["id_dtks", "no_kk", "nik", "nama", "jenis_kelamin", "tanggal_lahir", "hubungan", "kode_desa", "alamat"]
    [household] = read(person(), header=header)
    assert isinstance(household, FileHousehold)
    assert household.desil is None and household.registration["programme"] == "jamsosratu"


def test_short_rows_read_as_empty_cells():
    text = lines(person())
    text[1] = ",".join(person()[column] for column in HEADER[:10]) + "\n"  # up to alamat
    [household] = read_households(text, today=TODAY)
    assert isinstance(household, FileHousehold)
    assert household.desil is None


# ---- refusals: the row, the column, the rule, never the value ----------------------------------------

@pytest.mark.parametrize("cell", ["3.60101E+15", "360101170885001", "36010117088500011", "3601011708850001.5",
                                  "3601O11708850001", "-"])
def test_a_nik_that_lost_digits_is_refused_never_guessed(cell):
    problem = refused("nik", "nik_format", person(nik=cell))
    assert (problem.row, problem.register_id) == (2, "D1")


@pytest.mark.parametrize(("cell", "rule"), [("3.60101E+15", "kk_format"), ("360101200115001", "kk_format"),
                                            ("", "required")])
def test_a_kk_that_lost_digits_is_refused(cell, rule):
    refused("no_kk", rule, person(no_kk=cell))


@pytest.mark.parametrize(("cell", "rule"), [
    ("31/02/1990", "birth_date"), ("29/02/2023", "birth_date"), ("00/01/1990", "birth_date"),
    ("17/08/85", "date_format"), ("08/17/1985x", "date_format"), ("17 Agustus 1985", "date_format"),
    ("17/08-1985", "date_format"), ("", "required"), ("01/01/2027", "birth_date"), ("31/12/1899", "birth_date"),
])
def test_dates_that_are_no_birth_date(cell, rule):
    refused("tanggal_lahir", rule, person(tanggal_lahir=cell))


@pytest.mark.parametrize(("column", "cell", "rule"), [
    ("jenis_kelamin", "X", "sex"), ("jenis_kelamin", "", "sex"), ("hamil", "T", "yes_no"),
    ("sekolah", "MAYBE", "yes_no"), ("kode_desa", "3601012", "region_code"), ("kode_desa", "3601019999", "region_code"),
    ("kode_desa", "", "required"), ("desil", "11", "desil"), ("desil", "0", "desil"), ("desil", "4,5", "desil"),
    ("program", "JSCM!", "programme"), ("status_nik", "maybe", "status_nik"), ("nama", "  ", "required"),
    ("nama", "A" * 201, "too_long"), ("alamat", "A" * 501, "too_long"),
    ("floor_area_per_person_m2", "-3", "number"), ("installed_power_va", "900 VA", "number"),
    ("no_electricity", "T", "yes_no"),
])
def test_each_cell_rule(column, cell, rule):
    refused(column, rule, person(**{column: cell}))


def test_relation_unknown():
    refused("hubungan", "relation", person(), child(hubungan="TETANGGA"))


def test_a_pregnant_man_is_refused():
    problem = refused("hamil", "pregnant_sex", person(), child(hamil="Y"))
    assert problem.row == 3


def test_a_verified_status_needs_a_nik():
    refused("status_nik", "status_nik", person(), child(nik="", status_nik="verified"))


def test_no_head_is_named_on_the_households_first_row():
    household, problem = read(person(), wife(register_id="D2"), child(register_id="D2"))
    assert isinstance(household, FileHousehold)
    assert problem == RowProblem(3, "D2", "hubungan", "one_head", "hubungan names no head (KEPALA KELUARGA)")


def test_a_second_head_is_named_on_its_row():
    problem = refused("hubungan", "one_head", person(), child(hubungan="KEPALA KELUARGA"))
    assert problem.row == 3


def test_an_unreadable_relation_does_not_also_count_as_no_head():
    refused("hubungan", "relation", person(hubungan="KEPALA?"), child())


def test_a_row_without_a_household_id():
    found = read(person(), child(register_id=""), child(register_id=" "))
    assert isinstance(found[0], FileHousehold)
    assert [(p.row, p.field, p.rule) for p in found[1:]] == [(3, "id_dtks", "required"), (4, "id_dtks", "required")]


def test_a_broken_household_gives_one_problem_per_broken_field_and_no_household():
    found = problems(person(nik="3.60101E+15", nama=""), wife(tanggal_lahir="31/02/1988"), child())
    assert [(p.row, p.field, p.rule) for p in found] == [
        (2, "nik", "nik_format"), (2, "nama", "required"), (3, "tanggal_lahir", "birth_date")]
    assert all(p.register_id == "D1" for p in found)


def test_reasons_name_the_column_not_the_value():
    rows = [person(nik="360101170885000", no_kk="360101200115000", tanggal_lahir="31/02/1985", kode_desa="3601019999"),
            wife(hamil="Y", jenis_kelamin="L")]
    found = problems(*rows)
    assert {p.field for p in found} == {"nik", "no_kk", "tanggal_lahir", "kode_desa", "hamil"}
    text = " ".join(f"{p.field} {p.rule} {p.reason}" for p in found)
    for secret in ("360101170885000", "360101200115000", "31/02/1985", "3601019999", WIFE_NIK, "SITI", "MAWARDI"):
        assert secret not in text
    assert all(p.reason.startswith(p.field) for p in found)


def test_too_many_rows_under_one_id():
    found = problems(person(), *[child() for _ in range(30)])
    assert [(p.row, p.field, p.rule) for p in found] == [(2, "id_dtks", "members")]


# ---- households and the stream ------------------------------------------------------------------------

def test_consecutive_rows_of_an_id_are_a_household_and_rows_are_numbered_as_in_a_spreadsheet():
    found = read(person("A"), wife("A"), person("B", nik=WIFE_NIK), person("C"), child("C"), child("C", nik="x"),
                 person("D"))
    assert [(type(item).__name__, item.register_id) for item in found] == [
        ("FileHousehold", "A"), ("FileHousehold", "B"), ("RowProblem", "C"), ("FileHousehold", "D")]
    assert [item.first_row for item in found if isinstance(item, FileHousehold)] == [2, 4, 8]
    assert found[2].row == 7
    assert [len(item.registration["members"]) for item in found if isinstance(item, FileHousehold)] == [2, 1, 1]


def test_blank_rows_are_skipped_and_counted():
    text = lines(person("A"), person("B"))
    text.insert(2, "\n")
    text.insert(3, ",,,\n")
    found = list(read_households(text, today=TODAY))
    assert [item.first_row for item in found] == [2, 5]


def test_each_members_row_is_kept_for_reports_on_a_member():
    text = lines(person("A"), wife("A"), child("A"))
    text.insert(3, "\n")
    [household] = read_households(text, today=TODAY)
    assert household.member_rows == (2, 3, 5)


def test_a_quoted_cell_with_a_comma():
    household = one_household(person(alamat="KP. SUKAMAJU, RT 002 RW 003"))
    assert household.registration["address"] == "KP. SUKAMAJU, RT 002 RW 003"


def test_households_stream_as_the_lines_come():
    consumed = 0

    def source() -> Iterator[str]:
        nonlocal consumed
        rows = lines(*(person(f"H{i}") for i in range(1000)))
        for line in rows:
            consumed += 1
            yield line

    households = read_households(source(), today=TODAY)
    first = next(households)
    assert isinstance(first, FileHousehold) and first.register_id == "H0"
    assert consumed <= 3, "the first household is yielded once the next one starts"
    assert sum(1 for _ in households) == 999


def test_a_file_without_its_header_or_required_columns():
    with pytest.raises(RegisterFileError):
        list(read_households([]))
    with pytest.raises(RegisterFileError) as error:
        list(read_households(lines(person(), header=[c for c in HEADER if c not in ("nik", "kode_desa")])))
    assert "nik" in str(error.value) and "kode_desa" in str(error.value)


# ---- properties of the normalisation --------------------------------------------------------------------

@given(st.dates(min_value=date(1000, 1, 1), max_value=date(9999, 12, 31)),
       st.sampled_from(["{d:02d}/{m:02d}/{y}", "{d}/{m}/{y}", "{d:02d}-{m:02d}-{y}", "{d}.{m}.{y}",
                        "{y}-{m:02d}-{d:02d}", "{y}-{m}-{d}", "{y}-{m:02d}-{d:02d} 00:00:00"]),
       st.sampled_from(["", " ", "\t"]))
def test_every_date_in_every_format_reads_back(day, form, pad):
    cell = pad + form.format(d=day.day, m=day.month, y=day.year) + pad
    assert read_date_cell(cell) == day


@given(st.text(alphabet="0123456789", min_size=16, max_size=16),
       st.sampled_from(["{}", " {} ", "{}.0", "'{}", "'{}.0"]))
def test_every_nik_dressed_by_a_spreadsheet_keeps_its_digits(nik, form):
    assert read_nik_cell(form.format(nik)) == nik


@given(st.text(alphabet="0123456789", min_size=1, max_size=30).filter(lambda digits: len(digits) != 16))
def test_a_nik_of_another_length_is_refused(digits):
    with pytest.raises(CellError) as error:
        read_nik_cell(digits)
    assert error.value.rule == "nik_format"
    assert len(digits) < 3 or digits not in str(error.value), "the reason never echoes the value"


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(["plain", "dot-zero", "dots", "commas"]))
def test_whole_numbers_with_their_thousands_grouped(number, form):
    if form == "plain":
        cell = str(number)
    elif form == "dot-zero":
        cell = f"{number}.0"
    else:
        cell = f"{number:,}".replace(",", "." if form == "dots" else ",")
    assert read_whole_cell(cell) == number


@given(st.integers(min_value=0, max_value=100_000), st.integers(min_value=1, max_value=2), st.booleans())
def test_decimals_with_a_point_or_a_comma(hundredths, places, comma):
    number = hundredths / 100
    cell = f"{number:.{places}f}"
    assert read_decimal_cell(cell.replace(".", ",") if comma else cell) == float(cell)


def test_a_register_file_is_read_as_lines_of_text_whatever_its_bytes():
    import io

    from ejsika_registry.imports import text_lines

    raw = io.BytesIO("\ufeffid_dtks,nama\r\n1,Siti\x00\r\n".encode() + b"2,Ah\xffmad\r\n3,\xe2\x80\xa8Budi\n")
    lines = list(text_lines(raw))
    # the BOM gone, line ends as "\n", a NUL dropped, a byte that is not UTF-8 replaced, and a Unicode line
    # separator inside a cell kept in its line
    assert lines == ["id_dtks,nama\n", "1,Siti\n", "2,Ah\ufffdmad\n", "3,\u2028Budi\n"]
    assert not raw.closed  # the caller's file is still the caller's


def test_a_register_file_given_up_half_read_leaves_the_file_to_its_owner():
    import io

    from ejsika_registry.imports import text_lines

    raw = io.BytesIO(b"a\nb\nc\n")
    lines = text_lines(raw)
    assert next(lines) == "a\n"
    lines.close()
    assert not raw.closed and raw.read(0) == b""
