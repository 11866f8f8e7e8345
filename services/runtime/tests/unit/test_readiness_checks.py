"""/readyz asks the database and the broker at once, each within its own timeout.

Asked one after the other, a service cut off from both answered its probe only after both timeouts
(up to ~4 s, longer on a loaded machine), past a probe's own timeout. Here both checks hang: each
must have started before either gave up, and each hanging one answers False.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ejsika_runtime import service as service_module
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings


class Hanging:
    """A check that never answers, noting when it started and when it was given up on."""

    def __init__(self, name: str, log: list[tuple[str, str]]) -> None:
        self.name, self.log = name, log

    async def __call__(self, *_, **__) -> bool:
        self.log.append(("started", self.name))
        try:
            await asyncio.Event().wait()
        finally:
            self.log.append(("given up", self.name))
        return True


class HangingPool:
    def __init__(self, log: list[tuple[str, str]]) -> None:
        self.fetchval = Hanging("database", log)


async def test_both_checks_are_asked_at_once_and_a_hanging_one_is_not_ready(monkeypatch):
    monkeypatch.setattr(service_module, "READINESS_CHECK_TIMEOUT_S", 0.2)
    service = Service("ready", Settings(), Path("no-migrations"))
    log: list[tuple[str, str]] = []
    service._pool = HangingPool(log)
    monkeypatch.setattr(service.broker, "ping", Hanging("broker", log))

    checks = await service.ready()

    assert (checks["database"], checks["broker"]) == (False, False), "no answer is not ready"
    assert sorted(log[:2]) == [("started", "broker"), ("started", "database")], f"one after the other: {log}"
    assert sorted(log[2:]) == [("given up", "broker"), ("given up", "database")]


async def test_a_check_that_answers_is_ready_beside_one_that_hangs(monkeypatch):
    monkeypatch.setattr(service_module, "READINESS_CHECK_TIMEOUT_S", 0.2)
    service = Service("ready", Settings(), Path("no-migrations"))
    log: list[tuple[str, str]] = []
    service._pool = HangingPool(log)

    async def answers(**_) -> bool:
        return True

    monkeypatch.setattr(service.broker, "ping", answers)
    checks = await service.ready()
    assert (checks["database"], checks["broker"]) == (False, True)
