"""Correcting a household: If-Match against lost updates, old and new values in the history, reads as of
a past moment, and the event that tells the other services."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

pytestmark = pytest.mark.infra


async def test_a_change_needs_the_version_it_was_based_on_and_a_stale_one_changes_nothing(registry):
    (household,) = await registry.register()
    url = f"/households/{household['id']}"
    async with registry.client("operator") as http:
        read = await http.get(url)
        assert read.status_code == 200 and read.headers["etag"] == '"1"'

        missing = await http.patch(url, json={"address": "Jl. Baru 1"})
        assert missing.status_code == 428
        first = await http.patch(url, json={"address": "Jl. Baru 1"}, headers={"If-Match": read.headers["etag"]})
        assert first.status_code == 200, first.text
        assert first.headers["etag"] == '"2"' and first.json()["address"] == "Jl. Baru 1"

        # a second caseworker still holds version 1: refused, told the current version, nothing changed
        second = await http.patch(url, json={"address": "Jl. Lain 2"}, headers={"If-Match": '"1"'})
        assert second.status_code == 412 and second.headers["etag"] == '"2"'
        assert (await http.get(url)).json()["address"] == "Jl. Baru 1"
        malformed = await http.patch(url, json={"address": "x"}, headers={"If-Match": "*"})
        assert malformed.status_code == 400


async def test_history_keeps_who_changed_what_from_which_value_to_which(registry):
    (household,) = await registry.register()
    url = f"/households/{household['id']}"
    flipped = not household["welfare"].get("no_electricity", False)
    async with registry.client("operator", sub="operator-7") as http:
        answer = await http.patch(url, headers={"If-Match": '"1"'}, json={
            "address": "Jl. Baru 1", "kk_number": "3672011505200002", "reason": "moved within the village",
            "welfare": {"no_electricity": flipped, "installed_power_va": None}})
        assert answer.status_code == 200, answer.text
        page = (await http.get(f"{url}/history")).json()
    registered, updated = page["items"]
    assert registered["change"] == "registered" and registered["version"] == 1
    assert updated["change"] == "updated" and updated["version"] == 2
    assert updated["actor"] == "operator-7" and updated["source"] == "operator"
    assert updated["reason"] == "moved within the village"
    changes = updated["changes"]
    assert changes["address"] == {"old": household["address"], "new": "Jl. Baru 1"}
    assert changes["kk_number"] == {"old": household["kk_number"], "new": "3672011505200002"}
    assert changes["welfare"]["new"]["no_electricity"] is flipped
    assert changes["welfare"]["old"] == household["welfare"]
    assert "installed_power_va" not in changes["welfare"]["new"]  # null in the merge patch: not observed
    assert set(changes) == {"address", "kk_number", "welfare"}

    (event,) = [e for e in await registry.outbox() if e["type"] == "household.updated"]
    assert event["subject"] == str(household["id"]) and event["data"]["version"] == 2
    assert event["data"]["changed"] == ["address", "kk_number", "welfare"]
    assert event["data"]["address"] == "Jl. Baru 1" and event["data"]["region_code"] is None


async def test_a_change_to_nothing_changes_nothing(registry):
    (household,) = await registry.register()
    async with registry.client("operator") as http:
        same = await http.patch(f"/households/{household['id']}", headers={"If-Match": '"1"'},
                                json={"address": household["address"]})
    assert same.status_code == 200 and same.headers["etag"] == '"1"'
    assert [e["type"] for e in await registry.outbox()] == ["household.registered"]


async def test_a_household_read_as_of_a_past_moment_is_as_it_was_then(registry):
    (household,) = await registry.register()
    url = f"/households/{household['id']}"
    registered_at = household["registered_at"]
    async with registry.client("operator") as http:
        marks = []
        for version, address in enumerate(["Jl. Dua", "Jl. Tiga"], start=1):
            await asyncio.sleep(0.01)  # each change its own moment: as_of tells them apart
            marks.append(datetime.now(timezone.utc))
            await asyncio.sleep(0.01)
            answer = await http.patch(url, headers={"If-Match": f'"{version}"'}, json={"address": address})
            assert answer.status_code == 200, answer.text

        async def as_of(moment: datetime) -> dict:
            answer = await http.get(url, params={"as_of": moment.isoformat()})
            assert answer.status_code == 200, answer.text
            return answer.json()

        first, second = await as_of(marks[0]), await as_of(marks[1])
        now = await as_of(datetime.now(timezone.utc))
        assert (first["address"], first["version"]) == (household["address"], 1)
        assert (second["address"], second["version"]) == ("Jl. Dua", 2)
        assert (now["address"], now["version"]) == ("Jl. Tiga", 3)
        assert first["members"] == now["members"]  # members did not change

        before = await http.get(url, params={"as_of": (registered_at - timedelta(seconds=1)).isoformat()})
        assert before.status_code == 404
        day = await http.get(url, params={"as_of": "2999-12-31"})
        assert day.status_code == 200 and day.json()["address"] == "Jl. Tiga"
        naive = await http.get(url, params={"as_of": "2026-01-01T00:00:00"})
        assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "query.as_of"


async def test_history_is_read_page_by_page_in_order(registry):
    (household,) = await registry.register()
    url = f"/households/{household['id']}"
    async with registry.client("operator") as http:
        for version in range(1, 6):
            answer = await http.patch(url, headers={"If-Match": f'"{version}"'}, json={"address": f"Jl. {version}"})
            assert answer.status_code == 200
        versions, cursor = [], None
        while True:
            page = (await http.get(f"{url}/history", params={"limit": 2, **({"cursor": cursor} if cursor else {})})).json()
            versions += [item["version"] for item in page["items"]]
            if not (cursor := page["next_cursor"]):
                break
        assert versions == [1, 2, 3, 4, 5, 6]
        bad = await http.get(f"{url}/history", params={"cursor": "not-ours"})
        assert bad.status_code == 422


async def test_rules_of_a_change_are_checked_and_name_the_field_never_the_value(registry):
    (household,) = await registry.register()
    async with registry.client("operator") as http:
        answer = await http.patch(f"/households/{household['id']}", headers={"If-Match": '"1"'},
                                  json={"region_code": "3699012001", "kk_number": "3672013202200001"})
    assert answer.status_code == 422
    problem = answer.json()
    assert {(e["field"], e["rule"]) for e in problem["errors"]} == {("region_code", "region_code"),
                                                                    ("kk_number", "kk_issue_date")}
    assert "3699012001" not in answer.text and "3672013202200001" not in answer.text


async def test_a_village_outside_the_programme_and_an_assignment_by_a_pendamping_are_refused(registry):
    (household,) = await registry.register()
    url = f"/households/{household['id']}"
    async with registry.client("operator") as http:
        outside = await http.patch(url, headers={"If-Match": '"1"'}, json={"region_code": "3602012002"})
    assert outside.status_code == 422 and outside.json()["errors"][0]["rule"] == "programme_region"
    async with registry.client("pendamping", sub="pendamping-x") as http:
        # not in this pendamping's caseload: not theirs to know about
        assert (await http.patch(url, headers={"If-Match": '"1"'}, json={"address": "x"})).status_code == 404
    async with registry.client("supervisor") as http:
        assigned = await http.patch(url, headers={"If-Match": '"1"'}, json={"pendamping_id": "pendamping-x"})
        assert assigned.status_code == 200
    async with registry.client("pendamping", sub="pendamping-x") as http:
        own = await http.patch(url, headers={"If-Match": '"2"'}, json={"pendamping_id": "pendamping-y"})
        assert own.status_code == 403
