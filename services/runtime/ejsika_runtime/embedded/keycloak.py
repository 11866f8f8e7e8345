"""Keycloak (the OpenID Connect provider) run from the Maven Central distribution, realm `ejsika`.

The realm comes from deploy/keycloak/ejsika-realm.json, which names every client secret and user
password as a `${EJSIKA_...}` placeholder: Keycloak fills them from its environment when it
imports the realm. They are generated here once per state folder and kept, readable by the owner
only, in `<state_dir>/keycloak/credentials.json`:

    {"clients": {"<client id>": "<secret>"}, "users": {"<username>": "<password>"},
     "admin": {"username": "admin", "password": "<password>"}, "env": {"<placeholder>": "<value>"}}

`admin` is the bootstrap administrator of the master realm (the admin console).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import httpx

from ._util import (
    EmbeddedError, Progress, check_port_free, maven, port_in_use, publish, run_checked, terminate, wait_ready,
)
from .kafka import _java, cache_dir

KEYCLOAK_VERSION = "26.4.7"
REALM = "ejsika"
ADMIN_USERNAME = "admin"
_MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_PID_MARKER = "kc.sh"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_JAVA_HEAP = "-Xms64m -Xmx512m"
# C1 only: a server that starts often and serves a handful of requests is done before C2 pays off.
_JAVA_APPEND = "-XX:TieredStopAtLevel=1"


def default_realm_file() -> Path:
    """deploy/keycloak/ejsika-realm.json of the repository this package is installed from."""
    return Path(__file__).resolve().parents[4] / "deploy" / "keycloak" / f"{REALM}-realm.json"


def ensure_keycloak(progress: Progress = print, version: str = KEYCLOAK_VERSION) -> Path:
    """Return the Keycloak home folder, fetching (with Maven) and building the distribution once.

    The build (`kc.sh build --db=dev-file`) happens here, so each start is `start --optimized` and
    never rewrites the shared distribution; the H2 database files live in each state folder.
    """
    home = cache_dir() / f"keycloak-{version}"
    if (home / ".complete").exists():
        return home
    mvn = maven("Keycloak")
    java = _java()
    progress(f"fetching Keycloak {version} from Maven Central and building it (once)…")
    home.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=home.parent))
    try:
        artifact = f"org.keycloak:keycloak-quarkus-dist:{version}:tar.gz"
        cmd = [mvn, "-q", "-B", "-Dstyle.color=never", f"{_MAVEN_DEPENDENCY_PLUGIN}:copy",
               f"-Dartifact={artifact}", f"-DoutputDirectory={work}"]
        run_checked(cmd, f"fetching {artifact} with Maven", ok=lambda: any(work.glob("keycloak-quarkus-dist-*.tar.gz")),
                    cwd=work)
        archives = list(work.glob("keycloak-quarkus-dist-*.tar.gz"))
        with tarfile.open(archives[0]) as archive:
            archive.extractall(work, filter="data")
        archives[0].unlink()
        built = work / f"keycloak-{version}"
        if not (built / "bin" / "kc.sh").exists():
            raise EmbeddedError(f"the Keycloak {version} archive has no keycloak-{version}/bin/kc.sh")
        run_checked([str(built / "bin" / "kc.sh"), "build", "--db=dev-file"], f"building Keycloak {version}",
                    env=_keycloak_env(java))
        publish(built, home)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    progress(f"Keycloak cached in {home}")
    return home


class EmbeddedKeycloak:
    """Keycloak on 127.0.0.1 with the realm `ejsika`; its data and credentials under `<state_dir>/keycloak`."""

    def __init__(
        self,
        state_dir: Path,
        port: int = 8080,
        *,
        realm_file: Path | None = None,
        version: str = KEYCLOAK_VERSION,
        progress: Progress = print,
        startup_timeout: float = 180.0,
    ) -> None:
        self.dir = Path(state_dir).resolve() / "keycloak"
        self.port = port
        self.realm_file = Path(realm_file) if realm_file else default_realm_file()
        self.version = version
        self.startup_timeout = startup_timeout
        self._progress = progress
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.url}/realms/{REALM}"

    @property
    def admin_console(self) -> str:
        return f"{self.url}/admin/master/console/"

    @property
    def log_file(self) -> Path:
        return self.dir / "keycloak.log"

    @property
    def credentials_file(self) -> Path:
        return self.dir / "credentials.json"

    @property
    def credentials(self) -> dict[str, Any]:
        """Client secrets, user passwords and the console admin of this state folder (see module doc)."""
        return self._credentials(self._realm_text())

    def start(self) -> str:
        """Start Keycloak (importing the realm on first use); block until the realm answers. Returns the issuer."""
        if self._proc is not None:
            return self.issuer
        java = _java()
        home = ensure_keycloak(self._progress, self.version)
        pid_file = self.dir / "keycloak.pid"
        check_port_free(self.port, "Keycloak", pid_file, _PID_MARKER)
        self.dir.mkdir(parents=True, exist_ok=True)
        realm = self._realm_text()
        credentials = self._credentials(realm)
        imported = _digest(realm, credentials)
        self._prepare_data(realm, imported)

        self._progress(f"starting Keycloak {self.version} on {self.url} (realm {REALM})…")
        self.log_file.write_text("")
        cmd = [
            str(home / "bin" / "kc.sh"), "start", "--optimized",
            "--http-enabled=true", "--http-host=127.0.0.1", f"--http-port={self.port}",
            # The issuer follows the URL a request used (http://127.0.0.1:PORT), as in development.
            "--hostname-strict=false",
            "--cache=local",
            f"--db-url-path={self.dir}",  # H2 files in <dir>/data/h2
            "--log=file", f"--log-file={self.log_file}",
            # What --import-realm does, from this state folder rather than the distribution's data/import.
            f"-Dkeycloak.migration.dir={self.dir / 'import'}",
            f"-Dquarkus.transaction-manager.object-store.directory={self.dir / 'transaction-logs'}",
        ]
        env = {
            **_keycloak_env(java),
            **credentials["env"],
            "KC_BOOTSTRAP_ADMIN_USERNAME": credentials["admin"]["username"],
            "KC_BOOTSTRAP_ADMIN_PASSWORD": credentials["admin"]["password"],
        }
        with open(self.dir / "keycloak.out", "wb") as out:
            # Own session: a terminal Ctrl-C must not stop Keycloak under the running app.
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, env=env, cwd=self.dir,
            )
        pid_file.write_text(f"{self._proc.pid}\n")
        try:
            wait_ready(self._proc, self._realm_answers, name="Keycloak", timeout=self.startup_timeout,
                       logs=[self.log_file, self.dir / "keycloak.out"])
        except BaseException:
            self.stop()
            raise
        (self.dir / "imported.sha256").write_text(imported + "\n")
        return self.issuer

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            terminate(proc, signal.SIGTERM, timeout=30)  # kc.sh passes SIGTERM on to the JVM
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # a JVM left behind by a killed kc.sh
            except (ProcessLookupError, PermissionError):
                pass
            (self.dir / "keycloak.pid").unlink(missing_ok=True)

    def __enter__(self) -> EmbeddedKeycloak:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _realm_text(self) -> str:
        try:
            return self.realm_file.read_text()
        except OSError as error:
            raise EmbeddedError(f"the realm file {self.realm_file} cannot be read: {error}") from None

    def _credentials(self, realm: str) -> dict[str, Any]:
        """The stored credentials, completed with a new random value for any new placeholder."""
        try:
            stored = json.loads(self.credentials_file.read_text())
        except FileNotFoundError:
            stored = {}
        except (OSError, ValueError) as error:
            raise EmbeddedError(
                f"{self.credentials_file} is unreadable ({error}); delete {self.dir} to start afresh"
            ) from None
        env: dict[str, str] = dict(stored.get("env", {}))
        admin = stored.get("admin") or {"username": ADMIN_USERNAME, "password": secrets.token_urlsafe(18)}
        for name in _PLACEHOLDER.findall(realm):
            if name not in env:
                env[name] = secrets.token_urlsafe(24)
        clients, users = _placeholder_owners(json.loads(realm))
        credentials = {
            "clients": {client_id: env[name] for client_id, name in clients.items()},
            "users": {username: env[name] for username, name in users.items()},
            "admin": admin,
            "env": env,
        }
        if credentials != stored:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.credentials_file.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as file:
                json.dump(credentials, file, indent=2)
                file.write("\n")
            self.credentials_file.with_suffix(".tmp").replace(self.credentials_file)
        return credentials

    def _prepare_data(self, realm: str, imported: str) -> None:
        """Put the realm where the import looks; start afresh when it or the credentials changed.

        Keycloak imports a realm only if it does not exist yet, so a changed realm file or a new
        secret would otherwise never reach the database. The data is only this demo realm.
        """
        data = self.dir / "data"
        recorded = self.dir / "imported.sha256"  # of the realm file and credentials last imported
        changed = not recorded.exists() or recorded.read_text().strip() != imported
        if data.exists() and changed:
            self._progress(f"the realm file or the credentials changed: recreating Keycloak's data in {data}")
            shutil.rmtree(data)
            shutil.rmtree(self.dir / "transaction-logs", ignore_errors=True)
        recorded.unlink(missing_ok=True)
        imports = self.dir / "import"
        imports.mkdir(exist_ok=True)
        (imports / f"{REALM}-realm.json").write_text(realm)

    def _realm_answers(self) -> bool:
        if not port_in_use(self.port):
            return False
        try:
            return httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


def _placeholder_owners(realm: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """{client id: placeholder of its secret}, {username: placeholder of its password}."""
    def placeholder(value: Any) -> str | None:
        match = _PLACEHOLDER.fullmatch(value) if isinstance(value, str) else None
        return match.group(1) if match else None

    clients = {c["clientId"]: name for c in realm.get("clients", []) if (name := placeholder(c.get("secret")))}
    users = {}
    for user in realm.get("users", []):
        for credential in user.get("credentials", []):
            if credential.get("type") == "password" and (name := placeholder(credential.get("value"))):
                users[user["username"]] = name
    return clients, users


def _digest(realm: str, credentials: dict[str, Any]) -> str:
    return hashlib.sha256((realm + json.dumps(credentials, sort_keys=True)).encode()).hexdigest()


def _keycloak_env(java: str) -> dict[str, str]:
    # Keycloak reads any KC_* variable as an option: only the ones set here apply.
    inherited = {k: v for k, v in os.environ.items()
                 if not k.startswith(("KC_", "JAVA_OPTS", "KEYCLOAK_", "DEBUG")) and k != "JAVA"}
    return {**inherited, "JAVA": java, "JAVA_OPTS_KC_HEAP": _JAVA_HEAP, "JAVA_OPTS_APPEND": _JAVA_APPEND}
