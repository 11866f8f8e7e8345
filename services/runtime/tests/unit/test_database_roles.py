"""The services' database roles: names, passwords kept per state dir, and each process given its own URL."""

from __future__ import annotations

import stat
import subprocess

import pytest

from ejsika_runtime.db_roles import role_name, stored_passwords
from ejsika_runtime.demo import launcher


def test_passwords_are_made_once_per_state_dir_and_kept_private(tmp_path):
    path = tmp_path / "database-roles.json"
    first = stored_passwords(path, ["registry", "monitoring"])
    assert len(set(first.values())) == 2 and all(len(p) >= 32 for p in first.values())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = stored_passwords(path, ["registry", "monitoring", "eligibility"])
    assert {k: again[k] for k in first} == first and again["eligibility"] not in first.values()


def test_role_names_are_checked_identifiers():
    assert role_name("registry") == "ejsika_registry"
    for bad in ("Registry", 'x"; DROP ROLE postgres; --', "", "a-b"):
        with pytest.raises(ValueError):
            role_name(bad)


def test_each_service_process_gets_its_own_environment_over_the_shared_one(monkeypatch):
    started = {}

    class Process:
        def __init__(self, args, env, **_):
            started[args[-1]] = env

    monkeypatch.setattr(subprocess, "Popen", Process)
    launcher.start_services({"EJSIKA_DATABASE_URL": "admin", "SHARED": "1"}, {"registry": 1, "monitoring": 2},
                            service_env={"registry": {"EJSIKA_DATABASE_URL": "registry's"}})
    assert started["ejsika_registry"] == {"EJSIKA_DATABASE_URL": "registry's", "SHARED": "1", "EJSIKA_HTTP_PORT": "1"}
    assert started["ejsika_monitoring"] == {"EJSIKA_DATABASE_URL": "admin", "SHARED": "1", "EJSIKA_HTTP_PORT": "2"}


def test_the_embedded_stack_gives_each_service_its_role_and_an_operators_url_to_all(tmp_path, monkeypatch):
    from ejsika_runtime.embedded import stack as stack_module

    provisioned = []

    async def provision(admin_url, passwords):
        provisioned.append((admin_url, dict(passwords)))
        return {service: f"{service}-url" for service in passwords}

    monkeypatch.setattr(stack_module, "provision", provision)
    monkeypatch.delenv("EJSIKA_DATABASE_URL", raising=False)
    own = stack_module.EmbeddedStack(tmp_path)
    own.database_url = "postgresql://postgres@127.0.0.1:5/ejsika"  # as start() sets it
    assert own.owns_database
    assert own.service_database_urls(["registry", "monitoring"]) == {"registry": "registry-url",
                                                                     "monitoring": "monitoring-url"}
    assert own.service_database_urls(["registry", "monitoring"])  # the next run: the same passwords
    (url, first), (_, second) = provisioned
    assert url == own.database_url and first == second
    assert stored_passwords(tmp_path / stack_module.DATABASE_ROLES_FILE, ["registry"]) == {
        "registry": first["registry"]}

    monkeypatch.setenv("EJSIKA_DATABASE_URL", "postgresql://operator@db/ejsika")
    given = stack_module.EmbeddedStack(tmp_path)
    assert not given.owns_database
    assert given.service_database_urls(["registry", "monitoring"]) == {
        "registry": "postgresql://operator@db/ejsika", "monitoring": "postgresql://operator@db/ejsika"}
    assert len(provisioned) == 2
