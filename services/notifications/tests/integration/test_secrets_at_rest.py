"""Webhook signing secrets are stored encrypted, and survive a key rotation, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
import sys

import asyncpg
import pytest
from standardwebhooks import Webhook

from ejsika_notifications.crypto import SecretCipher, UndecryptableSecret, new_key
from ejsika_notifications.demo import MIGRATIONS
from ejsika_notifications.domain.agencies import EDUCATION, HEALTH
from ejsika_notifications.domain.subscriptions import SECRET_PREFIX, new_secret
from ejsika_notifications.rotate_secrets import rotate_secrets
from ejsika_notifications.store import subscriptions
from ejsika_notifications.store.secrets import rotate as rotate_signing_secret
from ejsika_runtime.db import create_pool, migrate

pytestmark = pytest.mark.infra

EDUCATION_AGENCY = {"code": "dinas-pendidikan", "name": "Dinas Pendidikan",
                    "profile": ["region_code", "eligible"]}


def traces_of(secret: str) -> list[bytes]:
    """The forms a leaked secret could take in a dump: as given, its key in base64, hex and raw."""
    key = base64.b64decode(secret[len(SECRET_PREFIX):])
    return [secret.encode(), secret[len(SECRET_PREFIX):].encode(), key.hex().encode(), key]


async def dump(db) -> bytes:
    """`SELECT * FROM subscriptions` as bytes, every column of every row (bytea raw and as text)."""
    rows = await db.pool.fetch("SELECT *, s::text AS whole_row FROM subscriptions s")
    return b"\n".join(
        value if isinstance(value, bytes) else str(value).encode() for row in rows for value in row.values()
    )


async def test_a_dump_of_the_subscriptions_does_not_hold_their_secrets(db, api_client):
    async with api_client() as client:
        assert (await client.post("/agencies", json=EDUCATION_AGENCY)).status_code == 201
        chosen = new_secret()
        given = await client.post("/subscriptions", json={
            "agency": "dinas-pendidikan", "event_type": "eligibility.assessed",
            "url": "https://opd.example/a", "secret": chosen})
        generated = await client.post("/subscriptions", json={
            "agency": "dinas-pendidikan", "event_type": "eligibility.assessed", "url": "https://opd.example/b"})
    assert given.status_code == generated.status_code == 201
    secrets = [chosen, generated.json()["secret"]]

    everything = await dump(db)
    for secret in secrets:
        assert not any(trace in everything for trace in traces_of(secret))
    stored = await db.pool.fetch("SELECT legacy_secret, secret_encrypted FROM subscriptions ORDER BY created_at")
    assert [r["legacy_secret"] for r in stored] == [None, None]
    assert [db.cipher.decrypt(r["secret_encrypted"]) for r in stored] == secrets


async def test_after_a_key_rotation_deliveries_still_verify(db, receivers, assessed):
    receiver = await receivers()
    old, new = new_key(), new_key()
    db.cipher = SecretCipher([old])
    subscription, secret = await db.subscribe(EDUCATION, receiver.url)
    before = await db.pool.fetchval("SELECT secret_encrypted FROM subscriptions")

    async with db.pool.acquire() as conn:
        assert await rotate_secrets(conn, SecretCipher([new, old])) == 1  # the new key prepended
    after = await db.pool.fetchval("SELECT secret_encrypted FROM subscriptions")
    assert after != before
    with pytest.raises(UndecryptableSecret):
        SecretCipher([old]).decrypt(after)

    event = assessed()
    await db.consume([event])
    await db.worker(cipher=SecretCipher([new])).drain_all()  # the old key dropped

    [request] = receiver.requests
    [item] = Webhook(secret).verify(request.body, request.headers)["notifications"]
    [row] = await db.deliveries(subscription)
    assert row["status"] == "delivered" and item["id"] == str(row["id"]) and row["event_id"] == event.id


async def test_a_secret_no_key_decrypts_fails_its_deliveries_with_a_clear_reason(db, receivers, assessed):
    receiver = await receivers()
    db.cipher = SecretCipher([new_key()])
    subscription, _ = await db.subscribe(EDUCATION, receiver.url)
    await db.consume([assessed()])

    await db.worker(cipher=SecretCipher([new_key()])).drain_all()  # its key was dropped too early

    [row] = await db.deliveries(subscription)
    assert (row["status"], row["last_error"]) == ("pending", "secret not decryptable with the configured keys")
    assert receiver.requests == []


def run_rotation(db, keys: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "EJSIKA_DATABASE_URL": db.url, "EJSIKA_SECRETS_KEYS": keys}
    return subprocess.run([sys.executable, "-m", "ejsika_notifications.rotate_secrets", "--schema", db.schema],
                          env=env, capture_output=True, text=True, timeout=120)


async def test_the_rotation_command_reencrypts_all_or_nothing(db):
    old, new = new_key(), new_key()
    db.cipher = SecretCipher([old])
    _, first = await db.subscribe(EDUCATION, "https://opd.example/a")
    _, second = await db.subscribe(EDUCATION, "https://opd.example/b")

    refused = await asyncio.to_thread(run_rotation, db, new)  # the old key dropped before rotating
    assert refused.returncode != 0 and "nothing was re-encrypted" in refused.stderr
    assert old not in refused.stderr + refused.stdout and new not in refused.stderr + refused.stdout
    unchanged = await db.pool.fetch("SELECT secret_encrypted FROM subscriptions ORDER BY created_at")
    assert [SecretCipher([old]).decrypt(r[0]) for r in unchanged] == [first, second]

    rotated = await asyncio.to_thread(run_rotation, db, f"{new},{old}")
    assert rotated.returncode == 0, rotated.stderr
    assert "re-encrypted 2 webhook secrets" in rotated.stdout
    stored = await db.pool.fetch("SELECT secret_encrypted FROM subscriptions ORDER BY created_at")
    assert [SecretCipher([new]).decrypt(r[0]) for r in stored] == [first, second]


async def test_secrets_stored_in_clear_before_migration_004_get_encrypted(db, tmp_path):
    schema = db.schema + "_legacy"
    earlier = tmp_path / "migrations"
    earlier.mkdir()
    for path in sorted(MIGRATIONS.glob("*.sql"))[:3]:  # 001 to 003: secrets in clear
        shutil.copy(path, earlier)
    secret = new_secret()
    pool = await create_pool(db.url, schema, size=2)  # migrate takes its own connection
    try:
        await migrate(pool, schema, earlier)
        async with pool.acquire() as conn:
            await subscriptions.add_agency(conn, EDUCATION)
            await conn.execute(
                "INSERT INTO subscriptions (agency, event_type, url, secret) VALUES ($1, $2, $3, $4)",
                EDUCATION.code, "eligibility.assessed", "https://opd.example/hooks", secret)

            await migrate(pool, schema, MIGRATIONS)  # 004 keeps the clear secret until a key encrypts it
            assert await conn.fetchval("SELECT legacy_secret FROM subscriptions") == secret
            assert await subscriptions.encrypt_legacy_secrets(conn, db.cipher) == 1  # as the start-up does
            assert await subscriptions.encrypt_legacy_secrets(conn, db.cipher) == 0
            row = await conn.fetchrow("SELECT legacy_secret, secret_encrypted FROM subscriptions")
            assert row["legacy_secret"] is None and db.cipher.decrypt(row["secret_encrypted"]) == secret
            with pytest.raises(asyncpg.CheckViolationError):  # never both, never neither
                await conn.execute("UPDATE subscriptions SET legacy_secret = 'whsec_x'")
    finally:
        await pool.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await pool.close()


async def test_a_key_rotation_keeps_a_rotated_out_secret_signing_until_its_grace_ends(db, receivers, assessed):
    receiver = await receivers()
    old, new = new_key(), new_key()
    db.cipher = SecretCipher([old])
    subscription, previous = await db.subscribe(EDUCATION, receiver.url)
    expired, _ = await db.subscribe(HEALTH, receiver.url)
    current = new_secret()
    async with db.pool.acquire() as conn:
        await rotate_signing_secret(conn, subscription, db.cipher.encrypt(current), grace_s=3600)
        await rotate_signing_secret(conn, expired, db.cipher.encrypt(new_secret()), grace_s=0)
        assert await rotate_secrets(conn, SecretCipher([new, old])) == 2  # the new key prepended

    stored = await db.pool.fetchrow("SELECT previous_secret_encrypted FROM subscriptions WHERE id = $1", subscription)
    assert SecretCipher([new]).decrypt(stored["previous_secret_encrypted"]) == previous, "re-encrypted, not lost"
    assert await db.pool.fetchval("SELECT previous_secret_encrypted FROM subscriptions WHERE id = $1", expired) is None, \
        "a secret past its grace is no longer kept"

    await db.consume([assessed()])
    await db.worker(cipher=SecretCipher([new])).drain_all()  # the old key dropped

    signed_twice = [r for r in receiver.requests if r.headers["webhook-signature"].count("v1,") == 2]
    assert len(signed_twice) == 1, "both secrets sign while the grace lasts (the expired one's does not)"
    [request] = signed_twice
    Webhook(previous).verify(request.body, request.headers)
    Webhook(current).verify(request.body, request.headers)
