"""Agencies and subscriptions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from ..crypto import SecretCipher, UndecryptableSecret
from ..domain.agencies import Agency
from ..domain.subscriptions import Filter, Subscription


@dataclass(frozen=True)
class SubscriptionRecord:
    """A subscription as stored, without its secret."""

    id: UUID
    agency: str
    event_type: str
    filter: Filter
    url: str | None
    active: bool
    created_at: datetime
    frequency: str = "immediate"
    ready_made: str | None = None
    disabled_reason: str | None = None  # why delivery stopped, when the platform stopped it (410 Gone)


_RECORD_COLUMNS = ("id, agency, event_type, region_prefix, eligible_only, criteria, frequency, ready_made, url,"
                   " active, created_at, disabled_reason")


def filter_of(row: asyncpg.Record) -> Filter:
    criteria = row["criteria"]
    criteria = json.loads(criteria) if isinstance(criteria, str) else (criteria or {})
    return Filter.from_json({**criteria, "region_prefix": row["region_prefix"], "eligible_only": row["eligible_only"]})


def criteria_of(filter: Filter) -> str:
    """The criteria kept in the `criteria` column: all but the two with columns of their own."""
    criteria = filter.as_json()
    del criteria["region_prefix"], criteria["eligible_only"]
    return json.dumps(criteria)


def _record(row: asyncpg.Record) -> SubscriptionRecord:
    return SubscriptionRecord(
        id=row["id"],
        agency=row["agency"],
        event_type=row["event_type"],
        filter=filter_of(row),
        url=row["url"],
        active=row["active"],
        created_at=row["created_at"],
        frequency=row["frequency"],
        ready_made=row["ready_made"],
        disabled_reason=row["disabled_reason"],
    )


async def add_agency(conn: asyncpg.Connection, agency: Agency) -> bool:
    """Add `agency`; False if one with its code exists already (it is left unchanged)."""
    added = await conn.fetchval(
        "INSERT INTO agencies (code, name, profile) VALUES ($1, $2, $3)"
        " ON CONFLICT (code) DO NOTHING RETURNING true",
        agency.code, agency.name, sorted(agency.profile),
    )
    return bool(added)


async def agencies(conn: asyncpg.Connection) -> list[Agency]:
    rows = await conn.fetch("SELECT code, name, profile FROM agencies ORDER BY code")
    return [Agency(r["code"], r["name"], frozenset(r["profile"])) for r in rows]


async def agency_exists(conn: asyncpg.Connection, code: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM agencies WHERE code = $1", code))


async def add_subscription(
    conn: asyncpg.Connection, *, agency: str, event_type: str, filter: Filter, url: str | None,
    secret_encrypted: bytes, frequency: str = "immediate", ready_made: str | None = None,
) -> SubscriptionRecord:
    """Add a subscription; its signing secret comes encrypted (`SecretCipher.encrypt`). Without a
    URL it is read from the pull feed (channel `feed`)."""
    row = await conn.fetchrow(
        "INSERT INTO subscriptions (agency, event_type, region_prefix, eligible_only, criteria, frequency,"
        " ready_made, url, secret_encrypted, channel)"
        f" VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10) RETURNING {_RECORD_COLUMNS}",
        agency, event_type, filter.region_prefix, filter.eligible_only, criteria_of(filter), frequency, ready_made,
        url, secret_encrypted, "webhook" if url is not None else "feed",
    )
    return _record(row)


async def set_secret(conn: asyncpg.Connection, subscription_id: UUID, secret_encrypted: bytes) -> None:
    await conn.execute(
        "UPDATE subscriptions SET secret_encrypted = $2, legacy_secret = NULL WHERE id = $1",
        subscription_id, secret_encrypted,
    )


async def encrypt_legacy_secrets(conn: asyncpg.Connection, cipher: SecretCipher) -> int:
    """Encrypt the clear secrets of rows written before migration 004; returns how many."""
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT id, legacy_secret FROM subscriptions WHERE legacy_secret IS NOT NULL FOR UPDATE"
        )
        await _set_secrets(conn, {r["id"]: cipher.encrypt(r["legacy_secret"]) for r in rows})
    return len(rows)


async def reencrypt_secrets(conn: asyncpg.Connection, cipher: SecretCipher) -> int:
    """Encrypt every stored secret again with the primary key (clear legacy ones too), in one
    transaction: if a secret cannot be decrypted, UndecryptableSecret and nothing changes.

    A rotated-out secret still signing beside the new one (`previous_secret_until` ahead) is
    re-encrypted too, or it would stop signing once the old key is dropped, before its grace ends;
    one past its grace is cleared, as nothing reads it any more. Returns how many subscriptions.
    """
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT id, legacy_secret, secret_encrypted,"
            " CASE WHEN previous_secret_until > now() THEN previous_secret_encrypted END AS previous"
            " FROM subscriptions FOR UPDATE")
        tokens, previous = {}, {}
        for row in rows:
            try:
                tokens[row["id"]] = (cipher.encrypt(row["legacy_secret"]) if row["secret_encrypted"] is None
                                     else cipher.rotate(row["secret_encrypted"]))
                if row["previous"] is not None:
                    previous[row["id"]] = cipher.rotate(row["previous"])
            except UndecryptableSecret as error:
                raise UndecryptableSecret(f"subscription {row['id']}: {error}; nothing was re-encrypted") from None
        await _set_secrets(conn, tokens)
        await conn.execute(
            "UPDATE subscriptions s SET previous_secret_encrypted ="
            " (SELECT p.token FROM unnest($1::uuid[], $2::bytea[]) AS p(id, token) WHERE p.id = s.id)"
            " WHERE s.previous_secret_encrypted IS NOT NULL",
            list(previous), list(previous.values()),
        )
    return len(rows)


async def _set_secrets(conn: asyncpg.Connection, tokens: dict[UUID, bytes]) -> None:
    if tokens:
        await conn.execute(
            "UPDATE subscriptions s SET secret_encrypted = t.token, legacy_secret = NULL"
            " FROM unnest($1::uuid[], $2::bytea[]) AS t(id, token) WHERE s.id = t.id",
            list(tokens), list(tokens.values()),
        )


async def subscriptions(
    conn: asyncpg.Connection, *, agency: str | None = None, active: bool | None = None
) -> list[SubscriptionRecord]:
    rows = await conn.fetch(
        f"SELECT {_RECORD_COLUMNS} FROM subscriptions"
        " WHERE ($1::text IS NULL OR agency = $1) AND ($2::boolean IS NULL OR active = $2)"
        " ORDER BY created_at, id",
        agency, active,
    )
    return [_record(r) for r in rows]


async def agency_of(conn: asyncpg.Connection, subscription_id: UUID) -> str | None:
    return await conn.fetchval("SELECT agency FROM subscriptions WHERE id = $1", subscription_id)


async def deactivate(conn: asyncpg.Connection, subscription_id: UUID) -> bool:
    """Stop matching and delivering for the subscription; False if there is no such subscription."""
    done = await conn.fetchval(
        "UPDATE subscriptions SET active = false WHERE id = $1 RETURNING true", subscription_id
    )
    return bool(done)


async def subscription(conn: asyncpg.Connection, subscription_id: UUID) -> SubscriptionRecord | None:
    row = await conn.fetchrow(f"SELECT {_RECORD_COLUMNS} FROM subscriptions WHERE id = $1", subscription_id)
    return _record(row) if row else None


async def reactivate(conn: asyncpg.Connection, subscription_id: UUID) -> SubscriptionRecord | None:
    """Deliver again to a subscription the platform disabled (its endpoint answered 410 Gone): active,
    its reason cleared. None, and nothing changed, unless the platform had disabled it: one its
    agency ended stays ended (the agency subscribes again)."""
    row = await conn.fetchrow(
        "UPDATE subscriptions SET active = true, disabled_reason = NULL"
        f" WHERE id = $1 AND NOT active AND disabled_reason IS NOT NULL RETURNING {_RECORD_COLUMNS}",
        subscription_id)
    return _record(row) if row else None


async def active_subscriptions(conn: asyncpg.Connection, event_types: Sequence[str]) -> list[Subscription]:
    """The active subscriptions to these event types, each with its agency's current profile."""
    rows = await conn.fetch(
        "SELECT s.id, s.agency, s.event_type, s.region_prefix, s.eligible_only, s.criteria, s.frequency, a.profile"
        " FROM subscriptions s JOIN agencies a ON a.code = s.agency"
        " WHERE s.active AND s.event_type = ANY($1::text[])",
        list(event_types),
    )
    return [
        Subscription(
            id=r["id"],
            agency=r["agency"],
            event_type=r["event_type"],
            filter=filter_of(r),
            profile=frozenset(r["profile"]),
            frequency=r["frequency"],
        )
        for r in rows
    ]


async def agency(conn: asyncpg.Connection, code: str) -> Agency | None:
    row = await conn.fetchrow("SELECT code, name, profile FROM agencies WHERE code = $1", code)
    return Agency(row["code"], row["name"], frozenset(row["profile"])) if row else None


async def ready_made_of(conn: asyncpg.Connection, agency: str) -> set[str]:
    """The ready-made subscriptions the agency already has, active."""
    rows = await conn.fetch(
        "SELECT DISTINCT ready_made FROM subscriptions WHERE agency = $1 AND active AND ready_made IS NOT NULL",
        agency)
    return {r["ready_made"] for r in rows}
