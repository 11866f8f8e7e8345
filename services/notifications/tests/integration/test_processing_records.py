"""Every family's data that leaves for an agency is on the record of processing ("share" rows of the
runtime's processing_records): which agency, which fields, through which subscription. Only an
acknowledged POST counts as leaving.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

import pytest

from ejsika_notifications.domain.agencies import EDUCATION, HEALTH, Agency
from ejsika_notifications.domain.subscriptions import Filter

from .conftest import FAST

pytestmark = pytest.mark.infra

ENVELOPE = {"event_id", "event_time"}


def leaves(value: dict[str, Any], prefix: str = "") -> set[str]:
    """The dotted paths of the values an item carried, as the receiver saw them."""
    paths: set[str] = set()
    for name, inner in value.items():
        if not prefix and name in ENVELOPE:
            continue
        paths |= leaves(inner, f"{prefix}{name}.") if isinstance(inner, dict) else {f"{prefix}{name}"}
    return paths


async def shares(db) -> list[dict[str, Any]]:
    rows = await db.pool.fetch(
        "SELECT subject, role, client_id, household_id, fields, channel, purpose FROM processing_records"
        " WHERE action = 'share' ORDER BY id")
    return [dict(r) for r in rows]


async def test_each_delivered_family_is_recorded_with_exactly_the_fields_that_left(db, receivers, assessed):
    education_receiver, health_receiver = await receivers(), await receivers()
    education, _ = await db.subscribe(EDUCATION, education_receiver.url, Filter("3672"))
    health, _ = await db.subscribe(HEALTH, health_receiver.url, Filter("36"))
    cilegon = [assessed(children_entering_sma=1), assessed(eligible=False)]
    lebak = assessed(region_code="3602011001")  # health only
    await db.consume([*cilegon, lebak])

    await db.worker().drain_all()

    items = {}  # what each agency received, by event
    for agency, receiver in ((EDUCATION, education_receiver), (HEALTH, health_receiver)):
        [request] = receiver.requests
        for item in json.loads(request.body)["notifications"]:
            event_id = await db.pool.fetchval("SELECT event_id::text FROM deliveries WHERE id = $1::uuid", item["id"])
            items[agency.code, event_id] = item["data"]
    recorded = await shares(db)
    assert len(recorded) == 5, "one row per family per agency it reached"

    for agency, subscription, events in ((EDUCATION, education, cilegon), (HEALTH, health, [*cilegon, lebak])):
        rows = {r["household_id"]: r for r in recorded if r["subject"] == agency.code}
        assert set(rows) == {e.data.household_id for e in events}
        for event in events:
            row = rows[event.data.household_id]
            sent = leaves(items[agency.code, str(event.id)])
            assert sorted(row["fields"]) == sorted(sent), "exactly what the agency received"
            assert set(row["fields"]) <= agency.profile, "within the agency's profile, leaf by leaf"
            assert (row["role"], row["client_id"], row["channel"], row["purpose"]) == (
                "agency", None, f"webhook {subscription}", f"eligibility.assessed for {agency.code}")

    assert set(rows[lebak.data.household_id]["fields"]) == {
        "programme", "region_code", "eligible", "member_counts.pregnant", "member_counts.toddlers"}


async def test_a_profile_granting_a_whole_object_is_recorded_field_by_field(db, receivers, assessed):
    receiver = await receivers()
    social = Agency("dinas-sosial", "Dinas Sosial", frozenset({"eligible", "member_counts"}))
    await db.subscribe(social, receiver.url)
    event = assessed()
    await db.consume([event])

    await db.worker().drain_all()

    [row] = await shares(db)
    assert row["household_id"] == event.data.household_id, "recorded even though the payload has no household_id"
    assert sorted(row["fields"]) == sorted(["eligible", *(f"member_counts.{name}" for name in (
        "pregnant", "toddlers", "school_children", "children_entering_sma", "elderly", "disabled"))])
    [request] = receiver.requests
    assert "household_id" not in json.loads(request.body)["notifications"][0]["data"]


async def test_a_failed_post_records_nothing(db, receivers, assessed):
    receiver = await receivers(statuses=[500, 503])
    subscription, _ = await db.subscribe(EDUCATION, receiver.url)
    await db.consume([assessed(), assessed()])

    worker = db.worker(replace(FAST, max_attempts=2, backoff_base_s=0.01, backoff_cap_s=0.01))
    while {r["status"] for r in await db.deliveries(subscription)} == {"pending"}:
        await worker.drain_all()

    assert [r["status"] for r in await db.deliveries(subscription)] == ["failed", "failed"]
    assert len(receiver.requests) == 2
    assert await shares(db) == [], "nothing the agency did not acknowledge counts as shared"


async def test_a_retried_delivery_is_recorded_once_when_it_finally_leaves(db, receivers, assessed, wait_for):
    receiver = await receivers(statuses=[500])
    subscription, _ = await db.subscribe(EDUCATION, receiver.url)
    event = assessed()
    await db.consume([event])
    # a retry step long enough that the first drain ends on the failure, not on the retry
    worker = db.worker(replace(FAST, backoff_base_s=1.0, backoff_cap_s=1.0))

    await worker.drain_all()
    assert await shares(db) == []
    await wait_for(lambda: _due(db))
    await worker.drain_all()

    assert [r.status for r in receiver.requests] == [500, 200]
    [row] = await shares(db)
    assert (row["household_id"], row["channel"]) == (event.data.household_id, f"webhook {subscription}")


async def test_the_consumer_remembers_whose_family_it_is(db, assessed):
    """The scope decides who may read this service's record of the family (GET /processing-records)."""
    events = [assessed(), assessed(region_code="3602011001", programme="jscm")]
    await db.consume(events)  # no subscription at all: the scope is remembered anyway
    rows = await db.pool.fetch("SELECT household_id, programme, region_code, pendamping_id FROM household_scope")
    assert sorted(tuple(r) for r in rows) == sorted(
        (e.data.household_id, e.data.programme, e.data.region_code, None) for e in events)


async def test_a_family_assessed_twice_in_one_batch_keeps_its_latest_scope(db, assessed):
    first = assessed()
    moved = first.model_copy(update={"id": uuid.uuid4(), "data": first.data.model_copy(
        update={"region_code": "3602011001", "programme": "jscm"})})
    await db.consume([first, first, moved])  # a replay and a reassessment, one batch: it must not fail

    row = await db.pool.fetchrow("SELECT programme, region_code FROM household_scope WHERE household_id = $1",
                                 first.data.household_id)
    assert tuple(row) == ("jscm", "3602011001")


async def test_deliveries_queued_before_migration_005_are_sent_without_a_record(db, receivers, assessed):
    """Rows from before the household was kept beside the payload: delivered, not attributable."""
    receiver = await receivers()
    subscription, _ = await db.subscribe(EDUCATION, receiver.url)
    await db.consume([assessed()])
    await db.pool.execute("UPDATE deliveries SET household_id = NULL")

    await db.worker().drain_all()

    assert [r["status"] for r in await db.deliveries(subscription)] == ["delivered"]
    assert await shares(db) == []


async def _due(db) -> bool:
    # a message's retry is due (its notifications wait inside it)
    return await db.pool.fetchval("SELECT bool_and(next_attempt_at <= now()) FROM webhook_messages")
