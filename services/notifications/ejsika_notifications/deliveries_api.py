"""HTTP API of delivery: the state of notifications and webhook messages, redelivery, secret rotation.

An agency's system follows and redelivers its own; the admin (the platform's operator) any
agency's; the auditor reads. A redelivered message is the same message: the same notifications
under the same `webhook-id`, given a fresh set of attempts, so that a receiver that did process it
after all recognises it and a receiver that did not gets exactly what it missed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from ejsika_runtime import pages
from ejsika_runtime.access import Access, Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.pages import Page
from ejsika_runtime.problems import Problem, documented

from .api import _acts_for, _agency_filter
from .crypto import SecretCipher
from .domain import webhooks
from .domain.subscriptions import WebhookSecret, new_secret
from .store import deliveries, secrets, subscriptions
from .store.deliveries import DeliveryStatus

_WEEK_S = 7 * 86400


class DeliveryOut(BaseModel):
    """A notification as operators follow it (never its payload)."""

    id: UUID
    subscription_id: UUID
    event_id: UUID
    message_id: UUID | None = Field(description="The webhook message carrying it, once formed.")
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveriesOut(BaseModel):
    counts: dict[str, int]
    items: list[DeliveryOut]


class RedriveOut(BaseModel):
    requeued: int = Field(description="Failed notifications given a fresh set of attempts.")
    messages: int = Field(0, description="Failed webhook messages among them redelivered, each under its webhook-id.")


class MessageOut(BaseModel):
    id: UUID
    webhook_id: str = Field(description="The webhook-id header it is sent with, on every attempt.")
    subscription_id: UUID
    status: DeliveryStatus
    size: int = Field(description="How many notifications it carries (fixed once formed).")
    attempts: int
    next_attempt_at: datetime
    last_status: int | None = Field(description="The HTTP status of the last attempt, if any came back.")
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class SecretRotationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: WebhookSecret | None = Field(None, description="The new secret (whsec_ + base64); generated if absent.")
    grace_s: int = Field(86400, ge=0, le=_WEEK_S,
                         description="How long the previous secret keeps signing beside the new one.")


class SecretRotationOut(BaseModel):
    subscription_id: UUID
    secret: str | None = Field(None, description="The new secret, only when generated (answered once).")
    previous_secret_valid_until: datetime


def _message_out(view: deliveries.MessageView) -> MessageOut:
    values = vars(view) | {"webhook_id": webhooks.webhook_id(view.id)}
    values.pop("seq")
    return MessageOut(**values)


def routes(access: Access, pool_of: Callable[[], asyncpg.Pool], *, cipher_of: Callable[[], SecretCipher]) -> APIRouter:
    router = APIRouter(tags=["delivery"])
    manage = access.allow(Role.ADMIN, Role.AGENCY, purpose="managing an agency's subscriptions")
    follow = access.allow(Role.ADMIN, Role.AUDITOR, Role.AGENCY, purpose="following an agency's deliveries")

    async def own_subscription(conn: asyncpg.Connection, caller: Caller, subscription_id: UUID) -> None:
        """404 unless the subscription exists and the caller may act on it (its agency, or an admin)."""
        agency = await subscriptions.agency_of(conn, subscription_id)
        if agency is None or not _acts_for(caller, agency):
            raise Problem(404, "no such subscription")

    @router.post("/subscriptions/{subscription_id:uuid}/redrive", response_model=RedriveOut)
    async def redrive(subscription_id: UUID, caller: Caller = manage) -> RedriveOut:
        """Redeliver every failed notification of the subscription, e.g. once the agency is fixed:
        each failed webhook message again under its own webhook-id."""
        async with pool_of().acquire() as conn, conn.transaction():
            await own_subscription(conn, caller, subscription_id)
            requeued = await deliveries.requeue_failed(conn, subscription_id)
        return RedriveOut(requeued=requeued.notifications, messages=requeued.messages)

    @router.post("/messages/{message_id:uuid}/redelivery", status_code=202, response_model=MessageOut,
                 responses={409: documented("The message has not failed, or its subscription is not active")})
    async def redeliver(message_id: UUID, caller: Caller = manage) -> MessageOut:
        """Give a failed webhook message a fresh set of attempts: the same notifications, the same
        webhook-id (a receiver deduplicating on it recognises one it did process)."""
        async with pool_of().acquire() as conn, conn.transaction():
            found = await deliveries.message(conn, message_id)
            if found is None or not _acts_for(caller, found[1]):
                raise Problem(404, "no such message")
            view, _ = found
            if view.status != "failed":
                raise Problem(409, f"the message is {view.status}; only a failed message is redelivered")
            if not await conn.fetchval("SELECT active FROM subscriptions WHERE id = $1", view.subscription_id):
                raise Problem(409, "the subscription is not active; subscribe again, then redeliver")
            await deliveries.redeliver(conn, message_id)
            view, _ = await deliveries.message(conn, message_id)
        return _message_out(view)

    @router.get("/messages", response_model=Page[MessageOut])
    async def list_messages(
        subscription_id: UUID | None = None,
        status: DeliveryStatus | None = None,
        limit: int = pages.limit(50, 500),
        cursor: str | None = pages.cursor(),
        caller: Caller = follow,
    ) -> Page[MessageOut]:
        """Webhook messages, the latest first: what was sent, how often, and how it was answered."""
        position = pages.decode(cursor, int)
        async with pool_of().acquire() as conn:
            if subscription_id is not None:
                await own_subscription(conn, caller, subscription_id)
            found = await deliveries.messages(conn, subscription_id=subscription_id, status=status,
                                              agency=_agency_filter(caller, None),
                                              before_seq=position[0] if position else None, limit=limit + 1)
        more = len(found) > limit
        found = found[:limit]
        return Page[MessageOut](items=[_message_out(m) for m in found],
                                next_cursor=pages.encode(found[-1].seq) if more else None)

    @router.get("/deliveries", response_model=DeliveriesOut)
    async def list_deliveries(
        subscription_id: UUID | None = None,
        status: DeliveryStatus | None = None,
        limit: int = Query(50, ge=1, le=500),
        caller: Caller = follow,
    ) -> DeliveriesOut:
        agency = _agency_filter(caller, None)
        async with pool_of().acquire() as conn:
            if subscription_id is not None:
                await own_subscription(conn, caller, subscription_id)
            counts = await deliveries.status_counts(conn, subscription_id, agency)
            items = await deliveries.recent(conn, subscription_id, status, limit, agency)
        return DeliveriesOut(counts=counts, items=[DeliveryOut(**vars(i)) for i in items])

    @router.post("/subscriptions/{subscription_id:uuid}/secret-rotation", response_model=SecretRotationOut,
                 response_model_exclude_none=True,
                 responses={409: documented("A feed subscription has no signing secret")})
    async def rotate_secret(subscription_id: UUID, body: SecretRotationIn | None = None,
                            caller: Caller = manage) -> SecretRotationOut:
        """A new signing secret; the previous one keeps signing beside it for `grace_s` (webhooks
        then carry both signatures), so the agency switches its verifier when it likes."""
        body = body or SecretRotationIn()
        generated = new_secret() if body.secret is None else None
        async with pool_of().acquire() as conn, conn.transaction():
            await own_subscription(conn, caller, subscription_id)
            until = await secrets.rotate(conn, subscription_id, cipher_of().encrypt(body.secret or generated),
                                         body.grace_s)
            if until is None:
                raise Problem(409, "a feed subscription has no signing secret")
        return SecretRotationOut(subscription_id=subscription_id, secret=generated, previous_secret_valid_until=until)

    return router
