"""Finding households on the real PostgreSQL: each filter, pages that cover everything once in a stable
order, the caller's scope applied in the query, and a NIK matched through its keyed hash only."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
import pytest

from ejsika_registry import search_api
from ejsika_registry.domain.identifiers import nik_digest

from .conftest import NIK_KEY

pytestmark = pytest.mark.infra

CILEGON_1 = "3672011001"  # kecamatan 367201
CILEGON_2 = "3672021001"  # kecamatan 367202
LEBAK = "3602012002"


@pytest.fixture
def registry(registry):
    registry.service.router.include_router(search_api.routes(registry.service, NIK_KEY))
    return registry


async def register(registry, programme: str = "jscm", region: str = CILEGON_1, pendamping: str | None = None
                   ) -> dict[str, Any]:
    body = registry.families.registration(programme=programme)
    body["region_code"] = region
    (household,) = await registry.register_bodies([body], pendamping)
    return household


async def listed(http: httpx.AsyncClient, **params: Any) -> set[UUID]:
    """Every household id of the list, through all its pages."""
    found: list[UUID] = []
    cursor = None
    while True:
        answer = await http.get("/households", params={**params, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        found += [UUID(i["id"]) for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            assert len(found) == len(set(found)), "a household listed twice"
            return set(found)


async def test_each_filter_finds_exactly_the_households_that_match(registry):
    first = await register(registry, "jscm", CILEGON_1)
    second = await register(registry, "jscm", CILEGON_2)
    lebak = await register(registry, "jamsosratu", LEBAK)
    one, two, three = first["id"], second["id"], lebak["id"]
    await registry.pool.execute("UPDATE enrolments SET status = 'active' WHERE household_id = $1", two)
    flagged = next(iter(lebak["members"]))
    await registry.pool.execute("UPDATE members SET quality_flags = '{nik_sex_mismatch}' WHERE member_id = $1",
                                UUID(flagged))

    async with registry.client("auditor") as http:
        assert await listed(http) == {one, two, three}
        assert await listed(http, region_prefix="3672") == {one, two}
        assert await listed(http, region_prefix="367202") == {two}
        assert await listed(http, region_prefix=CILEGON_1) == {one}
        assert await listed(http, region_prefix="3603") == set()
        assert await listed(http, programme="jamsosratu") == {three}
        assert await listed(http, enrolment_status="active") == {two}
        assert await listed(http, enrolment_status="candidate") == {one, three}
        assert await listed(http, enrolment_status="candidate", programme="jscm") == {one}
        assert await listed(http, enrolment_status="active", programme="jamsosratu") == set()
        assert await listed(http, quality_flag="nik_sex_mismatch") == {three}
        assert await listed(http, quality_flag="nik_sex_mismatch", region_prefix="3672") == set()
        # an ended membership's flag is no longer the household's
        await registry.pool.execute("UPDATE members SET ended_at = now(), end_kind = 'died' WHERE member_id = $1",
                                    UUID(flagged))
        assert await listed(http, quality_flag="nik_sex_mismatch") == set()

        answer = await http.get("/households", params={"programme": "jscm", "enrolment_status": "active"})
        (summary,) = answer.json()["items"]
        assert summary == {
            "id": str(two), "programme": "jscm", "region_code": CILEGON_2, "status": "registered", "version": 1,
            "enrolments": [{"programme": "jscm", "status": "active"}],
            "member_count": len(second["members"]), "quality_flags": [], "updated_at": summary["updated_at"]}
        # a list holds no name, NIK or address, and so is not on the record of processing
        for member in second["members"].values():
            assert member["name"] not in answer.text and member["nik"] not in answer.text
        assert second["address"] not in answer.text
        assert await registry.pool.fetchval("SELECT count(*) FROM processing_records") == 0

        invalid = await http.get("/households", params={"region_prefix": "36%"})
        assert invalid.status_code == 422
        assert (await http.get("/households", params={"enrolment_status": "sleeping"})).status_code == 422


async def test_pages_cover_every_household_once_in_the_order_of_their_ids(registry):
    ids = sorted([h["id"] for h in [await register(registry) for _ in range(7)]])
    async with registry.client("auditor") as http:
        pages, cursor = [], None
        while True:
            answer = await http.get("/households", params={"limit": 3, **({"cursor": cursor} if cursor else {})})
            pages.append([UUID(i["id"]) for i in answer.json()["items"]])
            cursor = answer.json()["next_cursor"]
            if cursor is None:
                break
            if len(pages) == 1:
                # registered meanwhile: listed later if its id comes after the cursor; nothing else moves
                late = (await register(registry))["id"]
        assert pages[0] == ids[:3]
        rest = sorted(i for i in [*ids, late] if i > pages[0][-1])
        assert [i for p in pages[1:] for i in p] == rest
        assert all(len(p) == 3 for p in pages[:-1]) and 1 <= len(pages[-1]) <= 3
        again = await http.get("/households", params={"limit": 3})
        assert [UUID(i["id"]) for i in again.json()["items"]] == sorted([*ids, late])[:3]

        for cursor in ("not-a-cursor", "WyJ4Il0", "WzFd"):  # garbage, ["x"], [1]
            refused = await http.get("/households", params={"cursor": cursor})
            assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "query.cursor"


async def test_the_list_holds_only_the_households_the_caller_covers(registry):
    a = (await register(registry, "jscm", CILEGON_1, pendamping="pendamping-1"))["id"]
    b = (await register(registry, "jscm", CILEGON_2, pendamping="pendamping-2"))["id"]
    c = (await register(registry, "jamsosratu", LEBAK, pendamping="pendamping-2"))["id"]
    d = (await register(registry, "jamsosratu", CILEGON_1))["id"]
    expected = {
        ("pendamping", (("sub", "pendamping-1"),)): {a},
        ("pendamping", (("sub", "pendamping-2"),)): {b, c},
        ("pendamping", (("sub", "pendamping-3"),)): set(),
        ("supervisor", (("area", "3672"),)): {a, b, d},
        ("supervisor", (("area", "367201"),)): {a, d},
        ("supervisor", (("area", "36"),)): {a, b, c, d},
        ("supervisor", (("area", None),)): set(),  # without an area claim: nothing
        ("operator", (("programme", "jscm"),)): {a, b},
        ("operator", (("programme", "jamsosratu"),)): {c, d},
        ("operator", (("programme", None),)): set(),
        ("auditor", ()): {a, b, c, d},
    }
    for (role, claims), visible in expected.items():
        async with registry.client(role, **dict(claims)) as http:
            assert await listed(http) == visible, (role, claims)
            assert await listed(http, region_prefix="3672") == visible & {a, b, d}, (role, claims)
    # several roles reach the union of what each reaches
    headers = registry.idp.headers("pendamping", "supervisor", sub="pendamping-1", area="367202")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=registry.app), base_url="http://registry",
                                 headers=headers) as http:
        assert await listed(http) == {a, b}
    async with registry.client("admin") as http:
        assert (await http.get("/households")).status_code == 403


async def test_a_nik_is_searched_in_a_body_and_matched_through_its_keyed_hash_only(registry):
    own = await register(registry, "jscm", CILEGON_1, pendamping="pendamping-1")
    other = await register(registry, "jscm", CILEGON_1, pendamping="pendamping-2")
    member_id, member = next(iter(own["members"].items()))
    nik = member["nik"]

    async with registry.client("pendamping", sub="pendamping-1") as http:
        found = await http.post("/households/search", json={"nik": nik})
        assert found.status_code == 200, found.text
        assert [i["id"] for i in found.json()["items"]] == [str(own["id"])]
        assert found.json()["next_cursor"] is None
        narrowed = await http.post("/households/search", json={"nik": nik, "region_prefix": "367202"})
        assert narrowed.json()["items"] == []
        assert nik not in found.text and member["name"] not in found.text

        # what is compared is the keyed hash: without it the person is not found, though the NIK is stored
        await registry.pool.execute("UPDATE members SET nik_digest = NULL WHERE member_id = $1", UUID(member_id))
        assert (await http.post("/households/search", json={"nik": nik})).json()["items"] == []
        await registry.pool.execute("UPDATE members SET nik_digest = $2 WHERE member_id = $1", UUID(member_id),
                                    nik_digest(NIK_KEY, nik))
        assert len((await http.post("/households/search", json={"nik": nik})).json()["items"]) == 1

        # another pendamping's family is not found by its members' NIKs
        other_nik = next(iter(other["members"].values()))["nik"]
        assert (await http.post("/households/search", json={"nik": other_nik})).json()["items"] == []

        malformed = await http.post("/households/search", json={"nik": "36720112345"})
        assert malformed.status_code == 422 and "36720112345" not in malformed.text

    # a membership that ended is not where the person is now
    await registry.pool.execute("UPDATE members SET ended_at = now(), end_kind = 'moved_out' WHERE member_id = $1",
                                UUID(member_id))
    async with registry.client("auditor") as http:
        assert (await http.post("/households/search", json={"nik": nik})).json()["items"] == []

    # a NIK search says where a person lives: on the record, for the household found, once per search
    rows = await registry.pool.fetch("SELECT household_id, action, fields, channel FROM processing_records")
    assert {(r["household_id"], r["action"], tuple(r["fields"]), r["channel"]) for r in rows} == {
        (own["id"], "read", ("members.nik",), "POST /households/search")}
    assert len(rows) == 2  # the two searches that found it
