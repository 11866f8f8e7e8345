"""The launcher's process supervisor: a service that dies under `ejsika up` is started again.

As a process supervisor would (systemd's `Restart=on-failure`, supervisord): the crash is told
with the process's name, its exit code and the end of its log, and the process is started again
after a back-off that doubles while it keeps failing (the same `Backoff` as the services'
background loops), so a service that cannot start does not spin the machine. A process that ran
long enough before it died starts again from the first delay.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..embedded._util import tail
from ..supervision import Backoff

LOG_LINES = 20  # how much of a crashed process's log is shown


def exit_reason(code: int) -> str:
    """'exit code 3', or 'killed by SIGKILL' for a negative Popen return code."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class _Watched:
    started_at: float
    failures_in_a_row: int = 0
    restart_at: float | None = None  # set while the process waits for its restart


class ProcessSupervisor:
    """Watches named child processes; `check()` tells of each that exited and restarts it when due.

    `start(name)` starts the named process again (and returns it); `log_of(name)` is its log file,
    if it has one. `processes` is updated in place, so whoever stops the platform stops the new one.
    """

    def __init__(self, processes: dict[str, subprocess.Popen], start: Callable[[str], subprocess.Popen],
                 say: Callable[[str], None], log_of: Callable[[str], Path | None] = lambda _: None,
                 backoff: Backoff = Backoff(first=1.0, most=60.0, healthy_after_s=60.0),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.processes, self._start, self._say, self._log_of = processes, start, say, log_of
        self.backoff, self._clock = backoff, clock
        self._watched = {name: _Watched(clock()) for name in processes}
        self.restarts: dict[str, int] = {name: 0 for name in processes}

    def check(self) -> None:
        """One look at every process: report the ones just exited, restart those whose delay passed."""
        now = self._clock()
        for name, proc in list(self.processes.items()):
            watched = self._watched.setdefault(name, _Watched(now))
            if watched.restart_at is None:
                code = proc.poll()
                if code is None:
                    continue
                if now - watched.started_at >= self.backoff.healthy_after_s:
                    watched.failures_in_a_row = 0
                watched.failures_in_a_row += 1
                delay = self.backoff.delay(watched.failures_in_a_row)
                watched.restart_at = now + delay
                self._report(name, proc, code, delay, watched.failures_in_a_row)
            if watched.restart_at is not None and now >= watched.restart_at:
                try:
                    self.processes[name] = self._start(name)
                except Exception as error:  # e.g. a port still held: try again after the next delay
                    watched.failures_in_a_row += 1
                    watched.restart_at = now + self.backoff.delay(watched.failures_in_a_row)
                    self._say(f"{name} could not be started again ({type(error).__name__}: {error}); "
                              f"next try in {self.backoff.delay(watched.failures_in_a_row):.0f}s")
                    continue
                watched.restart_at, watched.started_at = None, now
                self.restarts[name] = self.restarts.get(name, 0) + 1
                self._say(f"{name} started again (pid {self.processes[name].pid})")

    def _report(self, name: str, proc: subprocess.Popen, code: int, delay: float, in_a_row: int) -> None:
        self._say(f"{name} (pid {proc.pid}) stopped: {exit_reason(code)}; starting it again in {delay:.0f}s"
                  f" ({in_a_row} in a row)")
        log = self._log_of(name)
        if log is not None:
            self._say(f"last lines of {log}:")
            print("\n".join(f"    {line}" for line in tail(log, LOG_LINES).splitlines()), flush=True)
