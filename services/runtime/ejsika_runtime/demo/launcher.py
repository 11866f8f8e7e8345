"""`ejsika up`: the whole platform on one machine, with a demo, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import httpx

from ..embedded import EmbeddedStack
from ..kafka import create_topics
from .synthetic import Families

SERVICES = {"registry": 8001, "monitoring": 8002, "eligibility": 8003, "notifications": 8004}
RECEIVER_PORT = 8009


def say(line: str) -> None:
    print(f"[ejsika] {line}", flush=True)


def start_services(
    env: dict[str, str], ports: dict[str, int] = SERVICES, log_dir: Path | None = None
) -> dict[str, subprocess.Popen]:
    """Each service as its own process; its log lines go to `log_dir/<name>.log` when given."""
    return {
        name: subprocess.Popen(
            [sys.executable, "-m", f"ejsika_{name}"],
            env={**env, "EJSIKA_HTTP_PORT": str(port)},
            stdout=(log_dir / f"{name}.log").open("a") if log_dir else None,
            stderr=subprocess.STDOUT if log_dir else None,
        )
        for name, port in ports.items()
    }


def wait_ready(ports: dict[str, int], processes: dict[str, subprocess.Popen], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(ports)
    while pending:
        for name, port in list(pending.items()):
            if processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited with code {processes[name].returncode} while starting")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    say(f"{name} ready on http://127.0.0.1:{port}")
                    del pending[name]
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {timeout:.0f}s: {', '.join(pending)}")
        time.sleep(0.3)


def stop(processes: Iterable[subprocess.Popen]) -> None:
    procs = list(processes)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the platform the way Ctrl-C does


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def subscribe_demo_agency(notifications_url: str, webhook_url: str, secret: str) -> None:
    response = httpx.post(f"{notifications_url}/demo/subscription", json={"url": webhook_url, "secret": secret},
                          timeout=10)
    response.raise_for_status()


def seed(registry_url: str, households: int) -> None:
    body = {"registrations": Families(seed=int(time.time())).registrations(households)}
    response = httpx.post(f"{registry_url}/households/batch", json=body, timeout=60)
    response.raise_for_status()
    results = [r["result"] for r in response.json()["results"]]
    say(f"demo: registered {results.count('registered')} synthetic households through the registry API")


def run_platform(state_dir: Path, households: int = 20) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    children: dict[str, subprocess.Popen] = {}
    with EmbeddedStack(state_dir, progress=say) as stack:
        try:
            asyncio.run(create_topics(stack.kafka_bootstrap))
            env = {**os.environ, "EJSIKA_DATABASE_URL": stack.database_url,
                   "EJSIKA_KAFKA_BOOTSTRAP": stack.kafka_bootstrap}
            secret = new_webhook_secret()
            children["receiver"] = subprocess.Popen(
                [sys.executable, "-m", "ejsika_runtime.demo.receiver", str(RECEIVER_PORT), secret], env=env
            )
            logs = state_dir / "logs"
            logs.mkdir(exist_ok=True)
            say(f"starting registry, monitoring, eligibility and notifications (logs in {logs})…")
            children.update(start_services(env, log_dir=logs))
            wait_ready(SERVICES, children)
            subscribe_demo_agency(f"http://127.0.0.1:{SERVICES['notifications']}",
                                  f"http://127.0.0.1:{RECEIVER_PORT}/webhooks", secret)
            seed(f"http://127.0.0.1:{SERVICES['registry']}", households)
            say("platform is up:")
            for name, port in SERVICES.items():
                say(f"  {name:<14} http://127.0.0.1:{port}  (/docs, /metrics, /asyncapi.json)")
            say(f"  demo OPD webhook receiver http://127.0.0.1:{RECEIVER_PORT}/received (prints each webhook below)")
            say("press Ctrl-C to stop")
            signal.signal(signal.SIGTERM, _interrupt)
            while all(child.poll() is None for child in children.values()):
                time.sleep(0.5)
            say("a process exited; stopping everything")
        except KeyboardInterrupt:
            say("stopping…")
        finally:
            stop(children.values())
