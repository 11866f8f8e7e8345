"""HTTP API for operators: agencies, subscriptions and the state of deliveries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Query, Response
from fastapi import status as http
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StrictBool, StrictInt, field_validator

from ejsika_contracts.events.household import EnrolmentStatus
from ejsika_contracts.events.monitoring import EscalationKind
from ejsika_contracts.values import ProgrammeCode

from ejsika_runtime.access import Access, Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.problems import FieldError, Problem, documented

from .crypto import SecretCipher
from . import ready_made
from .domain.agencies import AGENCY_CODE, COMMITMENT_GRANTS, FAMILY_FIELDS, MEMBER_PATHS, Agency
from .domain.families import SchoolLevel
from .domain.subscriptions import (
    EVENT_TYPES,
    KNOWN_FIELDS,
    Filter,
    Frequency,
    fact_paths,
    filter_problems,
    new_secret,
    region_prefix_problem,
    WebhookSecret,
)
from .egress import Egress
from .store import subscriptions


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgencyIn(_Strict):
    code: str = Field(pattern=AGENCY_CODE, examples=["dinas-pendidikan"])
    name: str = Field(min_length=1, max_length=200)
    profile: list[str] = Field(
        min_length=1,
        description="The exact fields of a family and its members the agency may receive, as dotted paths"
        " of the payload: region_code, members.nik, members.name, kind, member_counts.toddlers, ... and"
        " compliance.<commitment> to hear of a commitment's verification or escalation at all"
        " (GET /event-types lists them all).",
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


class MemberAgeIn(_Strict):
    min: StrictInt | None = Field(None, description="Years, included.")
    max: StrictInt | None = Field(None, description="Years, included.")


class FilterIn(_Strict):
    """Every criterion given must hold (DCI's subscribe filter, as named criteria)."""

    region_prefix: str = Field("", description="Kemendagri code prefix, e.g. 36 (Banten) or 3672 (Cilegon).")
    eligible_only: StrictBool = False  # JSON true/false only: 0, 1 or "true" are refused
    programmes: list[ProgrammeCode] = Field([], max_length=10, description="The family's programme is one of these.")
    enrolment_statuses: list[EnrolmentStatus] = Field([], description="e.g. [\"active\"]: KPM only.")
    member_age: MemberAgeIn | None = Field(
        None, description="Only the members of this age (on the notice's day) are sent; a family without one"
        " is not told of.")
    school_levels: list[SchoolLevel] = Field([], description="As member_age, by the level a pupil attends.")
    escalation_kinds: list[EscalationKind] = Field([], description="compliance.escalated only.")

    def as_filter(self) -> Filter:
        age = self.member_age or MemberAgeIn()
        return Filter(self.region_prefix, self.eligible_only, tuple(self.programmes), tuple(self.enrolment_statuses),
                      age.min, age.max, tuple(self.school_levels), tuple(self.escalation_kinds))

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
    frequency: Frequency = Field("immediate", description="immediate, or daily_digest: a day's notifications"
                                 " together, the day after.")

    @field_validator("event_type")
    @classmethod
    def _event_type(cls, event_type: str) -> str:
        if event_type not in EVENT_TYPES:
            raise ValueError(f"not a subscribable event type; one of {sorted(EVENT_TYPES)}")
        return event_type


# Left out when None (the routes answer with response_model_exclude_none), so optional in the schema.
class MemberAgeOut(BaseModel):
    min: int | None = None
    max: int | None = None


class FilterOut(BaseModel):
    region_prefix: str
    eligible_only: bool
    programmes: list[str]
    enrolment_statuses: list[str]
    member_age: MemberAgeOut | None = None
    school_levels: list[str]
    escalation_kinds: list[str]

    @classmethod
    def of(cls, filter: Filter) -> FilterOut:
        age = (None if filter.member_age_min is None and filter.member_age_max is None
               else MemberAgeOut(min=filter.member_age_min, max=filter.member_age_max))
        return cls(region_prefix=filter.region_prefix, eligible_only=filter.eligible_only,
                   programmes=list(filter.programmes), enrolment_statuses=list(filter.enrolment_statuses),
                   member_age=age, school_levels=list(filter.school_levels),
                   escalation_kinds=list(filter.escalation_kinds))


class SubscriptionOut(BaseModel):
    id: UUID
    agency: str
    event_type: str
    filter: FilterOut
    frequency: str
    ready_made: str | None = Field(None, description="The ready-made subscription it was made from, if any.")
    url: str | None = Field(None, description="Where its webhooks go; none for a subscription read from the feed.")
    active: bool
    disabled_reason: str | None = Field(None, description="Why delivery stopped, when the platform stopped it"
                                        " (e.g. the endpoint answered 410 Gone).")
    created_at: datetime
    secret: str | None = Field(None, description="Only in the answer that generated it.")


def _subscription_out(record: subscriptions.SubscriptionRecord, secret: str | None = None) -> SubscriptionOut:
    return SubscriptionOut(
        id=record.id,
        agency=record.agency,
        event_type=record.event_type,
        filter=FilterOut.of(record.filter),
        frequency=record.frequency,
        ready_made=record.ready_made,
        url=record.url,
        active=record.active,
        disabled_reason=record.disabled_reason,
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
    catalogue = access.allow(Role.ADMIN, Role.AUDITOR, Role.AGENCY, purpose="choosing what an agency subscribes to",
                             hidden_from=())

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
        filter = body.filter.as_filter()
        if problems := filter_problems(body.event_type, filter):
            raise Problem(422, "the filter breaks the rules listed in errors",
                          errors=[FieldError(field=f, rule=r, reason=why) for f, r, why in problems])
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
                filter=filter,
                url=str(body.url),
                secret_encrypted=cipher_of().encrypt(body.secret or generated),
                frequency=body.frequency,
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

    @router.post("/subscriptions/{subscription_id:uuid}/reactivation", response_model=SubscriptionOut,
                 response_model_exclude_none=True,
                 responses={409: documented("The subscription was ended by its agency or an admin, not disabled"
                                            " by the platform: subscribe again")})
    async def reactivate(subscription_id: UUID, caller: Caller = manage) -> SubscriptionOut:
        """Deliver again to a subscription the platform disabled when its endpoint answered 410 Gone,
        once the agency says the endpoint is back. What failed with it stays failed until the agency
        asks for it (POST /subscriptions/{id}/redrive): it may not want a backlog. An active
        subscription is answered as it is, unchanged."""
        async with pool_of().acquire() as conn, conn.transaction():
            await own_subscription(conn, caller, subscription_id)
            record = (await subscriptions.reactivate(conn, subscription_id)
                      or await subscriptions.subscription(conn, subscription_id))
        if record is None or not record.active:  # None: removed since, which the schema does not allow
            raise Problem(http.HTTP_409_CONFLICT, "the subscription was ended by its agency or an admin, not"
                          " disabled by the platform: subscribe again")
        return _subscription_out(record)

    @router.get("/event-types", response_model=list[EventTypeOut])
    async def event_types(caller: Caller = catalogue) -> list[EventTypeOut]:
        """What can be subscribed to, and the fields of each that a data profile may name (beside the
        family's and its members', which every event type can carry)."""
        return [EventTypeOut(event_type=t, fields=sorted(fact_paths(t)),
                             family_fields=sorted(FAMILY_FIELDS | MEMBER_PATHS | COMMITMENT_GRANTS))
                for t in EVENT_TYPES]

    @router.get("/ready-made", response_model=list[ReadyMadeAgencyOut])
    async def list_ready_made(caller: Caller = catalogue) -> list[ReadyMadeAgencyOut]:
        """The ready-made subscriptions an admin may load for an agency, with its profile."""
        return [_ready_made_out(c) for c in ready_made.configurations().values()]

    @router.post("/agencies/{code}/ready-made", status_code=http.HTTP_201_CREATED,
                 response_model=list[SubscriptionOut], response_model_exclude_none=True,
                 responses={404: documented("No ready-made configuration for this agency")})
    async def load_ready_made(code: str, body: ReadyMadeIn, caller: Caller = manage_agencies) -> list[SubscriptionOut]:
        """Create the agency (with its ready-made profile) if it is not there, and those of its
        ready-made subscriptions it does not have yet (all, or the ones named), to one URL (or to the
        pull feed without one) with one secret, answered once when generated. Loading again adds
        nothing: the answer lists what was created."""
        configuration = ready_made.configurations().get(code)
        if configuration is None:
            raise Problem(404, "no ready-made configuration for this agency")
        known = {r.name for r in configuration.subscriptions}
        if body.names is not None and (unknown := [i for i, n in enumerate(body.names) if n not in known]):
            raise Problem(422, "unknown ready-made subscriptions", errors=[
                FieldError(field=f"names[{i}]", rule="ready_made", reason=f"one of {', '.join(sorted(known))}")
                for i in unknown])
        url = str(body.url) if body.url is not None else None
        if url is not None and (refusal := await egress.refusal(url)):
            raise Problem(422, refusal, errors=[FieldError(field="url", rule="destination")])
        generated = new_secret() if body.secret is None else None
        created = []
        async with pool_of().acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ready-made:' || $1))", code)
            await subscriptions.add_agency(conn, configuration.agency)
            loaded = await subscriptions.ready_made_of(conn, code)
            for item in configuration.named(body.names):
                if item.name in loaded:
                    continue
                created.append(await subscriptions.add_subscription(
                    conn, agency=code, event_type=item.event_type, filter=item.filter, url=url,
                    secret_encrypted=cipher_of().encrypt(body.secret or generated), frequency=item.frequency,
                    ready_made=item.name))
        return [_subscription_out(r, secret=generated) for r in created]

    return router


class EventTypeOut(BaseModel):
    event_type: str
    fields: list[str] = Field(description="The event's own fields a profile may name (dotted paths).")
    family_fields: list[str] = Field(description="The family's and members' fields, and the commitment grants.")


class ReadyMadeIn(_Strict):
    url: HttpUrl | None = Field(None, description="Where to POST; none: the agency reads its pull feed.")
    secret: WebhookSecret | None = None
    names: list[str] | None = Field(None, min_length=1, description="Only these ready-made subscriptions.")


class ReadyMadeOut(BaseModel):
    name: str
    description: str
    event_type: str | None
    filter: FilterOut | None
    frequency: str | None
    unavailable: str | None = Field(None, description="Why it cannot be made yet, if so.")


class ReadyMadeAgencyOut(BaseModel):
    agency: AgencyOut
    subscriptions: list[ReadyMadeOut]


def _ready_made_out(configuration: ready_made.Configuration) -> ReadyMadeAgencyOut:
    agency = configuration.agency
    return ReadyMadeAgencyOut(
        agency=AgencyOut(code=agency.code, name=agency.name, profile=sorted(agency.profile)),
        subscriptions=[ReadyMadeOut(
            name=r.name, description=r.description, event_type=r.event_type,
            filter=None if r.unavailable else FilterOut.of(r.filter),
            frequency=None if r.unavailable else r.frequency, unavailable=r.unavailable)
            for r in configuration.subscriptions])


def _acts_for(caller: Caller, agency: str) -> bool:
    """Admins and auditors act on any agency; an agency's system on its own only."""
    roles = caller.principal.roles
    return bool(roles & {Role.ADMIN, Role.AUDITOR}) or caller.principal.agency == agency


def _agency_filter(caller: Caller, asked: str | None) -> str | None:
    if caller.principal.roles & {Role.ADMIN, Role.AUDITOR}:
        return asked
    # An agency token without its agency claim sees nothing rather than everything.
    return caller.principal.agency or "-"
