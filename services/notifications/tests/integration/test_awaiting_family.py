"""An event of a family this service has not projected yet (an escalation before the registry's events)
is not lost to the subscriptions whose filter needs the family: it waits, and is matched when the family
arrives (or by the sweep), on the real PostgreSQL."""

from __future__ import annotations

import pytest

from ejsika_notifications import digest, families
from ejsika_notifications.store import awaiting
from ejsika_notifications.domain.families import apply as apply_event
from ejsika_notifications.domain.subscriptions import Filter

from .test_what_agencies_get import EDUCATION, HANDLERS, REFERENCES, Family, apply, notifications, subscribe

pytestmark = pytest.mark.infra


async def waiting(db) -> int:
    return await db.pool.fetchval("SELECT count(*) FROM awaiting_family")


async def test_an_escalation_before_its_family_reaches_the_region_subscription_once_the_family_is_known(db):
    family = Family()
    banten = await subscribe(db, EDUCATION, "compliance.escalated",
                             Filter("36", escalation_kinds=("school_dropout_risk",)))
    everywhere = await subscribe(db, EDUCATION, "compliance.escalated", Filter(""))  # needs nothing of the family
    escalation = family.escalated(family.child, "school", "school_dropout_risk")

    await apply(db, HANDLERS.on_events, [escalation])

    assert not await notifications(db, banten), "the region is not known yet"
    assert len(await notifications(db, everywhere)) == 1, "a filter that needs no family is told at once"
    assert await waiting(db) == 1

    await apply(db, HANDLERS.on_household, [family.registered()])

    (told,) = await notifications(db, banten)
    assert told["reference"] == REFERENCES.reference_of(EDUCATION.code, family.id)
    assert told["payload"]["region_code"] == "3672011001", "the family's data, as if it had come in order"
    assert told["payload"]["kind"] == "school_dropout_risk"
    assert [m["reference"] for m in told["payload"]["members"]] == [
        REFERENCES.member_reference_of(EDUCATION.code, family.child.member_id)]
    assert told["payload"]["members"][0]["name"] == "Ani"
    assert len(await notifications(db, everywhere)) == 1, "the one told at once is not told again"
    assert await waiting(db) == 0

    await apply(db, HANDLERS.on_events, [escalation])  # redelivered: still one each
    assert len(await notifications(db, banten)) == 1 and await waiting(db) == 0


async def test_a_notice_whose_family_arrived_unseen_is_matched_by_the_sweep(db):
    """The family committed between the notice's read of the projection and its being kept: the
    family's own batch found nothing waiting, the sweep does."""
    family = Family()
    banten = await subscribe(db, EDUCATION, "compliance.escalated", Filter("36"))
    await apply(db, HANDLERS.on_events, [family.escalated(family.child, "school", "school_dropout_risk")])
    projected: dict = {}
    apply_event(projected, family.registered())
    async with db.pool.acquire() as conn:
        await families.save(conn, projected)  # as the registry's batch does, without its release
        assert await digest.sweep(conn, HANDLERS.notify) == 1

    (told,) = await notifications(db, banten)
    assert told["payload"]["region_code"] == "3672011001"
    assert await waiting(db) == 0


async def test_nothing_waits_when_no_subscription_needs_the_family(db):
    family = Family()
    await subscribe(db, EDUCATION, "compliance.escalated", Filter("", programmes=("jamsosratu",)))

    await apply(db, HANDLERS.on_events, [family.escalated(family.child, "school", "school_dropout_risk")])

    assert await waiting(db) == 0, "the escalation carries its programme: decided at once"


async def test_a_notice_whose_family_never_comes_is_dropped_after_the_expiry(db):
    family = Family()
    await subscribe(db, EDUCATION, "compliance.escalated", Filter("36"))
    await apply(db, HANDLERS.on_events, [family.escalated(family.child, "school", "school_dropout_risk")])
    async with db.pool.acquire() as conn:
        assert await awaiting.expire(conn) == 0, "still within the expiry"
        await conn.execute("UPDATE awaiting_family SET held_at = now() - interval '15 days'")
        assert await awaiting.expire(conn) == 1
    assert await waiting(db) == 0
