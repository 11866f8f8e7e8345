"""Each service process connects as its own database role, which owns its schema and reads no other's."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from .conftest import Platform

SERVICES = ("registry", "monitoring", "eligibility", "notifications")


async def _owners(admin_url: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    conn = await asyncpg.connect(admin_url)
    try:
        tables = await conn.fetch("SELECT schemaname, tableowner FROM pg_tables WHERE schemaname = ANY($1::text[])",
                                  list(SERVICES))
        sessions = await conn.fetch("SELECT application_name, usename FROM pg_stat_activity"
                                    " WHERE application_name = ANY($1::text[])", [f"ejsika-{s}" for s in SERVICES])
    finally:
        await conn.close()
    owners: dict[str, set[str]] = {}
    for row in tables:
        owners.setdefault(row["schemaname"], set()).add(row["tableowner"])
    users: dict[str, set[str]] = {}
    for row in sessions:
        users.setdefault(row["application_name"].removeprefix("ejsika-"), set()).add(row["usename"])
    return owners, users


async def _read(url: str, table: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(f"SELECT count(*) FROM {table}")
    finally:
        await conn.close()


def test_each_service_runs_as_its_own_role_owning_its_tables(platform: Platform):
    owners, users = asyncio.run(_owners(platform.env["EJSIKA_DATABASE_URL"]))
    assert owners == {name: {f"ejsika_{name}"} for name in SERVICES}
    assert users == {name: {f"ejsika_{name}"} for name in SERVICES}


@pytest.mark.parametrize("service, own, other", [
    ("registry", "registry.households", "monitoring.visits"),
    ("monitoring", "monitoring.visits", "registry.households"),
    ("eligibility", "eligibility.assessments", "registry.households"),
    ("notifications", "notifications.deliveries", "eligibility.assessments"),
])
def test_a_services_credentials_read_its_own_tables_and_no_others(platform: Platform, service, own, other):
    url = platform.service_env[service]["EJSIKA_DATABASE_URL"]
    assert asyncio.run(_read(url, own)) >= 0
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        asyncio.run(_read(url, other))
