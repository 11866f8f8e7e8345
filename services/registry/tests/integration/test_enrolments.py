"""Enrolment on the real PostgreSQL: registration makes a candidate, operators and supervisors move it with
If-Match, every step is in the history (old and new) and announced with the household's version, exclusive
programmes are not held together, only an operator exits a family, and an eligibility decision only
recommends an exit."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from ejsika_contracts import EligibilityAssessed, EligibilityAssessedData, MemberCounts
from ejsika_registry import enrolment_api, enrolments, households
from ejsika_runtime.programme_time import programme_date, programme_today
from ejsika_runtime.unit_of_work import unit_of_work

pytestmark = pytest.mark.infra


@pytest.fixture
async def registry(registry):
    """The registry of conftest.py with the enrolment routes (included before its app is built)."""
    registry.service.router.include_router(enrolment_api.routes(registry.service))
    return registry


async def step(http, household_id, programme: str, version: int, **body: Any):
    return await http.post(f"/households/{household_id}/enrolments/{programme}", json=body,
                           headers={"If-Match": f'"{version}"'})


def exit_body(kind: str = "mandiri", **more: Any) -> dict:
    return {"status": "exited", "exit_kind": kind, "reason": "the family declared itself able",
            "effective_date": programme_today().isoformat(), **more}


async def enrolment_events(registry, household_id) -> list[dict]:
    return [e for e in await registry.outbox()
            if e["type"] == "enrolment.changed" and e["data"]["household_id"] == str(household_id)]


async def enrolment_history(registry, household_id) -> list[dict]:
    rows = await registry.pool.fetch(
        "SELECT version, change, changes::text AS changes, source, actor, reason, changed_at FROM household_history"
        " WHERE household_id = $1 AND change = 'enrolment_changed' ORDER BY version", household_id)
    return [{**dict(r), "changes": json.loads(r["changes"])} for r in rows]


def assessed(household: dict, *, eligible: bool, components: list[str] = ()) -> EligibilityAssessed:
    data = EligibilityAssessedData(
        household_id=household["id"], programme=household["programme"], region_code=household["region_code"],
        rule_set="starter-v1", score=20.0 if not eligible else 70.0, eligible=eligible,
        components=list(components), member_counts=MemberCounts(), explanation=[])
    return EligibilityAssessed(source="eligibility", subject=str(household["id"]), correlation_id=uuid4(), data=data)


async def consume(registry, events: list[EligibilityAssessed]) -> None:
    """Apply a batch of eligibility.assessed as the registry's consumer does."""
    from ejsika_registry.app import record_status  # the composition root reads the service's settings

    async with unit_of_work(registry.pool, registry.service.outbox) as uow:
        await record_status(uow, events)


async def test_registration_makes_each_household_a_candidate_of_its_programme_without_a_version_of_its_own(registry):
    first, second = await registry.register(2)
    for household in (first, second):
        registered = next(e for e in await registry.outbox()
                          if e["type"] == "household.registered" and e["data"]["household_id"] == str(household["id"]))
        day = programme_date(datetime.fromisoformat(registered["time"]))
        assert household["version"] == 1 and await enrolment_history(registry, household["id"]) == []
        assert household["enrolments"] == {"jscm": {"status": "candidate", "exit_kind": None, "reason": None,
                                                    "effective_date": day.isoformat()}}
    async with registry.client("pendamping", sub="pendamping-x") as http:
        assert (await http.get(f"/households/{first['id']}/enrolments")).status_code == 404  # not in the caseload
    async with registry.client("auditor") as http:
        read = await http.get(f"/households/{first['id']}/enrolments")
    assert read.status_code == 200 and read.headers["etag"] == '"1"'
    assert read.json()["enrolments"] == [{"programme": "jscm", "recommended_exit": None,
                                          **first["enrolments"]["jscm"]}]


async def test_a_registration_is_its_candidate_enrolment_and_announces_nothing_more(registry):
    # household.registered says the household entered its programme as a candidate: a second event per
    # registration would double what an import of a million households publishes.
    (household,) = await registry.register()
    types = [e["type"] for e in await registry.outbox() if e["subject"] == str(household["id"])]
    assert types == ["household.registered"]
    assert household["enrolments"] == {household["programme"]: {
        "status": "candidate", "exit_kind": None, "reason": None,
        "effective_date": household["enrolments"][household["programme"]]["effective_date"]}}


async def test_admission_suspension_exit_and_re_entry_each_make_a_version_with_its_history_and_event(registry):
    (household,) = await registry.register()
    hid = household["id"]
    today = programme_today()
    async with registry.client("operator", sub="operator-jscm-1") as operator, \
            registry.client("supervisor", sub="supervisor-1") as supervisor:
        admitted = await step(supervisor, hid, "jscm", 1, status="active")
        assert admitted.status_code == 200, admitted.text
        assert admitted.headers["etag"] == '"2"'
        assert admitted.json() == {"programme": "jscm", "status": "active", "exit_kind": None, "reason": None,
                                   "effective_date": today.isoformat(), "recommended_exit": None}
        suspended = await step(operator, hid, "jscm", 2, status="suspended", reason="moved out of the area for work")
        assert suspended.status_code == 200 and suspended.headers["etag"] == '"3"'
        assert (await step(supervisor, hid, "jscm", 3, status="active")).status_code == 200
        left = await step(operator, hid, "jscm", 4, **exit_body("mandiri"))
        assert left.status_code == 200, left.text
        assert left.json()["status"] == "exited" and left.json()["exit_kind"] == "mandiri"
        again = await step(supervisor, hid, "jscm", 5, status="candidate", reason="surveyed again")
        assert again.status_code == 200 and again.headers["etag"] == '"6"'
        read = await operator.get(f"/households/{hid}/enrolments")
    assert read.headers["etag"] == '"6"' and read.json()["enrolments"][0]["status"] == "candidate"

    history = await enrolment_history(registry, hid)
    assert [h["version"] for h in history] == [2, 3, 4, 5, 6]
    chain = [(h["changes"]["enrolments/jscm"]["old"]["status"], h["changes"]["enrolments/jscm"]["new"]["status"])
             for h in history]
    assert chain == [("candidate", "active"), ("active", "suspended"), ("suspended", "active"),
                     ("active", "exited"), ("exited", "candidate")]
    assert history[3]["changes"]["enrolments/jscm"]["new"] == {
        "status": "exited", "exit_kind": "mandiri", "reason": "the family declared itself able",
        "effective_date": today.isoformat()}
    assert history[3]["source"] == "operator" and history[3]["actor"] == "operator-jscm-1"
    assert history[1]["reason"] == "moved out of the area for work"
    assert history[0]["actor"] == "supervisor-1"

    events = await enrolment_events(registry, hid)
    assert [(e["data"]["version"], e["data"]["previous_status"], e["data"]["status"]) for e in events] == [
        (2, "candidate", "active"), (3, "active", "suspended"), (4, "suspended", "active"),
        (5, "active", "exited"), (6, "exited", "candidate")]
    assert events[3]["data"]["exit_kind"] == "mandiri" and events[3]["subject"] == str(hid)
    assert all(e["data"]["region_code"] == household["region_code"] for e in events)

    # as it was after the suspension (version 3), and before any step (version 1)
    async with registry.client("auditor") as http:
        before_any_step = history[0]["changed_at"] - timedelta(microseconds=1)
        for version, status, at in ((3, "suspended", history[1]["changed_at"]), (1, "candidate", before_any_step)):
            then = await http.get(f"/households/{hid}", params={"as_of": at.isoformat()})
            assert then.status_code == 200, then.text
            assert then.headers["etag"] == f'"{version}"'
            assert [e["status"] for e in then.json()["enrolments"]] == [status]


async def test_a_step_needs_the_version_it_was_based_on_and_an_allowed_transition(registry):
    (household,) = await registry.register()
    hid = household["id"]
    async with registry.client("operator") as http:
        missing = await http.post(f"/households/{hid}/enrolments/jscm", json={"status": "active"})
        assert missing.status_code == 428
        stale = await step(http, hid, "jscm", 7, status="active")
        assert stale.status_code == 412 and stale.headers["etag"] == '"1"'

        not_allowed = await step(http, hid, "jscm", 1, status="suspended")  # a candidate is not suspended
        assert not_allowed.status_code == 409
        assert not_allowed.json()["errors"][0]["rule"] == "enrolment_transition"
        no_kind = await step(http, hid, "jscm", 1, status="exited", reason="x",
                             effective_date=programme_today().isoformat())
        assert no_kind.status_code == 422 and no_kind.json()["errors"][0]["field"] == "exit_kind"
        future = await step(http, hid, "jscm", 1, **exit_body(effective_date=(programme_today() + timedelta(days=2))
                                                              .isoformat()))
        assert future.status_code == 422 and future.json()["errors"][0]["rule"] == "effective_date"
        unknown = await step(http, hid, "pkh", 1, status="candidate")
        assert unknown.status_code == 404
    assert (await households.current_state(registry.pool, hid))["version"] == 1
    assert await enrolment_events(registry, hid) == []


async def test_a_family_is_not_active_in_two_programmes_that_exclude_each_other(registry):
    (household,) = await registry.register()  # Kota Cilegon: served by JSCM and by Jamsosratu
    hid = household["id"]
    async with registry.client("operator") as operator, registry.client("supervisor") as supervisor:
        assert (await step(operator, hid, "jscm", 1, status="active")).status_code == 200
        entered = await step(supervisor, hid, "jamsosratu", 2, status="candidate", reason="surveyed for the province")
        assert entered.status_code == 200, entered.text
        refused = await step(supervisor, hid, "jamsosratu", 3, status="active")
        assert refused.status_code == 409
        assert refused.json()["errors"][0]["rule"] == "programme_exclusive"
        assert (await step(operator, hid, "jscm", 3, status="suspended")).status_code == 200
        assert (await step(supervisor, hid, "jamsosratu", 4, status="active")).status_code == 409  # suspended holds
        assert (await step(operator, hid, "jscm", 4, **exit_body("alamiah"))).status_code == 200
        admitted = await step(supervisor, hid, "jamsosratu", 5, status="active")
        assert admitted.status_code == 200, admitted.text
    state = await households.current_state(registry.pool, hid)
    assert {p: e["status"] for p, e in state["enrolments"].items()} == {"jscm": "exited", "jamsosratu": "active"}
    events = await enrolment_events(registry, hid)
    assert (events[1]["data"]["programme"], events[1]["data"]["previous_status"]) == ("jamsosratu", None)


async def test_only_an_operator_of_the_programme_confirms_an_exit(registry):
    (household,) = await registry.register()
    hid = household["id"]
    async with registry.client("operator") as operator:
        assert (await step(operator, hid, "jscm", 1, status="active")).status_code == 200
    async with registry.client("supervisor") as supervisor:
        refused = await step(supervisor, hid, "jscm", 2, **exit_body())
        assert refused.status_code == 403
    for role, claims in (("pendamping", {}), ("auditor", {})):
        async with registry.client(role, **claims) as http:
            assert (await step(http, hid, "jscm", 2, **exit_body())).status_code == 403
    async with registry.client("operator", programme="jamsosratu") as elsewhere:
        assert (await step(elsewhere, hid, "jscm", 2, **exit_body())).status_code == 404  # not their programme's family
    async with registry.client("supervisor", area="3602") as elsewhere:
        assert (await step(elsewhere, hid, "jscm", 2, status="suspended")).status_code == 404
    assert (await households.current_state(registry.pool, hid))["enrolments"]["jscm"]["status"] == "active"
    async with registry.client("operator") as operator:
        assert (await step(operator, hid, "jscm", 2, **exit_body("paksa"))).status_code == 200


async def test_a_decision_that_a_family_is_no_longer_eligible_recommends_its_exit_and_never_exits_it(registry):
    active, candidate, other = await registry.register(3)
    async with registry.client("operator") as operator:
        for household in (active, other):
            assert (await step(operator, household["id"], "jscm", 1, status="active")).status_code == 200

    await consume(registry, [assessed(active, eligible=False), assessed(candidate, eligible=False),
                             assessed(other, eligible=False, components=["school_children"])])

    for household, kind in ((active, "alamiah"), (other, "paksa")):
        state = await households.current_state(registry.pool, household["id"])
        assert state["enrolments"]["jscm"]["status"] == "active"  # recommended, not exited
        assert state["status"] == "not_eligible"
        (found,) = await enrolments.of_household(registry.pool, household["id"])
        assert found["recommended_exit"]["exit_kind"] == kind
    (found,) = await enrolments.of_household(registry.pool, candidate["id"])
    assert found["status"] == "candidate" and found["recommended_exit"] is None
    assert [e["data"]["status"] for e in await enrolment_events(registry, active["id"])] == ["active"]

    async with registry.client("operator") as operator:
        listed = await operator.get("/enrolments/recommended-exits")
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        assert {(i["household_id"], i["recommended_exit"]["exit_kind"]) for i in items} == {
            (str(active["id"]), "alamiah"), (str(other["id"]), "paksa")}
        assert all(set(i) == {"household_id", "programme", "region_code", "status", "version", "recommended_exit"}
                   for i in items)
        first = await operator.get("/enrolments/recommended-exits", params={"limit": 1})
        rest = await operator.get("/enrolments/recommended-exits",
                                  params={"limit": 1, "cursor": first.json()["next_cursor"]})
        assert [i["household_id"] for i in first.json()["items"] + rest.json()["items"]] == \
            [i["household_id"] for i in items]
        assert rest.json()["next_cursor"] is None
        elsewhere = await operator.get("/enrolments/recommended-exits", params={"region_prefix": "3602"})
        assert elsewhere.json()["items"] == []

        # the operator confirms one exit with the version the list gave; the recommendation goes with it
        version = next(i["version"] for i in items if i["household_id"] == str(active["id"]))
        confirmed = await step(operator, active["id"], "jscm", version, **exit_body("alamiah"))
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["recommended_exit"] is None
        after = await operator.get("/enrolments/recommended-exits")
        assert [i["household_id"] for i in after.json()["items"]] == [str(other["id"])]
        # a suspension keeps the recommendation: the family still holds its place
        version = int((await operator.get(f"/households/{other['id']}/enrolments")).headers["etag"].strip('"'))
        suspended = await step(operator, other["id"], "jscm", version, status="suspended")
        assert suspended.json()["recommended_exit"]["exit_kind"] == "paksa"

    # eligible again: the recommendation is withdrawn
    await consume(registry, [assessed(other, eligible=True, components=["school_children"])])
    (found,) = await enrolments.of_household(registry.pool, other["id"])
    assert found["status"] == "suspended" and found["recommended_exit"] is None


async def test_the_recommended_exits_are_an_operator_s_own_programme_s_or_an_auditor_s(registry):
    (household,) = await registry.register()
    async with registry.client("operator") as operator:
        assert (await step(operator, household["id"], "jscm", 1, status="active")).status_code == 200
    await consume(registry, [assessed(household, eligible=False)])
    async with registry.client("operator", programme="jamsosratu") as other_operator:
        assert (await other_operator.get("/enrolments/recommended-exits")).json()["items"] == []
        asked = await other_operator.get("/enrolments/recommended-exits", params={"programme": "jscm"})
        assert asked.status_code == 403
    async with registry.client("auditor") as auditor:
        seen = await auditor.get("/enrolments/recommended-exits", params={"programme": "jscm"})
        assert [i["household_id"] for i in seen.json()["items"]] == [str(household["id"])]
        assert (await auditor.get("/enrolments/recommended-exits", params={"cursor": "bm90LWEtY3Vyc29y"})
                ).status_code == 422
    for role in ("supervisor", "pendamping"):
        async with registry.client(role) as http:
            assert (await http.get("/enrolments/recommended-exits")).status_code == 403
    reads = await registry.pool.fetch("SELECT role, household_id, fields FROM processing_records"
                                      " WHERE channel = 'GET /enrolments/recommended-exits' AND role = 'auditor'")
    assert [(r["household_id"], r["fields"]) for r in reads] == [(UUID(str(household["id"])),
                                                                  list(enrolments.RECOMMENDATION_FIELDS))]
