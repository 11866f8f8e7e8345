"""The pull feed, on the real PostgreSQL with real Keycloak tokens: an agency without an HTTPS
endpoint reads its notifications in order, at least once, and acknowledges them by the cursor."""

from __future__ import annotations

import uuid

import pytest

from ejsika_notifications.domain.agencies import EDUCATION, HEALTH
from ejsika_notifications.domain.deliveries import PlannedDelivery
from ejsika_notifications.store import deliveries

pytestmark = pytest.mark.infra


async def queue(conn, subscription: uuid.UUID, count: int = 1) -> list[str]:
    planned = [PlannedDelivery(subscription, uuid.uuid4(), uuid.uuid4(),
                               {"member": {"name": "Siti", "school_level": "smp"}, "village": "3672011001"},
                               reference=f"ref{i:023d}", event_type="children.entering_sma") for i in range(count)]
    assert await deliveries.queue(conn, planned) == count
    rows = await conn.fetch("SELECT id FROM deliveries WHERE event_id = ANY($1::uuid[]) ORDER BY seq",
                            [p.event_id for p in planned])
    return [str(r["id"]) for r in rows]


@pytest.fixture
async def feeds(db, api_client, tokens):
    """Education and health each read a feed subscription; education also has a webhook one."""
    education_feed, _ = await db.subscribe(EDUCATION, None)
    health_feed, _ = await db.subscribe(HEALTH, None)
    education_webhook, _ = await db.subscribe(EDUCATION, "https://opd.example/webhooks")
    return {
        "education": api_client(tokens.for_client("agency-dinas-pendidikan")),
        "health": api_client(tokens.for_client("agency-dinas-kesehatan")),
        "subscriptions": (education_feed, health_feed, education_webhook),
    }


async def test_an_agency_reads_its_own_feed_in_order_at_least_once_until_it_acknowledges(db, feeds):
    education, health = feeds["education"], feeds["health"]
    education_feed, health_feed, education_webhook = feeds["subscriptions"]
    async with db.pool.acquire() as conn:
        mine = await queue(conn, education_feed, 3)
        await queue(conn, health_feed, 2)
        await queue(conn, education_webhook, 2)  # sent by webhook, never in the feed
        mine += await queue(conn, education_feed, 2)

    first = (await education.get("/feed", params={"limit": 2})).json()
    assert [i["id"] for i in first["items"]] == mine[:2]
    item = first["items"][0]
    assert (item["subscription_id"], item["type"], item["reference"]) == (
        str(education_feed), "children.entering_sma", f"ref{0:023d}")
    assert item["data"] == {"member": {"name": "Siti", "school_level": "smp"}, "village": "3672011001"}
    second = (await education.get("/feed", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [i["id"] for i in second["items"]] == mine[2:4]

    again = (await education.get("/feed", params={"limit": 10})).json()
    assert [i["id"] for i in again["items"]] == mine, "nothing acknowledged: everything again, in order"

    acked = await education.post("/feed/ack", json={"cursor": second["next_cursor"]})
    assert acked.json() == {"acknowledged": 4}
    rest = (await education.get("/feed")).json()
    assert [i["id"] for i in rest["items"]] == mine[4:], "an acknowledged notification is never served again"
    old = (await education.get("/feed", params={"cursor": first["next_cursor"]})).json()
    assert [i["id"] for i in old["items"]] == mine[4:], "not even to an older cursor"
    assert (await education.post("/feed/ack", json={"cursor": first["next_cursor"]})).json() == {"acknowledged": 0}
    states = {str(r["id"]): r["status"] for r in await db.deliveries(education_feed)}
    assert [states[i] for i in mine] == ["delivered"] * 4 + ["pending"]

    theirs = (await health.get("/feed")).json()["items"]
    assert len(theirs) == 2 and {i["subscription_id"] for i in theirs} == {str(health_feed)}
    empty = (await education.get("/feed", params={"cursor": rest["next_cursor"]})).json()
    assert empty == {"items": [], "next_cursor": None}


async def test_a_notification_committed_late_is_served_not_skipped(db, feeds):
    """Positions are given when served: a transaction that queued earlier but commits later
    cannot fall behind a cursor that was already acknowledged."""
    education = feeds["education"]
    education_feed = feeds["subscriptions"][0]
    async with db.pool.acquire() as slow, db.pool.acquire() as conn:
        transaction = slow.transaction()
        await transaction.start()
        late = await queue(slow, education_feed)  # queued first, committed last
        early = await queue(conn, education_feed)
        page = (await education.get("/feed")).json()
        assert [i["id"] for i in page["items"]] == early
        assert (await education.post("/feed/ack", json={"cursor": page["next_cursor"]})).json() == {"acknowledged": 1}
        await transaction.commit()

    assert [i["id"] for i in (await education.get("/feed")).json()["items"]] == late


async def test_cursors_are_checked_and_only_agencies_read_feeds(db, feeds, api_client, tokens):
    education = feeds["education"]
    async with db.pool.acquire() as conn:
        await queue(conn, feeds["subscriptions"][0])
    page = (await education.get("/feed")).json()

    beyond = await education.post("/feed/ack", json={"cursor": "WzEwMDBd"})  # position 1000: never served
    assert beyond.status_code == 422 and beyond.json()["errors"][0]["field"] == "cursor"
    for cursor in ("not-a-cursor", "WyJ4Il0"):
        assert (await education.post("/feed/ack", json={"cursor": cursor})).status_code == 422
        assert (await education.get("/feed", params={"cursor": cursor})).status_code == 422
    assert (await education.get("/feed")).json() == page, "refused acknowledgements changed nothing"

    for token in (None, tokens.for_user("auditor-demo"), tokens.for_user("operator-jamsosratu")):
        assert (await api_client(token).get("/feed")).status_code == 403


async def test_what_the_feed_served_is_on_the_record_of_processing(db, feeds):
    education = feeds["education"]
    education_feed = feeds["subscriptions"][0]
    async with db.pool.acquire() as conn:
        await queue(conn, education_feed, 2)
    households = {r["household_id"] for r in await db.deliveries(education_feed)}

    page = (await education.get("/feed")).json()
    await education.get("/feed")  # served again: left again

    rows = await db.pool.fetch("SELECT subject, role, client_id, household_id, fields, channel, purpose"
                               " FROM processing_records WHERE action = 'share'")
    assert len(rows) == 4 and {r["household_id"] for r in rows} == households
    for row in rows:
        assert (row["subject"], row["role"], row["client_id"], row["channel"]) == (
            EDUCATION.code, "agency", "agency-dinas-pendidikan", f"feed {education_feed}")
        assert sorted(row["fields"]) == ["member.name", "member.school_level", "village"]
        assert row["purpose"] == f"children.entering_sma for {EDUCATION.code}"
    sent = db.metrics.sent.labels(EDUCATION.code, "feed")._value.get()
    assert sent == 2, "sent counts each notification once, however often it is read"
    await education.post("/feed/ack", json={"cursor": page["next_cursor"]})
    assert db.metrics.delivered.labels(EDUCATION.code)._value.get() == 2
