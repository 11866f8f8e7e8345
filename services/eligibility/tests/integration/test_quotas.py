"""Quotas, the waiting list, figures and what-if on the real PostgreSQL: candidates ranked with the tie rule and
admitted within families and budget (with each funder's share in the event), the line moving up when a family
exits, a quota change re-ranking (with If-Match), figures from the enrolment steps, and a what-if that changes
nothing.

The households and decisions are written as E2's consumer and E1's reassessment write them; the registry's
side (a candidate made active) is its own test (services/registry/tests/integration/test_admissions.py).
"""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

import ejsika_eligibility
from ejsika_eligibility import figures_api, quotas, quotas_api, rule_book, what_if_api
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.programme_time import programme_today
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings
from ejsika_runtime.testing import ISSUER, LocalIdentity
from ejsika_runtime.unit_of_work import unit_of_work

pytestmark = pytest.mark.infra

MIGRATIONS = Path(ejsika_eligibility.__file__).parent / "migrations"
YEAR = programme_today().year
SHARED = [{"funder": "apbd-provinsi-banten", "share": 0.6}, {"funder": "apbd-kab-pandeglang", "share": 0.4}]


class World:
    def __init__(self, name: str, pool, service: Service, idp: LocalIdentity) -> None:
        self.name, self.pool, self.service, self.idp = name, pool, service, idp
        self.app = service.app()

    def client(self, role: str, **claims) -> httpx.AsyncClient:
        defaults = {"operator": {"programme": "jamsosratu"}, "supervisor": {"area": "3601"}}.get(role, {})
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://eligibility",
                                 headers=self.idp.headers(role, **{**defaults, **claims}))

    async def family(self, score: float, *, status: str = "candidate", decision: str = "eligible",
                     registered_on: date = date(2026, 1, 10), amount: int = 3_000_000, region: str = "3601011001",
                     programme: str = "jamsosratu", desil: int = 2) -> uuid.UUID:
        """A household as E2 keeps it and its decision as E1 stores it."""
        household_id = uuid.uuid4()
        await self.pool.execute(
            "INSERT INTO households (household_id, programme, region_code, inputs, enrolment_status, registered_on)"
            " VALUES ($1, $2, $3, '{}', $4, $5)", household_id, programme, region, status, registered_on)
        await self.pool.execute(
            "INSERT INTO household_scope (household_id, programme, region_code, pendamping_id) VALUES ($1, $2, $3, NULL)",
            household_id, programme, region)
        await self.pool.execute(
            "INSERT INTO decisions (household_id, programme, rule_version, region_code, score, desil, status, missing,"
            " components, yearly_amount, assessed_on, fingerprint, event_id, active_rule)"
            " VALUES ($1, $2, 1, $3, $4, $5, $6, '{}', $7, $8, $9, 'f', $10, true)",
            household_id, programme, region, score, desil, decision,
            ["early_childhood"] if amount else [], amount, date(2026, 1, 10), uuid.uuid4())
        return household_id

    async def enrolment(self, household_id: uuid.UUID, status: str) -> None:
        """What E2's consumer records of the registry's enrolment.changed."""
        await self.pool.execute("UPDATE households SET enrolment_status = $2 WHERE household_id = $1",
                                household_id, status)

    async def allocate(self) -> list:
        async with unit_of_work(self.pool, Outbox(self.name)) as uow:
            return await quotas.allocate_cells(uow)

    async def admitted(self) -> list[dict]:
        rows = await self.pool.fetch("SELECT value FROM outbox WHERE topic = 'ejsika.eligibility' ORDER BY id")
        return [e["data"] for e in (json.loads(bytes(r["value"])) for r in rows) if e["type"] == "quota.admitted"]


@pytest.fixture
async def world(migrated_schema) -> World:
    name, pool = await migrated_schema("eligibility", MIGRATIONS)
    idp = LocalIdentity()
    service = Service("eligibility", Settings(auth_issuer=ISSUER), MIGRATIONS)
    idp.install(service.access)
    service._pool = pool
    for module in (quotas_api, figures_api, what_if_api):
        service.router.include_router(module.routes(service))
    return World(name, pool, service, idp)


def quota_body(families: int, budget: int = 10**11, funders=SHARED) -> dict:
    return {"families": families, "budget": budget, "funders": funders}


async def test_ranked_candidates_fill_the_quota_with_each_funders_share_and_the_line_moves_up_after_an_exit(world):
    held = await world.family(95, status="active", amount=1_000_000)
    first = await world.family(90)
    early = await world.family(80, registered_on=date(2026, 1, 2))
    late = await world.family(80, registered_on=date(2026, 1, 20))
    seventy = await world.family(70)
    sixty = await world.family(60)
    await world.family(99, decision="not_eligible")  # never in line
    await world.family(98, region="3602011001")  # another region's line
    url = f"/quotas/jamsosratu/{YEAR}/3601"
    async with world.client("operator") as http:
        created = await http.put(url, json=quota_body(3))
        assert created.status_code == 201, created.text
        assert created.headers["etag"] == '"1"'
    admitted = await world.admitted()
    # one place is held: two admitted, deprivation first, the tie to the earlier registration
    assert [(a["household_id"], a["rank"]) for a in admitted] == [(str(first), 1), (str(early), 2)]
    assert admitted[0]["funders"] == [
        {"funder": "apbd-provinsi-banten", "share": 0.6, "amount": 1_800_000},
        {"funder": "apbd-kab-pandeglang", "share": 0.4, "amount": 1_200_000}]
    assert {a["year"] for a in admitted} == {YEAR} and {a["region"] for a in admitted} == {"3601"}
    assert await world.allocate() == []  # pending admissions hold their places: nobody admitted twice

    for household in (first, early):  # the registry made them active
        await world.enrolment(household, "active")
    assert await world.allocate() == []
    async with world.client("operator") as http:
        line = (await http.get(f"{url}/waiting-list")).json()
        read = (await http.get(url)).json()
    assert [(i["rank"], i["household_id"]) for i in line["items"]] == [(1, str(late)), (2, str(seventy)),
                                                                      (3, str(sixty))]
    assert read["usage"] == {"families_held": 3, "families_pending": 0, "amount_used": 7_000_000,
                             "families_free": 0, "budget_free": 10**11 - 7_000_000, "waiting": 3}
    assert [(f["funder"], f["used"]) for f in read["funders"]] == [("apbd-provinsi-banten", 4_200_000),
                                                                  ("apbd-kab-pandeglang", 2_800_000)]

    await world.enrolment(held, "exited")  # a graduation frees a place: the next in line gets it
    (next_in_line,) = await world.allocate()
    assert (next_in_line.data.household_id, next_in_line.data.rank) == (late, 1)
    async with world.client("operator") as http:
        line = (await http.get(f"{url}/waiting-list")).json()
    assert [(i["rank"], i["household_id"]) for i in line["items"]] == [(1, str(seventy)), (2, str(sixty))]
    recorded = await world.pool.fetchval(
        "SELECT count(*) FROM processing_records WHERE household_id = $1 AND action = 'read'", seventy)
    assert recorded == 2


async def test_a_quota_change_needs_its_version_and_re_ranks_within_families_and_budget(world):
    ranked = [await world.family(90 - i, amount=2_000_000) for i in range(6)]
    url = f"/quotas/jamsosratu/{YEAR}/3601"
    async with world.client("admin") as http:
        assert (await http.put(url, json=quota_body(1))).status_code == 201
        assert (await http.put(url, json=quota_body(4))).status_code == 428
        assert (await http.put(url, json=quota_body(4), headers={"If-Match": '"7"'})).status_code == 412
        bad = await http.put(url, json=quota_body(4, funders=[{"funder": "apbd-provinsi-banten", "share": 0.6}]),
                             headers={"If-Match": '"1"'})
        assert bad.status_code == 422 and bad.json()["errors"][0]["rule"] == "shares_sum"
        # four families, but the budget covers three of 2,000,000
        changed = await http.put(url, json=quota_body(4, budget=6_500_000), headers={"If-Match": '"1"'})
        assert changed.status_code == 200 and changed.headers["etag"] == '"2"'
    assert [a["household_id"] for a in await world.admitted()] == [str(h) for h in ranked[:3]]
    async with world.client("operator", programme="jscm") as http:
        assert (await http.put(url, json=quota_body(9), headers={"If-Match": '"2"'})).status_code == 403
        assert (await http.get(url)).status_code == 403
    async with world.client("auditor") as http:
        assert (await http.put(url, json=quota_body(9))).status_code == 403
        listed = (await http.get("/quotas", params={"programme": "jamsosratu"})).json()
    assert [(q["region"], q["families"], q["version"]) for q in listed["items"]] == [("3601", 4, 2)]


async def test_the_defaults_seed_every_region_once_and_jscm_is_paid_by_cilegon_alone(world):
    async with world.pool.acquire() as conn:
        assert await quotas.seed_defaults(conn) == 9
        assert await quotas.seed_defaults(conn) == 0
        cilegon = await quotas.find(conn, ("jscm", 2026, "3672"))
    assert [(f.funder, f.share) for f in cilegon.quota.funders] == [("apbd-kota-cilegon", 1.0)]


async def test_the_waiting_list_of_a_supervisor_holds_their_area_with_the_ranks_of_the_whole_line(world):
    other = await world.family(90, region="3601021001")
    mine = await world.family(80, region="3601011001")
    async with world.client("admin") as http:
        assert (await http.put(f"/quotas/jamsosratu/{YEAR}/3601", json=quota_body(0))).status_code == 201
    async with world.client("supervisor", area="360101") as http:
        line = (await http.get(f"/quotas/jamsosratu/{YEAR}/3601/waiting-list")).json()
    assert [(i["rank"], i["household_id"]) for i in line["items"]] == [(2, str(mine))]
    assert str(other) not in json.dumps(line)


async def test_figures_count_entries_graduations_and_exits_of_the_period(world):
    async def step(household, version, status, previous, day, kind=None, region="3601011001"):
        await world.pool.execute(
            "INSERT INTO enrolment_steps (event_id, household_id, version, programme, region_code, status,"
            " previous_status, exit_kind, effective_date) VALUES ($1, $2, $3, 'jamsosratu', $4, $5, $6, $7, $8)",
            uuid.uuid4(), household, version, region, status, previous, kind, day)

    a, b, c, d = (uuid.uuid4() for _ in range(4))
    await step(a, 2, "active", "candidate", date(2026, 2, 1))
    await step(a, 3, "exited", "active", date(2026, 5, 11), "mandiri")  # 99 days
    await step(b, 2, "active", "candidate", date(2026, 3, 1))
    await step(b, 3, "exited", "active", date(2026, 4, 1), "alamiah")  # 31 days
    await step(c, 2, "active", "candidate", date(2026, 3, 1), region="3602011001")
    await step(c, 3, "exited", "active", date(2026, 6, 1), "paksa", region="3602011001")
    await step(d, 2, "exited", "candidate", date(2026, 3, 1), "paksa")
    async with world.client("auditor") as http:
        found = (await http.get("/figures", params={"from": "2026-01-01", "to": "2026-12-31"})).json()
    assert found["from"] == "2026-01-01"
    assert found["rows"] == [
        {"programme": "jamsosratu", "region": "3601", "entered": 2, "graduated": {"mandiri": 1, "alamiah": 1},
         "exited": {"paksa": 0, "not_admitted": 1}, "average_days_to_graduation": 65.0},
        {"programme": "jamsosratu", "region": "3602", "entered": 1, "graduated": {"mandiri": 0, "alamiah": 0},
         "exited": {"paksa": 1, "not_admitted": 0}, "average_days_to_graduation": None}]
    async with world.client("supervisor", area="3602") as http:
        mine = (await http.get("/figures", params={"from": "2026-01-01", "to": "2026-12-31"})).json()
        assert (await http.get("/figures", params={"region": "3601"})).status_code == 403
    assert [r["region"] for r in mine["rows"]] == ["3602"]
    async with world.client("operator", programme="jscm") as http:
        assert (await http.get("/figures", params={"from": "2026-01-01", "to": "2026-12-31"})).json()["rows"] == []


async def test_what_if_answers_who_would_enter_and_leave_and_changes_nothing(world):
    held_poor = await world.family(95, status="active", desil=1)
    held_better = await world.family(50, status="active", desil=4, decision="eligible")
    waiting = [await world.family(90 - i, desil=2 + i % 3) for i in range(5)]  # desil 2, 3, 4, 2, 3
    async with world.client("admin") as http:
        assert (await http.put(f"/quotas/jamsosratu/{YEAR}/3601", json=quota_body(4))).status_code == 201
    await rule_book.seed_defaults(world.pool)  # as the running service has, before anyone asks
    tables = ("households", "decisions", "quotas", "admissions", "outbox", "processing_records", "rule_sets")

    async def state() -> dict:
        return {t: [tuple(r) for r in await world.pool.fetch(f"SELECT * FROM {t} ORDER BY 1")] for t in tables}

    before = await state()
    body = {"programme": "jamsosratu", "entry_max_desil": 3,
            "quotas": [{"region": "3601", "families": 5, "budget": 10**11, "funders": SHARED}]}
    async with world.client("operator") as http:
        answer = await http.post("/what-if", json=body)
        assert answer.status_code == 200, answer.text
        refused = await http.post("/what-if", json={**body, "programme": "jscm"})
    assert refused.status_code == 403
    found = answer.json()
    # the quota of 4 holds the two active families and the first two in line (admitted, pending). Entry up to desil
    # 3: the held family at desil 4 would leave; with 5 places the line's next eligible two (desil 2 and 3, not the
    # desil 4 third) would enter
    assert found["leaving"] == {"count": 1, "first": [str(held_better)]}
    assert set(found["entering"]["first"]) == {str(waiting[3]), str(waiting[4])}
    assert found["families"] == {"before": 4, "after": 5}
    region = found["regions"][0]
    assert region["region"] == "3601" and region["cost_after"] == 5 * 3_000_000
    assert [(f["funder"], f["cost_after"]) for f in region["funders"]] == [
        ("apbd-provinsi-banten", 9_000_000), ("apbd-kab-pandeglang", 6_000_000)]
    assert held_poor not in found["entering"]["first"]
    assert await state() == before
