"""The registry on the session's real PostgreSQL: a fresh migrated schema per test, its use cases and its
HTTP routes (guarded by a local identity provider: the real Keycloak is the e2e tests' business).

`registry.client(role, **claims)` is an httpx client of the whole registry app acting in `role`;
`registry.outbox()` the events its writes left for the relay, oldest first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest

from ejsika_registry import api, changes_api, imports_api
from ejsika_registry.registrations import register_all
from ejsika_runtime.demo.synthetic import Families
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings
from ejsika_runtime.testing import ISSUER, LocalIdentity
from ejsika_runtime.unit_of_work import unit_of_work

MIGRATIONS = Path(api.__file__).parent / "migrations"
NIK_KEY = b"k" * 40
TODAY_FAMILIES_SEED = 71


@dataclass
class Registry:
    service: Service
    pool: asyncpg.Pool
    idp: LocalIdentity
    families: Families

    def client(self, role: str = "operator", **claims: Any) -> httpx.AsyncClient:
        defaults = {"operator": {"programme": "jscm"}, "supervisor": {"area": "3672"}}.get(role, {})
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://registry",
                                 headers=self.idp.headers(role, **{**defaults, **claims}))

    @property
    def app(self):
        if not hasattr(self, "_app"):
            self._app = self.service.app()
        return self._app

    async def register(self, count: int = 1, **changes: Any) -> list[dict]:
        """Register `count` synthetic households of JSCM (Kota Cilegon) directly; answer their states."""
        bodies = []
        for _ in range(count):
            body = self.families.registration(programme="jscm")
            body.update(region_code="3672011001", **changes)
            bodies.append(body)
        return await self.register_bodies(bodies)

    async def register_bodies(self, bodies: list[dict], pendamping: str | None = None) -> list[dict]:
        """Register these registration bodies directly (all must go in); answer their states."""
        from ejsika_registry import households

        registrations = [api.Registration.model_validate(body) for body in bodies]
        async with unit_of_work(self.pool, self.service.outbox) as uow:
            outcomes = await register_all(uow, [(r.request_id, r.to_data(pendamping)) for r in registrations],
                                          uuid4(), NIK_KEY)
            assert {o.result for o in outcomes} == {"registered"}, outcomes
            return [await households.current_state(uow.conn, o.household_id) for o in outcomes]

    async def outbox(self) -> list[dict]:
        rows = await self.pool.fetch("SELECT value FROM outbox WHERE topic = 'ejsika.household' ORDER BY id")
        return [json.loads(bytes(r["value"])) for r in rows]


@pytest.fixture(autouse=True)
def registry_environment(monkeypatch):
    """What the launcher sets for the registry, for tests that import its composition root (app.py)."""
    monkeypatch.setenv("EJSIKA_NIK_HASH_KEY", NIK_KEY.decode())


@pytest.fixture
async def registry(migrated_schema) -> Registry:
    schema, pool = await migrated_schema("registry", MIGRATIONS)
    idp = LocalIdentity()
    service = Service("registry", Settings(auth_issuer=ISSUER), MIGRATIONS)
    idp.install(service.access)
    service._pool = pool  # the routes run on the test's schema; the service itself is never started
    service.router.include_router(api.routes(service, NIK_KEY))
    service.router.include_router(changes_api.routes(service, NIK_KEY))
    service.router.include_router(imports_api.routes(service, NIK_KEY))
    return Registry(service, pool, idp, Families(seed=TODAY_FAMILIES_SEED))
