"""A big register file imported in a process of its own, beside the registry's.

Reading, checking and building a household (`import_rows`) is Python's work, and one process runs it on
one core: in the registry's own process it shared that core with the relay publishing the very events
it wrote, and with every request. The worker takes the whole import (`imports.import_register`, on
its own connections) to the machine's other core; the registry's process keeps the relay and the HTTP
routes, and waits for the worker's report.

    python -m ejsika_registry.import_worker   # reads its job as one JSON line on stdin

The job (file, database, schema, the NIK key, who imports what) comes on stdin, never on the command line
where `ps` shows it; the worker answers one JSON line per problem as found, then its summary.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any
from uuid import UUID

from ejsika_runtime import logs, processing
from ejsika_runtime.db import ConnectionPolicy, create_pool
from ejsika_runtime.outbox import Outbox

from .domain import programmes
from .imports import ImportSummary, import_register, running_elsewhere, text_lines
from .register_file import RegisterFileError, RowProblem


class WorkerFailed(RuntimeError):
    """The worker ended without its summary (killed, or a failure it wrote to the registry's log)."""


async def import_in_worker(path: Path, database_url: str, schema: str, policy: ConnectionPolicy, nik_key: bytes, *,
                           importer: processing.Processor, programme: str | None, programmes_file: Path | None,
                           on_problem, correlation_id: UUID) -> ImportSummary:
    """`imports.import_register` of the file at `path`, run by a worker process; problems reported as found.

    Raises RegisterFileError as the import would, WorkerFailed when the worker dies.
    """
    job = {"path": str(path), "database_url": database_url, "schema": schema, "policy": asdict(policy),
           "nik_key": nik_key.hex(), "importer": asdict(importer), "programme": programme,
           "programmes_file": str(programmes_file) if programmes_file else None, "correlation_id": str(correlation_id)}
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ejsika_registry.import_worker",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 20)
    summary: ImportSummary | None = None
    failure: str | None = None
    with running_elsewhere():
        try:
            worker.stdin.write(json.dumps(job).encode() + b"\n")
            await worker.stdin.drain()
            worker.stdin.close()
            async for line in worker.stdout:
                said = json.loads(line)
                if "problem" in said:
                    on_problem(RowProblem(**said["problem"]))
                elif "summary" in said:
                    summary = ImportSummary(**{**said["summary"], "correlation_id": correlation_id})
                elif "register_file" in said:
                    failure = said["register_file"]
            await worker.wait()
        finally:
            if worker.returncode is None:  # the request went away: so does its import
                worker.kill()
                await worker.wait()
    if failure is not None:
        raise RegisterFileError(failure)
    if summary is None:
        raise WorkerFailed(f"the import worker ended ({worker.returncode}) without its summary")
    return summary


async def _work(job: dict[str, Any], say) -> None:
    programme = job["programme"]
    pool = await create_pool(job["database_url"], job["schema"], size=2, policy=ConnectionPolicy(**job["policy"]))
    try:
        with open(job["path"], "rb") as file:
            summary = await import_register(
                text_lines(file), pool, Outbox(job["schema"]), bytes.fromhex(job["nik_key"]),
                importer=processing.Processor(**job["importer"]),
                accepts=lambda code: programme is not None and code == programme,
                on_problem=lambda problem: say({"problem": asdict(problem)}),
                correlation_id=UUID(job["correlation_id"]))
    except RegisterFileError as error:
        say({"register_file": str(error)})
        return
    finally:
        await pool.close()
    say({"summary": {k: v for k, v in asdict(summary).items() if k != "correlation_id"}})


def main() -> None:
    # stdout is the answer to the registry; the log goes where the registry's own goes, as JSON with
    # identifiers masked (an uncaught failure would otherwise print its raw traceback)
    logs.configure("registry", stream=sys.stderr)
    job = json.loads(sys.stdin.readline())
    programmes.use(Path(job["programmes_file"]) if job["programmes_file"] else None)
    out = sys.stdout

    def say(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")

    try:
        asyncio.run(_work(job, say))
    except Exception:
        logging.getLogger(__name__).exception("the import worker failed")
        sys.exit(1)
    out.flush()


if __name__ == "__main__":
    main()
