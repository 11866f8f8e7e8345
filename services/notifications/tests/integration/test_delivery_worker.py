"""The delivery worker against a real PostgreSQL and real local HTTP receivers.

Notifications are queued through `store.deliveries.queue`, the one entry point the consumer uses,
so that these tests hold whatever the handlers match; signatures are checked with the PyPI
`standardwebhooks` package, as an agency would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import defaultdict
from dataclasses import replace

import asyncpg
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from ejsika_notifications.domain.agencies import EDUCATION, HEALTH, Agency
from ejsika_notifications.domain.deliveries import PlannedDelivery
from ejsika_notifications.store import deliveries
from ejsika_notifications.worker import channel

from .conftest import FAST

pytestmark = pytest.mark.infra


@contextlib.asynccontextmanager
async def running(worker):
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def queue(db, subscription: uuid.UUID, count: int = 1, event_type: str = "compliance.escalated") -> list[uuid.UUID]:
    """Queue `count` notifications of one subscription; returns their ids in queueing order."""
    planned = [PlannedDelivery(subscription, uuid.uuid4(), uuid.uuid4(), {"kind": "school_dropout_risk", "n": i},
                               reference=f"ref{i:023d}", event_type=event_type) for i in range(count)]
    async with db.pool.acquire() as conn:
        assert await deliveries.queue(conn, planned) == count
        rows = await conn.fetch("SELECT id FROM deliveries WHERE event_id = ANY($1::uuid[]) ORDER BY seq",
                                [p.event_id for p in planned])
    return [r["id"] for r in rows]


def ids_in(request) -> list[str]:
    return [n["id"] for n in json.loads(request.body)["notifications"]]


async def messages(db, subscription=None):
    return await db.pool.fetch(
        "SELECT * FROM webhook_messages WHERE $1::uuid IS NULL OR subscription_id = $1 ORDER BY seq", subscription)


async def statuses(db, subscription):
    return [r["status"] for r in await db.deliveries(subscription)]


async def test_an_agency_gets_its_notifications_in_one_signed_message(db, receivers):
    receiver = await receivers()
    subscription, secret = await db.subscribe(EDUCATION, receiver.url)
    queued = await queue(db, subscription, 3)

    await db.worker().drain_all()

    [request] = receiver.requests
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "ejsika.notifications"
    assert [n["id"] for n in payload["notifications"]] == [str(i) for i in queued], "in queueing order"
    first = payload["notifications"][0]
    assert (first["type"], first["reference"], first["data"]) == (
        "compliance.escalated", f"ref{0:023d}", {"kind": "school_dropout_risk", "n": 0})
    assert "household_id" not in json.dumps(payload), "the internal id of the family never leaves"
    [message] = await messages(db, subscription)
    assert request.headers["webhook-id"] == f"msg_{message['id'].hex}"
    assert (message["status"], message["attempts"], message["size"], message["last_status"]) == ("delivered", 1, 3, 200)
    rows = await db.deliveries(subscription)
    assert [(r["status"], r["attempts"], r["message_id"]) for r in rows] == [("delivered", 1, message["id"])] * 3


async def test_a_retried_message_keeps_its_id_and_its_members_while_new_notifications_wait(db, receivers, wait_for):
    receiver = await receivers(statuses=[500, 500, 500])
    subscription, secret = await db.subscribe(EDUCATION, receiver.url)
    first = await queue(db, subscription, 2)

    async with running(db.worker(replace(FAST, backoff_base_s=0.3, backoff_cap_s=0.3))):
        await wait_for(lambda: _requests(receiver))
        later = await queue(db, subscription, 3)  # queued while the first message waits for its retry
        await wait_for(lambda: _all_delivered(db))

    by_id = defaultdict(list)
    for request in receiver.requests:
        Webhook(secret).verify(request.body, request.headers)
        by_id[request.headers["webhook-id"]].append(ids_in(request))
    assert all(len({tuple(c) for c in contents}) == 1 for contents in by_id.values()), "a message never changes"
    compositions = sorted(contents[0] for contents in by_id.values())
    assert compositions == sorted([[str(i) for i in first], [str(i) for i in later]]), "the new ones: a new message"
    first_id = receiver.requests[0].headers["webhook-id"]
    assert len(by_id[first_id]) >= 2, "the first message was retried under its id"
    assert len(receiver.requests) == 2 + sum(len(c) - 1 for c in by_id.values())


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_a_4xx_is_not_retried_and_fails_the_message_with_its_status(db, receivers, status):
    receiver = await receivers(statuses=[status] * 5)
    subscription, _ = await db.subscribe(EDUCATION, receiver.url)
    await queue(db, subscription, 2)
    registry = CollectorRegistry()
    worker = db.worker(replace(FAST, backoff_base_s=0.01, backoff_cap_s=0.01), registry)

    for _ in range(3):
        await worker.drain_all()
        await asyncio.sleep(0.05)

    assert len(receiver.requests) == 1
    [message] = await messages(db, subscription)
    assert (message["status"], message["attempts"], message["last_status"], message["last_error"]) == (
        "failed", 1, status, f"HTTP {status}")
    assert await statuses(db, subscription) == ["failed", "failed"]
    assert await db.pool.fetchval("SELECT active FROM subscriptions WHERE id = $1", subscription), "still subscribed"
    assert registry.get_sample_value("ejsika_webhook_messages_failed_total",
                                     {"agency": EDUCATION.code, "reason": "rejected"}) == 1
    assert registry.get_sample_value("ejsika_deliveries_failed_total", {"agency": EDUCATION.code}) == 2


@pytest.mark.parametrize("status", [408, 429, 500, 503])
async def test_408_429_and_5xx_are_retried_until_accepted(db, receivers, wait_for, status):
    receiver = await receivers(statuses=[status, status])
    subscription, _ = await db.subscribe(EDUCATION, receiver.url)
    await queue(db, subscription)

    async with running(db.worker()):
        await wait_for(lambda: _all_delivered(db))

    assert [r.status for r in receiver.requests] == [status, status, 200]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    [message] = await messages(db, subscription)
    assert (message["attempts"], message["last_error"]) == (3, None)


async def test_a_retry_after_is_honoured(db, receivers, wait_for):
    receiver = await receivers(statuses=[503], retry_after="2")
    subscription, _ = await db.subscribe(EDUCATION, receiver.url)
    await queue(db, subscription)

    async with running(db.worker()):  # its own schedule would retry within 0.2 s
        await wait_for(lambda: _all_delivered(db), timeout=15)

    first, second = receiver.requests
    assert second.at - first.at >= 1.9, "not before the agency asked"
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert int(second.headers["webhook-timestamp"]) > int(first.headers["webhook-timestamp"]), "stamped per attempt"


async def test_410_gone_disables_the_subscription_and_fails_what_waits(db, receivers, api_client):
    receiver = await receivers(statuses=[410])
    subscription, _ = await db.subscribe(EDUCATION, receiver.url)
    await queue(db, subscription, 4)
    registry = CollectorRegistry()
    worker = db.worker(replace(FAST, batch_size=2), registry)

    await worker.drain_all()
    await queue(db, subscription)  # matched before the consumer learns the subscription is gone
    await worker.drain_all()

    assert len(receiver.requests) == 1, "nothing more is sent to an endpoint that is gone"
    state = await db.pool.fetchrow("SELECT active, disabled_reason FROM subscriptions WHERE id = $1", subscription)
    assert (state["active"], state["disabled_reason"]) == (False, "the endpoint answered 410 Gone")
    [shown] = (await api_client().get("/subscriptions")).json()
    assert (shown["active"], shown["disabled_reason"]) == (False, "the endpoint answered 410 Gone"), "it says so"
    assert (await statuses(db, subscription))[:4] == ["failed"] * 4, "kept, failed, to be redelivered"
    [message] = await messages(db, subscription)
    assert (message["status"], message["last_status"]) == ("failed", 410)
    assert registry.get_sample_value("ejsika_webhook_messages_failed_total",
                                     {"agency": EDUCATION.code, "reason": "gone"}) == 1


async def test_after_the_last_attempt_a_message_fails_is_kept_and_is_redelivered_under_its_id(
        db, receivers, wait_for, api_client, tokens):
    receiver = await receivers(statuses=[503] * 3)
    subscription, secret = await db.subscribe(EDUCATION, receiver.url)
    queued = await queue(db, subscription, 2)
    registry = CollectorRegistry()

    async with running(db.worker(replace(FAST, max_attempts=3), registry)):
        await wait_for(lambda: _message_status(db, "failed"))
        [message] = await messages(db, subscription)
        assert (message["attempts"], message["last_error"]) == (3, "HTTP 503")
        assert await statuses(db, subscription) == ["failed", "failed"]
        assert registry.get_sample_value("ejsika_webhook_messages_failed_total",
                                         {"agency": EDUCATION.code, "reason": "exhausted"}) == 1

        health = api_client(tokens.for_client("agency-dinas-kesehatan"))
        assert (await health.post(f"/messages/{message['id']}/redelivery")).status_code == 404, "not theirs"
        listed = (await api_client().get("/messages", params={"subscription_id": str(subscription)})).json()
        assert [(m["id"], m["webhook_id"], m["status"], m["size"]) for m in listed["items"]] == [
            (str(message["id"]), f"msg_{message['id'].hex}", "failed", 2)]

        education = api_client(tokens.for_client("agency-dinas-pendidikan"))
        answer = await education.post(f"/messages/{message['id']}/redelivery")
        assert answer.status_code == 202, answer.text
        assert (answer.json()["status"], answer.json()["attempts"]) == ("pending", 0)
        await wait_for(lambda: _all_delivered(db))
        again = await api_client().post(f"/messages/{message['id']}/redelivery")
        assert again.status_code == 409, "only a failed message is redelivered"

    assert len(receiver.requests) == 4
    assert {r.headers["webhook-id"] for r in receiver.requests} == {f"msg_{message['id'].hex}"}
    last = receiver.requests[-1]
    assert [n["id"] for n in Webhook(secret).verify(last.body, last.headers)["notifications"]] == [
        str(i) for i in queued]


async def test_redriving_a_subscription_redelivers_each_failed_message_under_its_own_id(db, receivers, api_client):
    receiver = await receivers(statuses=[500] * 3)
    subscription, _ = await db.subscribe(EDUCATION, receiver.url)
    await queue(db, subscription, 3)
    worker = db.worker(replace(FAST, batch_size=1, max_attempts=1))
    await worker.drain_all()
    assert await statuses(db, subscription) == ["failed"] * 3

    answer = await api_client().post(f"/subscriptions/{subscription}/redrive")
    assert answer.json() == {"requeued": 3, "messages": 3}
    await worker.drain_all()

    assert await statuses(db, subscription) == ["delivered"] * 3
    assert len(await messages(db, subscription)) == 3, "no new message formed"
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == 6 and all(ids.count(i) == 2 for i in ids)


async def test_during_a_secret_rotation_both_secrets_sign_then_only_the_new_one(db, receivers, api_client, tokens):
    receiver = await receivers()
    subscription, old = await db.subscribe(EDUCATION, receiver.url)
    education = api_client(tokens.for_client("agency-dinas-pendidikan"))
    worker = db.worker()

    assert (await api_client(tokens.for_client("agency-dinas-kesehatan")).post(
        f"/subscriptions/{subscription}/secret-rotation")).status_code == 404
    rotated = await education.post(f"/subscriptions/{subscription}/secret-rotation", json={"grace_s": 3600})
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != old
    await queue(db, subscription)
    await worker.drain_all()
    during = receiver.requests[-1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(during.body, during.headers) == Webhook(old).verify(during.body, during.headers)

    newest = await education.post(f"/subscriptions/{subscription}/secret-rotation", json={"grace_s": 0})
    assert "secret" in newest.json()
    await queue(db, subscription)
    await worker.drain_all()
    after = receiver.requests[-1]
    assert Webhook(newest.json()["secret"]).verify(after.body, after.headers)
    for expired in (old, new):
        with pytest.raises(WebhookVerificationError):
            Webhook(expired).verify(after.body, after.headers)
    assert await db.pool.fetchval("SELECT legacy_secret IS NULL AND secret_encrypted IS NOT NULL FROM subscriptions")


async def test_a_hanging_agency_does_not_hold_up_the_others(db, receivers, wait_for):
    """Three subscriptions of a hanging agency cannot take the slots the others need: an agency
    holds at most `agency_concurrency` of them, until its timeout."""
    hanging = await receivers(delay_s=30)
    fast = await receivers()
    hanging_subscriptions = [(await db.subscribe(HEALTH, hanging.url))[0] for _ in range(3)]
    fast_subscription, _ = await db.subscribe(EDUCATION, fast.url)
    policy = replace(FAST, timeout_s=5, concurrency=2, agency_concurrency=1)
    for subscription in hanging_subscriptions:
        await queue(db, subscription, 5)

    async with running(db.worker(policy)):
        await wait_for(lambda: _requests(hanging))
        for _ in range(3):
            fast.requests.clear()
            await queue(db, fast_subscription)
            await wait_for(lambda: _requests(fast), timeout=10, interval=0.01)
            # delivered while the hanging agency's POST is still in flight (no attempt of it has
            # ended yet, not even by its 5 s timeout): the fast agency waited for nobody
            assert await _with_error(db, hanging_subscriptions[0]) is None
        assert len(hanging.requests) == 1, "the hanging agency holds its one slot"
        await wait_for(lambda: _with_error(db, hanging_subscriptions[0]), timeout=10)

    assert set(await statuses(db, fast_subscription)) == {"delivered"}
    [row, *_] = await messages(db, hanging_subscriptions[0])
    assert (row["status"], row["last_error"]) == ("pending", "Timeout")


async def test_an_unreachable_agency_is_retried_with_the_error_class_only(db, receivers):
    receiver = await receivers()
    await receiver.stop()  # nothing listens on its port any more
    subscription, _ = await db.subscribe(EDUCATION, receiver.url)
    await queue(db, subscription)

    await db.worker(replace(FAST, backoff_base_s=600, backoff_cap_s=600)).drain_all()

    [message] = await messages(db, subscription)
    assert (message["status"], message["attempts"], message["last_error"], message["last_status"]) == (
        "pending", 1, "ConnectError", None)


async def test_messages_carry_at_most_the_batch_size_in_queueing_order(db, receivers):
    receiver = await receivers()
    subscription, secret = await db.subscribe(EDUCATION, receiver.url)
    queued = await queue(db, subscription, 250)

    await db.worker().drain_all()

    sizes = [len(Webhook(secret).verify(r.body, r.headers)["notifications"]) for r in receiver.requests]
    assert sizes == [100, 100, 50]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 3
    assert [i for r in receiver.requests for i in ids_in(r)] == [str(i) for i in queued]


async def test_the_worker_wakes_on_new_notifications_without_waiting_for_its_poll(db, receivers, wait_for):
    receiver = await receivers()
    subscription, _ = await db.subscribe(EDUCATION, receiver.url)

    # Polling every 30 s, the worker still delivers each notification within the 5 s wait_for allows:
    # the notification of its queueing wakes it. After the first delivery it is idle between rounds.
    async with running(db.worker(replace(FAST, poll_interval_s=30))):
        for _ in range(3):
            receiver.requests.clear()
            await queue(db, subscription)
            [_request] = await wait_for(lambda: _requests(receiver), timeout=5, interval=0.01)
            await wait_for(lambda: _all_delivered(db), timeout=5, interval=0.01)


async def test_two_replicas_share_the_queue_and_send_each_notification_once(db, receivers, wait_for):
    receivers_ = [await receivers() for _ in range(3)]
    subscriptions = [(await db.subscribe(EDUCATION, r.url))[0] for r in receivers_]
    policy = replace(FAST, batch_size=20)
    registries = [CollectorRegistry(), CollectorRegistry()]

    async with running(db.worker(policy, registries[0])), running(db.worker(policy, registries[1])):
        queued = {s: [] for s in subscriptions}
        for _ in range(8):
            for subscription in subscriptions:
                queued[subscription] += await queue(db, subscription, 50)
        await wait_for(lambda: _all_delivered(db), timeout=30)

    for receiver, subscription in zip(receivers_, subscriptions):
        ids = [i for r in receiver.requests for i in ids_in(r)]
        assert sorted(ids) == sorted(str(i) for i in queued[subscription]) and len(ids) == len(set(ids))
    sent = [registry.get_sample_value("ejsika_deliveries_delivered_total", {"agency": EDUCATION.code}) or 0
            for registry in registries]
    assert all(sent) and sum(sent) == 8 * 50 * 3, f"both replicas delivered a share: {sent}"


async def test_delivery_is_measured_per_agency(db, receivers):
    receiver = await receivers(statuses=[500])
    social = Agency("dinas-sosial", "Dinas Sosial", frozenset({"eligible"}))
    education, _ = await db.subscribe(EDUCATION, receiver.url)
    other, _ = await db.subscribe(social, receiver.url)
    await queue(db, education, 3)
    await queue(db, other, 1)
    registry = CollectorRegistry()
    worker = db.worker(replace(FAST, backoff_base_s=0.001, backoff_cap_s=0.001), registry)

    while not await _all_delivered(db):
        await worker.drain_all()

    def value(name, **labels):
        return registry.get_sample_value(name, labels)

    code = EDUCATION.code
    assert value("ejsika_notifications_sent_total", agency=code, channel="webhook") == 3, "once, not per attempt"
    assert value("ejsika_deliveries_delivered_total", agency=code) == 3
    assert value("ejsika_deliveries_delivered_total", agency="dinas-sosial") == 1
    attempts = sum(value("ejsika_webhook_requests_total", agency=a, result=r) or 0
                   for a in (code, "dinas-sosial") for r in ("ok", "http_error"))
    assert attempts == 3, "two messages, one of them tried twice"
    assert value("ejsika_webhook_message_seconds_count", agency=code) == 1
    text = generate_latest(registry).decode()
    assert "subscription" not in text and "ref0" not in text


async def test_one_replica_reports_the_pending_gauge_so_it_sums_over_replicas(db, receivers, wait_for):
    receiver = await receivers(statuses=[500] * 50)
    subscription, _ = await db.subscribe(EDUCATION, receiver.url)
    await queue(db, subscription, 3)
    registries = [CollectorRegistry(), CollectorRegistry()]
    policy = replace(FAST, backoff_base_s=60, backoff_cap_s=60)

    def pending(registry):
        return registry.get_sample_value("ejsika_deliveries_pending", {"agency": EDUCATION.code})

    async with running(db.worker(policy, registries[0])), running(db.worker(policy, registries[1])):
        async def reported():
            return sorted(str(pending(r)) for r in registries) == ["3.0", "None"]

        await wait_for(reported, timeout=10)


async def _requests(receiver):
    return receiver.requests


async def _all_delivered(db):
    return await db.pool.fetchval(
        "SELECT count(*) > 0 AND count(*) = count(*) FILTER (WHERE status = 'delivered') FROM deliveries")


async def _message_status(db, status):
    return await db.pool.fetchval("SELECT bool_and(status = $1) FROM webhook_messages", status)


async def _with_error(db, subscription):
    rows = await messages(db, subscription)
    return rows if rows and all(r["last_error"] for r in rows) else None


async def test_the_wake_up_names_its_subscriptions_and_one_being_drained_does_not_wake_the_worker(db, receivers):
    receiver = await receivers()
    draining, _ = await db.subscribe(EDUCATION, receiver.url)
    idle, _ = await db.subscribe(HEALTH, receiver.url)
    heard: asyncio.Queue = asyncio.Queue()
    listener = await asyncpg.connect(db.url)
    try:
        await listener.add_listener(channel(db.schema), lambda _c, _p, _ch, payload: heard.put_nowait(payload))
        await queue(db, draining, 3)
        assert await asyncio.wait_for(heard.get(), 5) == str(draining), "one wake-up, naming the subscription"
    finally:
        await listener.close()

    worker = db.worker()
    worker._drains[draining] = asyncio.get_running_loop().create_future()  # a drain under way, waiting
    queued = worker._queued[draining] = asyncio.Event()
    worker._notified(str(draining))
    assert queued.is_set(), "the drain is told, and goes on"
    assert not worker._wake.is_set(), "the drain takes what was queued for it before it ends"
    worker._notified(f"{draining},{idle}")
    assert worker._wake.is_set(), "a subscription nobody drains wakes the dispatcher"
    worker._wake.clear()
    worker._notified("")
    assert worker._wake.is_set(), "a wake-up naming nothing (too many to name, a redelivery) wakes it"


async def test_a_drain_with_nothing_to_send_waits_for_its_next_notifications_instead_of_ending(db, receivers, wait_for):
    receiver = await receivers()
    subscription, _ = await db.subscribe(EDUCATION, receiver.url)

    async with running(db.worker(replace(FAST, poll_interval_s=30))) as worker:
        await queue(db, subscription)
        await wait_for(lambda: _all_delivered(db), timeout=5, interval=0.01)
        [drain] = worker._drains.values()
        await queue(db, subscription, 2)
        await wait_for(lambda: _delivered_count(db, 3), timeout=5, interval=0.01)
        assert list(worker._drains.values()) == [drain], "the same drain sent them: no dispatch, no new drain"
    assert [len(ids_in(r)) for r in receiver.requests] == [1, 2]


async def _delivered_count(db, count):
    return await db.pool.fetchval("SELECT count(*) FILTER (WHERE status = 'delivered') = $1 FROM deliveries", count)
