"""`POST /imports`: an operator uploads a register file (CSV, as `register_file` documents it).

The upload is streamed to a temporary file, never held in memory, then imported from it a thousand
households at a time. The answer counts what happened and lists every rejected row: row number,
column, rule, reason, never a value.
"""

from __future__ import annotations

import codecs
from dataclasses import asdict
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from ejsika_runtime.access import Caller
from ejsika_runtime.auth import Role
from ejsika_runtime.limits import UploadTooLarge
from ejsika_runtime.problems import COMMON_RESPONSES, FieldError, Problem, documented
from ejsika_runtime.service import Service

from .imports import ImportSummary, import_register
from .register_file import RegisterFileError, RowProblem

MAX_UPLOAD_BYTES = 4 * 1024 ** 3  # a DTKS export of Banten's ~1.3 M households is well under 1 GB


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
        with tempfile.TemporaryFile() as spool:
            try:
                async for piece in request.stream():
                    spool.write(piece)
            except UploadTooLarge as error:
                raise Problem(413, str(error)) from None
            spool.seek(0)
            problems: list[RowProblem] = []
            programme = caller.principal.programme
            try:
                summary: ImportSummary = await import_register(
                    _lines(spool), service.pool, service.outbox, nik_key, importer=caller.processor,
                    accepts=lambda code: programme is not None and code == programme, on_problem=problems.append)
            except RegisterFileError as error:
                raise Problem(422, str(error), errors=[FieldError(field="body", rule="register_file")]) from None
        return ImportReport(
            households_read=summary.households_read, registered=summary.registered,
            already_registered=summary.already_registered, rejected_households=summary.rejected_households,
            problems=[RowProblemOut(**asdict(p)) for p in problems], correlation_id=str(summary.correlation_id))

    return router


def _lines(spool: BinaryIO) -> Iterator[str]:
    """The spooled upload as text lines, read a piece at a time: UTF-8 (a BOM tolerated; a byte that is
    not UTF-8 becomes U+FFFD in its cell rather than failing the rows after it) without NUL characters,
    which PostgreSQL refuses in text and no register needs."""
    for line in codecs.getreader("utf-8-sig")(spool, errors="replace"):
        yield line.replace("\x00", "")
