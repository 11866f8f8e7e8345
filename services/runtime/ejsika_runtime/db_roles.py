"""One database role per service, owning its own schema and nothing else.

A service connects as `ejsika_<service>`: it owns the schema named after it (so its migrations
create, and it alone may use, the tables there) and has no right on any other schema: the
registry's NIKs are out of reach of monitoring's credentials, and the other way round. An
administrator's URL provisions them: `provision` (the embedded stack, the tests, and `ejsika
database roles` in compose) creates or updates the roles, gives each its schema, and returns each
service's URL: the administrator's, with the role and its password instead of the administrator.

Every service role is a member of `ejsika_services`, which pg_hba.conf rules may name
(`+ejsika_services`), as the embedded PostgreSQL does to ask them for their passwords.
"""

from __future__ import annotations

import json
import re
import secrets
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import asyncpg

from .db import connect

GROUP = "ejsika_services"
PREFIX = "ejsika_"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


def role_name(service: str, prefix: str = PREFIX) -> str:
    role = f"{prefix}{service}"
    if not (_NAME.match(service) and _NAME.match(role)):
        raise ValueError(f"not a service name for a database role: {service!r}")
    return role


def new_passwords(services: Iterable[str]) -> dict[str, str]:
    return {service: secrets.token_urlsafe(24) for service in services}


def stored_passwords(path: Path, services: Iterable[str]) -> dict[str, str]:
    """The services' passwords kept in `path` (mode 0600), made once: data and roles of a state
    dir outlive a run. A service not yet there gets a new one."""
    services = list(services)
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if missing := [s for s in services if s not in known]:
        known.update(new_passwords(missing))
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(json.dumps(known))
    return {service: known[service] for service in services}


def service_url(admin_url: str, role: str, password: str) -> str:
    """`admin_url` (host, port, database, options) as `role` with `password`."""
    parts = urlsplit(admin_url)
    host = parts.netloc.rpartition("@")[2]
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if k not in ("user", "password")])
    netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc, query=query))


async def provision(admin_url: str, passwords: Mapping[str, str], *, prefix: str = PREFIX) -> dict[str, str]:
    """Create (or update) the role of each service with its password, give it its schema in the
    database of `admin_url` and whatever that schema already holds; return each service's URL.

    Idempotent: run it at every start. Objects made before the roles (a state dir of an older
    version, or an operator's single URL) change owner to the service's role.
    """
    roles = {service: role_name(service, prefix) for service in passwords}
    conn = await connect(admin_url)
    try:
        async with conn.transaction():
            # Roles are the cluster's: two provisionings at once would race to create them.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", zlib.crc32(b"ejsika:database-roles"))
            await _ensure_role(conn, GROUP, None)
            for service, role in roles.items():
                await _ensure_role(conn, role, passwords[service])
                await conn.execute(f'GRANT "{GROUP}" TO "{role}"')
                await _give_schema(conn, service, role)
    finally:
        await conn.close()
    return {service: service_url(admin_url, role, passwords[service]) for service, role in roles.items()}


async def _ensure_role(conn: asyncpg.Connection, role: str, password: str | None) -> None:
    exists = await conn.fetchval("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", role)
    if password is None:
        options = "NOLOGIN"
    else:
        literal = await conn.fetchval("SELECT quote_literal($1)", password)
        options = f"LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD {literal}"
    await conn.execute(f'{"ALTER" if exists else "CREATE"} ROLE "{role}" {options}')


async def _give_schema(conn: asyncpg.Connection, schema: str, role: str) -> None:
    # Names are checked by role_name: safe inside the statements.
    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}" AUTHORIZATION "{role}"')
    await conn.execute(f'ALTER SCHEMA "{schema}" OWNER TO "{role}"')
    await conn.execute(f'REVOKE ALL ON SCHEMA "{schema}" FROM PUBLIC')
    await conn.execute(_REOWN.replace("{schema}", schema).replace("{role}", role))


# Tables (their indexes, triggers and column sequences follow), standalone sequences, routines
# and types of the schema that another role owns become the service role's.
_REOWN = """
DO $$
DECLARE
    item record;
BEGIN
    FOR item IN SELECT c.oid::regclass AS name FROM pg_class c
                WHERE c.relnamespace = '"{schema}"'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                  AND c.relowner <> '"{role}"'::regrole LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO "{role}"', item.name);
    END LOOP;
    FOR item IN SELECT c.oid::regclass AS name FROM pg_class c
                WHERE c.relnamespace = '"{schema}"'::regnamespace AND c.relkind = 'S'
                  AND c.relowner <> '"{role}"'::regrole
                  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                  AND d.objid = c.oid AND d.deptype IN ('a', 'i')) LOOP
        EXECUTE format('ALTER SEQUENCE %s OWNER TO "{role}"', item.name);
    END LOOP;
    FOR item IN SELECT p.oid::regprocedure AS name FROM pg_proc p
                WHERE p.pronamespace = '"{schema}"'::regnamespace AND p.proowner <> '"{role}"'::regrole LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO "{role}"', item.name);
    END LOOP;
    FOR item IN SELECT t.oid::regtype AS name FROM pg_type t
                WHERE t.typnamespace = '"{schema}"'::regnamespace AND t.typtype IN ('e', 'd', 'r')
                  AND t.typowner <> '"{role}"'::regrole LOOP
        EXECUTE format('ALTER TYPE %s OWNER TO "{role}"', item.name);
    END LOOP;
END
$$
"""
