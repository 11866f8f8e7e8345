"""Consumer handlers: keep the family projection, and turn events and derived facts into notifications.

Every handler works on a whole batch: one read of the families it needs, one of the active
subscriptions, one statement to queue what matched (and one to hold the digests' part, one to keep
the references handed out). Subscriptions are read in the batch's own transaction rather than
cached: an event is never matched against a stale list (a subscription made a moment before an
event gets it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from uuid import UUID

import asyncpg

from ejsika_contracts import (
    EligibilityAssessed,
    EnrolmentChanged,
    Event,
    HouseholdRegistered,
    HouseholdRegisteredV2,
    HouseholdUpdated,
)
from ejsika_runtime import scopes
from ejsika_runtime.programme_time import programme_date
from ejsika_runtime.unit_of_work import UnitOfWork

from . import derived, digest, families, pseudonyms
from .domain.deliveries import Notice, awaits_family, notice_of, plan
from .domain.families import FAMILY_EVENTS, Family
from .domain.subscriptions import EVENT_TYPES
from .pseudonyms import Pseudonyms
from .store import awaiting, deliveries, subscriptions

SERVICE = "notifications"
PURPOSE = "telling the agencies (OPD) that serve KPM families what their data profile allows"
KEPT_FIELDS = ("region_code", "programme", "members.nik", "members.name", "members.birth_date", "members.sex",
               "members.relation", "members.in_school")


class Handlers:
    """`references` are the service's pseudonyms, or what gives them once the service starts (a
    service is composed without its keys, e.g. to read its AsyncAPI document)."""

    def __init__(self, references: Pseudonyms | Callable[[], Pseudonyms]) -> None:
        self._references = references

    @property
    def references(self) -> Pseudonyms:
        return self._references if isinstance(self._references, Pseudonyms) else self._references()

    async def on_household(self, uow: UnitOfWork, events: list[Event]) -> None:
        """Registry events: the family projection, enrolment changes, and the derived facts of the
        families whose members or enrolment changed."""
        conn = uow.conn
        registered = [e for e in events if isinstance(e, (HouseholdRegistered, HouseholdRegisteredV2))]
        if registered:  # who may read this service's record of what it shared about each family
            await scopes.follow(conn, SERVICE, registered, PURPOSE, KEPT_FIELDS)
        await scopes.follow_updates(conn, [e for e in events if isinstance(e, HouseholdUpdated)])
        kept = await families.follow(conn, events)
        notices = await awaiting.release(conn, list(kept))  # what waited for these families: matched now
        notices += [notice_of(e) for e in events if isinstance(e, EnrolmentChanged)]
        changed = {e.data.household_id for e in events if isinstance(e, FAMILY_EVENTS)}
        if changed:
            latest = max(e.time for e in events)
            touched = [kept[h] for h in changed if h in kept]
            notices += derived.entering_sma(touched, latest) + derived.without_health_insurance(touched, latest)
        await self.notify(conn, notices, kept)

    async def on_events(self, uow: UnitOfWork, events: list[Event]) -> None:
        """Events of eligibility and monitoring: each one a notice about its family."""
        conn = uow.conn
        assessed = [e for e in events if isinstance(e, EligibilityAssessed)]
        if assessed:
            await scopes.remember(conn, [
                scopes.HouseholdScope(e.data.household_id, e.data.programme, e.data.region_code, None)
                for e in assessed
            ])
        notices = [notice_of(e) for e in events if e.type in EVENT_TYPES]
        if notices:
            await self.notify(conn, notices, await families.load(conn, {n.household_id for n in notices}))

    async def notify(self, conn: asyncpg.Connection, notices: Sequence[Notice], kept: Mapping[UUID, Family]) -> None:
        """Queue what the notices match: at once, or held for the subscription's daily digest. A
        notice of a family not projected yet also waits for it (`store.awaiting`) if a subscription
        needs the family to decide."""
        if not notices:
            return
        active = await subscriptions.active_subscriptions(conn, sorted({n.event_type for n in notices}))
        if not active:
            return
        await awaiting.hold(conn, [n for n in notices if n.household_id not in kept and awaits_family(n, active)])
        planned = plan(notices, active, kept, self.references)
        digests = {s.id for s in active if s.frequency == "daily_digest"}
        await deliveries.queue(conn, [p for p in planned.deliveries if p.subscription_id not in digests])
        for day in sorted({programme_date(p.occurred_at) for p in planned.deliveries if p.subscription_id in digests}):
            await digest.hold(conn, [p for p in planned.deliveries if p.subscription_id in digests
                                     and programme_date(p.occurred_at) == day], day)
        await pseudonyms.remember(conn, planned.handed)
