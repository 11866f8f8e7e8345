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
