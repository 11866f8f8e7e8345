"""One database role per service, owning only its schema (real PostgreSQL, a database of its own)."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

import ejsika_monitoring
from ejsika_runtime.db import create_pool, migrate
from ejsika_runtime.db_roles import new_passwords, provision, service_url

pytestmark = pytest.mark.infra

MONITORING_MIGRATIONS = Path(ejsika_monitoring.__file__).parent / "migrations"


async def admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
async def database(database_url):
    """A fresh database (so its schemas `registry` and `monitoring` are this test's), and role names
    of this test (roles are the server's), dropped afterwards."""
    name, prefix = f"roles_{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:6]}_"
    await admin(database_url, f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    yield url, prefix
    await admin(database_url, f'DROP DATABASE "{name}" WITH (FORCE)',
                *(f'DROP ROLE IF EXISTS "{prefix}{s}"' for s in ("registry", "monitoring")))


async def test_a_service_cannot_read_another_services_tables(database):
    url, prefix = database
    urls = await provision(url, new_passwords(["registry", "monitoring"]), prefix=prefix)
    # Each service creates its tables as itself, as it does at start.
    registry = await create_pool(urls["registry"], "registry", size=2)
    monitoring = await create_pool(urls["monitoring"], "monitoring", size=2)
    try:
        await registry.execute("CREATE TABLE members (nik text)")
        await registry.execute("INSERT INTO members VALUES ('3601011203800001')")
        await migrate(monitoring, "monitoring", MONITORING_MIGRATIONS)

        assert await registry.fetchval("SELECT count(*) FROM registry.members") == 1
        assert await monitoring.fetchval("SELECT count(*) FROM monitoring.visits") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await registry.fetch("SELECT * FROM monitoring.visits")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await monitoring.fetch("SELECT * FROM registry.members")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await monitoring.execute('CREATE SCHEMA "elsewhere"')
        owners = await registry.fetch(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname IN ('registry', 'monitoring')"
            " ORDER BY 1")
        assert [r["tableowner"] for r in owners] == [f"{prefix}monitoring", f"{prefix}registry"]
    finally:
        await registry.close()
        await monitoring.close()


async def test_what_a_schema_held_before_its_role_existed_becomes_the_roles(database):
    url, prefix = database
    # a state dir from before the roles: every object made by the administrator
    await admin(url, "CREATE SCHEMA monitoring", "CREATE TABLE monitoring.visits (id bigserial PRIMARY KEY, n int)",
                "CREATE SEQUENCE monitoring.numbers",
                "CREATE FUNCTION monitoring.wake() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'",
                "CREATE TRIGGER woken AFTER INSERT ON monitoring.visits"
                " FOR EACH ROW EXECUTE FUNCTION monitoring.wake()",
                "CREATE TYPE monitoring.kind AS ENUM ('first_visit')")
    passwords = new_passwords(["monitoring"])
    await provision(url, passwords, prefix=prefix)
    urls = await provision(url, passwords, prefix=prefix)  # idempotent: every start runs it
    conn = await asyncpg.connect(urls["monitoring"], server_settings={"search_path": "monitoring"})
    try:
        await conn.execute("INSERT INTO visits (n) VALUES (nextval('numbers'))")
        await conn.execute("ALTER TABLE visits ADD COLUMN kind kind")  # as its migrations would
        await conn.execute("DROP FUNCTION wake() CASCADE")
    finally:
        await conn.close()


async def test_a_role_logs_in_with_its_password_only(database, infrastructure):
    if not infrastructure.owns_database:
        pytest.skip("the server of EJSIKA_DATABASE_URL has its own authentication rules")
    url, prefix = database
    urls = await provision(url, new_passwords(["registry"]), prefix=prefix)
    conn = await asyncpg.connect(urls["registry"])
    await conn.close()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(service_url(url, f"{prefix}registry", "not-its-password"))


def test_a_service_url_is_the_administrators_with_the_role_instead():
    url = service_url("postgresql://postgres:secret@db.example:5433/ejsika?sslmode=require&user=postgres",
                      "ejsika_registry", "p@ss/word")
    assert url == "postgresql://ejsika_registry:p%40ss%2Fword@db.example:5433/ejsika?sslmode=require"


def test_ejsika_database_roles_provisions_from_the_environment(database_url, service_database_urls, monkeypatch,
                                                               capsys):
    """What compose's one-shot `database-roles` runs, as the administrator, before the services."""
    import asyncio

    from ejsika_runtime import cli

    name = f"roles_{uuid.uuid4().hex[:8]}"
    asyncio.run(admin(database_url, f'CREATE DATABASE "{name}"'))
    url = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    try:
        # the session's roles and passwords (the platform's), given again: the command is idempotent
        password = urlsplit(service_database_urls["registry"]).password
        monkeypatch.setenv("EJSIKA_DATABASE_URL", url)
        monkeypatch.delenv("EJSIKA_DATABASE_PASSWORD_REGISTRY", raising=False)
        with pytest.raises(SystemExit, match="EJSIKA_DATABASE_PASSWORD_REGISTRY"):
            cli.main(["database", "roles", "registry"])
        monkeypatch.setenv("EJSIKA_DATABASE_PASSWORD_REGISTRY", password)
        cli.main(["database", "roles", "registry"])
        assert "role ejsika_registry owns schema registry" in capsys.readouterr().out
        owner = asyncio.run(_schema_owner(service_url(url, "ejsika_registry", password), "registry"))
        assert owner == "ejsika_registry"
    finally:
        asyncio.run(admin(database_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


async def _schema_owner(url: str, schema: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", schema)
    finally:
        await conn.close()
