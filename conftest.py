"""Real infrastructure for the integration and e2e tests, started once per test session.

PostgreSQL and Kafka come from EJSIKA_DATABASE_URL / EJSIKA_KAFKA_BOOTSTRAP when set; otherwise
an embedded PostgreSQL and a single-node Apache Kafka start in a fresh folder for this session.
Each session gets its own database, so runs never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from ejsika_runtime.embedded import EmbeddedStack, free_port
from ejsika_runtime.kafka import create_topics


@pytest.fixture(scope="session")
def infrastructure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    state = tmp_path_factory.mktemp("stack")
    os.chmod(state, 0o755)  # the embedded PostgreSQL runs as an unprivileged user when tests run as root
    os.chmod(state.parent, 0o755)
    stack = EmbeddedStack(Path(state), postgres_port=free_port(), kafka_port=free_port(),
                          kafka_controller_port=free_port(), progress=lambda line: print(line, flush=True))
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
