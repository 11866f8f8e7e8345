"""Background loops kept running: a loop that raises is logged once and restarted after a back-off.

A service's loops (webhook delivery, the overdue check, a gauge) run for as long as the service:
one that died with nobody noticing would leave its work undone while every probe said "ready".
Each is restarted with an exponential back-off (capped, so a loop down for long is retried at a
steady pace) and the readiness probe reports the service not ready while any loop waits for its
restart. A loop that returns has finished its work (a one-off backfill) and is not restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .metrics import RuntimeMetrics

log = logging.getLogger(__name__)

Loop = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Backoff:
    """Seconds to wait before the n-th restart in a row: first, doubled each time, at most `most`.

    A loop that ran `healthy_after_s` before it failed starts again from `first`.
    """

    first: float = 1.0
    most: float = 60.0
    healthy_after_s: float = 60.0

    def delay(self, failures_in_a_row: int) -> float:
        return min(self.most, self.first * 2 ** (failures_in_a_row - 1))


@dataclass
class Supervised:
    name: str
    loop: Loop
    up: bool = False
    finished: bool = False
    failures_in_a_row: int = 0
    task: asyncio.Task | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self, metrics: RuntimeMetrics | None = None, backoff: Backoff = Backoff(),
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.metrics, self.backoff, self._sleep = metrics, backoff, sleep
        self.loops: list[Supervised] = []

    def start(self, loop: Loop, name: str) -> Supervised:
        """Run `loop()` in a task, again after each failure, until `stop()`."""
        supervised = Supervised(name, loop)
        supervised.task = asyncio.create_task(self._keep(supervised), name=name)
        self.loops.append(supervised)
        return supervised

    def down(self) -> list[str]:
        """The loops waiting to restart (for readiness)."""
        return [s.name for s in self.loops if not s.up]

    async def stop(self) -> None:
        tasks = [s.task for s in self.loops if s.task is not None]
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        self.loops.clear()

    async def _keep(self, supervised: Supervised) -> None:
        while True:
            self._set(supervised, up=True)
            started = time.monotonic()
            try:
                await supervised.loop()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if time.monotonic() - started >= self.backoff.healthy_after_s:
                    supervised.failures_in_a_row = 0
                supervised.failures_in_a_row += 1
                delay = self.backoff.delay(supervised.failures_in_a_row)
                self._set(supervised, up=False)
                log.error("background loop %s failed (%d in a row); restarting in %.1f s", supervised.name,
                          supervised.failures_in_a_row, delay, exc_info=error)
                await self._sleep(delay)
                if self.metrics is not None:
                    self.metrics.loop_restarted(supervised.name)
                continue
            supervised.finished = True
            log.info("background loop %s finished its work", supervised.name)
            return

    def _set(self, supervised: Supervised, *, up: bool) -> None:
        supervised.up = up
        if self.metrics is not None:
            self.metrics.loop_up(supervised.name, up)
