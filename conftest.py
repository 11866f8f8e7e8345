"""Real infrastructure for the integration and e2e tests, started once per test session.

PostgreSQL and Kafka come from EJSIKA_DATABASE_URL / EJSIKA_KAFKA_BOOTSTRAP when set; otherwise
an embedded PostgreSQL and a single-node Apache Kafka start in a fresh folder for this session.
Each session gets its own database, so runs never see each other's rows.

Keycloak (realm `ejsika` of deploy/keycloak/ejsika-realm.json) starts likewise unless
EJSIKA_AUTH_ISSUER names another provider; the tests then need that provider to hold the same
realm and EJSIKA_TEST_CREDENTIALS_FILE to name a JSON file of its secrets, shaped like the embedded
one's credentials.json: {"clients": {"<client id>": "<secret>"}, "users": {"<username>": "<password>"}}.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from ejsika_runtime.auth_tokens import fetch_token
from ejsika_runtime.db_roles import new_passwords, provision
from ejsika_runtime.embedded import EmbeddedStack, free_port
from ejsika_runtime.kafka import create_topics


@pytest.fixture(scope="session")
def infrastructure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    state = tmp_path_factory.mktemp("stack")
    os.chmod(state, 0o755)  # the embedded PostgreSQL runs as an unprivileged user when tests run as root
    os.chmod(state.parent, 0o755)
    stack = EmbeddedStack(Path(state), postgres_port=free_port(), kafka_port=free_port(),
                          kafka_controller_port=free_port(), keycloak_port=free_port(),
                          progress=lambda line: print(line, flush=True))
    with stack:
        yield stack


@pytest.fixture(scope="session")
def kafka_bootstrap(infrastructure: EmbeddedStack) -> str:
    asyncio.run(create_topics(infrastructure.kafka_bootstrap))
    return infrastructure.kafka_bootstrap


@pytest.fixture(scope="session")
def database_url(infrastructure: EmbeddedStack) -> Iterator[str]:
    name = f"ejsika_test_{uuid.uuid4().hex[:8]}"
    server = infrastructure.database_url

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def service_database_urls(database_url: str) -> dict[str, str]:
    """Each service's own URL into the session's database, as the launcher gives them: its own
    role (ejsika_<service>) owning only its schema. Tests read every schema through `database_url`."""
    from ejsika_runtime.demo.launcher import SERVICES

    return asyncio.run(provision(database_url, new_passwords(SERVICES)))


@pytest.fixture(scope="session")
def auth_issuer(infrastructure: EmbeddedStack) -> str:
    """The issuer of the session's tokens (`iss`), e.g. http://127.0.0.1:PORT/realms/ejsika."""
    return infrastructure.auth_issuer


PEOPLE_CLIENT = "ejsika-tests"  # the realm's client for people's tokens (password grant), tests only
_TOKEN_REUSE_S = 600  # the realm's tokens live 900 s


class Tokens:
    """Real access tokens of the session's provider, fetched once per user or client and reused."""

    def __init__(self, issuer: str, credentials: dict) -> None:
        self.issuer = issuer
        self.credentials = credentials
        self._cache: dict[tuple[str, str], tuple[float, str]] = {}

    def for_user(self, username: str) -> str:
        """A person's token (e.g. 'pendamping-demo', 'supervisor-cilegon'), via the client ejsika-tests."""
        password = self._secret("users", username)
        return self._cached(("user", username), lambda: fetch_token(
            self.issuer, PEOPLE_CLIENT, self._secret("clients", PEOPLE_CLIENT), username, password))

    def for_client(self, client_id: str) -> str:
        """A client's own token (client credentials), e.g. 'agency-dinas-pendidikan'."""
        secret = self._secret("clients", client_id)
        return self._cached(("client", client_id), lambda: fetch_token(self.issuer, client_id, secret))

    def _secret(self, kind: str, name: str) -> str:
        try:
            return self.credentials[kind][name]
        except KeyError:
            known = ", ".join(sorted(self.credentials.get(kind, {})))
            raise KeyError(f"no {kind[:-1]} {name!r} in the realm's credentials (known: {known})") from None

    def _cached(self, key: tuple[str, str], fetch) -> str:
        fetched = self._cache.get(key)
        if fetched is None or time.monotonic() - fetched[0] > _TOKEN_REUSE_S:
            fetched = (time.monotonic(), fetch())
            self._cache[key] = fetched
        return fetched[1]


@pytest.fixture(scope="session")
def tokens(infrastructure: EmbeddedStack, auth_issuer: str) -> Tokens:
    if infrastructure.keycloak is not None:
        return Tokens(auth_issuer, infrastructure.keycloak.credentials)
    credentials_file = os.environ.get("EJSIKA_TEST_CREDENTIALS_FILE")
    if not credentials_file:
        pytest.fail(f"EJSIKA_AUTH_ISSUER={auth_issuer} is set, so no Keycloak was started, and the tests need "
                    "tokens of the realm of deploy/keycloak/ejsika-realm.json: set EJSIKA_TEST_CREDENTIALS_FILE to "
                    "a JSON file {\"clients\": {id: secret}, \"users\": {name: password}} of that provider, "
                    "or unset EJSIKA_AUTH_ISSUER to use the embedded Keycloak", pytrace=False)
    return Tokens(auth_issuer, json.loads(Path(credentials_file).read_text()))


@pytest.fixture
async def migrated_schema(database_url: str):
    """`await migrated_schema(prefix, migrations)`: a fresh schema of a service, migrated, and its
    pool; dropped after the test."""
    from ejsika_runtime.db import create_pool, migrate

    made = []

    async def make(prefix: str, migrations: Path):
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        pool = await create_pool(database_url, name, size=2)
        made.append((name, pool))
        await migrate(pool, name, migrations)
        return name, pool

    yield make
    for name, pool in made:
        await pool.execute(f'DROP SCHEMA "{name}" CASCADE')
        await pool.close()
