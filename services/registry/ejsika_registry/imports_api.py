"""`POST /imports`: an operator uploads a register file (CSV, as `register_file` documents it).

The upload is streamed to a temporary file, never held in memory, then imported from it a thousand
households at a time: a big file by a worker process of its own (`import_worker`), so that reading and
checking run on another core than the relay publishing what the import writes. The answer counts what
happened and lists every rejected row: row number, column, rule, reason, never a value.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from uuid import uuid4

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.db import ConnectionPolicy
from ejsika_runtime.limits import UploadTooLarge
from ejsika_runtime.problems import COMMON_RESPONSES, FieldError, Problem, documented
from ejsika_runtime.service import Service

from .import_worker import import_in_worker
from .imports import ImportSummary, import_register, text_lines
from .register_file import RegisterFileError, RowProblem

MAX_UPLOAD_BYTES = 4 * 1024 ** 3  # a DTKS export of Banten's ~1.3 M households is well under 1 GB
# From this size (some 10,000 households) a worker process imports the file: it takes a second to start.
WORKER_MIN_BYTES = 8 * 1024 ** 2


class RowProblemOut(BaseModel):
    row: int = Field(description="The row as a spreadsheet numbers it: the header is row 1.")
    register_id: str = Field(description="The register's household id (id_dtks) of the row.")
    field: str = Field(description="The column.")
    rule: str
    reason: str


class ImportReport(BaseModel):
    households_read: int
    registered: int
    already_registered: int = Field(description="Imported before: a re-import changes nothing.")
    rejected_households: int
    problems: list[RowProblemOut]
    correlation_id: str = Field(description="Carried by every event of this import.")


def routes(service: Service, nik_key: bytes) -> APIRouter:
    router = APIRouter(tags=["imports"])
    service.streamed_uploads["/imports"] = MAX_UPLOAD_BYTES

    @router.post(
        "/imports", response_model=ImportReport,
        openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
        responses={413: COMMON_RESPONSES[413],
                   415: documented("The body is not text/csv"),
                   422: documented("The file is not a register file: no header, or a required column missing")},
    )
    async def import_register_file(
        request: Request,
        caller: Caller = service.access.allow(Role.OPERATOR, purpose="registration of a family for a programme"),
    ) -> ImportReport:
        """Import a DTKS-style register file (UTF-8 CSV): good households go in, broken rows are reported."""
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "text/csv":
            raise Problem(415, "send the register file as text/csv")
        with tempfile.NamedTemporaryFile(prefix="ejsika-import-") as spool:
            try:
                async for piece in request.stream():
                    spool.write(piece)
            except UploadTooLarge as error:
                raise Problem(413, str(error)) from None
            spool.flush()
            size = spool.tell()
            spool.seek(0)
            problems: list[RowProblem] = []
            programme = caller.principal.programme
            try:
                if size >= WORKER_MIN_BYTES:
                    summary: ImportSummary = await import_in_worker(
                        Path(spool.name), service.settings.database_url,
                        await service.pool.fetchval("SELECT current_schema()"), ConnectionPolicy.of(service.settings),
                        nik_key, importer=caller.processor, programme=programme,
                        programmes_file=getattr(service.settings, "programmes_file", None),
                        on_problem=problems.append, correlation_id=uuid4())
                else:
                    summary = await import_register(
                        text_lines(spool), service.pool, service.outbox, nik_key, importer=caller.processor,
                        accepts=lambda code: programme is not None and code == programme, on_problem=problems.append)
            except RegisterFileError as error:
                raise Problem(422, str(error), errors=[FieldError(field="body", rule="register_file")]) from None
        return ImportReport(
            households_read=summary.households_read, registered=summary.registered,
            already_registered=summary.already_registered, rejected_households=summary.rejected_households,
            problems=[RowProblemOut(**asdict(p)) for p in problems], correlation_id=str(summary.correlation_id))

    return router

