"""Importing a DTKS-style register file: good households go in, each broken row is reported without its
values, and importing the same file again changes nothing."""

from __future__ import annotations

import json
import re

import pytest
from jsonschema import Draft202012Validator

from ejsika_contracts import HouseholdRegisteredV2
from ejsika_contracts.schemas import schema_path
from ejsika_registry import imports_api
from ejsika_registry.synthetic import generate

pytestmark = pytest.mark.infra

CSV = {"content-type": "text/csv"}


async def _count(registry, sql: str) -> int:
    return await registry.pool.fetchval(sql)


async def test_a_register_file_goes_in_with_a_report_of_its_bad_rows_and_a_reimport_changes_nothing(registry):
    text = "".join(generate(300, seed=5, bad_rate=0.05, duplicate_rate=0.02))
    async with registry.client("operator", programme="jamsosratu", sub="operator-banten") as http:
        first = await http.post("/imports", content=text.encode(), headers=CSV)
        assert first.status_code == 200, first.text
        report = first.json()
        again = await http.post("/imports", content=text.encode(), headers=CSV)
    assert again.status_code == 200, again.text

    assert report["households_read"] == 300 + report["households_read"] - 300  # sanity of the shape
    assert report["registered"] + report["already_registered"] + report["rejected_households"] == report["households_read"]
    assert report["registered"] > 200 and report["rejected_households"] >= 5
    assert await _count(registry, "SELECT count(*) FROM households") == report["registered"]
    assert await _count(registry, "SELECT count(*) FROM household_history WHERE source = 'import'"
                                  " AND actor = 'operator-banten'") == report["registered"]

    # each problem names a row, a column and a rule, and never a NIK or a name of the file
    rows = text.splitlines()
    niks = set(re.findall(r"\b\d{16}\b", text))
    for problem in report["problems"]:
        assert 2 <= problem["row"] <= len(rows) and problem["field"] and problem["rule"]
    assert not any(nik in first.text for nik in niks)
    names = {line.split(",")[3] for line in rows[1:] if len(line.split(",")) > 3}
    assert not any(f'"{name}"' in first.text for name in names if len(name) > 3)

    # Kota Cilegon's JSCM households are not a Jamsosratu operator's to import: reported, not stored
    assert any(p["rule"] == "programme_scope" and p["field"] == "program" for p in report["problems"])

    second = again.json()
    assert second["registered"] == 0 and second["already_registered"] == report["registered"]
    assert second["problems"] == report["problems"]
    events = await registry.outbox()
    assert len([e for e in events if e["type"] == "household.registered"]) == report["registered"]


async def test_a_file_that_is_not_a_register_is_refused_whole(registry):
    async with registry.client("operator", programme="jamsosratu") as http:
        no_header = await http.post("/imports", content=b"a,b\n1,2\n", headers=CSV)
        assert no_header.status_code == 422 and no_header.json()["errors"][0]["rule"] == "register_file"
        wrong_type = await http.post("/imports", content=b"{}", headers={"content-type": "application/json"})
        assert wrong_type.status_code == 415
    async with registry.client("supervisor") as http:
        assert (await http.post("/imports", content=b"x", headers=CSV)).status_code == 403


def _household_rows(text: str, register_id: str, as_id: str) -> list[str]:
    """The rows of one household of a file, under another register id."""
    return [line.replace(register_id, as_id, 1) for line in text.splitlines(keepends=True)[1:]
            if line.startswith(register_id + ",")]


def _jamsosratu_head(text: str) -> tuple[str, str]:
    """The register id and the head's NIK of the file's first Jamsosratu household."""
    for line in text.splitlines()[1:]:
        cells = line.split(",")
        if cells[4].strip().lower() in ("", "jamsosratu") and "KEPALA" in line.upper():
            return cells[0], re.search(r"\d{16}", cells[21]).group()
    raise AssertionError("no Jamsosratu household")


async def test_a_person_active_elsewhere_is_reported_naming_that_household_and_the_rest_goes_in(registry):
    text = "".join(generate(40, seed=8, bad_rate=0.0, duplicate_rate=0.0))
    header = text.splitlines(keepends=True)[0]
    other = "".join(generate(10, seed=99, bad_rate=0.0, duplicate_rate=0.0))
    known_id, known_nik = _jamsosratu_head(text)
    other_id, other_nik = _jamsosratu_head(other)
    # the same people under new register ids: in the registry already, and twice in this file
    file = header + "".join(_household_rows(other, other_id, "9000000001") + _household_rows(other, other_id, "9000000002")
                            + _household_rows(text, known_id, "9000000003"))
    async with registry.client("operator", programme="jamsosratu") as http:
        report = (await http.post("/imports", content=text.encode(), headers=CSV)).json()
        second = await http.post("/imports", content=file.encode(), headers=CSV)
    assert report["registered"] > 0
    result = second.json()
    assert (result["registered"], result["rejected_households"]) == (1, 2), result
    clashes = {p["register_id"]: p for p in result["problems"] if p["rule"] == "nik_registered"}
    assert set(clashes) == {"9000000002", "9000000003"} and all(p["field"] == "nik" for p in clashes.values())
    known = await registry.pool.fetchval("SELECT household_id FROM members WHERE nik = $1", known_nik)
    first_of_twice = await registry.pool.fetchval("SELECT household_id FROM members WHERE nik = $1", other_nik)
    assert str(known) in clashes["9000000003"]["reason"]  # the household, never the person
    assert str(first_of_twice) in clashes["9000000002"]["reason"]
    assert not any(known_nik in p["reason"] or other_nik in p["reason"] for p in result["problems"])


async def test_a_big_file_is_imported_by_a_worker_process_with_every_row_an_import_writes(
        registry, database_url, monkeypatch):
    monkeypatch.setattr(imports_api, "WORKER_MIN_BYTES", 0)
    monkeypatch.setattr(registry.service.settings, "database_url", database_url)
    text = "".join(generate(300, seed=5, bad_rate=0.05, duplicate_rate=0.02))
    async with registry.client("operator", programme="jamsosratu", sub="operator-banten") as http:
        first = await http.post("/imports", content=text.encode(), headers=CSV)
        assert first.status_code == 200, first.text
        monkeypatch.setattr(imports_api, "WORKER_MIN_BYTES", 1 << 40)  # the same file again, in the registry
        again = (await http.post("/imports", content=text.encode(), headers=CSV)).json()
    report = first.json()
    assert report["registered"] > 200 and report["rejected_households"] >= 5
    assert again["registered"] == 0 and again["already_registered"] == report["registered"]
    assert again["problems"] == report["problems"]
    registered = report["registered"]
    for table in ("households", "household_scope", "enrolments", "duplicate_checks", "processing_records"):
        assert await _count(registry, f"SELECT count(*) FROM {table}") == registered, table
    assert await _count(registry, "SELECT count(*) FROM household_history WHERE source = 'import'"
                                  " AND actor = 'operator-banten' AND version = 1") == registered
    events = [e for e in await registry.outbox() if e["type"] == "household.registered"]
    validator = Draft202012Validator(json.loads(schema_path(HouseholdRegisteredV2).read_text()),
                                     format_checker=Draft202012Validator.FORMAT_CHECKER)
    for event in events:
        validator.validate(event)
    assert len(events) == registered and {e["correlation_id"] for e in events} == {report["correlation_id"]}
    members = await _count(registry, "SELECT count(*) FROM members")
    assert members == sum(len(e["data"]["members"]) for e in events)
    assert await _count(registry, "SELECT count(*) FROM members WHERE nik IS NOT NULL AND nik_digest IS NULL") == 0
