"""Background loops under supervision: restarted after a failure with a capped back-off, logged once
per failure with its cause, reported down while they wait, and left alone once they finish."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry

from ejsika_runtime.metrics import RuntimeMetrics
from ejsika_runtime.supervision import Backoff, Supervisor


class Clock:
    """A sleep that records each wait and returns at once; `gate` holds the waits while it is clear."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        await self.gate.wait()


async def settle(until, tries: int = 200) -> None:
    for _ in range(tries):
        if until():
            return
        await asyncio.sleep(0)
    raise AssertionError("never settled")


def test_the_backoff_doubles_from_its_first_wait_up_to_its_cap():
    backoff = Backoff(first=0.5, most=4.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


async def test_a_loop_that_raises_is_logged_with_its_cause_and_restarted_with_growing_waits(caplog):
    clock = Clock()
    registry = CollectorRegistry()
    supervisor = Supervisor(RuntimeMetrics(registry, "svc"), Backoff(first=1.0, most=4.0), sleep=clock.sleep)
    runs = []

    async def deliver() -> None:
        runs.append(len(runs))
        if len(runs) <= 4:
            raise ConnectionRefusedError("receiver down")
        await asyncio.Event().wait()  # then runs for good

    with caplog.at_level(logging.INFO, logger="ejsika_runtime.supervision"):
        supervisor.start(deliver, "svc-deliver")
        await settle(lambda: len(runs) == 5)
    try:
        assert clock.waits == [1.0, 2.0, 4.0, 4.0], "doubled each time, capped"
        failures = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(failures) == 4, "each failure logged once"
        assert all("svc-deliver" in r.getMessage() and isinstance(r.exc_info[1], ConnectionRefusedError)
                   for r in failures)
        assert supervisor.down() == [], "running again"
        assert registry.get_sample_value("ejsika_background_loop_restarts_total",
                                         {"service": "svc", "loop": "svc-deliver"}) == 4
        assert registry.get_sample_value("ejsika_background_loop_up", {"service": "svc", "loop": "svc-deliver"}) == 1
    finally:
        await supervisor.stop()


async def test_a_loop_waiting_to_restart_is_reported_down():
    clock = Clock()
    clock.gate.clear()  # the back-off does not end during the test
    supervisor = Supervisor(sleep=clock.sleep)
    failed = asyncio.Event()

    async def broken() -> None:
        failed.set()
        raise RuntimeError("start-up step failed")

    async def fine() -> None:
        await asyncio.Event().wait()

    supervisor.start(fine, "fine")
    supervisor.start(broken, "broken")
    await failed.wait()
    await settle(lambda: clock.waits)
    try:
        assert supervisor.down() == ["broken"]
    finally:
        await supervisor.stop()


async def test_a_loop_that_finishes_its_work_is_not_restarted_nor_down():
    clock = Clock()
    supervisor = Supervisor(sleep=clock.sleep)
    runs = []

    async def backfill() -> None:
        runs.append(1)

    supervised = supervisor.start(backfill, "backfill")
    await supervised.task
    assert runs == [1] and supervised.finished and supervisor.down() == [] and clock.waits == []
    await supervisor.stop()


async def test_a_loop_that_ran_well_for_a_while_starts_its_backoff_afresh():
    clock = Clock()
    supervisor = Supervisor(backoff=Backoff(first=1.0, most=60.0, healthy_after_s=0.0), sleep=clock.sleep)
    runs = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) <= 3:
            raise RuntimeError("lost its connection")
        await asyncio.Event().wait()

    supervisor.start(flaky, "flaky")
    await settle(lambda: len(runs) == 4)
    try:
        assert clock.waits == [1.0, 1.0, 1.0]
    finally:
        await supervisor.stop()


async def test_stop_cancels_every_loop():
    supervisor = Supervisor()
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    supervised = supervisor.start(forever, "forever")
    await started.wait()
    await supervisor.stop()
    assert supervised.task.cancelled() and supervisor.loops == []
