"""The launcher restarts a crashed service with back-off and says which, how it ended, and its log's end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ejsika_runtime.demo.processes import ProcessSupervisor, exit_reason
from ejsika_runtime.supervision import Backoff


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def crashing(log: Path, code: int) -> subprocess.Popen:
    """A process that writes a last line to its log and exits with `code`."""
    with log.open("a") as out:
        return subprocess.Popen([sys.executable, "-c", f"print('registry: cannot reach the database'); exit({code})"],
                                stdout=out, stderr=subprocess.STDOUT)


def lasting() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_crashed_process_is_reported_and_restarted_with_growing_delays(tmp_path: Path, capsys):
    log = tmp_path / "registry.log"
    said: list[str] = []
    clock = Clock()
    other = lasting()
    processes = {"registry": crashing(log, 3), "monitoring": other}
    starts: list[str] = []

    def start(name: str) -> subprocess.Popen:
        starts.append(name)
        return crashing(log, 3)

    supervisor = ProcessSupervisor(processes, start=start, say=said.append, clock=clock,
                                   log_of=lambda name: log if name == "registry" else None,
                                   backoff=Backoff(first=1.0, most=4.0, healthy_after_s=60.0))
    try:
        processes["registry"].wait(30)
        supervisor.check()
        assert said[0].startswith("registry (pid ") and "exit code 3" in said[0] and "again in 1s" in said[0]
        assert "cannot reach the database" in capsys.readouterr().out, "the end of its log is shown"
        assert starts == [], "not before its delay"

        delays = []
        for _ in range(4):  # it keeps crashing: 1 s, 2 s, 4 s, then at most 4 s
            waited_from = clock.now
            while not starts or len(starts) == len(delays):
                clock.now += 0.5
                supervisor.check()
                assert clock.now - waited_from <= 60, "not started again after a minute"
            delays.append(clock.now - waited_from)
            processes["registry"].wait(30)
            supervisor.check()
        assert delays == [1.0, 2.0, 4.0, 4.0]
        assert starts == ["registry"] * 4 and supervisor.restarts == {"registry": 4, "monitoring": 0}
        assert processes["monitoring"] is other and other.poll() is None, "the others run on"
        assert any("registry started again" in line for line in said)
    finally:
        other.kill()
        other.wait()


def test_a_process_that_ran_long_before_it_died_starts_again_from_the_first_delay(tmp_path: Path):
    log = tmp_path / "eligibility.log"
    clock = Clock()
    said: list[str] = []
    processes = {"eligibility": crashing(log, 1)}
    supervisor = ProcessSupervisor(processes, start=lambda _: crashing(log, 1), say=said.append, clock=clock,
                                   backoff=Backoff(first=1.0, most=60.0, healthy_after_s=60.0))
    processes["eligibility"].wait(30)
    for _ in range(3):  # three quick crashes: the next delay would be 8 s
        supervisor.check()
        clock.now += 10
        supervisor.check()
        processes["eligibility"].wait(30)
    clock.now += 120  # the last one ran for two minutes
    supervisor.check()
    assert "again in 1s" in said[-1]


def test_exit_reasons_name_the_signal():
    assert exit_reason(-9) == "killed by SIGKILL"
    assert exit_reason(2) == "exit code 2"
