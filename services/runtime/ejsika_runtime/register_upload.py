"""`ejsika import FILE.csv`: upload a register file to the registry's `POST /imports`, streaming, with a
progress bar of the bytes sent, and write the registry's report (every rejected row) as JSON."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

PIECE = 1024 * 1024


def upload(path: Path, registry: str, token: str, report: Path | None) -> dict:
    size = path.stat().st_size
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), transient=False, console=None) as progress:
        task = progress.add_task(f"importing {path.name}", total=size)

        def pieces() -> Iterator[bytes]:
            with path.open("rb") as file:
                while piece := file.read(PIECE):
                    progress.advance(task, len(piece))
                    yield piece

        # The registry answers once every household is stored: a long read timeout for a big file.
        answer = httpx.post(f"{registry}/imports", content=pieces(),
                            headers={"content-type": "text/csv", "authorization": f"Bearer {token}",
                                     "content-length": str(size)},
                            timeout=httpx.Timeout(30, read=3600))
    if answer.status_code != 200:
        sys.exit(f"the registry refused the file ({answer.status_code}): {answer.text}")
    result = answer.json()
    if report is not None:
        report.write_text(json.dumps(result, indent=2))
    return result


def main(path: str, registry: str, report: str | None) -> None:
    token = os.environ.get("EJSIKA_TOKEN")
    if not token:
        sys.exit("set EJSIKA_TOKEN to an operator's access token (its programme claim names what it may import)")
    result = upload(Path(path), registry.rstrip("/"), token, Path(report) if report else None)
    print(f"read {result['households_read']:,} households: {result['registered']:,} registered, "
          f"{result['already_registered']:,} already there, {result['rejected_households']:,} rejected "
          f"({len(result['problems']):,} row problems{'' if report else '; --report FILE writes them'})")
