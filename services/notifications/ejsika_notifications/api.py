"""HTTP API for operators: agencies, subscriptions and the state of deliveries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Query, Response
from fastapi import status as http
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StrictBool, field_validator

from ejsika_runtime.access import Access, Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.problems import FieldError, Problem, documented

from .crypto import SecretCipher
from .domain.agencies import AGENCY_CODE, Agency
from .domain.subscriptions import (
    EVENT_TYPES,
    KNOWN_FIELDS,
    Filter,
    new_secret,
    region_prefix_problem,
    WebhookSecret,
)
from .egress import Egress
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
            raise ValueError(f"{len(unknown)} unknown field(s); the known ones are {sorted(KNOWN_FIELDS)}")
        return profile


class AgencyOut(BaseModel):
    code: str
    name: str
    profile: list[str]


class FilterIn(_Strict):
    region_prefix: str = Field("", description="Kemendagri code prefix, e.g. 36 (Banten) or 3672 (Cilegon).")
    eligible_only: StrictBool = False  # JSON true/false only: 0, 1 or "true" are refused

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


class RedriveOut(BaseModel):
    requeued: int


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


def routes(
    access: Access, pool_of: Callable[[], asyncpg.Pool], *, cipher_of: Callable[[], SecretCipher],
    egress: Egress | None = None,
) -> APIRouter:
    """`cipher_of` encrypts the webhook secrets; `egress` (default: public addresses only) decides
    which webhook URLs are accepted. An agency's system manages its own subscriptions and sees its
    own deliveries; the admin manages every agency."""
    egress = egress or Egress()
    router = APIRouter(tags=["notifications"])
    # No household is named here: a refused agency may learn the route exists (403, not 404).
    manage_agencies = access.allow(Role.ADMIN, purpose="managing agencies and their data profiles", hidden_from=())
    read_agencies = access.allow(Role.ADMIN, Role.AUDITOR, purpose="reviewing agencies and their data profiles",
                                 hidden_from=())
    manage = access.allow(Role.ADMIN, Role.AGENCY, purpose="managing an agency's subscriptions")
    follow = access.allow(Role.ADMIN, Role.AUDITOR, Role.AGENCY, purpose="following an agency's deliveries")

    async def own_subscription(conn: asyncpg.Connection, caller: Caller, subscription_id: UUID) -> None:
        """404 unless the subscription exists and the caller may act on it (its agency, or an admin)."""
        agency = await subscriptions.agency_of(conn, subscription_id)
        if agency is None or not _acts_for(caller, agency):
            raise Problem(404, "no such subscription")

    @router.post("/agencies", status_code=http.HTTP_201_CREATED, response_model=AgencyOut,
                 responses={409: documented("The agency exists")})
    async def add_agency(body: AgencyIn, caller: Caller = manage_agencies) -> AgencyOut:
        agency = Agency(body.code, body.name, frozenset(body.profile))
        async with pool_of().acquire() as conn:
            if not await subscriptions.add_agency(conn, agency):
                raise Problem(http.HTTP_409_CONFLICT, f"agency {body.code} exists")
        return AgencyOut(code=agency.code, name=agency.name, profile=sorted(agency.profile))

    @router.get("/agencies", response_model=list[AgencyOut])
    async def list_agencies(caller: Caller = read_agencies) -> list[AgencyOut]:
        async with pool_of().acquire() as conn:
            found = await subscriptions.agencies(conn)
        return [AgencyOut(code=a.code, name=a.name, profile=sorted(a.profile)) for a in found]

    @router.post(
        "/subscriptions",
        status_code=http.HTTP_201_CREATED,
        response_model=SubscriptionOut,
        response_model_exclude_none=True,
    )
    async def add_subscription(body: SubscriptionIn, caller: Caller = manage) -> SubscriptionOut:
        if not _acts_for(caller, body.agency):
            raise Problem(403, "an agency subscribes for itself only")
        # A 422 naming the rule only (never the URL, its host or an address); checked again at delivery.
        if refusal := await egress.refusal(str(body.url)):
            raise Problem(422, refusal, errors=[FieldError(field="url", rule="destination")])
        generated = new_secret() if body.secret is None else None
        async with pool_of().acquire() as conn, conn.transaction():
            if not await subscriptions.agency_exists(conn, body.agency):
                raise Problem(422, "unknown agency", errors=[FieldError(field="agency", rule="known_agency")])
            record = await subscriptions.add_subscription(
                conn,
                agency=body.agency,
                event_type=body.event_type,
                filter=Filter(body.filter.region_prefix, body.filter.eligible_only),
                url=str(body.url),
                secret_encrypted=cipher_of().encrypt(body.secret or generated),
            )
        return _subscription_out(record, secret=generated)

    @router.get("/subscriptions", response_model=list[SubscriptionOut], response_model_exclude_none=True)
    async def list_subscriptions(
        agency: str | None = Query(None, pattern=AGENCY_CODE), active: bool | None = None, caller: Caller = follow,
    ) -> list[SubscriptionOut]:
        """An agency's system lists its own subscriptions whatever `agency` it names."""
        async with pool_of().acquire() as conn:
            found = await subscriptions.subscriptions(conn, agency=_agency_filter(caller, agency), active=active)
        return [_subscription_out(s) for s in found]

    @router.delete("/subscriptions/{subscription_id:uuid}", status_code=http.HTTP_204_NO_CONTENT)
    async def deactivate(subscription_id: UUID, caller: Caller = manage) -> Response:
        async with pool_of().acquire() as conn:
            await own_subscription(conn, caller, subscription_id)
            await subscriptions.deactivate(conn, subscription_id)
        return Response(status_code=http.HTTP_204_NO_CONTENT)

    @router.post("/subscriptions/{subscription_id:uuid}/redrive", response_model=RedriveOut)
    async def redrive(subscription_id: UUID, caller: Caller = manage) -> RedriveOut:
        """Retry the subscription's failed deliveries from scratch, e.g. once the agency is fixed."""
        async with pool_of().acquire() as conn, conn.transaction():
            await own_subscription(conn, caller, subscription_id)
            return RedriveOut(requeued=await deliveries.requeue_failed(conn, subscription_id))

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

    return router


def _acts_for(caller: Caller, agency: str) -> bool:
    """Admins and auditors act on any agency; an agency's system on its own only."""
    roles = caller.principal.roles
    return bool(roles & {Role.ADMIN, Role.AUDITOR}) or caller.principal.agency == agency


def _agency_filter(caller: Caller, asked: str | None) -> str | None:
    if caller.principal.roles & {Role.ADMIN, Role.AUDITOR}:
        return asked
    # An agency token without its agency claim sees nothing rather than everything.
    return caller.principal.agency or "-"
