"""Decisions on the real PostgreSQL: reassessment announces only changes, keeps its history, recomputes
equal; rule sets are loaded and activated over HTTP, and the reassessment that follows reaches every
household, keeps the old decisions and resumes after a stop."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import asyncpg
import httpx
import pytest

import ejsika_eligibility
from ejsika_contracts import HouseholdUpdated
from ejsika_eligibility import api, decisions, rule_book, rule_change, rule_sets_api
from ejsika_eligibility.domain.rules import DEFAULTS, INDICATORS
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings
from ejsika_runtime.testing import ISSUER, LocalIdentity
from ejsika_runtime.unit_of_work import unit_of_work

pytestmark = pytest.mark.infra

MIGRATIONS = Path(ejsika_eligibility.__file__).parent / "migrations"
TODAY = date(2026, 11, 28)
BOOLEAN = [name for name, numeric in INDICATORS.items() if not numeric]
POOR = {**{name: True for name in BOOLEAN}, "floor_area_per_person_m2": 5.0, "installed_power_va": 450}


@dataclass
class Eligibility:
    schema: str
    pool: asyncpg.Pool
    outbox: Outbox
    app: object
    idp: LocalIdentity

    def client(self, role: str = "auditor", **claims) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://eligibility",
                                 headers=self.idp.headers(role, **claims))

    async def events(self) -> list[dict]:
        rows = await self.pool.fetch("SELECT value FROM outbox WHERE topic = 'ejsika.eligibility' ORDER BY id")
        return [json.loads(bytes(r["value"])) for r in rows]


@pytest.fixture
async def eligibility(migrated_schema) -> Eligibility:
    schema, pool = await migrated_schema("eligibility", MIGRATIONS)
    idp = LocalIdentity()
    service = Service("eligibility", Settings(auth_issuer=ISSUER), MIGRATIONS)
    idp.install(service.access)
    service._pool = pool
    service.router.include_router(api.routes(service))
    service.router.include_router(rule_sets_api.routes(service))
    return Eligibility(schema, pool, Outbox(schema), service.app(), idp)


def inputs(household_id: uuid.UUID, welfare: dict, programme: str = "jamsosratu", **extra) -> dict:
    pupil = {"member_id": str(uuid.uuid4()), "sex": "F", "birth_date": "2016-04-01", "relation": "child",
             "in_school": True}
    head = {"member_id": str(uuid.uuid4()), "sex": "M", "birth_date": "1980-03-12", "relation": "head"}
    return {"household_id": str(household_id), "programme": programme, "region_code": "3672011001",
            "members": [head, pupil], "welfare": welfare, **extra}


async def put(pool: asyncpg.Pool, rows: list[dict], status: str = "candidate") -> None:
    await pool.execute(
        "INSERT INTO households (household_id, programme, region_code, inputs, enrolment_status)"
        " SELECT u.h, u.p, '3672011001', u.i, $4 FROM unnest($1::uuid[], $2::text[], $3::json[]) AS u(h, p, i)"
        " ON CONFLICT (household_id) DO UPDATE SET inputs = excluded.inputs",
        [uuid.UUID(r["household_id"]) for r in rows], [r["programme"] for r in rows], [json.dumps(r) for r in rows],
        status)
    await pool.execute(
        "INSERT INTO household_scope (household_id, programme, region_code, pendamping_id)"
        " SELECT h, 'jamsosratu', '3672011001', 'pendamping-demo' FROM unnest($1::uuid[]) AS h ON CONFLICT DO NOTHING",
        [uuid.UUID(r["household_id"]) for r in rows])


def cause(household_id: uuid.UUID) -> HouseholdUpdated:
    return HouseholdUpdated.model_validate({
        "source": "registry", "subject": str(household_id), "correlation_id": uuid.uuid4(),
        "data": {"household_id": household_id, "version": 2, "changed": ["welfare"], "welfare": {}}})


async def reassess(e: Eligibility, ids: list[uuid.UUID], today: date = TODAY) -> list:
    async with unit_of_work(e.pool, e.outbox) as uow:
        return await decisions.reassess(uow, [(h, cause(h)) for h in ids], today)


async def test_reassessment_announces_a_decision_once_and_again_only_when_it_changes(eligibility):
    e, household = eligibility, uuid.uuid4()
    await put(e.pool, [inputs(household, POOR)])
    (first,) = await reassess(e, [household])
    assert first.data.status == "eligible" and first.data.rule_set == "jamsosratu.v1" and first.data.desil == 1
    assert first.data.components == ["school_sd"] and first.data.yearly_amount == 900_000
    assert first.causation_id is not None
    assert await reassess(e, [household]) == []  # a redelivery, a replay: the same inputs, nothing new
    # ages change (the head turns 47 on 12 March) but not what the family is told: stored, not announced
    assert await reassess(e, [household], date(2027, 3, 12)) == []
    await put(e.pool, [inputs(household, {**POOR, **{name: False for name in BOOLEAN}})])
    (second,) = await reassess(e, [household], date(2027, 3, 12))
    assert second.data.status == "not_eligible"
    history = await e.pool.fetch("SELECT announced FROM assessments WHERE household_id = $1 ORDER BY assessed_at",
                                 household)
    assert [r["announced"] for r in history] == [True, False, True]
    assert len(await e.events()) == 2
    in_force = await e.pool.fetch("SELECT status, active_rule FROM decisions WHERE household_id = $1", household)
    assert [(r["status"], r["active_rule"]) for r in in_force] == [("not_eligible", True)]
    # the pupil (born 2016-04-01) turns 13 on 2029-04-01 and leaves SD: the next review unless sooner
    assert await e.pool.fetchval("SELECT next_review_on FROM households WHERE household_id = $1", household) \
        == date(2028, 3, 12)


async def test_history_explains_each_decision_and_any_recomputes_equal(eligibility):
    e, household = eligibility, uuid.uuid4()
    await put(e.pool, [inputs(household, POOR)])
    await reassess(e, [household])
    await put(e.pool, [inputs(household, {"no_electricity": True})])
    await reassess(e, [household])
    async with e.client("pendamping", sub="pendamping-demo") as http:
        first = await http.get(f"/households/{household}/assessments", params={"limit": 1})
        assert first.status_code == 200, first.text
        page = first.json()
        assert page["items"][0]["score"] == 100 and page["next_cursor"]
        assert sum(c["points"] for c in page["items"][0]["explanation"]) == page["items"][0]["score"]
        second = (await http.get(f"/households/{household}/assessments",
                                 params={"limit": 1, "cursor": page["next_cursor"]})).json()
        assert second["items"][0]["status"] == "insufficient_data" and len(second["items"][0]["missing"]) == 14
        assert second["next_cursor"] is None
        for item in (page["items"][0], second["items"][0]):
            answer = await http.post(f"/households/{household}/assessments/{item['assessment_id']}/recompute")
            assert answer.status_code == 200, answer.text
            assert answer.json()["equal"] is True and answer.json()["recomputed"]["fingerprint"] == item["fingerprint"]
        current = (await http.get(f"/households/{household}/decisions")).json()
        assert [(d["programme"], d["status"], d["active_rule"]) for d in current] == [
            ("jamsosratu", "insufficient_data", True)]
    async with e.client("pendamping", sub="pendamping-other") as http:
        assert (await http.get(f"/households/{household}/decisions")).status_code == 404
        assert (await http.post(f"/households/{household}/assessments/{uuid.uuid4()}/recompute")).status_code == 404


def version_2(**changes) -> dict:
    document = json.loads((DEFAULTS / "jamsosratu.v1.json").read_text())
    return {**document, "version": 2, "title": "stricter entry", "entry": {"max_desil": 1}, **changes}


async def test_a_rule_set_is_validated_loaded_once_and_read(eligibility):
    async with eligibility.client("admin") as http:
        broken = version_2(desil=[80, 70, 75, 50, 40, 32, 25, 18, 10])
        broken["indicators"]["floor_area_per_person_m2"]["bands"][1]["from"] = 7
        refused = await http.post("/rule-sets", json=broken)
        assert refused.status_code == 422
        assert {(f["field"], f["rule"]) for f in refused.json()["errors"]} == {
            ("desil[2]", "strictly_descending"), ("indicators.floor_area_per_person_m2.bands[1].from", "band_overlap")}
        assert (await http.post("/rule-sets", json=version_2())).status_code == 201
        assert (await http.post("/rule-sets", json=version_2())).status_code == 409
    await rule_book.seed_defaults(eligibility.pool)  # as the service does when it starts
    await rule_book.seed_defaults(eligibility.pool)  # and again on another replica: nothing changes
    async with eligibility.client("operator", programme="jscm") as http:
        listed = (await http.get("/rule-sets")).json()
        assert [(r["programme"], r["version"], r["active"]) for r in listed] == [
            ("jamsosratu", 1, True), ("jamsosratu", 2, False), ("jscm", 1, True)]
        assert (await http.get("/rule-sets/jamsosratu/2")).json()["document"]["entry"] == {"max_desil": 1}
        assert (await http.get("/rule-sets/jamsosratu/9")).status_code == 404


async def test_activation_reassesses_every_household_keeps_the_old_decisions_and_resumes_after_a_stop(eligibility):
    e = eligibility
    # desil 1 (100 points), desil 2 (75 points), desil 10 (0 points)
    welfare = [POOR, {**POOR, "bamboo_or_unplastered_walls": False, "no_private_toilet": False, "no_electricity": False,
                      "cooks_with_wood_or_kerosene": False},
               {name: False for name in BOOLEAN} | {"floor_area_per_person_m2": 30.0, "installed_power_va": 2200}]
    households = [inputs(uuid.uuid4(), welfare[i % 3]) for i in range(9)]
    await put(e.pool, households)
    ids = sorted(uuid.UUID(h["household_id"]) for h in households)
    await reassess(e, ids)
    before = len(await e.events())
    async with e.client("admin") as http:
        assert (await http.post("/rule-sets", json=version_2())).status_code == 201
        accepted = await http.post("/rule-sets/jamsosratu/2/activation")
        assert accepted.status_code == 202, accepted.text
        job = accepted.json()["job_id"]
        assert (await http.post("/rule-sets/jamsosratu/2/activation")).status_code == 409
    # a first chunk, then the service stops (its lease lapses): another run resumes where it was
    assert await rule_change.claim(e.pool, uuid.UUID(job)) is not None
    rules = await rule_book.version(e.pool, "jamsosratu", 2)
    last = await rule_change.step(e.pool, e.outbox, uuid.UUID(job), rules, rule_change.FIRST, 4, TODAY)
    assert last == ids[3]
    await e.pool.execute("UPDATE reassessments SET claimed_until = now() - interval '1 second'")
    # meanwhile a live event reassesses a household the job has not reached, under the new version
    live = await reassess(e, [ids[8]])
    assert await rule_change.resume_all(e.pool, e.outbox) == 1
    async with e.client("operator", programme="jamsosratu") as http:
        progress = (await http.get(f"/reassessments/{job}")).json()
    assert progress["state"] == "done" and progress["done"] == progress["total"] == 9
    rows = await e.pool.fetch("SELECT household_id, rule_version, status, active_rule FROM decisions")
    assert {(r["rule_version"], r["active_rule"]) for r in rows} == {(1, False), (2, True)}
    assert sorted(r["household_id"] for r in rows if r["active_rule"]) == ids
    assert len(rows) == 18  # the old version's decisions are kept to compare
    # entry now desil 1 only: the desil-2 households are no longer eligible, and only they are announced
    changed = {uuid.UUID(e_["data"]["household_id"]) for e_ in (await e.events())[before:]}
    desil_2 = {uuid.UUID(h["household_id"]) for i, h in enumerate(households) if i % 3 == 1}
    assert changed == desil_2 and progress["changed"] + len(live) == len(desil_2)
    assert all(r["status"] == "not_eligible" for r in rows if r["household_id"] in desil_2 and r["rule_version"] == 2)
