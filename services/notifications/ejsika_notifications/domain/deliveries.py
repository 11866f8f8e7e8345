"""Which subscription gets which event, and the minimised item each one receives."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ejsika_contracts import Event

from .agencies import minimise
from .subscriptions import Subscription, matches


# Put beside the data in every delivered item: no event's data may have fields of these names.
ENVELOPE_FIELDS = ("event_id", "event_time")


@dataclass(frozen=True)
class PlannedDelivery:
    subscription_id: UUID
    event_id: UUID
    household_id: UUID
    payload: dict[str, Any]


def shared_fields(payload: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted paths of the family's data in a delivered item, for the record of processing."""
    fields = []
    for name, value in payload.items():
        if not prefix and name in ENVELOPE_FIELDS:
            continue
        path = f"{prefix}{name}"
        fields += shared_fields(value, f"{path}.") if isinstance(value, dict) else [path]
    return fields


def item(event: Event, data: dict[str, Any], subscription: Subscription) -> dict[str, Any]:
    """What one agency sees of one event: the allowed data, flat as in the event, with the event's
    id (to dedupe) and time (to keep the latest when retries arrive out of order)."""
    return {"event_id": str(event.id), "event_time": event.time.isoformat(), **minimise(data, subscription.profile)}


def plan(events: Iterable[Event], subscriptions: Sequence[Subscription]) -> list[PlannedDelivery]:
    planned = []
    for event in events:
        data = event.data.model_dump(mode="json")
        for subscription in subscriptions:
            if matches(subscription, event.type, data):
                planned.append(PlannedDelivery(subscription.id, event.id, event.data.household_id,
                                               item(event, data, subscription)))
    return planned
