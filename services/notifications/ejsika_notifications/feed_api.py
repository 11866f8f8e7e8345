"""The pull feed, for agencies that cannot host an HTTPS endpoint: the same notifications as a
webhook subscription gets, read with a cursor.

- `GET /feed?cursor=&limit=` serves the agency's notifications (of all its `feed` subscriptions)
  in order, after `cursor`, or without one after the last acknowledged position. Reading changes
  nothing the agency relies on: a page read again is the same page.
- `POST /feed/ack {"cursor"}` acknowledges everything up to that cursor (a `next_cursor` the feed
  gave): those notifications are delivered and never served again; anything after it is served
  again until acknowledged (at least once). Acknowledge after processing, not before.

An empty page answers `next_cursor: null`: keep the cursor you have and ask again later.
Each notification served is on the record of processing (action share, per field).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from ejsika_runtime import pages
from ejsika_runtime.access import Access, Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.pages import Page
from ejsika_runtime.problems import FieldError, Problem

from .domain import webhooks
from .metrics import DeliveryMetrics
from .store import deliveries, feed


class FeedItem(BaseModel):
    """One notification, as a webhook message's item, with the subscription it matched."""

    id: UUID = Field(description="The notification's id: the one an answer refers to.")
    subscription_id: UUID
    type: str
    reference: str | None = Field(description="The agency's own reference of the family.")
    time: str
    data: dict[str, Any]


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cursor: str = Field(max_length=512, description="A next_cursor of the feed: everything up to it was received.")


class AckOut(BaseModel):
    acknowledged: int = Field(description="Notifications newly acknowledged by this call.")


def _agency(caller: Caller) -> str:
    if not caller.principal.agency:
        raise Problem(403, "the token names no agency")
    return caller.principal.agency


def routes(access: Access, pool_of: Callable[[], asyncpg.Pool], metrics: DeliveryMetrics) -> APIRouter:
    router = APIRouter(tags=["feed"])
    read = access.allow(Role.AGENCY, purpose="an agency reading its notifications from the pull feed")
    acknowledge = access.allow(Role.AGENCY, purpose="an agency acknowledging what it read from the pull feed")

    @router.get("/feed", response_model=Page[FeedItem])
    async def read_feed(limit: int = pages.limit(100, 500), cursor: str | None = pages.cursor(),
                        caller: Caller = read) -> Page[FeedItem]:
        agency = _agency(caller)
        after = pages.decode(cursor, int)
        async with pool_of().acquire() as conn, conn.transaction():
            served = await feed.serve(conn, agency, after[0] if after else None, limit)
            for subscription_id, members in feed.households_by_subscription(served).items():
                await deliveries.record_shared(conn, f"feed {subscription_id}", agency, members,
                                               caller.principal.client_id)
        first = sum(1 for s in served if s.first_time)
        if first:
            metrics.sent.labels(agency, "feed").inc(first)
        items = [FeedItem(subscription_id=s.subscription_id, **webhooks.item(s.member.notification)) for s in served]
        return Page[FeedItem](items=items, next_cursor=pages.encode(served[-1].position) if served else None)

    @router.post("/feed/ack", response_model=AckOut)
    async def acknowledge_feed(body: AckIn, caller: Caller = acknowledge) -> AckOut:
        agency = _agency(caller)
        try:
            [position] = pages.decode(body.cursor, int) or (0,)
        except Problem:
            raise Problem(422, "cursor is not one the feed gave", errors=[FieldError(field="cursor", rule="cursor")]) from None
        async with pool_of().acquire() as conn, conn.transaction():
            try:
                done = await feed.acknowledge(conn, agency, position)
            except feed.BeyondServed:
                raise Problem(422, "the cursor is past anything the feed served",
                              errors=[FieldError(field="cursor", rule="cursor")]) from None
        if done.notifications:
            metrics.delivered.labels(agency).inc(done.notifications)
            for lag in done.lags_s:
                metrics.lag_seconds.observe(lag)
        return AckOut(acknowledged=done.notifications)

    return router
