"""Every read and write of a family's data is recorded, and one NIK brings back all of it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time


from ejsika_runtime.demo.synthetic import Families
from ejsika_runtime.subject_access import subject_access

from .conftest import Platform, activate, eventually, query


def test_a_data_subject_request_returns_everything_held_and_who_processed_it(platform: Platform):
    families = Families(seed=606)
    body = families.registration(programme="jscm")
    body["region_code"] = "3672011001"
    body["welfare"] = {name: True for name in body["welfare"] if name != "floor_area_per_person_m2"}  # eligible
    registered = platform.client("registry").post("/households", json=body)
    assert registered.status_code == 201, registered.text
    household_id = registered.json()["household_id"]
    assert platform.client("registry", role="supervisor").get(f"/households/{household_id}").status_code == 200
    eventually(lambda: platform.client("eligibility").get(f"/households/{household_id}/assessments").json().get("items"))
    activate(platform, household_id, "jscm")  # an active household is scheduled: monitoring then holds its visit

    urls = {name: platform.url(name) for name in platform.ports}
    auditor = platform.auth("auditor").token
    nik = body["members"][0]["nik"]

    def report() -> dict:
        found = asyncio.run(subject_access(nik, auditor(), urls))
        held = {service: parts.get(household_id, {}) for service, parts in found["services"].items()}
        shared = held.get("notifications", {}).get("processing_records")
        scheduled = (held.get("monitoring", {}).get("holds") or {}).get("visits")
        status_recorded = any(r["channel"] == "event eligibility.assessed" for r in found["registry"]["processing_records"])
        return found if shared and scheduled and status_recorded else {}

    started = time.monotonic()
    # until every service has done its part: the visit scheduled, the decision recorded by the
    # registry, the education office's webhook acknowledged
    found = eventually(report, timeout=60)
    answer_time = time.monotonic() - started

    (household,) = found["registry"]["households"]
    assert household["id"] == household_id and nik in {m["nik"] for m in household["members"]}
    trail = found["registry"]["processing_records"]
    assert ("write", "pendamping", "registration of a family for a programme") in {
        (r["action"], r["role"], r["purpose"]) for r in trail}
    assert any(r["action"] == "read" and r["role"] == "supervisor" and r["channel"] == "GET /households/{household_id}"
               and "members.nik" in r["fields"] for r in trail)
    assert ("write", "registry", "event eligibility.assessed") in {(r["action"], r["subject"], r["channel"]) for r in trail}

    services = found["services"]
    assert services["eligibility"][household_id]["holds"]["assessments"][0]["eligible"] is True
    assert [d["status"] for d in services["eligibility"][household_id]["holds"]["decisions"]] == ["eligible"]
    assert services["monitoring"][household_id]["holds"]["visits"][0]["kind"] == "first_visit"
    for service in ("eligibility", "monitoring"):
        assert {(r["action"], r["role"], r["subject"]) for r in services[service][household_id]["processing_records"]} \
            >= {("write", "service", service)}, f"{service} records that it processed the registration event"
    trail = services["notifications"][household_id]["processing_records"]
    # notifications keeps what agencies' profiles may name (its family projection), and shares some of it
    assert {(r["action"], r["subject"], r["role"]) for r in trail} == {
        ("write", "notifications", "service"), ("share", "dinas-pendidikan", "agency")}
    shared = [r for r in trail if r["action"] == "share"]
    assert "region_code" in shared[0]["fields"] and not any("nik" in f or "name" in f for f in shared[0]["fields"])
    assert answer_time < 30

    # the request itself is on the record, and the NIK is held only as a keyed hash beside the row
    again = asyncio.run(subject_access(nik, auditor(), urls))
    assert ("read", "auditor", "answering a data-subject request") in {
        (r["action"], r["role"], r["purpose"]) for r in again["registry"]["processing_records"]}
    key = platform.env["EJSIKA_NIK_HASH_KEY"].encode()
    digests = [r["nik_digest"] for r in query(platform.env["EJSIKA_DATABASE_URL"],
                                              "SELECT nik_digest FROM registry.members WHERE household_id = $1"
                                              " ORDER BY position", household_id)]
    assert digests == [hmac.new(key, m["nik"].encode(), hashlib.sha256).digest() for m in body["members"]]


def test_a_nik_outside_the_callers_programme_finds_nothing(platform: Platform):
    families = Families(seed=607)
    body = families.registration(programme="jamsosratu")
    body["region_code"] = "3602012002"
    assert platform.client("registry", user="pendamping-other").post("/households", json=body).status_code == 201
    answer = platform.client("registry", role="operator").post(  # operator of jscm
        "/data-subject-requests", json={"nik": body["members"][0]["nik"]})
    assert answer.status_code == 200 and answer.json()["households"] == []
    assert platform.client("registry", role="pendamping").post(
        "/data-subject-requests", json={"nik": body["members"][0]["nik"]}).status_code == 403
