"""The asyncpg pool of a service, confined to the service's own schema, and its migrations."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import asyncpg

RUNTIME_MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


async def create_pool(database_url: str, schema: str, *, size: int = 10) -> asyncpg.Pool:
    await ensure_schema(database_url, schema)
    return await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=size,
        server_settings={"search_path": schema, "application_name": f"ejsika-{schema}"},
        reset=_keep_session,
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """No reset on release: pooled connections keep no session state (no SET, LISTEN or held
    advisory lock; transactions close with their block), and the default reset is one more
    round trip for every batch."""


async def ensure_schema(database_url: str, schema: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    except asyncpg.UniqueViolationError:
        pass  # two replicas creating it at once: the other one won
    finally:
        await conn.close()


def migration_files(directory: Path, prefix: str) -> list[tuple[str, Path]]:
    return [(f"{prefix}/{path.stem}", path) for path in sorted(directory.glob("*.sql"))]


async def migrate(pool: asyncpg.Pool, schema: str, service_migrations: Path) -> list[str]:
    """Apply the runtime's and the service's plain-SQL migrations not yet applied, in order.

    Replicas starting together serialise on an advisory lock keyed by the schema, so each file
    runs once; each file runs in its own transaction with its version row.
    """
    files = migration_files(RUNTIME_MIGRATIONS, "runtime") + migration_files(service_migrations, schema)
    applied: list[str] = []
    async with pool.acquire() as conn:
        lock = zlib.crc32(f"migrate:{schema}".encode())
        await conn.execute("SELECT pg_advisory_lock($1)", lock)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, path in files:
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
                applied.append(version)
                log.info("applied migration %s", version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock)
    return applied
