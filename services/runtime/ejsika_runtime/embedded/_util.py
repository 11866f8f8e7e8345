"""Small process/port helpers shared by the embedded servers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

Progress = Callable[[str], None]


class EmbeddedError(RuntimeError):
    """An embedded server could not be set up, started or reached."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, for servers of a test or benchmark run."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} not readable)"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


def live_pid(pid_file: Path, marker: str) -> int | None:
    """PID from `pid_file` if that process is alive and its command line contains `marker`."""
    try:
        pid = int(pid_file.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError, IndexError):
        return None
    return pid if marker in cmdline else None


def check_port_free(port: int, name: str, pid_file: Path, marker: str) -> None:
    if not port_in_use(port):
        return
    pid = live_pid(pid_file, marker)
    if pid is not None:
        raise EmbeddedError(
            f"{name} from a previous run (pid {pid}) still holds 127.0.0.1:{port}; "
            f"stop it with `kill {pid}` and retry"
        )
    raise EmbeddedError(f"127.0.0.1:{port} is already in use by another process; cannot start {name}")


def wait_ready(
    proc: subprocess.Popen, ready: Callable[[], bool], *, name: str, timeout: float, logs: list[Path]
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise EmbeddedError(f"{name} exited with code {proc.returncode} during startup\n{_log_tails(logs)}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise EmbeddedError(f"{name} not ready after {timeout:.0f}s\n{_log_tails(logs)}")
        time.sleep(0.25)


def _log_tails(logs: list[Path]) -> str:
    parts = [f"--- last lines of {p} ---\n{tail(p)}" for p in logs if p.exists() and p.stat().st_size]
    return "\n".join(parts) or "(no log output)"


def terminate(proc: subprocess.Popen, sig: int, timeout: float) -> None:
    """Send `sig`, wait up to `timeout` seconds, then SIGKILL."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
        except ProcessLookupError:
            pass
    proc.wait()


def maven(what: str) -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise EmbeddedError(f"Maven (`mvn`) is needed once to fetch {what} but is not on PATH")
    return mvn


def run_checked(cmd: list[str], what: str, ok: Callable[[], bool] = lambda: True, **options) -> None:
    """Run a set-up command; EmbeddedError with the tail of its output if it fails or `ok()` is false."""
    result = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, **options)
    if result.returncode != 0 or not ok():
        output = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise EmbeddedError(f"{what} failed (exit {result.returncode}):\n{output}")


def publish(built: Path, target: Path) -> None:
    """Move a fetched or built folder into the cache as `target`, marked complete, once.

    Two runs fetching at the same time each build their own folder; the first rename wins.
    """
    (built / ".complete").touch()
    if target.exists() and not (target / ".complete").exists():
        shutil.rmtree(target)  # leftover of an interrupted run
    try:
        built.rename(target)
    except OSError:
        if not (target / ".complete").exists():
            raise
