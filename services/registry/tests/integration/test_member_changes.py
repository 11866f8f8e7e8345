"""Members as families really change, on the real PostgreSQL: a birth, a NIK given later, a death, a move
between households, a new head, a household split in two. Each answers the new state and its ETag,
writes the history with the whole member before and after, leaves its event in the outbox with the
household's new version, and can be read back as of before it.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from uuid import UUID, uuid4

import pytest

from ejsika_registry import history, households
from ejsika_registry.domain.identifiers import nik_digest
from ejsika_registry.registrations import household_id_for
from ejsika_runtime.programme_time import programme_today

from .conftest import NIK_KEY

pytestmark = pytest.mark.infra

TODAY = programme_today()
_serials = itertools.count(1)


def nik(sex: str, born: date) -> str:
    """A well-formed NIK of Kec. Cilegon for this birth date and sex (women: day + 40)."""
    day = born.day + (40 if sex == "F" else 0)
    return f"367201{day:02d}{born.month:02d}{born.year % 100:02d}{next(_serials):04d}"


def person(relation: str, sex: str, born: date, **more) -> dict:
    return {"nik": nik(sex, born), "name": "Warga", "sex": sex, "birth_date": born.isoformat(),
            "relation": relation, **more}


def years_ago(years: int) -> date:
    return TODAY.replace(year=TODAY.year - years, day=min(TODAY.day, 28))


async def family(registry, *relations: str) -> dict:
    """A household of JSCM registered with members of these relations (the first one the head)."""
    sexes = {"head": "M", "spouse": "F"}
    ages = {"head": 45, "spouse": 40, "child": 19, "parent": 70, "other": 30}
    members = [person(r, sexes.get(r, "F" if i % 2 else "M"), years_ago(ages[r] - i)) for i, r in enumerate(relations)]
    (state,) = await registry.register(members=members)
    return history.jsonable(state)  # as the API answers it: ids and dates as text


def by_relation(state: dict, relation: str) -> dict:
    return next(m for m in state["members"].values() if m["relation"] == relation)


def tag(state: dict) -> dict[str, str]:
    return {"If-Match": f'"{state["version"]}"'}


async def history_of(http, household_id) -> list[dict]:
    answer = await http.get(f"/households/{household_id}/history")
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


async def events_of(registry, type_: str) -> list[dict]:
    return [e for e in await registry.outbox() if e["type"] == type_]


async def as_of(registry, household_id, moment) -> dict | None:
    async with registry.pool.acquire() as conn:
        return await history.as_of(conn, await households.current_state(conn, household_id), moment)


async def now(registry):
    """A moment between two changes: after the last one committed, before the next one starts."""
    return await registry.pool.fetchval("SELECT clock_timestamp()")


def newborn(**more) -> dict:
    return {"nik_status": "pending", "name": "Bayi", "sex": "F", "birth_date": (TODAY - timedelta(days=3)).isoformat(),
            "relation": "child", **more}


async def test_a_birth_joins_without_a_nik_and_the_nik_given_later_is_checked_and_findable(registry):
    household = await family(registry, "head", "spouse")
    hid = household["id"]
    async with registry.client("operator", sub="operator-7") as http:
        added = await http.post(f"/households/{hid}/members", headers=tag(household), json={
            "member": newborn(), "reason": "birth", "effective_date": newborn()["birth_date"]})
        assert added.status_code == 201, added.text
        assert added.headers["etag"] == '"2"'
        baby = added.json()["members"][-1]
        assert (baby["name"], baby["nik"], baby["nik_status"], baby["relation"]) == ("Bayi", None, "pending", "child")
        assert baby["member_id"] not in household["members"]

        given = nik("F", TODAY - timedelta(days=3))
        updated = await http.patch(f"/households/{hid}/members/{baby['member_id']}", headers={"If-Match": '"2"'},
                                   json={"nik": given, "reason": "akta kelahiran"})
        assert updated.status_code == 200, updated.text
        assert updated.headers["etag"] == '"3"'
        now_baby = next(m for m in updated.json()["members"] if m["member_id"] == baby["member_id"])
        assert (now_baby["nik"], now_baby["nik_status"], now_baby["quality_flags"]) == (given, "verified", [])
        items = await history_of(http, hid)

    digest = await registry.pool.fetchval("SELECT nik_digest FROM members WHERE member_id = $1",
                                          UUID(baby["member_id"]))
    assert bytes(digest) == nik_digest(NIK_KEY, given), "a data-subject request finds the child by the new NIK"

    registered, joined, corrected = items
    field = f"members/{baby['member_id']}"
    assert joined["change"] == "member_added" and joined["version"] == 2 and joined["reason"] == "birth"
    assert joined["changes"] == {field: {"old": None, "new": {**baby}}}
    assert joined["detail"] == {"reason": "birth", "effective_date": newborn()["birth_date"]}
    assert (joined["actor"], joined["source"]) == ("operator-7", "operator")
    assert corrected["change"] == "member_updated" and corrected["reason"] == "akta kelahiran"
    assert corrected["changes"][field] == {"old": baby, "new": now_baby}

    (added_event,) = await events_of(registry, "member.added")
    assert added_event["subject"] == hid and added_event["data"]["version"] == 2
    assert added_event["data"]["member"]["member_id"] == baby["member_id"] and added_event["data"]["reason"] == "birth"
    (updated_event,) = await events_of(registry, "member.updated")
    assert updated_event["data"]["version"] == 3 and updated_event["data"]["changed"] == ["nik", "nik_status"]
    assert not await events_of(registry, "member.flagged")

    channels = {r["channel"] for r in await registry.pool.fetch(
        "SELECT channel FROM processing_records WHERE household_id = $1 AND action = 'write'", UUID(hid))}
    assert channels == {"POST /households/{household_id}/members",
                        "PATCH /households/{household_id}/members/{member_id}"}


async def test_a_member_whose_nik_contradicts_the_declaration_joins_flagged_for_review(registry):
    household = await family(registry, "head")
    born = years_ago(30)
    wrong_year = born.replace(year=born.year - 1)
    async with registry.client("operator") as http:
        added = await http.post(f"/households/{household['id']}/members", headers=tag(household), json={
            "member": person("spouse", "F", wrong_year) | {"birth_date": born.isoformat()},
            "reason": "marriage_in", "effective_date": TODAY.isoformat()})
    assert added.status_code == 201, added.text
    spouse = added.json()["members"][-1]
    assert spouse["quality_flags"] == ["nik_birth_date_mismatch"]
    (flagged,) = await events_of(registry, "member.flagged")
    assert flagged["data"] == {"household_id": household["id"], "version": 2, "member_id": spouse["member_id"],
                               "quality_flags": ["nik_birth_date_mismatch"]}


def _requests(state: dict, other: dict) -> list[tuple[str, str, dict]]:
    """One valid request of every member change of `state` (moves and splits towards `other`)."""
    hid, head, child = state["id"], by_relation(state, "head"), by_relation(state, "child")
    return [
        ("POST", f"/households/{hid}/members",
         {"member": newborn(), "reason": "birth", "effective_date": newborn()["birth_date"]}),
        ("PATCH", f"/households/{hid}/members/{child['member_id']}", {"in_school": True}),
        ("POST", f"/households/{hid}/members/{child['member_id']}/end",
         {"kind": "died", "effective_date": TODAY.isoformat()}),
        ("POST", f"/households/{hid}/members/{child['member_id']}/move",
         {"to_household_id": other["id"], "to_version": other["version"], "relation": "other",
          "effective_date": TODAY.isoformat()}),
        ("POST", f"/households/{hid}/head", {"member_id": child["member_id"], "kk_number": state["kk_number"],
                                              "relations": [{"member_id": head["member_id"], "relation": "parent"}]}),
        ("POST", f"/households/{hid}/split", {
            "request_id": str(uuid4()), "member_ids": [child["member_id"]], "member_id": child["member_id"],
            "kk_number": state["kk_number"], "address": "Jl. Baru", "region_code": "3672011002"}),
    ]


async def test_every_member_change_needs_the_version_it_was_based_on(registry):
    household, other = await family(registry, "head", "child"), await family(registry, "head")
    before = await registry.outbox()
    async with registry.client("operator") as http:
        for method, url, body in _requests(household, other):
            missing = await http.request(method, url, json=body)
            assert missing.status_code == 428, (url, missing.text)
            stale = await http.request(method, url, json=body, headers={"If-Match": '"7"'})
            assert stale.status_code == 412, (url, stale.text)
            assert stale.headers["etag"] == '"1"'
        async with registry.client("pendamping", sub="someone-else") as stranger:
            for method, url, body in _requests(household, other):
                outside = await stranger.request(method, url, json=body, headers=tag(household))
                assert outside.status_code == 404, (url, outside.text)
        after = await http.get(f"/households/{household['id']}")
    assert after.headers["etag"] == '"1"' and len(after.json()["members"]) == 2
    assert await registry.outbox() == before, "a refused change announces nothing"


async def test_a_nik_active_in_another_household_is_refused_naming_that_household_never_the_person(registry):
    first, second = await family(registry, "head", "spouse"), await family(registry, "head", "child")
    taken = by_relation(first, "spouse")
    async with registry.client("operator") as http:
        joining = await http.post(f"/households/{second['id']}/members", headers=tag(second), json={
            "member": {k: taken[k] for k in ("nik", "name", "sex", "birth_date")} | {"relation": "spouse"},
            "reason": "marriage_in", "effective_date": TODAY.isoformat()})
        child = by_relation(second, "child")
        correcting = await http.patch(f"/households/{second['id']}/members/{child['member_id']}",
                                      headers=tag(second), json={"nik": taken["nik"]})
    for answer in (joining, correcting):
        assert answer.status_code == 409, answer.text
        problem = answer.json()
        assert problem["detail"] == f"a member is an active member of household {first['id']}"
        assert problem["errors"] == [{"field": "nik", "rule": "nik_registered", "reason": problem["detail"]}]
        assert taken["nik"] not in answer.text and taken["name"] not in problem["detail"]
    assert await registry.pool.fetchval("SELECT version FROM households WHERE id = $1", second["id"]) == 1


async def test_a_death_ends_the_membership_and_the_head_only_leaves_after_a_head_change(registry):
    household = await family(registry, "head", "spouse", "child")
    hid, head, child = household["id"], by_relation(household, "head"), by_relation(household, "child")
    async with registry.client("operator") as http:
        heads_end = await http.post(f"/households/{hid}/members/{head['member_id']}/end", headers=tag(household),
                                    json={"kind": "died", "effective_date": TODAY.isoformat()})
        assert heads_end.status_code == 422
        assert heads_end.json()["errors"][0] == {"field": "member_id", "rule": "head_ends",
                                                 "reason": "the head cannot leave while others remain: "
                                                           "change the head first"}
        future = await http.post(f"/households/{hid}/members/{child['member_id']}/end", headers=tag(household),
                                 json={"kind": "died", "effective_date": (TODAY + timedelta(days=1)).isoformat()})
        assert future.status_code == 422 and future.json()["errors"][0]["rule"] == "effective_date"
        ended = await http.post(f"/households/{hid}/members/{child['member_id']}/end", headers=tag(household),
                                json={"kind": "died", "effective_date": TODAY.isoformat(), "reason": "sakit"})
        assert ended.status_code == 200, ended.text
        assert ended.headers["etag"] == '"2"'
        assert child["member_id"] not in {m["member_id"] for m in ended.json()["members"]}
        again = await http.post(f"/households/{hid}/members/{child['member_id']}/end", headers={"If-Match": '"2"'},
                                json={"kind": "died", "effective_date": TODAY.isoformat()})
        assert again.status_code == 404
        (*_, row) = await history_of(http, hid)

    stored = await registry.pool.fetchrow("SELECT ended_at, end_kind, ended_on FROM members WHERE member_id = $1",
                                          UUID(child["member_id"]))
    assert stored["ended_at"] is not None and (stored["end_kind"], stored["ended_on"]) == ("died", TODAY)
    assert row["change"] == "member_ended" and row["reason"] == "sakit"
    assert row["changes"] == {f"members/{child['member_id']}": {"old": child, "new": None}}
    (event,) = await events_of(registry, "member.ended")
    assert event["data"] == {"household_id": hid, "version": 2, "member_id": child["member_id"], "kind": "died",
                             "effective_date": TODAY.isoformat()}


async def test_a_move_ends_one_membership_and_starts_another_in_one_transaction(registry):
    source, target = await family(registry, "head", "spouse", "child"), await family(registry, "head")
    child = by_relation(source, "child")
    url = f"/households/{source['id']}/members/{child['member_id']}/move"
    body = {"to_household_id": target["id"], "to_version": 1, "relation": "other", "effective_date": TODAY.isoformat()}
    async with registry.client("operator") as http:
        # someone changed the target since it was read: refused with its current version, nothing moved
        await registry.pool.execute("UPDATE households SET version = 2 WHERE id = $1", target["id"])
        stale = await http.post(url, headers=tag(source), json=body)
        assert stale.status_code == 409, stale.text
        assert "current version is 2" in stale.json()["detail"]
        assert stale.json()["errors"] == [{"field": "to_version", "rule": "stale"}]

        moved = await http.post(url, headers=tag(source), json=body | {"to_version": 2})
        assert moved.status_code == 200, moved.text
        assert moved.headers["etag"] == '"2"'
        assert child["member_id"] not in {m["member_id"] for m in moved.json()["members"]}
        joined = (await http.get(f"/households/{target['id']}")).json()
        source_history, target_history = await history_of(http, source["id"]), await history_of(http, target["id"])

    assert joined["version"] == 3
    newcomer = joined["members"][-1]
    assert newcomer["member_id"] != child["member_id"]
    assert newcomer == child | {"member_id": newcomer["member_id"], "relation": "other"}, "the same person, NIK kept"
    memberships = await registry.pool.fetch("SELECT household_id, ended_at, end_kind FROM members WHERE nik = $1",
                                            child["nik"])
    assert sorted((str(r["household_id"]), r["ended_at"] is None, r["end_kind"]) for r in memberships) == sorted(
        [(source["id"], False, "moved_out"), (target["id"], True, None)]), "one active membership at a time"

    left, arrived = source_history[-1], target_history[-1]
    assert (left["change"], left["version"], arrived["change"], arrived["version"]) == (
        "member_moved", 2, "member_moved", 3)
    assert left["changes"] == {f"members/{child['member_id']}": {"old": child, "new": None}}
    assert arrived["changes"] == {f"members/{newcomer['member_id']}": {"old": None, "new": newcomer}}
    assert arrived["detail"]["from_household_id"] == source["id"]
    (event,) = await events_of(registry, "member.moved")
    assert event["subject"] == target["id"]
    assert {k: event["data"][k] for k in ("household_id", "version", "from_household_id", "from_version",
                                          "previous_member_id")} == {
        "household_id": target["id"], "version": 3, "from_household_id": source["id"], "from_version": 2,
        "previous_member_id": child["member_id"]}
    assert event["data"]["member"]["member_id"] == newcomer["member_id"]


async def test_a_new_head_brings_the_relations_and_the_no_kk_that_change_with_it(registry):
    household = await family(registry, "head", "spouse", "child")
    hid, head, spouse = household["id"], by_relation(household, "head"), by_relation(household, "spouse")
    new_kk = "3672011505200002"
    async with registry.client("operator") as http:
        second = await http.post(f"/households/{hid}/members", headers=tag(household), json={
            "member": person("head", "M", years_ago(50)), "reason": "marriage_in", "effective_date": TODAY.isoformat()})
        assert second.status_code == 422 and second.json()["errors"][0]["rule"] == "one_head"
        unsaid = await http.post(f"/households/{hid}/head", headers=tag(household), json={
            "member_id": spouse["member_id"], "kk_number": new_kk,
            "relations": [{"member_id": by_relation(household, "child")["member_id"], "relation": "child"}]})
        assert unsaid.status_code == 422 and unsaid.json()["errors"][0]["rule"] == "head_relation"
        changed = await http.post(f"/households/{hid}/head", headers=tag(household), json={
            "member_id": spouse["member_id"], "kk_number": new_kk, "reason": "kepala keluarga wafat",
            "relations": [{"member_id": head["member_id"], "relation": "spouse"}]})
        assert changed.status_code == 200, changed.text
        (*_, row) = await history_of(http, hid)
    state = changed.json()
    assert state["kk_number"] == new_kk and state["version"] == 2
    relations = {m["member_id"]: m["relation"] for m in state["members"]}
    assert relations[spouse["member_id"]] == "head" and relations[head["member_id"]] == "spouse"
    assert row["change"] == "head_changed" and row["changes"] == {
        "kk_number": {"old": household["kk_number"], "new": new_kk},
        f"members/{spouse['member_id']}": {"old": spouse, "new": spouse | {"relation": "head"}},
        f"members/{head['member_id']}": {"old": head, "new": head | {"relation": "spouse"}},
    }
    (event,) = await events_of(registry, "household.head_changed")
    assert event["data"]["head_member_id"] == spouse["member_id"]
    assert event["data"]["previous_head_member_id"] == head["member_id"]
    assert event["data"]["kk_number"] == new_kk and event["data"]["version"] == 2


async def test_a_split_makes_a_household_of_its_own_once_however_often_it_is_sent(registry):
    household = await family(registry, "head", "spouse", "child", "child")
    hid = household["id"]
    _, _, first_child, second_child = household["members"].values()
    request_id = uuid4()
    body = {"request_id": str(request_id), "member_ids": [second_child["member_id"], first_child["member_id"]],
            "member_id": first_child["member_id"], "relations": [{"member_id": second_child["member_id"],
                                                                    "relation": "other"}],
            "kk_number": "3672011505200002", "address": "Jl. Anak 2", "region_code": "3672011002"}
    new_id = str(household_id_for(request_id))
    async with registry.client("operator") as http:
        made = await http.post(f"/households/{hid}/split", headers=tag(household), json=body)
        assert made.status_code == 201, made.text
        assert made.json() == {"household_id": hid, "version": 2, "new_household_id": new_id, "new_version": 1}
        outbox = await registry.outbox()
        retried = await http.post(f"/households/{hid}/split", headers=tag(household), json=body)
        assert retried.status_code == 200 and retried.json() == made.json(), "the first answer, again"
        assert await registry.outbox() == outbox, "and nothing changed"
        elsewhere = await family(registry, "head", "child")
        child = by_relation(elsewhere, "child")
        taken = await http.post(f"/households/{elsewhere['id']}/split", headers=tag(elsewhere), json=body | {
            "member_ids": [child["member_id"]], "member_id": child["member_id"], "relations": []})
        source, new = (await http.get(f"/households/{hid}")).json(), (await http.get(f"/households/{new_id}")).json()
        source_history, new_history = await history_of(http, hid), await history_of(http, new_id)
    assert taken.status_code == 409, "a request id makes one household: not a second one from another"
    assert taken.json()["detail"] == "this request_id was used for another household"

    assert source["version"] == 2 and len(source["members"]) == 2
    assert (new["programme"], new["pendamping_id"], new["region_code"], new["kk_number"], new["version"]) == (
        household["programme"], household["pendamping_id"], "3672011002", "3672011505200002", 1)
    assert [(m["nik"], m["relation"]) for m in new["members"]] == [
        (first_child["nik"], "head"), (second_child["nik"], "other")], "the new head first"
    assert new["welfare"] == household["welfare"], "observed once, for the family as it was"
    for person_ in (first_child, second_child):
        assert await registry.pool.fetchval("SELECT count(*) FROM members WHERE nik = $1 AND ended_at IS NULL",
                                            person_["nik"]) == 1
    split_row, registered_row = source_history[-1], new_history[0]
    assert split_row["change"] == "split" and split_row["detail"]["new_household_id"] == new_id
    assert split_row["changes"] == {f"members/{m['member_id']}": {"old": m, "new": None}
                                    for m in (first_child, second_child)}
    assert registered_row["change"] == "registered" and registered_row["detail"]["split_from"] == hid
    (split_event,) = await events_of(registry, "household.split")
    assert split_event["subject"] == hid and split_event["data"]["version"] == 2
    assert split_event["data"]["new_household_id"] == new_id
    registered_event = [e for e in await events_of(registry, "household.registered") if e["subject"] == new_id]
    assert len(registered_event) == 1 and registered_event[0]["data"]["split_from"] == hid


async def test_a_split_outside_the_callers_area_or_breaking_registration_rules_is_refused(registry):
    household = await family(registry, "head", "child")
    child = by_relation(household, "child")
    body = {"request_id": str(uuid4()), "member_ids": [child["member_id"]], "member_id": child["member_id"],
            "kk_number": "3672011505200002", "address": "Jl. Anak", "region_code": "3672011002"}
    async with registry.client("supervisor", area="3672") as http:
        elsewhere = await http.post(f"/households/{household['id']}/split", headers=tag(household),
                                    json=body | {"region_code": "3602012002"})
        bad_kk = await http.post(f"/households/{household['id']}/split", headers=tag(household),
                                 json=body | {"kk_number": "3672013113200001"})
    assert elsewhere.status_code == 422 and elsewhere.json()["errors"] == [{"field": "region_code", "rule": "scope"}]
    assert bad_kk.status_code == 422 and bad_kk.json()["errors"][0]["rule"] == "kk_issue_date"
    assert await registry.pool.fetchval("SELECT count(*) FROM households") == 1


async def test_each_change_can_be_read_back_as_of_before_it(registry):
    household, other = await family(registry, "head", "spouse", "child", "child"), await family(registry, "head")
    hid = household["id"]
    seen: list[tuple[object, dict]] = []  # (a moment, the household then)

    async def read(http) -> dict:
        answer = await http.get(f"/households/{hid}")
        return answer.json()

    async with registry.client("operator") as http:
        async def change(method: str, url: str, body: dict) -> None:
            before = await read(http)
            seen.append((await now(registry), before))
            answer = await http.request(method, url, json=body, headers={"If-Match": f'"{before["version"]}"'})
            assert answer.status_code in (200, 201), answer.text

        head, spouse, first, second = household["members"]
        await change("POST", f"/households/{hid}/members",
                     {"member": newborn(), "reason": "birth", "effective_date": newborn()["birth_date"]})
        await change("PATCH", f"/households/{hid}/members/{first}", {"in_school": True, "name": "Nama Benar"})
        await change("POST", f"/households/{hid}/head", {"member_id": spouse, "kk_number": "3672011505200002",
                                                          "relations": [{"member_id": head, "relation": "spouse"}]})
        await change("POST", f"/households/{hid}/members/{head}/end",
                     {"kind": "married_out", "effective_date": TODAY.isoformat()})
        await change("POST", f"/households/{hid}/members/{second}/move",
                     {"to_household_id": other["id"], "to_version": 1, "relation": "child",
                      "effective_date": TODAY.isoformat()})
        await change("POST", f"/households/{hid}/split", {
            "request_id": str(uuid4()), "member_ids": [first], "member_id": first, "kk_number": "3672011505200003",
            "address": "Jl. Pisah", "region_code": "3672011001"})
        final = await read(http)

    assert final["version"] == 7 and len(final["members"]) == 2  # the spouse (head now) and the newborn
    for moment, then in seen:
        past = await as_of(registry, UUID(hid), moment)
        assert past["version"] == then["version"]
        assert past["kk_number"] == then["kk_number"]
        assert past["members"] == {m["member_id"]: m for m in then["members"]}, f"as of version {then['version']}"
    moved_to = await as_of(registry, UUID(other["id"]), seen[4][0])
    assert len(moved_to["members"]) == 1, "the target without the member who moved in later"


async def test_a_members_health_cover_is_registered_corrected_and_forgotten_with_its_history(registry):
    head = person("head", "M", years_ago(45), health_insurance="none")
    (state,) = await registry.register(members=[head, person("spouse", "F", years_ago(40))])
    household = history.jsonable(state)
    hid = household["id"]
    uncovered, spouse = by_relation(household, "head"), by_relation(household, "spouse")
    assert (uncovered["health_insurance"], spouse["health_insurance"]) == ("none", None)
    (registered,) = await events_of(registry, "household.registered")
    covers = [m.get("health_insurance", "left out") for m in registered["data"]["members"]]
    assert covers == ["none", "left out"], "an unrecorded cover is left out of the event, not sent as null"

    def head_of(answer) -> dict:
        return next(m for m in answer.json()["members"] if m["relation"] == "head")

    async with registry.client("operator") as http:
        path = f"/households/{hid}/members/{uncovered['member_id']}"
        enrolled = await http.patch(path, headers=tag(household), json={"health_insurance": "pbi_jkn",
                                                                       "reason": "didaftarkan PBI-JKN"})
        assert enrolled.status_code == 200, enrolled.text
        assert head_of(enrolled)["health_insurance"] == "pbi_jkn"
        forgotten = await http.patch(path, headers={"If-Match": enrolled.headers["etag"]},
                                     json={"health_insurance": None})
        assert forgotten.status_code == 200, forgotten.text
        assert head_of(forgotten)["health_insurance"] is None
        refused = await http.patch(path, headers={"If-Match": forgotten.headers["etag"]},
                                   json={"health_insurance": "bpjs-gold"})
        assert refused.status_code == 422 and "bpjs-gold" not in refused.text
        items = await history_of(http, hid)

    field = f"members/{uncovered['member_id']}"
    covers = [(i["changes"][field]["old"]["health_insurance"], i["changes"][field]["new"]["health_insurance"])
              for i in items if i["change"] == "member_updated"]
    assert covers == [("none", "pbi_jkn"), ("pbi_jkn", None)]
    updates = await events_of(registry, "member.updated")
    assert [(e["data"]["changed"], e["data"]["member"].get("health_insurance")) for e in updates] == [
        (["health_insurance"], "pbi_jkn"), (["health_insurance"], None)]
