"""The asyncpg pool of a service, confined to the service's own schema, and its migrations.

Every connection the runtime makes goes through `connect` or `create_pool`, under a
`ConnectionPolicy`: a command timeout, so a statement on a half-open connection (the server or the
network gone without a word) fails instead of hanging a batch or the relay; TCP keepalives on the
client's socket, so such a connection is noticed while idle; and the same keepalives plus an
idle-in-transaction timeout asked of PostgreSQL for the session, so the server ends a vanished
client's session and releases its locks (the relay's leader lock, a batch's row locks).
"""

from __future__ import annotations

import logging
import socket
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

RUNTIME_MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)

# Statements of migrations may rightly run long (an index on a big table), and a replica waits for
# another's migrations to finish: they get this instead of the command timeout.
MIGRATION_TIMEOUT_S = 24 * 3600.0


@dataclass(frozen=True)
class ConnectionPolicy:
    """How long a statement may take, and how soon a silent peer is given up, on each end."""

    command_timeout_s: float = 60.0
    keepalives_idle_s: int = 30
    keepalives_interval_s: int = 10
    keepalives_count: int = 3
    idle_in_transaction_timeout_s: float = 60.0  # 0: the server's own setting

    @classmethod
    def of(cls, settings: Any) -> ConnectionPolicy:
        """The policy of a service's `Settings` (EJSIKA_DB_*)."""
        return cls(
            command_timeout_s=settings.db_command_timeout_s,
            keepalives_idle_s=settings.db_keepalives_idle_s,
            keepalives_interval_s=settings.db_keepalives_interval_s,
            keepalives_count=settings.db_keepalives_count,
            idle_in_transaction_timeout_s=settings.db_idle_in_transaction_timeout_s,
        )

    @property
    def dead_peer_s(self) -> int:
        """Seconds of silence after which a peer is given up: keepalives, or unacknowledged data."""
        return self.keepalives_idle_s + self.keepalives_interval_s * self.keepalives_count

    def server_settings(self) -> dict[str, str]:
        """The session's settings asked of PostgreSQL (each may be set by any user)."""
        settings = {
            "tcp_keepalives_idle": str(self.keepalives_idle_s),
            "tcp_keepalives_interval": str(self.keepalives_interval_s),
            "tcp_keepalives_count": str(self.keepalives_count),
            "tcp_user_timeout": str(self.dead_peer_s * 1000),
        }
        if self.idle_in_transaction_timeout_s > 0:
            settings["idle_in_transaction_session_timeout"] = str(int(self.idle_in_transaction_timeout_s * 1000))
        return settings

    def connect_options(self, server_settings: dict[str, str] | None = None) -> dict[str, Any]:
        """Keyword arguments of asyncpg.connect / create_pool."""
        return {"command_timeout": self.command_timeout_s,
                "server_settings": {**self.server_settings(), **(server_settings or {})}}

    def keep_alive(self, conn: asyncpg.Connection) -> None:
        """Turn TCP keepalives (and a user timeout for unacknowledged data) on for the client's socket.

        asyncpg has no option for them: the socket is its transport's. A Unix socket needs none.
        """
        sock = conn._transport.get_extra_info("socket") if conn._transport is not None else None  # noqa: SLF001
        if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in (("TCP_KEEPIDLE", self.keepalives_idle_s), ("TCP_KEEPINTVL", self.keepalives_interval_s),
                              ("TCP_KEEPCNT", self.keepalives_count), ("TCP_USER_TIMEOUT", self.dead_peer_s * 1000)):
            if hasattr(socket, option):  # Linux has all four; other systems some
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


DEFAULT_POLICY = ConnectionPolicy()


async def connect(database_url: str, *, policy: ConnectionPolicy = DEFAULT_POLICY,
                  server_settings: dict[str, str] | None = None) -> asyncpg.Connection:
    """One connection outside the pool (a relay's leader, a listener), under `policy`."""
    conn = await asyncpg.connect(database_url, **policy.connect_options(server_settings))
    try:
        policy.keep_alive(conn)
    except BaseException:
        await conn.close()
        raise
    return conn


async def create_pool(database_url: str, schema: str, *, size: int = 10,
                      policy: ConnectionPolicy = DEFAULT_POLICY) -> asyncpg.Pool:
    await ensure_schema(database_url, schema, policy=policy)

    async def init(conn: asyncpg.Connection) -> None:
        policy.keep_alive(conn)

    return await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=size,
        reset=_keep_session,
        init=init,
        **policy.connect_options({"search_path": schema, "application_name": f"ejsika-{schema}"}),
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """No reset on release: pooled connections keep no session state (no SET, LISTEN or held
    advisory lock; transactions close with their block), and the default reset is one more
    round trip for every batch."""


async def ensure_schema(database_url: str, schema: str, *, policy: ConnectionPolicy = DEFAULT_POLICY) -> None:
    """Create the schema unless it exists (made by an administrator for the service's own role,
    which may not create schemas: see ejsika_runtime.db_roles)."""
    conn = await connect(database_url, policy=policy)
    try:
        if not await conn.fetchval("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", schema):
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
        await conn.execute("SELECT pg_advisory_lock($1)", lock, timeout=MIGRATION_TIMEOUT_S)
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
                    await conn.execute(path.read_text(), timeout=MIGRATION_TIMEOUT_S)
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
                applied.append(version)
                log.info("applied migration %s", version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock)
    return applied
