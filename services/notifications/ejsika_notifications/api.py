"""HTTP API for operators: agencies, subscriptions and the state of deliveries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import asyncpg
from fastapi import APIRouter, HTTPException, Query, Response
from fastapi import status as http
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

from .domain.agencies import AGENCY_CODE, Agency
from .domain.subscriptions import (
    EVENT_TYPES,
    KNOWN_FIELDS,
    Filter,
    new_secret,
    region_prefix_problem,
    WebhookSecret,
)
from .store import deliveries, subscriptions
from .store.deliveries import DeliveryStatus


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgencyIn(_Strict):
    code: str = Field(pattern=AGENCY_CODE, examples=["dinas-pendidikan"])
    name: str = Field(min_length=1, max_length=200)
    profile: list[str] = Field(
        min_length=1,
        description="Dotted paths of the event data the agency may see, e.g. member_counts.toddlers.",
    )

    @field_validator("profile")
    @classmethod
    def _known_fields(cls, profile: list[str]) -> list[str]:
        unknown = sorted(set(profile) - KNOWN_FIELDS)
        if unknown:
            raise ValueError(f"unknown fields {unknown}; known: {sorted(KNOWN_FIELDS)}")
        return profile


class AgencyOut(BaseModel):
    code: str
    name: str
    profile: list[str]


class FilterIn(_Strict):
    region_prefix: str = Field("", description="Kemendagri code prefix, e.g. 36 (Banten) or 3672 (Cilegon).")
    eligible_only: bool = False

    @field_validator("region_prefix")
    @classmethod
    def _region(cls, prefix: str) -> str:
        if problem := region_prefix_problem(prefix):
            raise ValueError(problem)
        return prefix


class SubscriptionIn(_Strict):
    agency: str
    event_type: str = Field(examples=["eligibility.assessed"])
    filter: FilterIn = FilterIn()
    url: HttpUrl
    secret: WebhookSecret | None = Field(
        None, description="Standard Webhooks secret (whsec_ + base64); generated and returned once if absent."
    )

    @field_validator("event_type")
    @classmethod
    def _event_type(cls, event_type: str) -> str:
        if event_type not in EVENT_TYPES:
            raise ValueError(f"not a subscribable event type; one of {sorted(EVENT_TYPES)}")
        return event_type


class FilterOut(BaseModel):
    region_prefix: str
    eligible_only: bool


class SubscriptionOut(BaseModel):
    id: UUID
    agency: str
    event_type: str
    filter: FilterOut
    url: str
    active: bool
    created_at: datetime
    secret: str | None = Field(None, description="Only in the answer that generated it.")


class DeliveryOut(BaseModel):
    id: UUID
    subscription_id: UUID
    event_id: UUID
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveriesOut(BaseModel):
    counts: dict[str, int]
    items: list[DeliveryOut]


def _subscription_out(record: subscriptions.SubscriptionRecord, secret: str | None = None) -> SubscriptionOut:
    return SubscriptionOut(
        id=record.id,
        agency=record.agency,
        event_type=record.event_type,
        filter=FilterOut(region_prefix=record.filter.region_prefix, eligible_only=record.filter.eligible_only),
        url=record.url,
        active=record.active,
        created_at=record.created_at,
        secret=secret,
    )


def routes(pool_of: Callable[[], asyncpg.Pool]) -> APIRouter:
    router = APIRouter(tags=["notifications"])

    @router.post("/agencies", status_code=http.HTTP_201_CREATED, response_model=AgencyOut)
    async def add_agency(body: AgencyIn) -> AgencyOut:
        agency = Agency(body.code, body.name, frozenset(body.profile))
        async with pool_of().acquire() as conn:
            if not await subscriptions.add_agency(conn, agency):
                raise HTTPException(http.HTTP_409_CONFLICT, f"agency {body.code} exists")
        return AgencyOut(code=agency.code, name=agency.name, profile=sorted(agency.profile))

    @router.get("/agencies", response_model=list[AgencyOut])
    async def list_agencies() -> list[AgencyOut]:
        async with pool_of().acquire() as conn:
            found = await subscriptions.agencies(conn)
        return [AgencyOut(code=a.code, name=a.name, profile=sorted(a.profile)) for a in found]

    @router.post(
        "/subscriptions",
        status_code=http.HTTP_201_CREATED,
        response_model=SubscriptionOut,
        response_model_exclude_none=True,
    )
    async def add_subscription(body: SubscriptionIn) -> SubscriptionOut:
        generated = new_secret() if body.secret is None else None
        async with pool_of().acquire() as conn, conn.transaction():
            if not await subscriptions.agency_exists(conn, body.agency):
                raise HTTPException(http.HTTP_400_BAD_REQUEST, f"unknown agency {body.agency}")
            record = await subscriptions.add_subscription(
                conn,
                agency=body.agency,
                event_type=body.event_type,
                filter=Filter(body.filter.region_prefix, body.filter.eligible_only),
                url=str(body.url),
                secret=body.secret or generated,
            )
        return _subscription_out(record, secret=generated)

    @router.get("/subscriptions", response_model=list[SubscriptionOut], response_model_exclude_none=True)
    async def list_subscriptions(agency: str | None = None, active: bool | None = None) -> list[SubscriptionOut]:
        async with pool_of().acquire() as conn:
            found = await subscriptions.subscriptions(conn, agency=agency, active=active)
        return [_subscription_out(s) for s in found]

    @router.delete("/subscriptions/{subscription_id}", status_code=http.HTTP_204_NO_CONTENT)
    async def deactivate(subscription_id: UUID) -> Response:
        async with pool_of().acquire() as conn:
            if not await subscriptions.deactivate(conn, subscription_id):
                raise HTTPException(http.HTTP_404_NOT_FOUND, "no such subscription")
        return Response(status_code=http.HTTP_204_NO_CONTENT)

    @router.post("/subscriptions/{subscription_id}/redrive")
    async def redrive(subscription_id: UUID) -> dict[str, int]:
        """Retry the subscription's failed deliveries from scratch, e.g. once the agency is fixed."""
        async with pool_of().acquire() as conn, conn.transaction():
            return {"requeued": await deliveries.requeue_failed(conn, subscription_id)}

    @router.get("/deliveries", response_model=DeliveriesOut)
    async def list_deliveries(
        subscription_id: UUID | None = None,
        status: DeliveryStatus | None = None,
        limit: int = Query(50, ge=1, le=500),
    ) -> DeliveriesOut:
        async with pool_of().acquire() as conn:
            counts = await deliveries.status_counts(conn, subscription_id)
            items = await deliveries.recent(conn, subscription_id, status, limit)
        return DeliveriesOut(counts=counts, items=[DeliveryOut(**vars(i)) for i in items])

    return router
