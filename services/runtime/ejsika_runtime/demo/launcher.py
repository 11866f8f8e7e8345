"""`ejsika up`: the whole platform on one machine, with a demo, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import httpx

from ..auth_tokens import Bearer, RenewingToken, token_endpoint
from ..embedded import EmbeddedStack
from ..embedded.keycloak import default_realm_file
from ..embedded.stack import DATABASE_ROLES_FILE
from ..kafka import create_topics
from .processes import ProcessSupervisor
from .synthetic import Families

DEMO_AGENCY = {"code": "dinas-pendidikan", "name": "Dinas Pendidikan Provinsi Banten",
               "profile": ["region_code", "eligible", "member_counts.school_children",
                           "member_counts.children_entering_sma"]}
SERVICES = {"registry": 8001, "monitoring": 8002, "eligibility": 8003, "notifications": 8004}
RECEIVER_PORT = 8009


def say(line: str) -> None:
    print(f"[ejsika] {line}", flush=True)


def start_services(
    env: dict[str, str], ports: dict[str, int] = SERVICES, log_dir: Path | None = None,
    service_env: dict[str, dict[str, str]] | None = None,
) -> dict[str, subprocess.Popen]:
    """Each service as its own process; its log lines go to `log_dir/<name>.log` when given.

    `env` is every service's; `service_env[name]` adds to (or overrides) it for that one, e.g. its
    own EJSIKA_DATABASE_URL (its own database role)."""
    service_env = service_env or {}
    return {
        name: subprocess.Popen(
            [sys.executable, "-m", f"ejsika_{name}"],
            env={**env, **service_env.get(name, {}), "EJSIKA_HTTP_PORT": str(port)},
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


def local_keys(state_dir: Path | None = None) -> dict[str, str]:
    """The keys the services need, as `EJSIKA_*` variables: made once per state dir and kept there
    (mode 0600), so data written by one run stays readable by the next; fresh ones without a dir."""
    path = state_dir / "keys.json" if state_dir is not None else None
    kept = json.loads(path.read_text()) if path is not None and path.exists() else {}
    keys = {
        "EJSIKA_NIK_HASH_KEY": secrets.token_urlsafe(32),
        # A Fernet key is 32 random bytes, urlsafe-base64 encoded.
        "EJSIKA_SECRETS_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        # The agencies' references of families (notifications' pseudonyms): kept as long as the data.
        "EJSIKA_PSEUDONYM_KEY": secrets.token_urlsafe(32),
    } | kept  # a key added since the state dir was made is made now, the others kept
    if path is not None and keys != kept:
        path.touch(mode=0o600)
        path.write_text(json.dumps(keys))
    return keys


def start_receiver(port: int, secret: str, env: dict[str, str]) -> subprocess.Popen:
    # The secret goes in the environment: a command line is visible to every local user.
    return subprocess.Popen([sys.executable, "-m", "ejsika_runtime.demo.receiver", str(port)],
                            env={**env, "EJSIKA_DEMO_RECEIVER_SECRET": secret})


def subscribe_demo_agency(notifications_url: str, webhook_url: str, secret: str, auth: httpx.Auth) -> None:
    """The demo education office, through the admin API: it hears of Banten's eligible families."""
    with httpx.Client(base_url=notifications_url, auth=auth, timeout=10) as client:
        agency = client.post("/agencies", json=DEMO_AGENCY)
        if agency.status_code != 409:  # a restart of the demo finds it there
            agency.raise_for_status()
        known = client.get("/subscriptions", params={"agency": DEMO_AGENCY["code"], "active": True}).json()
        for subscription in known:  # the receiver has a new secret on each start
            client.delete(f"/subscriptions/{subscription['id']}").raise_for_status()
        client.post("/subscriptions", json={
            "agency": DEMO_AGENCY["code"], "event_type": "eligibility.assessed",
            "filter": {"region_prefix": "36", "eligible_only": True}, "url": webhook_url, "secret": secret,
        }).raise_for_status()


def seed(registry_url: str, households: int, auth: httpx.Auth) -> None:
    body = {"registrations": Families(seed=int(time.time())).registrations(households)}
    response = httpx.post(f"{registry_url}/households/batch", json=body, timeout=60, auth=auth)
    response.raise_for_status()
    results = [r["result"] for r in response.json()["results"]]
    say(f"demo: registered {results.count('registered')} synthetic households through the registry API")


def import_register(registry_url: str, households: int, auth: httpx.Auth) -> None:
    """A synthetic Banten register file imported as its programme's operator, as a DTKS export would be.

    The same file every time: on a platform started again, the import finds every household there.
    """
    from ejsika_registry.synthetic import generate  # the demo runs where every service is installed

    body = "".join(generate(households, seed=1)).encode()
    response = httpx.post(f"{registry_url}/imports", content=body, headers={"content-type": "text/csv"},
                          timeout=120, auth=auth)
    response.raise_for_status()
    report = response.json()
    say(f"demo: imported a synthetic register of {report['households_read']} households: "
        f"{report['registered']} registered, {report['already_registered']} already there, "
        f"{report['rejected_households']} rejected with {len(report['problems'])} row problems reported")


def demo_auth(stack: EmbeddedStack, client_id: str, username: str | None = None) -> Bearer:
    """Requests as a client of the embedded realm, or as one of its demo people (via ejsika-tests)."""
    if stack.keycloak is None:
        raise RuntimeError("the demo's clients are those of the embedded Keycloak, but EJSIKA_AUTH_ISSUER is set")
    credentials = stack.keycloak.credentials
    password = credentials["users"][username] if username else None
    return Bearer(RenewingToken(stack.auth_issuer, client_id, credentials["clients"][client_id], username, password))


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def print_token_help(stack: EmbeddedStack) -> None:
    """How to get a token of each demo role with curl; the secrets stay in the credentials file."""
    if stack.keycloak is None:
        say(f"  tokens: from the OpenID Connect provider {stack.auth_issuer} (EJSIKA_AUTH_ISSUER)")
        return
    keycloak = stack.keycloak
    creds = _shown(keycloak.credentials_file)
    endpoint = token_endpoint(stack.auth_issuer)
    say(f"  Keycloak {keycloak.url}  realm ejsika, issuer {stack.auth_issuer}")
    say(f"    admin console {keycloak.admin_console}  user {keycloak.credentials['admin']['username']}, "
        f"password: jq -r .admin.password {creds}")
    say("  a token per role (client ejsika-tests, password grant; demo and tests only), in a shell:")
    print(f"    token() {{ curl -s {endpoint} -d grant_type=password -d client_id=ejsika-tests "
          f"-d client_secret=\"$(jq -r '.clients[\"ejsika-tests\"]' {creds})\" -d username=\"$1\" "
          f"-d password=\"$(jq -r --arg u \"$1\" '.users[$u]' {creds})\" | jq -r .access_token; }}", flush=True)
    for username, role, scope in _demo_people():
        print(f"    TOKEN=$(token {username})   # {role}{scope}", flush=True)
    print(f"    curl -H \"authorization: Bearer $TOKEN\" http://127.0.0.1:{SERVICES['registry']}/...", flush=True)
    say("  a machine client's token (client credentials), e.g. an agency's:")
    print(f"    curl -s {endpoint} -d grant_type=client_credentials -d client_id=agency-dinas-pendidikan "
          f"-d client_secret=\"$(jq -r '.clients[\"agency-dinas-pendidikan\"]' {creds})\" | jq -r .access_token",
          flush=True)


def _demo_people() -> list[tuple[str, str, str]]:
    """(username, role, " area=…" or "") of each person of the realm file."""
    realm = json.loads(default_realm_file().read_text())
    people = []
    for user in realm.get("users", []):
        if user.get("serviceAccountClientId") or not user.get("credentials"):
            continue
        scope = "".join(f" {k}={v[0]}" for k, v in sorted(user.get("attributes", {}).items()))
        people.append((user["username"], ",".join(user.get("realmRoles", [])), scope))
    return people


def run_platform(state_dir: Path, households: int = 20) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    children: dict[str, subprocess.Popen] = {}
    with EmbeddedStack(state_dir, progress=say) as stack:
        try:
            asyncio.run(create_topics(stack.kafka_bootstrap))
            # each service as its own database role, owning only its schema (one URL for all if given)
            service_env = {name: {"EJSIKA_DATABASE_URL": url}
                           for name, url in stack.service_database_urls(SERVICES).items()}
            if stack.owns_database:
                say("each service connects to PostgreSQL as its own role (ejsika_<service>), owning only its"
                    f" schema; passwords in {_shown(stack.state_dir / DATABASE_ROLES_FILE)}")
            env = {**os.environ, "EJSIKA_DATABASE_URL": stack.database_url,
                   "EJSIKA_KAFKA_BOOTSTRAP": stack.kafka_bootstrap, "EJSIKA_AUTH_ISSUER": stack.auth_issuer,
                   # the demo's webhook receiver listens on this machine
                   "EJSIKA_WEBHOOKS_ALLOW_PRIVATE": "true", **local_keys(state_dir)}
            secret = new_webhook_secret()
            children["receiver"] = start_receiver(RECEIVER_PORT, secret, env)
            logs = state_dir / "logs"
            logs.mkdir(exist_ok=True)
            say(f"starting registry, monitoring, eligibility and notifications (logs in {logs})…")
            children.update(start_services(env, log_dir=logs, service_env=service_env))
            wait_ready(SERVICES, children)
            subscribe_demo_agency(f"http://127.0.0.1:{SERVICES['notifications']}",
                                  f"http://127.0.0.1:{RECEIVER_PORT}/webhooks", secret,
                                  demo_auth(stack, "ejsika-admin-cli"))
            # registered by the demo pendamping: their token then reads these families
            seed(f"http://127.0.0.1:{SERVICES['registry']}", households,
                 demo_auth(stack, "ejsika-tests", "pendamping-demo"))
            import_register(f"http://127.0.0.1:{SERVICES['registry']}", 10 * households,
                            demo_auth(stack, "ejsika-tests", "operator-jamsosratu"))
            say("platform is up:")
            for name, port in SERVICES.items():
                say(f"  {name:<14} http://127.0.0.1:{port}  (/docs, /metrics, /asyncapi.json)")
            say(f"  demo OPD webhook receiver http://127.0.0.1:{RECEIVER_PORT}/received (prints each webhook below)")
            print_token_help(stack)
            say("press Ctrl-C to stop")
            signal.signal(signal.SIGTERM, _interrupt)
            # A process that dies is told of (name, exit code, end of its log) and started again
            # with back-off; only Ctrl-C or SIGTERM stops the platform.
            supervisor = ProcessSupervisor(
                children, say=say,
                start=lambda name: (start_receiver(RECEIVER_PORT, secret, env) if name == "receiver" else
                                    start_services(env, {name: SERVICES[name]}, logs, service_env)[name]),
                log_of=lambda name: logs / f"{name}.log" if name in SERVICES else None)
            while True:
                supervisor.check()
                time.sleep(0.5)
        except KeyboardInterrupt:
            say("stopping…")
        finally:
            stop(children.values())
