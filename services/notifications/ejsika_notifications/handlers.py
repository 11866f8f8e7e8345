"""Consumer handlers: turn events into queued deliveries for the subscriptions they match."""

from __future__ import annotations

from ejsika_contracts import Event
from ejsika_runtime import scopes
from ejsika_runtime.unit_of_work import UnitOfWork

from .domain.deliveries import plan
from .domain.subscriptions import EVENT_TYPES
from .store import deliveries, subscriptions


async def on_assessed(uow: UnitOfWork, events: list[Event]) -> None:
    # Subscriptions are read in the batch's own transaction rather than cached: one small query
    # per batch, and an event is never matched against a stale list (a subscription created a
    # moment before an event gets it).
    # Who may read this service's record of what it shared about each family (GET /processing-records).
    await scopes.remember(uow.conn, [
        scopes.HouseholdScope(e.data.household_id, e.data.programme, e.data.region_code, None) for e in events
    ])
    active = await subscriptions.active_subscriptions(uow.conn, list(EVENT_TYPES))
    if active:
        await deliveries.queue(uow.conn, plan(events, active))
