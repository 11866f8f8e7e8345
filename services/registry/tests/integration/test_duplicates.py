"""Likely duplicates on the real PostgreSQL: queued by the registration, found in a background batch,
reviewed within the caller's scope, and decided by an operator: a dismissed pair stays dismissed, a
merge ends the duplicate membership with history on both households and an event."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import pytest

from ejsika_registry import duplicates, duplicates_api, households


pytestmark = pytest.mark.infra

BORN = date(1980, 5, 17)
KECAMATAN_CILEGON = "367201"


@pytest.fixture
def registry(registry):
    registry.service.router.include_router(duplicates_api.routes(registry.service))
    return registry


def person(name: str, serial: int | None, relation: str = "other", sex: str = "M", born: date = BORN) -> dict:
    """A member born on `born`; with a NIK of that birth date when `serial` is given, else unmatched."""
    member = {"name": name, "sex": sex, "birth_date": born.isoformat(), "relation": relation}
    if serial is None:
        return {**member, "nik_status": "unmatched"}
    day = born.day + (40 if sex == "F" else 0)
    return {**member, "nik": f"{KECAMATAN_CILEGON}{day:02d}{born:%m%y}{serial:04d}"}


async def register(registry, region: str, *extra: dict, head: dict | None = None, programme: str = "jscm"
                   ) -> dict[str, Any]:
    """A synthetic household of two members at least (so one may leave it), its head replaced by
    `head` if given, with the `extra` members."""
    body = registry.families.registration(programme=programme)
    while len(body["members"]) < 2:
        body = registry.families.registration(programme=programme)
    members = body["members"] if head is None else [head, *[m for m in body["members"] if m["relation"] != "head"]]
    body.update(region_code=region, members=[*members, *extra], programme=programme)
    (household,) = await registry.register_bodies([body], None)
    return household


def member_named(household: dict, name: str) -> UUID:
    (member_id,) = [m for m, v in household["members"].items() if v["name"] == name]
    return UUID(member_id)


async def plant(registry) -> dict[str, Any]:
    """MAWARDI ZAINAL heads a family; "MAWARDI.Z", born the same day, lives without a NIK in another
    family of the same kecamatan. Born that day too: SITI AMINAH nearby, another MAWARDI ZAINAL in
    another kecamatan."""
    kept = await register(registry, "3672011001", head=person("MAWARDI ZAINAL", 1001, relation="head"))
    duplicate = await register(registry, "3672011002", person("MAWARDI.Z", None))
    unrelated = await register(registry, "3672011003", person("SITI AMINAH", 1002, sex="F"))
    elsewhere = await register(registry, "3672021001", person("MAWARDI ZAINAL", 1003))
    return {"kept": kept, "duplicate": duplicate, "unrelated": unrelated, "elsewhere": elsewhere,
            "kept_member": member_named(kept, "MAWARDI ZAINAL"), "duplicate_member": member_named(duplicate, "MAWARDI.Z")}


async def open_pairs(http, **params) -> list[dict]:
    answer = await http.get("/duplicates", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


async def test_registration_queues_the_check_and_the_batch_proposes_the_near_duplicate_only(registry):
    planted = await plant(registry)
    queued = {r["household_id"] for r in await registry.pool.fetch("SELECT household_id FROM duplicate_checks")}
    assert queued == {planted[k]["id"] for k in ("kept", "duplicate", "unrelated", "elsewhere")}
    async with registry.client("operator") as http:
        assert await open_pairs(http) == [], "nothing is compared inside the registration"

        assert await duplicates.check_queued(registry.pool, duplicates.CheckPolicy(batch=3)) == 3
        assert await duplicates.check_queued(registry.pool, duplicates.CheckPolicy(batch=3)) == 1
        assert await duplicates.check_queued(registry.pool) == 0
        assert await registry.pool.fetchval("SELECT count(*) FROM duplicate_checks") == 0

        (pair,) = await open_pairs(http)
    members = {UUID(m["member_id"]): m for m in pair["members"]}
    assert set(members) == {planted["kept_member"], planted["duplicate_member"]}
    assert {m["name"] for m in members.values()} == {"MAWARDI ZAINAL", "MAWARDI.Z"}, "reviewers compare names"
    assert {m["birth_date"] for m in members.values()} == {BORN.isoformat()}
    assert members[planted["duplicate_member"]]["nik_status"] == "unmatched"
    assert all(m["active"] for m in members.values())
    assert pair["reasons"] == ["same_birth_date", "same_kecamatan", "similar_names", "initials_expanded",
                               "nik_missing"]
    assert pair["status"] == "open" and pair["score"] >= 0.85 and pair["decided_at"] is None
    # SITI AMINAH shares the birth date and the kecamatan, the other MAWARDI ZAINAL the birth date and the
    # name: neither is proposed
    paired = {r["m"] for r in await registry.pool.fetch(
        "SELECT member_a AS m FROM duplicate_candidates UNION SELECT member_b FROM duplicate_candidates")}
    assert member_named(planted["unrelated"], "SITI AMINAH") not in paired
    assert member_named(planted["elsewhere"], "MAWARDI ZAINAL") not in paired

    # the names were read: on the record of processing, for both households
    rows = await registry.pool.fetch("SELECT household_id, fields FROM processing_records WHERE action = 'read'")
    assert {r["household_id"] for r in rows} == {planted["kept"]["id"], planted["duplicate"]["id"]}
    assert all("members.name" in r["fields"] for r in rows)

    # checked again (a member changed, say), the pair is not proposed twice
    await households.queue_duplicate_checks(registry.pool, [planted["kept"]["id"], planted["duplicate"]["id"]])
    assert await duplicates.check_queued(registry.pool) == 2
    assert await registry.pool.fetchval("SELECT count(*) FROM duplicate_candidates") == 1


async def test_the_background_loop_works_the_queue_off(registry):
    planted = await plant(registry)
    loop = asyncio.create_task(duplicates.watch(registry.pool, duplicates.CheckPolicy(batch=2, idle_s=0.05)))
    try:
        for _ in range(200):  # until the queue is empty, whatever the machine's speed
            if not await registry.pool.fetchval("SELECT count(*) FROM duplicate_checks"):
                break
            await asyncio.sleep(0.05)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
    assert await registry.pool.fetchval("SELECT count(*) FROM duplicate_checks") == 0
    pairs = await registry.pool.fetch("SELECT member_a, member_b FROM duplicate_candidates")
    assert [{r["member_a"], r["member_b"]} for r in pairs] == [{planted["kept_member"], planted["duplicate_member"]}]


async def test_a_dismissed_pair_stays_dismissed_after_a_recheck(registry):
    planted = await plant(registry)
    await duplicates.check_queued(registry.pool)
    async with registry.client("operator", sub="operator-7") as http:
        (pair,) = await open_pairs(http)
        url = f"/duplicates/{pair['id']}"
        assert (await http.post(f"{url}/dismiss", json={})).status_code == 422, "a dismissal says why"
        dismissed = await http.post(f"{url}/dismiss", json={"reason": "two people: father and son"})
        assert dismissed.status_code == 200, dismissed.text
        assert dismissed.json()["status"] == "dismissed" and dismissed.json()["decided_by"] == "operator-7"
        assert dismissed.json()["decision_reason"] == "two people: father and son"

        again = await http.post(f"{url}/dismiss", json={"reason": "again"})
        assert again.status_code == 409
        merged = await http.post(f"{url}/merge", json={"keep_member_id": str(planted["kept_member"]), "reason": "x"})
        assert merged.status_code == 409

        await households.queue_duplicate_checks(registry.pool, [planted["kept"]["id"], planted["duplicate"]["id"]])
        assert await duplicates.check_queued(registry.pool) == 2
        assert await open_pairs(http) == []
        assert [p["id"] for p in await open_pairs(http, status="dismissed")] == [pair["id"]]
    # no household changed
    for key in ("kept", "duplicate"):
        assert await registry.pool.fetchval("SELECT version FROM households WHERE id = $1", planted[key]["id"]) == 1
    assert {r["household_id"] for r in await registry.pool.fetch(
        "SELECT household_id FROM processing_records WHERE action = 'write'")} == {
        planted["kept"]["id"], planted["duplicate"]["id"]}


async def test_a_merge_ends_the_duplicate_membership_with_history_on_both_households_and_an_event(registry):
    planted = await plant(registry)
    await duplicates.check_queued(registry.pool)
    kept, duplicate = planted["kept"]["id"], planted["duplicate"]["id"]
    async with registry.client("operator", sub="operator-7") as http:
        (pair,) = await open_pairs(http)
        url = f"/duplicates/{pair['id']}/merge"
        stranger = await http.post(url, json={"keep_member_id": str(uuid4()), "reason": "same person"})
        assert stranger.status_code == 422 and stranger.json()["errors"][0]["rule"] == "pair_member"

        merged = await http.post(url, json={"keep_member_id": str(planted["kept_member"]),
                                             "reason": "same birth date and village; NIK of the KK matches"})
        assert merged.status_code == 200, merged.text
        answer = merged.json()
        assert answer["status"] == "merged" and answer["kept_member_id"] == str(planted["kept_member"])
        active = {UUID(m["member_id"]): m["active"] for m in answer["members"]}
        assert active == {planted["kept_member"]: True, planted["duplicate_member"]: False}
        assert (await http.post(url, json={"keep_member_id": str(planted["kept_member"]), "reason": "x"})
                ).status_code == 409

        # the duplicate is no longer a member; the history of both households names the pair
        state = (await http.get(f"/households/{duplicate}")).json()
        assert str(planted["duplicate_member"]) not in {m["member_id"] for m in state["members"]}
        assert state["version"] == 2
        ended = (await http.get(f"/households/{duplicate}/history")).json()["items"][-1]
        assert ended["change"] == "member_ended" and ended["detail"]["kind"] == "correction"
        assert ended["cause_id"] == pair["id"] and ended["actor"] == "operator-7"
        assert ended["changes"][f"members/{planted['duplicate_member']}"]["new"] is None
        noted = (await http.get(f"/households/{kept}/history")).json()["items"][-1]
        assert noted["change"] == "duplicate_merged" and noted["cause_id"] == pair["id"]
        assert noted["detail"] == {"candidate_id": pair["id"], "kept_member_id": str(planted["kept_member"]),
                                   "ended_member_id": str(planted["duplicate_member"]),
                                   "ended_household_id": str(duplicate)}
        assert noted["reason"] == "same birth date and village; NIK of the KK matches"
        assert str(planted["kept_member"]) in {m["member_id"] for m in (await http.get(f"/households/{kept}")).json()["members"]}

    (event,) = [e for e in await registry.outbox() if e["type"] == "member.ended"]
    assert event["subject"] == str(duplicate) and event["causation_id"] == pair["id"]
    assert event["data"] == {"household_id": str(duplicate), "version": 2,
                             "member_id": str(planted["duplicate_member"]), "kind": "correction",
                             "effective_date": event["data"]["effective_date"]}


async def test_the_head_of_a_family_with_others_is_not_the_one_ended(registry):
    planted = await plant(registry)
    await duplicates.check_queued(registry.pool)
    async with registry.client("operator") as http:
        (pair,) = await open_pairs(http)
        refused = await http.post(f"/duplicates/{pair['id']}/merge",
                                  json={"keep_member_id": str(planted["duplicate_member"]), "reason": "same person"})
        assert refused.status_code == 422 and refused.json()["errors"][0]["rule"] == "head_ends"
        assert [p["id"] for p in await open_pairs(http)] == [pair["id"]], "still open, nothing changed"
    assert [e["type"] for e in await registry.outbox()] == ["household.registered"] * 4


async def test_a_pair_is_reached_only_by_callers_who_cover_both_households(registry):
    await register(registry, "3602012002", head=person("ASEP SAEPUDIN", 1004, relation="head"), programme="jamsosratu")
    await register(registry, "3602012003", person("ASEP SAEPUDIN", None), programme="jamsosratu")
    await duplicates.check_queued(registry.pool)
    (candidate_id,) = [r["id"] for r in await registry.pool.fetch("SELECT id FROM duplicate_candidates")]

    for role, claims, sees in (("operator", {"programme": "jscm"}, False), ("supervisor", {"area": "3672"}, False),
                               ("operator", {"programme": "jamsosratu"}, True),
                               ("supervisor", {"area": "3602"}, True), ("auditor", {}, True)):
        async with registry.client(role, **claims) as http:
            listed = [p["id"] for p in await open_pairs(http)]
            assert listed == ([str(candidate_id)] if sees else []), (role, claims)
            if role == "operator" and not sees:
                refused = await http.post(f"/duplicates/{candidate_id}/dismiss", json={"reason": "not mine"})
                assert refused.status_code == 404
            assert [p["id"] for p in await open_pairs(http, region_prefix="3602")] == listed
            assert await open_pairs(http, region_prefix="3672") == []
    for role in ("supervisor", "auditor", "pendamping"):
        async with registry.client(role, area="3602") as http:
            decided = await http.post(f"/duplicates/{candidate_id}/dismiss", json={"reason": "not theirs to decide"})
            assert decided.status_code == 403, role
    async with registry.client("pendamping") as http:
        assert (await http.get("/duplicates")).status_code == 403
    async with registry.client("operator", programme="jamsosratu") as http:
        assert (await http.post(f"/duplicates/{uuid4()}/dismiss", json={"reason": "x"})).status_code == 404
