"""The registry's HTTP contract, without a database: batch rows checked one by one, and what is documented."""

import json
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from ejsika_registry import api
from ejsika_runtime.demo.synthetic import Families
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings
from ejsika_runtime.testing import ISSUER, LocalIdentity

MIGRATIONS = Path(api.__file__).parent / "migrations"


@pytest.fixture(scope="module")
def idp() -> LocalIdentity:
    return LocalIdentity()


@pytest.fixture(scope="module")
def app(idp):
    service = Service("registry", Settings(auth_issuer=ISSUER), MIGRATIONS)  # never started: no database
    idp.install(service.access)
    service.router.include_router(api.routes(service, b"k" * 32))
    return service.app()


@pytest.fixture
async def client(app, idp):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers=idp.headers("pendamping")) as client:
        yield client


def invalid_rows(families: Families) -> list[tuple[dict, set[tuple[str, str]], str]]:
    """Rows that break the schema, each with the (field, rule) pairs it breaks and a value it must not echo."""
    short, letters, wide, keyed = (families.registration() for _ in range(4))
    nik = short["members"][0]["nik"]
    short["members"][0]["nik"] = nik[:15]
    short["members"][0]["name"] = ""
    letters["kk_number"] = letters["kk_number"][:14] + "AB"
    letters["members"][0]["quality_flags"] = ["made_up"]
    wide["members"].append({**wide["members"][0], "sex": "X", "birth_date": "12/03/1980"})
    member = keyed["members"][0]
    keyed["members"][0] = {member["nik"]: {k: v for k, v in member.items() if k != "nik"}}  # keyed by its NIK
    missing = {("members[0].nik", "value_error"), ("members[0].name", "missing"), ("members[0].sex", "missing"),
               ("members[0].birth_date", "missing"), ("members[0].relation", "missing")}
    return [
        (keyed, missing | {("members[0].(unknown field)", "extra_forbidden")}, member["nik"]),
        (short, {("members[0].nik", "string_pattern_mismatch"), ("members[0].name", "string_too_short")}, nik[:15]),
        (letters, {("kk_number", "string_pattern_mismatch"), ("members[0].quality_flags", "too_long")},
         letters["kk_number"]),
        (wide, {(f"members[{len(wide['members']) - 1}].sex", "literal_error"),
                (f"members[{len(wide['members']) - 1}].birth_date", "date_from_datetime_parsing")}, "12/03/1980"),
    ]


async def test_rows_that_break_the_schema_answer_each_in_its_own_result(client):
    rows = invalid_rows(Families(seed=11))
    other = [42, {"request_id": "not-a-uuid"}]
    response = await client.post("/households/batch", json={"registrations": [r for r, _, _ in rows] + other})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["result"] for r in results] == ["invalid"] * 6
    for (body, errors, secret), result in zip(rows, results):
        assert result["request_id"] == body["request_id"] and result["household_id"] is None
        assert {(e["field"], e["rule"]) for e in result["errors"]} == errors
        assert secret not in json.dumps(result)
    assert [(r["request_id"], r["errors"]) for r in results[4:]] == [
        (None, [{"field": "registration", "rule": "model_type", "reason": None}]),
        (None, [{"field": "request_id", "rule": "uuid_parsing", "reason": None}, *results[5]["errors"][1:]]),
    ]
    assert "not-a-uuid" not in response.text


@pytest.mark.parametrize("body, status", [
    ({"registrations": []}, 422),
    ({"registrations": [{}] * (api.MAX_BATCH + 1)}, 422),
    ({"registrations": {"a": 1}}, 422),
    ({}, 422),
])
async def test_the_batch_itself_keeps_its_limits(client, body, status):
    response = await client.post("/households/batch", json=body)
    assert response.status_code == status and response.headers["content-type"] == "application/problem+json"


def test_parse_batch_keeps_valid_rows_as_registrations_in_order():
    families = Families(seed=12)
    good = families.registrations(3)
    bad = {**families.registration(), "region_code": "36"}
    rows = api.parse_batch([good[0], bad, good[1], good[2]])
    assert [row.registration is not None for row in rows] == [True, False, True, True]
    assert [str(row.registration.request_id) for row in rows if row.registration] == [g["request_id"] for g in good]
    assert rows[1].errors[0].field == "region_code" and rows[1].request_id is not None


def test_openapi_documents_the_batch_results_and_the_members(app):
    schema = app.openapi()
    components = schema["components"]["schemas"]
    batch = schema["paths"]["/households/batch"]["post"]
    assert batch["x-roles"] == ["operator", "pendamping", "supervisor"] and batch["x-purpose"]
    assert set(batch["responses"]) >= {"200", "401", "403", "409", "413", "422", "429"}
    result = components["RegistrationResult"]["properties"]
    assert "invalid" in result["result"]["enum"] and "errors" in result
    rows = components["RegistrationBatch"]["properties"]["registrations"]
    assert rows["maxItems"] == api.MAX_BATCH and rows["items"]["properties"].keys() == \
        components["Registration"]["properties"].keys()
    member_in = components["MemberIn"]["properties"]
    assert "quality_flags" not in member_in and "nik" in member_in
    assert "quality_flags" in components["MemberOut"]["properties"]


async def test_a_single_registration_still_refuses_the_schema_with_422(client):
    body = Families(seed=14).registration()
    body["members"][0]["nik"] = "123"
    response = await client.post("/households", json=body, headers={"X-Correlation-Id": str(uuid4())})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "members[0].nik", "rule": "string_pattern_mismatch"}]
