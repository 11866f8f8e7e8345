"""PostgreSQL + Kafka + Keycloak for local runs, each replaced by an external one when its env var is set."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..db_roles import provision, stored_passwords
from ._util import Progress
from .kafka import EmbeddedKafka
from .keycloak import EmbeddedKeycloak
from .postgres import EmbeddedPostgres

DATABASE_URL_ENV = "EJSIKA_DATABASE_URL"
KAFKA_BOOTSTRAP_ENV = "EJSIKA_KAFKA_BOOTSTRAP"
AUTH_ISSUER_ENV = "EJSIKA_AUTH_ISSUER"
DATABASE_ROLES_FILE = "database-roles.json"  # in the state dir: the services' database passwords


class EmbeddedStack:
    """Starts what EJSIKA_DATABASE_URL / _KAFKA_BOOTSTRAP / _AUTH_ISSUER do not provide; stops only that."""

    def __init__(
        self,
        state_dir: Path,
        *,
        postgres_port: int = 55432,
        kafka_port: int = 9092,
        kafka_controller_port: int = 9093,
        keycloak_port: int = 8080,
        progress: Progress = print,
    ) -> None:
        self.database_url: str | None = os.environ.get(DATABASE_URL_ENV) or None
        self.kafka_bootstrap: str | None = os.environ.get(KAFKA_BOOTSTRAP_ENV) or None
        self.auth_issuer: str | None = os.environ.get(AUTH_ISSUER_ENV) or None
        self._progress = progress
        self.state_dir = Path(state_dir)
        self._postgres = (
            None if self.database_url
            else EmbeddedPostgres(state_dir, postgres_port, progress=progress)
        )
        self._kafka = (
            None if self.kafka_bootstrap
            else EmbeddedKafka(state_dir, kafka_port, kafka_controller_port, progress=progress)
        )
        self.keycloak: EmbeddedKeycloak | None = (
            None if self.auth_issuer else EmbeddedKeycloak(state_dir, keycloak_port, progress=progress)
        )

    def start(self) -> EmbeddedStack:
        """Start the embedded servers concurrently; block until all are ready."""
        if self._postgres is None:
            self._progress(f"using PostgreSQL from {DATABASE_URL_ENV}")
        if self._kafka is None:
            self._progress(f"using Kafka from {KAFKA_BOOTSTRAP_ENV}={self.kafka_bootstrap}")
        if self.keycloak is None:
            self._progress(f"using the OpenID Connect provider of {AUTH_ISSUER_ENV}={self.auth_issuer}")
        servers = [s for s in (self._postgres, self._kafka, self.keycloak) if s is not None]
        pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="embedded")
        try:
            for future in [pool.submit(server.start) for server in servers]:
                future.result()
        except BaseException:
            # Let in-flight starts finish (e.g. after Ctrl-C) so stop() sees every process.
            pool.shutdown(wait=True)
            self.stop()
            raise
        finally:
            pool.shutdown(wait=False)
        if self._postgres is not None:
            self.database_url = self._postgres.dsn
        if self._kafka is not None:
            self.kafka_bootstrap = self._kafka.bootstrap
        if self.keycloak is not None:
            self.auth_issuer = self.keycloak.issuer
        return self

    @property
    def owns_database(self) -> bool:
        """Whether the PostgreSQL is this stack's own (not EJSIKA_DATABASE_URL's)."""
        return self._postgres is not None

    def service_database_urls(self, services: Iterable[str]) -> dict[str, str]:
        """The database URL of each service: in the embedded PostgreSQL, the service's own role
        owning only its schema (ejsika_runtime.db_roles; passwords made once per state dir). With
        EJSIKA_DATABASE_URL given, that one URL for every service, as the operator chose."""
        services = list(services)
        if self._postgres is None:
            return {service: self.database_url for service in services}
        passwords = stored_passwords(self.state_dir / DATABASE_ROLES_FILE, services)
        return asyncio.run(provision(self.database_url, passwords))

    def stop(self) -> None:
        """Stop the servers this stack started (safe to call more than once)."""
        try:
            if self.keycloak is not None:
                self.keycloak.stop()
        finally:
            try:
                if self._kafka is not None:
                    self._kafka.stop()
            finally:
                if self._postgres is not None:
                    self._postgres.stop()

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
