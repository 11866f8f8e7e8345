"""Importing a DTKS-style register file: good households go in, each broken row is reported without its
values, and importing the same file again changes nothing."""

from __future__ import annotations

import re

import pytest

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
