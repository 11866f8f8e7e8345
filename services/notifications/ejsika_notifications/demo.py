"""The demo subscriptions: the education office (dinas-pendidikan) hears of Banten's eligible families,
and the education and health offices get their ready-made subscriptions (ready_made/*.json), all
to the demo receiver with one secret."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import asyncpg

from ejsika_contracts import EligibilityAssessed
from ejsika_runtime.db import create_pool, migrate

from . import ready_made
from .crypto import SecretCipher, UndecryptableSecret
from .domain.agencies import EDUCATION
from .domain.subscriptions import Filter, new_secret, secret_problem
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
    url: str, *, secret: str | None = None, database_url: str | None = None, schema: str = SCHEMA,
    cipher: SecretCipher | None = None,
) -> DemoSubscription:
    """Make sure the demo subscription to `url` exists (idempotent); return it with its secret.

    Usable before the service has started: it creates the schema and applies the migrations.
    `database_url` and `cipher` default to those of the `EJSIKA_*` settings.
    """
    if database_url is None or cipher is None:
        settings = NotificationsSettings()
        database_url = database_url or settings.database_url
        cipher = cipher or settings.secrets_cipher()
    pool = await create_pool(database_url, schema, size=2)
    try:
        await migrate(pool, schema, MIGRATIONS)
        async with pool.acquire() as conn:
            return await ensure_demo_subscription_on(conn, url, cipher=cipher, secret=secret)
    finally:
        await pool.close()


async def ensure_demo_subscription_on(
    conn: asyncpg.Connection, url: str, *, cipher: SecretCipher, secret: str | None = None
) -> DemoSubscription:
    """As `ensure_demo_subscription`, on a connection whose search_path is the service schema."""
    if secret is not None and (problem := secret_problem(secret)):
        raise ValueError(problem)
    async with conn.transaction():
        # Replicas starting together must not each create the subscription.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", zlib.crc32(b"notifications:demo"))
        await subscriptions.encrypt_legacy_secrets(conn, cipher)
        await subscriptions.add_agency(conn, DEMO_AGENCY)
        row = await conn.fetchrow(
            "SELECT id, secret_encrypted FROM subscriptions WHERE active AND agency = $1 AND event_type = $2"
            " AND region_prefix = $3 AND eligible_only = $4 AND url = $5 ORDER BY created_at LIMIT 1",
            DEMO_AGENCY.code, EligibilityAssessed.event_type, DEMO_FILTER.region_prefix,
            DEMO_FILTER.eligible_only, url,
        )
        if row is None:
            secret = secret or new_secret()
            record = await subscriptions.add_subscription(
                conn, agency=DEMO_AGENCY.code, event_type=EligibilityAssessed.event_type,
                filter=DEMO_FILTER, url=url, secret_encrypted=cipher.encrypt(secret),
            )
            made = DemoSubscription(record.id, url, secret)
        else:
            try:
                stored = cipher.decrypt(row["secret_encrypted"])
            except UndecryptableSecret:  # the demo's state outlived its keys: give it a new secret
                stored = None
            if stored is None or (secret is not None and secret != stored):
                secret = secret or new_secret()
                await subscriptions.set_secret(conn, row["id"], cipher.encrypt(secret))
                made = DemoSubscription(row["id"], url, secret)
            else:
                made = DemoSubscription(row["id"], url, stored)
        await ensure_ready_made_on(conn, url, cipher=cipher, secret=made.secret)
        return made


async def ensure_ready_made_on(conn: asyncpg.Connection, url: str, *, cipher: SecretCipher, secret: str) -> int:
    """Every demo agency with its ready-made subscriptions to `url`, signed with `secret`; returns
    how many were created (none when they exist: their secret is brought up to date)."""
    token = cipher.encrypt(secret)
    await conn.execute("UPDATE subscriptions SET secret_encrypted = $1, legacy_secret = NULL"
                       " WHERE active AND ready_made IS NOT NULL AND url = $2", token, url)
    created = 0
    for configuration in ready_made.configurations().values():
        await subscriptions.add_agency(conn, configuration.agency)
        loaded = await subscriptions.ready_made_of(conn, configuration.agency.code)
        for item in configuration.named(None):
            if item.name not in loaded:
                await subscriptions.add_subscription(
                    conn, agency=configuration.agency.code, event_type=item.event_type, filter=item.filter,
                    url=url, secret_encrypted=token, frequency=item.frequency, ready_made=item.name)
                created += 1
    return created
