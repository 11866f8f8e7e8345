"""Register households over HTTP and follow them through every service to the agency's webhook."""

from __future__ import annotations

import json
import time
import uuid

import httpx

from ejsika_notifications.pseudonyms import Pseudonyms
from ejsika_runtime.demo.synthetic import Families

from .conftest import Platform, activate, eventually, query


def statuses(platform: Platform, household_ids: list[str]) -> dict[str, str]:
    return {h: platform.client("registry").get(f"/households/{h}", timeout=10).json()["status"]
            for h in household_ids}


def delivered_households(platform: Platform, household_ids: list[str]) -> dict[str, dict]:
    """The data the demo agency received of these households, by household id: the agency knows
    each family by its own reference only (a pseudonym of the notifications service)."""
    pseudonyms = Pseudonyms(platform.env["EJSIKA_PSEUDONYM_KEY"].encode())
    households = {pseudonyms.reference_of("dinas-pendidikan", uuid.UUID(h)): h for h in household_ids}
    return {households[n["reference"]]: n["data"] for hook in platform.received()
            for n in hook["payload"]["notifications"] if n["reference"] in households}


def register(platform: Platform, registrations: list[dict]) -> list[str]:
    response = platform.client("registry").post("/households/batch",
                          json={"registrations": registrations}, timeout=30)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["result"] for r in results] == ["registered"] * len(registrations)
    return [r["household_id"] for r in results]


def test_a_registered_household_is_assessed_recorded_scheduled_and_notified(platform: Platform):
    families = Families(seed=101)
    single = families.registration(programme="jscm")
    correlation = str(uuid.uuid4())
    response = platform.client("registry").post("/households", json=single,
                          headers={"X-Correlation-Id": correlation}, timeout=10)
    assert response.status_code == 201, response.text
    retried = platform.client("registry").post("/households", json=single, timeout=10)
    assert retried.status_code == 200 and retried.json()["household_id"] == response.json()["household_id"]
    ids = [response.json()["household_id"], *register(platform, families.registrations(30))]

    final = eventually(lambda: (s := statuses(platform, ids)) and "registered" not in s.values() and s)
    assert set(final.values()) <= {"eligible", "not_eligible"}

    eligible = {h for h, status in final.items() if status == "eligible"}
    assert eligible, "the synthetic batch should hold eligible families"
    delivered = eventually(lambda: (d := delivered_households(platform, ids)) and eligible <= d.keys() and d)
    assert not (delivered.keys() & (set(ids) - eligible)), "ineligible families must not be sent to the agency"
    for household_id in eligible:
        event = delivered[household_id]
        text = json.dumps(event)
        assert "nik" not in text and "name" not in text and "members" not in text
        assert event["eligible"] is True

    # A registered family is a candidate, not scheduled; once the operator admits it, its first visit is due.
    monitoring = platform.client("monitoring")
    followed = eventually(lambda: (a := monitoring.get(f"/households/{ids[0]}/visits", timeout=10)).status_code == 200
                          and a)
    assert followed.json() == []
    activate(platform, ids[0], "jscm")
    visits = eventually(lambda: monitoring.get(f"/households/{ids[0]}/visits", timeout=10).json())
    assert [(v["kind"], v["status"]) for v in visits] == [("first_visit", "due")]
    history = platform.client("registry").get(f"/households/{ids[0]}/history", timeout=10).json()["items"]
    assert [h["change"] for h in history] == ["registered", "assessed", "enrolment_changed"]


def test_bad_requests_get_a_reason_and_change_nothing(platform: Platform):
    from ejsika_registry.registrations import household_id_for

    families = Families(seed=202)
    registry = platform.client("registry")

    # A NIK that contradicts the declared birth date (an office typo) does not cost the family its help:
    # the member is registered with a flag for an operator to review.
    typo = families.registration()
    typo["members"][0]["birth_date"] = "1901-01-01"
    response = registry.post("/households", json=typo, timeout=10)
    assert response.status_code == 201, response.text
    members = registry.get(f"/households/{response.json()['household_id']}", timeout=10).json()["members"]
    assert [m["quality_flags"] for m in members] == [["nik_birth_date_mismatch"]] + [[]] * (len(members) - 1)

    unknown_village = families.registration()
    unknown_village["region_code"] = "3699012001"
    impossible = families.registration()
    nik = impossible["members"][0]["nik"]
    impossible["members"][0]["nik"] = nik[:6] + "32" + nik[8:]  # the 32nd day of a month
    for body, error in [(unknown_village, ("region_code", "region_code")),
                        (impossible, ("members[0].nik", "nik_birth_date"))]:
        response = registry.post("/households", json=body, timeout=10)
        assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
        assert [(e["field"], e["rule"]) for e in response.json()["errors"]] == [error], response.text
        assert "3699012001" not in response.text and body["members"][0]["nik"] not in response.text

    malformed = families.registration()
    malformed["members"][0]["nik"] = malformed["members"][0]["nik"][:15]
    malformed["members"][0]["name"] = ""
    response = registry.post("/households", json=malformed, timeout=10)
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in response.json()["errors"]} == {"members[0].nik", "members[0].name"}
    assert malformed["members"][0]["nik"] not in response.text
    assert all(set(e) == {"field", "rule"} for e in response.json()["errors"]), "invalid values are not echoed"

    # In a batch, a row that breaks the schema or a rule is answered in its own result; the others go in.
    valid = families.registrations(2)
    response = registry.post("/households/batch", json={"registrations": [valid[0], malformed, unknown_village,
                                                                         valid[1]]}, timeout=30)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["result"] for r in results] == ["registered", "invalid", "rejected", "registered"]
    assert [r["request_id"] for r in results] == [b["request_id"] for b in (valid[0], malformed, unknown_village,
                                                                            valid[1])]
    assert {(e["field"], e["rule"]) for e in results[1]["errors"]} == {
        ("members[0].nik", "string_pattern_mismatch"), ("members[0].name", "string_too_short")}
    assert [(e["field"], e["rule"]) for e in results[2]["errors"]] == [("region_code", "region_code")]
    assert malformed["members"][0]["nik"] not in response.text and "3699012001" not in response.text
    for refused in (malformed, unknown_village, impossible):
        assert registry.get(f"/households/{household_id_for(uuid.UUID(refused['request_id']))}",
                            timeout=10).status_code == 404, "a refused registration changes nothing"

    good = families.registration()
    first = registry.post("/households", json=good, timeout=10)
    assert first.status_code == 201
    twin = families.registration()
    twin["members"][0] = {**good["members"][0]}
    twin["members"][0]["relation"] = "head"
    clash = registry.post("/households", json=twin, timeout=10)
    # the household the person is active in is named, so a supervisor can sort it out; the person is not
    assert clash.status_code == 409 and f"active member of household {first.json()['household_id']}" in clash.text
    assert good["members"][0]["nik"] not in clash.text and good["members"][0]["name"] not in clash.text
    assert good["members"][0]["nik"] not in clash.text


def test_killing_services_mid_flow_loses_nothing(platform: Platform):
    """kill -9 at chosen states, then the ledger over every service (tests/faults/ledger.py).

    The registry's relay is held off its lead while 100 families register (its outbox full); the
    rows are locked, so that once it leads it publishes them all and waits to delete them; then the
    registry dies between publish and delete. Eligibility has meanwhile taken the batch into its
    transaction (inbox claimed) and waits on its projection: it dies inside the batch. After both
    restart, every registration and visit must be applied once in every service and every eligible
    family's notification must reach the agency under one webhook-id.
    """
    from tests.faults.ledger import Receipt, run_check
    from tests.faults.platform import (Session, outbox_rows, release_relay_lead, take_relay_lead,
                                       wait_for_lock_wait)

    database_url = platform.env["EJSIKA_DATABASE_URL"]
    session, locker, blocker = (Session(database_url) for _ in range(3))
    try:
        take_relay_lead(session, "registry")
        households = register(platform, Families(seed=303).registrations(100))
        assert outbox_rows(session, "registry") >= 100, "the registry's outbox holds the batch"
        locker.execute("BEGIN")
        held = len(locker.run(locker.conn.fetch("SELECT id FROM registry.outbox FOR UPDATE")))
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE eligibility.households IN SHARE MODE")
        release_relay_lead(session, "registry")
        wait_for_lock_wait(session, "DELETE FROM outbox")  # published, acknowledged, not deleted
        wait_for_lock_wait(session, "", application="ejsika-eligibility")  # inside its batch
        platform.kill("registry")
        platform.kill("eligibility")
        # What the dead processes' sessions would still do once the locks go: ended, as the crash would.
        session.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock' AND (ltrim(query) LIKE 'DELETE FROM outbox%'"
                        " OR application_name = 'ejsika-eligibility')")
        locker.execute("ROLLBACK")
        blocker.execute("ROLLBACK")
    finally:
        for held_session in (session, locker, blocker):
            held_session.close()
    platform.restart("registry")
    platform.restart("eligibility")
    monitoring = platform.client("monitoring")
    waiting = [{"visit_id": str(uuid.uuid4()), "household_id": h, "observations": {},
                "captured_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())} for h in households[:50]]
    visits: list[str] = []

    def recorded() -> bool:
        nonlocal waiting
        results = monitoring.post("/visits/batch", json={"visits": waiting}, timeout=30).json()["results"]
        visits.extend(r["visit_id"] for r in results if r["result"] in ("recorded", "duplicate"))
        waiting = [v for v, r in zip(waiting, results) if r["result"] not in ("recorded", "duplicate")]
        return not waiting

    eventually(recorded, timeout=90, interval=1)

    def ledger():
        return run_check(database_url, platform.env["EJSIKA_KAFKA_BOOTSTRAP"], households, visits,
                         agency="dinas-pendidikan", url=f"http://127.0.0.1:{platform.receiver_port}/webhooks",
                         receipts=[Receipt(r["webhook_id"], r["payload"]) for r in platform.received()])

    eventually(lambda: not ledger().lost, timeout=120, interval=2)
    time.sleep(3)  # a late duplicate would come now
    findings = ledger()
    assert findings.clean, findings.summary()
    assert findings.redelivered >= held, "the registry published the batch again after the restart"
    assert findings.notifications > 0, "the synthetic families hold eligible ones"


def test_operators_see_metrics_and_logs_without_personal_data(platform: Platform):
    families = Families(seed=505)
    registrations = families.registrations(10)
    ids = register(platform, registrations)
    eventually(lambda: "registered" not in statuses(platform, ids).values())
    niks = {m["nik"] for r in registrations for m in r["members"]}
    names = {m["name"] for r in registrations for m in r["members"]}

    metrics = {name: httpx.get(f"{platform.url(name)}/metrics", timeout=10).text for name in platform.ports}
    assert "faststream_received_messages_total" in metrics["eligibility"]
    assert 'ejsika_events_applied_total{service="eligibility",topic="ejsika.household"}' in metrics["eligibility"]
    assert "ejsika_outbox_oldest_age_seconds" in metrics["registry"]
    eventually(lambda: 'ejsika_households_by_status{status="eligible"}' in
               platform.client("registry").get("/metrics", timeout=10).text, timeout=30)
    for name in platform.ports:
        ready = httpx.get(f"{platform.url(name)}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json() == {
            "database": True, "broker": True, "relay": True, "consumers": True, "background": True}

    inputs = [r["inputs"] for r in query(platform.env["EJSIKA_DATABASE_URL"],
                                         "SELECT inputs::text FROM eligibility.households"
                                         " WHERE household_id = ANY($1::uuid[])", ids)]
    assert len(inputs) == len(ids)
    assert not any(nik in text or name in text for text in inputs for nik in niks for name in names), \
        "eligibility keeps what an assessment needs, not who the members are"

    logs = {path.name: path.read_text() for path in platform.log_dir.glob("*.log")}
    applied = [json.loads(line) for line in logs["eligibility.log"].splitlines()
               if line.startswith("{") and '"message": "applied"' in line]
    assert applied and all("correlation_id" in line and "event_id" in line for line in applied)
    for text in [*metrics.values(), *logs.values()]:
        assert not any(nik in text for nik in niks)
        assert not any(f'"{name}"' in text for name in names)
