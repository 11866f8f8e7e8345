"""Changes from the field that can move a family's eligibility wait for a supervisor, on the real PostgreSQL:
a pendamping's welfare change or a member's end is a proposal that changes nothing until it is approved
(then it applies, with who proposed, who approved and why in the history, and its event names the
proposal as its cause); a rejection applies nothing and keeps its reason; an operator's change applies at
once; each supervisor's queue holds their area only; a decision is made once.
"""

from __future__ import annotations

import itertools
import json
from datetime import date
from uuid import UUID, uuid4

import pytest

from ejsika_registry import households, proposals, proposals_api
from ejsika_runtime.programme_time import programme_today

from .conftest import NIK_KEY

pytestmark = pytest.mark.infra

CILEGON, LEBAK = "3672011001", "3602012002"
PENDAMPING = "pendamping-1"
_serials = itertools.count(1)


@pytest.fixture
async def registry(registry):
    """The registry of conftest.py with the proposals' routes, deciding by the shipped rules."""
    registry.service.router.include_router(proposals_api.routes(registry.service, NIK_KEY))
    proposals.use(None)
    yield registry
    proposals.use(None)


def person(relation: str, sex: str, born: date) -> dict:
    day = born.day + (40 if sex == "F" else 0)
    nik = f"367201{day:02d}{born.month:02d}{born.year % 100:02d}{next(_serials):04d}"
    return {"nik": nik, "name": "Warga", "sex": sex, "birth_date": born.isoformat(), "relation": relation}


async def register(registry, programme: str = "jscm", region_code: str = CILEGON,
                   pendamping: str = PENDAMPING) -> dict:
    """A household of two (a head and a grown child) in `pendamping`'s caseload."""
    body = registry.families.registration(programme=programme)
    body.update(region_code=region_code,
                members=[person("head", "M", date(1980, 3, 12)), person("child", "F", date(2004, 5, 1))])
    (household,) = await registry.register_bodies([body], pendamping)
    return household


def pendamping(registry, sub: str = PENDAMPING):
    return registry.client("pendamping", sub=sub)


def supervisor(registry, area: str = "3672", sub: str = "supervisor-1"):
    return registry.client("supervisor", area=area, sub=sub)


async def propose_welfare(registry, household: dict, version: int | None = None, sub: str = PENDAMPING,
                          **headers: str) -> tuple[dict, bool]:
    """The pendamping observes that the family now has (or lacks) electricity; answer the 202's body and
    the indicator proposed."""
    flipped = not household["welfare"].get("no_electricity", False)
    async with pendamping(registry, sub) as http:
        answer = await http.patch(f"/households/{household['id']}", json={
            "welfare": {"no_electricity": flipped}, "reason": "seen on the monthly visit"},
            headers={"If-Match": f'"{version or household["version"]}"', **headers})
    assert answer.status_code == 202, answer.text
    return answer.json(), flipped


async def history_of(registry, household_id: UUID) -> list[dict]:
    return await households.full_history(registry.pool, household_id)


async def test_a_pendamping_s_welfare_change_is_a_pending_proposal_that_changes_nothing(registry):
    household = await register(registry)
    url = f"/households/{household['id']}"
    async with pendamping(registry) as http:
        answer = await http.patch(url, json={"welfare": {"no_electricity": not household["welfare"].get(
            "no_electricity", False)}, "reason": "seen on the monthly visit"}, headers={"If-Match": '"1"'})
        assert answer.status_code == 202, answer.text
        proposed = answer.json()
        assert (proposed["status"], proposed["kind"], proposed["household_id"], proposed["approver"]) == (
            "pending", "update", str(household["id"]), "supervisor")
        assert answer.headers["etag"] == '"2"'  # the proposal took a version of the household's history

        now = (await http.get(url)).json()
        assert now["welfare"] == household["welfare"] and now["version"] == 2
        read = await http.get(f"/proposals/{proposed['id']}")
        assert read.status_code == 200
        assert read.json()["payload"] == {"welfare": {"no_electricity": not household["welfare"].get(
            "no_electricity", False)}}
        assert (read.json()["proposed_by"], read.json()["reason"], read.json()["base_version"]) == (
            PENDAMPING, "seen on the monthly visit", 1)

        # what does not move eligibility applies at once, also from a pendamping
        address = await http.patch(url, json={"address": "Jl. Baru 1"}, headers={"If-Match": '"2"'})
        assert address.status_code == 200 and address.json()["address"] == "Jl. Baru 1"

    registered, submitted, updated = await history_of(registry, household["id"])
    assert (submitted["change"], submitted["version"], submitted["changes"]) == ("proposal_submitted", 2, {})
    assert (submitted["actor"], submitted["reason"], submitted["cause_id"]) == (
        PENDAMPING, "seen on the monthly visit", UUID(proposed["id"]))
    assert submitted["detail"] == {"proposal_id": proposed["id"], "kind": "update", "fields": ["welfare"],
                                   "approver": "supervisor"}
    assert set(updated["changes"]) == {"address"}
    assert [e["type"] for e in await registry.outbox()] == ["household.registered", "household.updated"]


async def test_approval_applies_the_change_with_who_proposed_who_approved_and_why(registry):
    household = await register(registry)
    correlation = uuid4()
    proposed, flipped = await propose_welfare(registry, household, **{"X-Correlation-Id": str(correlation)})

    async with supervisor(registry) as http:
        answer = await http.post(f"/proposals/{proposed['id']}/approve", json={"reason": "checked with the village"})
        assert answer.status_code == 200, answer.text
        decided = answer.json()
        again = await http.post(f"/proposals/{proposed['id']}/approve", json={})
        rejected_after = await http.post(f"/proposals/{proposed['id']}/reject", json={"reason": "changed my mind"})
        now = (await http.get(f"/households/{household['id']}")).json()

    assert (decided["status"], decided["decided_by"], decided["decision_reason"], decided["applied_version"]) == (
        "approved", "supervisor-1", "checked with the village", 3)
    assert now["welfare"]["no_electricity"] is flipped and now["version"] == 4
    assert again.status_code == 409 and rejected_after.status_code == 409
    assert "approved" in again.json()["detail"]

    registered, submitted, updated, approved = await history_of(registry, household["id"])
    assert [r["change"] for r in (registered, submitted, updated, approved)] == [
        "registered", "proposal_submitted", "updated", "proposal_approved"]
    assert (updated["version"], updated["source"], updated["actor"], updated["cause_id"], updated["reason"]) == (
        3, "proposal", PENDAMPING, UUID(proposed["id"]), "seen on the monthly visit")
    assert updated["changes"]["welfare"]["new"]["no_electricity"] is flipped
    assert (approved["version"], approved["actor"], approved["reason"], approved["cause_id"], approved["changes"]) == (
        4, "supervisor-1", "checked with the village", UUID(proposed["id"]), {})
    assert approved["detail"]["applied_version"] == 3 and approved["detail"]["proposed_by"] == PENDAMPING

    (event,) = [e for e in await registry.outbox() if e["type"] == "household.updated"]
    assert (event["causation_id"], event["correlation_id"]) == (proposed["id"], str(correlation))
    assert (event["data"]["version"], event["data"]["changed"]) == (3, ["welfare"])

    recorded = await registry.pool.fetch(
        "SELECT subject, action, channel FROM processing_records WHERE household_id = $1 ORDER BY id", household["id"])
    assert ("supervisor-1", "write", "POST /proposals/{proposal_id}/approve") in [tuple(r) for r in recorded]


async def test_a_rejection_applies_nothing_and_keeps_its_reason(registry):
    household = await register(registry)
    proposed, _ = await propose_welfare(registry, household)
    url = f"/proposals/{proposed['id']}"
    async with registry.client("operator", programme="jscm", sub="operator-1") as http:
        blank = await http.post(f"{url}/reject", json={"reason": "  "})
        assert blank.status_code == 422 and blank.json()["errors"][0]["field"] == "reason"
        answer = await http.post(f"{url}/reject", json={"reason": "the house has a meter since May"})
        assert answer.status_code == 200, answer.text
        approve_after = await http.post(f"{url}/approve", json={})
        now = (await http.get(f"/households/{household['id']}")).json()

    assert (answer.json()["status"], answer.json()["decided_by"], answer.json()["decision_reason"]) == (
        "rejected", "operator-1", "the house has a meter since May")
    assert answer.json()["applied_version"] is None
    assert approve_after.status_code == 409
    assert now["welfare"] == household["welfare"] and now["version"] == 3
    *_, rejected = await history_of(registry, household["id"])
    assert (rejected["change"], rejected["actor"], rejected["reason"], rejected["changes"]) == (
        "proposal_rejected", "operator-1", "the house has a meter since May", {})
    assert [e["type"] for e in await registry.outbox()] == ["household.registered"]


@pytest.mark.parametrize("role, claims", [("operator", {"programme": "jscm"}), ("supervisor", {"area": "3672"})])
async def test_an_operator_s_or_a_supervisor_s_change_applies_at_once(registry, role, claims):
    household = await register(registry)
    flipped = not household["welfare"].get("no_electricity", False)
    async with registry.client(role, **claims) as http:
        answer = await http.patch(f"/households/{household['id']}", json={"welfare": {"no_electricity": flipped}},
                                  headers={"If-Match": '"1"'})
    assert answer.status_code == 200, answer.text
    assert answer.json()["welfare"]["no_electricity"] is flipped and answer.headers["etag"] == '"2"'
    assert await registry.pool.fetchval("SELECT count(*) FROM proposals") == 0


async def test_each_queue_holds_the_proposals_of_its_area_programme_or_author_only(registry):
    cilegon = await register(registry)
    lebak = await register(registry, "jamsosratu", LEBAK, pendamping="pendamping-2")
    mine, _ = await propose_welfare(registry, cilegon)
    theirs, _ = await propose_welfare(registry, lebak, sub="pendamping-2")

    async def listed(http, **params) -> list[str]:
        answer = await http.get("/proposals", params={"status": "pending", **params})
        assert answer.status_code == 200, answer.text
        return [p["id"] for p in answer.json()["items"]]

    async with supervisor(registry) as http:
        assert await listed(http) == [mine["id"]]
        assert await listed(http, region_prefix="3602") == []
        assert (await http.get(f"/proposals/{theirs['id']}")).status_code == 404
        outside = await http.post(f"/proposals/{theirs['id']}/approve", json={})
        assert outside.status_code == 404
    async with supervisor(registry, area="3602", sub="supervisor-2") as http:
        assert await listed(http) == [theirs["id"]]
    async with registry.client("operator", programme="jscm") as http:
        assert await listed(http) == [mine["id"]]
    async with pendamping(registry) as http:
        assert await listed(http) == [mine["id"]]
        assert (await http.get(f"/proposals/{theirs['id']}")).status_code == 404
    async with registry.client("auditor") as http:
        assert sorted(await listed(http)) == sorted([mine["id"], theirs["id"]])
        assert await listed(http, region_prefix="3602") == [theirs["id"]]
        assert await listed(http, status="approved") == []
        first = (await http.get("/proposals", params={"limit": 1})).json()
        second = (await http.get("/proposals", params={"limit": 1, "cursor": first["next_cursor"]})).json()
        assert [p["id"] for p in first["items"] + second["items"]] == [mine["id"], theirs["id"]]
        assert second["next_cursor"] is None
        assert (await http.get("/proposals", params={"cursor": "bm90LW91cnM"})).status_code == 422
        assert (await http.post(f"/proposals/{mine['id']}/approve", json={})).status_code == 403  # reads only
    assert await registry.pool.fetchval(
        "SELECT count(*) FROM processing_records WHERE subject = 'supervisor-1' AND action = 'read'"
        " AND channel = 'GET /proposals' AND household_id = $1", cilegon["id"]) >= 1


async def test_a_proposal_is_checked_as_if_applied_and_based_on_the_version_read(registry):
    household = await register(registry)
    url = f"/households/{household['id']}"
    async with pendamping(registry) as http:
        broken = await http.patch(url, json={"welfare": {"no_electricity": True}, "kk_number": "3672013202200001"},
                                  headers={"If-Match": '"1"'})
        assert broken.status_code == 422 and broken.json()["errors"][0]["field"] == "kk_number"
        stale = await http.patch(url, json={"welfare": {"no_electricity": True}}, headers={"If-Match": '"7"'})
        assert stale.status_code == 412 and stale.headers["etag"] == '"1"'
        same = await http.patch(url, json={"welfare": {k: v for k, v in household["welfare"].items()
                                                       if k == "floor_area_per_person_m2"}},
                                headers={"If-Match": '"1"'})
        assert same.status_code == 200 and same.headers["etag"] == '"1"'  # nothing to change, nothing to decide
    assert await registry.pool.fetchval("SELECT count(*) FROM proposals") == 0
    assert [r["change"] for r in await history_of(registry, household["id"])] == ["registered"]


async def test_a_proposal_overtaken_by_a_later_change_of_the_same_indicator_is_not_applied_over_it(registry):
    household = await register(registry)
    proposed, flipped = await propose_welfare(registry, household)
    async with registry.client("operator", programme="jscm") as http:
        corrected = await http.patch(f"/households/{household['id']}", json={"welfare": {"no_electricity": None}},
                                     headers={"If-Match": '"2"'})
        assert corrected.status_code == 200
    async with supervisor(registry) as http:
        answer = await http.post(f"/proposals/{proposed['id']}/approve", json={})
        assert answer.status_code == 409 and "welfare.no_electricity" in answer.json()["detail"]
        assert (await http.get(f"/proposals/{proposed['id']}")).json()["status"] == "pending"
        assert (await http.post(f"/proposals/{proposed['id']}/reject", json={"reason": "overtaken"})).status_code == 200
    assert "no_electricity" not in (await households.current_state(registry.pool, household["id"]))["welfare"]


async def test_proposing_the_same_indicators_again_supersedes_the_earlier_proposal(registry):
    household = await register(registry)
    first, _ = await propose_welfare(registry, household)
    second, _ = await propose_welfare(registry, household, version=2)
    async with supervisor(registry) as http:
        earlier = (await http.get(f"/proposals/{first['id']}")).json()
        assert (earlier["status"], earlier["superseded_by"]) == ("superseded", second["id"])
        assert (await http.post(f"/proposals/{first['id']}/approve", json={})).status_code == 409
        assert [p["id"] for p in (await http.get("/proposals", params={"status": "pending"})).json()["items"]] == [
            second["id"]]
    *_, submitted = await history_of(registry, household["id"])
    assert submitted["detail"]["supersedes"] == [first["id"]]


async def test_rules_are_configuration_and_nobody_decides_their_own_proposal(registry, tmp_path):
    path = tmp_path / "approval.json"
    path.write_text(json.dumps({"applies_at_once": ["operator"], "rules": [
        {"kind": "update", "fields": ["address"], "roles": ["supervisor"], "approver": "supervisor"}]}))
    proposals.use(path)
    household = await register(registry)
    async with supervisor(registry) as http:
        answer = await http.patch(f"/households/{household['id']}", json={"address": "Jl. Baru 1"},
                                  headers={"If-Match": '"1"'})
        assert answer.status_code == 202, answer.text
        own = await http.post(f"/proposals/{answer.json()['id']}/approve", json={})
        assert own.status_code == 403 and "author" in own.json()["detail"]
    async with pendamping(registry) as http:  # welfare is not held by these rules
        welfare = await http.patch(f"/households/{household['id']}", json={"welfare": {"no_electricity": True}},
                                   headers={"If-Match": '"2"'})
        assert welfare.status_code == 200
    async with supervisor(registry, sub="supervisor-2") as http:
        approved = await http.post(f"/proposals/{answer.json()['id']}/approve", json={})
        assert approved.status_code == 200, approved.text
    assert (await households.current_state(registry.pool, household["id"]))["address"] == "Jl. Baru 1"


async def test_a_member_s_end_waits_for_approval_and_conflicts_if_they_left_meanwhile(registry):
    household = await register(registry)
    child = next(m for m in household["members"].values() if m["relation"] == "child")
    end = {"kind": "married_out", "effective_date": programme_today().isoformat(), "reason": "married in Serang"}
    url = f"/households/{household['id']}/members/{child['member_id']}/end"
    async with pendamping(registry) as http:
        first = await http.post(url, json=end, headers={"If-Match": '"1"'})
        assert first.status_code == 202, first.text
        second = await http.post(url, json=end, headers={"If-Match": '"2"'})
        assert second.status_code == 202, second.text
    assert set((await households.current_state(registry.pool, household["id"]))["members"]) == set(
        household["members"])

    async with supervisor(registry) as http:
        approved = await http.post(f"/proposals/{first.json()['id']}/approve", json={"reason": "KUA record seen"})
        assert approved.status_code == 200, approved.text
        # the member it ends has left already: nothing to apply
        conflict = await http.post(f"/proposals/{second.json()['id']}/approve", json={})
        assert conflict.status_code == 409, conflict.text
    state = await households.current_state(registry.pool, household["id"])
    assert child["member_id"] not in state["members"]
    (event,) = [e for e in await registry.outbox() if e["type"] == "member.ended"]
    assert event["causation_id"] == first.json()["id"]


async def test_a_birth_and_a_move_proposed_by_a_pendamping_apply_as_declared_once_approved(registry):
    household, other = await register(registry), await register(registry)
    born = programme_today().isoformat()
    birth = {"member": {"nik_status": "pending", "name": "Bayi", "sex": "F", "birth_date": born, "relation": "child"},
             "reason": "birth", "effective_date": born}
    child = next(m for m in household["members"].values() if m["relation"] == "child")
    move = {"to_household_id": str(other["id"]), "to_version": 1, "relation": "other", "effective_date": born}
    async with pendamping(registry) as http:
        added = await http.post(f"/households/{household['id']}/members", json=birth, headers={"If-Match": '"1"'})
        assert added.status_code == 202, added.text
        moved = await http.post(f"/households/{household['id']}/members/{child['member_id']}/move", json=move,
                                headers={"If-Match": '"2"'})
        assert moved.status_code == 202, moved.text
    assert await registry.pool.fetchval("SELECT count(*) FROM members") == 4  # nothing changed yet
    async with supervisor(registry) as http:
        for proposal in (added.json(), moved.json()):
            answer = await http.post(f"/proposals/{proposal['id']}/approve", json={"reason": "seen the papers"})
            assert answer.status_code == 200, answer.text

    left = await households.current_state(registry.pool, household["id"])
    joined = await households.current_state(registry.pool, other["id"])
    (baby,) = [m for m in left["members"].values() if m["name"] == "Bayi"]
    assert (baby["nik_status"], baby["birth_date"], baby["relation"]) == ("pending", born, "child")
    assert child["member_id"] not in left["members"]
    assert [m["nik"] for m in joined["members"].values() if m["relation"] == "other"] == [child["nik"]]
    events = [e for e in await registry.outbox() if e["type"] in ("member.added", "member.moved")]
    assert [(e["type"], e["causation_id"]) for e in events] == [
        ("member.added", added.json()["id"]), ("member.moved", moved.json()["id"])]
