"""The delivery worker against a real PostgreSQL and local webhook receivers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from standardwebhooks import Webhook

from ejsika_notifications.domain.agencies import EDUCATION, HEALTH
from ejsika_notifications.domain.subscriptions import Filter

from .conftest import FAST

pytestmark = pytest.mark.infra

EDUCATION_ITEM_FIELDS = {"event_id", "event_time", "household_id", "programme", "region_code", "eligible",
                         "member_counts"}


@contextlib.asynccontextmanager
async def running(worker):
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_an_agency_gets_a_signed_batch_holding_only_its_profile_fields(db, receivers, assessed):
    receiver = await receivers()
    subscription, secret = await db.subscribe(EDUCATION, receiver.url, Filter("3672"))
    cilegon = [assessed(children_entering_sma=1), assessed(eligible=False)]
    await db.consume([*cilegon, assessed(region_code="3604011001")])  # Kab. Serang: not subscribed

    await db.worker().drain_all()

    [request] = receiver.requests
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "eligibility.assessed"
    assert [e["event_id"] for e in payload["events"]] == [str(e.id) for e in cilegon]
    for item, event in zip(payload["events"], cilegon):
        assert set(item) == EDUCATION_ITEM_FIELDS
        assert item["member_counts"] == {
            "children_entering_sma": event.data.member_counts.children_entering_sma,
            "school_children": event.data.member_counts.school_children,
        }
    rows = await db.deliveries(subscription)
    assert [(r["status"], r["attempts"]) for r in rows] == [("delivered", 1)] * 2
    assert all(r["delivered_at"] is not None and r["last_error"] is None for r in rows)


async def test_a_receiver_failing_twice_gets_the_delivery_on_the_third_attempt(db, receivers, assessed, wait_for):
    receiver = await receivers(statuses=[500, 500, 200])
    subscription, secret = await db.subscribe(EDUCATION, receiver.url)
    event = assessed()
    await db.consume([event])

    async with running(db.worker()):
        [row] = await wait_for(lambda: _with_status(db, subscription, "delivered"))

    assert row["attempts"] == 3 and row["last_error"] is None
    assert [r.status for r in receiver.requests] == [500, 500, 200]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1, "a retried POST keeps its webhook-id"
    assert all(Webhook(secret).verify(r.body, r.headers)["events"][0]["event_id"] == str(event.id)
               for r in receiver.requests)
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:])]
    assert all(gap >= FAST.backoff_base_s / 2 for gap in gaps), "retries wait their backoff"


async def test_a_redelivered_event_makes_no_second_delivery(db, receivers, assessed):
    receiver = await receivers()
    subscription, _ = await db.subscribe(EDUCATION, receiver.url)
    event = assessed()
    await db.consume([event, event])  # twice in one batch
    await db.consume([event])  # and again later, as a replay would
    worker = db.worker()
    await worker.drain_all()
    await db.consume([event])  # after it was delivered
    await worker.drain_all()

    assert len(await db.deliveries(subscription)) == 1
    assert sum(len(json.loads(r.body)["events"]) for r in receiver.requests) == 1


async def test_after_the_last_attempt_a_delivery_fails_with_a_short_reason(db, receivers, assessed, wait_for):
    receiver = await receivers(statuses=[503] * 10)
    subscription, _ = await db.subscribe(EDUCATION, receiver.url)
    await db.consume([assessed()])
    registry = CollectorRegistry()

    async with running(db.worker(replace(FAST, max_attempts=3), registry)):
        [row] = await wait_for(lambda: _with_status(db, subscription, "failed"))

    assert row["attempts"] == 3 and row["last_error"] == "HTTP 503"
    assert len(receiver.requests) == 3
    metrics = generate_latest(registry).decode()
    assert f'ejsika_deliveries_failed_total{{agency="{EDUCATION.code}"}} 1.0' in metrics


async def test_an_unreachable_agency_is_retried_with_the_error_class_only(db, receivers, assessed):
    receiver = await receivers()
    await receiver.stop()  # nothing listens on its port any more
    subscription, _ = await db.subscribe(EDUCATION, receiver.url)
    await db.consume([assessed()])

    await db.worker(replace(FAST, backoff_base_s=60, backoff_cap_s=600)).drain_all()

    [row] = await db.deliveries(subscription)
    assert (row["status"], row["attempts"], row["last_error"]) == ("pending", 1, "ConnectError")
    assert await db.pool.fetchval("SELECT next_attempt_at > now() + interval '25 seconds' FROM deliveries")


async def test_a_slow_agency_does_not_hold_up_the_others(db, receivers, assessed, wait_for):
    slow = await receivers(delay_s=5)
    fast = await receivers()
    slow_subscription, _ = await db.subscribe(HEALTH, slow.url)
    fast_subscription, _ = await db.subscribe(EDUCATION, fast.url)
    policy = replace(FAST, timeout_s=1.5, concurrency=2)

    async with running(db.worker(policy)):
        for _ in range(3):
            await db.consume([assessed()])
            started = time.monotonic()
            await wait_for(lambda: _fast_delivered(fast), timeout=5)
            assert time.monotonic() - started < 1.0, "the fast agency waits for nobody"
            fast.requests.clear()
        [slow_row, *_] = await wait_for(lambda: _with_error(db, slow_subscription), timeout=5)

    assert slow_row["last_error"] == "Timeout" and slow_row["status"] == "pending"
    assert {r["status"] for r in await db.deliveries(fast_subscription)} == {"delivered"}


async def test_batches_carry_at_most_the_batch_size(db, receivers, assessed):
    receiver = await receivers()
    subscription, secret = await db.subscribe(EDUCATION, receiver.url)
    events = [assessed() for _ in range(250)]
    await db.consume(events)

    await db.worker().drain_all()

    sizes = [len(Webhook(secret).verify(r.body, r.headers)["events"]) for r in receiver.requests]
    assert sizes == [100, 100, 50]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 3
    delivered = [e["event_id"] for r in receiver.requests for e in json.loads(r.body)["events"]]
    assert delivered == [str(e.id) for e in events], "queued order is kept when nothing fails"


async def test_the_worker_wakes_on_new_deliveries_without_waiting_for_its_poll(db, receivers, assessed, wait_for):
    receiver = await receivers()
    await db.subscribe(EDUCATION, receiver.url)

    async with running(db.worker(replace(FAST, poll_interval_s=30))):
        await asyncio.sleep(0.3)  # the worker is idle, listening
        for _ in range(3):
            receiver.requests.clear()
            queued = time.monotonic()
            await db.consume([assessed()])
            [request] = await wait_for(lambda: _requests(receiver), timeout=5, interval=0.01)
            assert request.at - queued < 0.5


async def test_two_replicas_share_the_queue_and_send_each_event_once(db, receivers, assessed, wait_for):
    receivers_ = [await receivers() for _ in range(3)]
    for receiver in receivers_:
        await db.subscribe(EDUCATION, receiver.url)
    events = [assessed() for _ in range(400)]
    policy = replace(FAST, batch_size=20)

    async with running(db.worker(policy)), running(db.worker(policy)):
        for chunk in range(0, len(events), 50):
            await db.consume(events[chunk:chunk + 50])
        await wait_for(lambda: _all_delivered(db), timeout=30)

    for receiver in receivers_:
        ids = [e["event_id"] for r in receiver.requests for e in json.loads(r.body)["events"]]
        assert sorted(ids) == sorted(str(e.id) for e in events) and len(ids) == len(set(ids))


async def _with_status(db, subscription, status):
    rows = await db.deliveries(subscription)
    return rows if rows and all(r["status"] == status for r in rows) else None


async def _with_error(db, subscription):
    rows = await db.deliveries(subscription)
    return rows if rows and all(r["last_error"] for r in rows) else None


async def _fast_delivered(receiver):
    return receiver.requests


async def _requests(receiver):
    return receiver.requests


async def _all_delivered(db):
    return await db.pool.fetchval("SELECT count(*) = count(*) FILTER (WHERE status = 'delivered') FROM deliveries")


async def test_one_replica_reports_the_pending_gauge_so_it_sums_over_replicas(db, receivers, assessed, wait_for):
    receiver = await receivers(statuses=[500] * 50)
    subscription, _ = await db.subscribe(EDUCATION, receiver.url)
    await db.consume([assessed() for _ in range(3)])
    registries = [CollectorRegistry(), CollectorRegistry()]
    policy = replace(FAST, backoff_base_s=60, backoff_cap_s=60)

    def pending(registry):
        return registry.get_sample_value("ejsika_deliveries_pending", {"agency": EDUCATION.code})

    async with running(db.worker(policy, registries[0])), running(db.worker(policy, registries[1])):
        async def reported():
            return sorted(str(pending(r)) for r in registries) == ["3.0", "None"]

        await wait_for(reported, timeout=10)
