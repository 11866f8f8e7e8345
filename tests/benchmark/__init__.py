"""Benchmark scripts: each prints figures (`make bench*`); none is a test."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A folder for a run's PostgreSQL, Kafka and files, removed after it: a run leaves gigabytes."""
    state = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(state, 0o755)  # PostgreSQL runs as `nobody` when the benchmark runs as root
    try:
        yield state
    finally:
        shutil.rmtree(state, ignore_errors=True)


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by a process and every process under it, live or ended (Linux /proc): what a
    unit of work costs, a figure that the other work on a shared machine moves least."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            parents[int(pid)], ticks[int(pid)] = int(fields[1]), sum(int(x) for x in fields[11:15])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += ticks.get(pid, 0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total / os.sysconf("SC_CLK_TCK")
