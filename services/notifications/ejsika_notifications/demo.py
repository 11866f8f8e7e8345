"""The demo subscription: the education office (dinas-pendidikan) hears of Banten's eligible families."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import asyncpg
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from ejsika_contracts import EligibilityAssessed
from ejsika_runtime.db import create_pool, migrate

from .domain.agencies import EDUCATION
from .domain.subscriptions import Filter, WebhookSecret, new_secret, secret_problem
from .settings import NotificationsSettings
from .store import subscriptions

DEMO_AGENCY = EDUCATION
# Education reserves school places for KPM children: it hears of eligible families, all of Banten.
DEMO_FILTER = Filter(region_prefix="36", eligible_only=True)
SCHEMA = "notifications"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class DemoSubscription:
    id: UUID
    url: str
    secret: str  # for the demo receiver to verify signatures


async def ensure_demo_subscription(
    url: str, *, secret: str | None = None, database_url: str | None = None, schema: str = SCHEMA
) -> DemoSubscription:
    """Make sure the demo subscription to `url` exists (idempotent); return it with its secret.

    Usable before the service has started: it creates the schema and applies the migrations.
    `database_url` defaults to `EJSIKA_DATABASE_URL`.
    """
    database_url = database_url or NotificationsSettings().database_url
    pool = await create_pool(database_url, schema, size=2)
    try:
        await migrate(pool, schema, MIGRATIONS)
        async with pool.acquire() as conn:
            return await ensure_demo_subscription_on(conn, url, secret=secret)
    finally:
        await pool.close()


async def ensure_demo_subscription_on(
    conn: asyncpg.Connection, url: str, *, secret: str | None = None
) -> DemoSubscription:
    """As `ensure_demo_subscription`, on a connection whose search_path is the service schema."""
    if secret is not None and (problem := secret_problem(secret)):
        raise ValueError(problem)
    async with conn.transaction():
        # Replicas starting together must not each create the subscription.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", zlib.crc32(b"notifications:demo"))
        await subscriptions.add_agency(conn, DEMO_AGENCY)
        row = await conn.fetchrow(
            "SELECT id, secret FROM subscriptions WHERE active AND agency = $1 AND event_type = $2"
            " AND region_prefix = $3 AND eligible_only = $4 AND url = $5 ORDER BY created_at LIMIT 1",
            DEMO_AGENCY.code, EligibilityAssessed.event_type, DEMO_FILTER.region_prefix,
            DEMO_FILTER.eligible_only, url,
        )
        if row is None:
            secret = secret or new_secret()
            record = await subscriptions.add_subscription(
                conn, agency=DEMO_AGENCY.code, event_type=EligibilityAssessed.event_type,
                filter=DEMO_FILTER, url=url, secret=secret,
            )
            return DemoSubscription(record.id, url, secret)
        if secret is not None and secret != row["secret"]:
            await conn.execute("UPDATE subscriptions SET secret = $2 WHERE id = $1", row["id"], secret)
            return DemoSubscription(row["id"], url, secret)
        return DemoSubscription(row["id"], url, row["secret"])



class DemoSubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: HttpUrl
    secret: WebhookSecret | None = None


class DemoSubscriptionOut(BaseModel):
    id: UUID
    url: str
    secret: str | None = Field(None, description="Only when the request gave none.")


def routes(pool_of: Callable[[], asyncpg.Pool]) -> APIRouter:
    """`POST /demo/subscription`, used by the demo launcher and the e2e tests."""
    router = APIRouter(tags=["demo"])

    @router.post("/demo/subscription", response_model=DemoSubscriptionOut, response_model_exclude_none=True)
    async def demo_subscription(body: DemoSubscriptionIn) -> DemoSubscriptionOut:
        async with pool_of().acquire() as conn:
            found = await ensure_demo_subscription_on(conn, str(body.url), secret=body.secret)
        return DemoSubscriptionOut(id=found.id, url=found.url, secret=None if body.secret else found.secret)

    return router
