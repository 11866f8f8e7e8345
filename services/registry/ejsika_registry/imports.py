"""Use case: import a DTKS-style register file, streaming, a thousand households per transaction.

Good households go in while broken ones are reported row by row (row, column, rule, never a value).
Each household's request id comes from the register's own id, so importing the same file again finds
every household already there and changes nothing.

Reading and checking the next thousand households overlaps with storing the last: the reader yields
to the event loop between chunks while the database works.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from uuid import UUID, uuid4

from pydantic import ValidationError

from ejsika_contracts import HouseholdRegisteredDataV2
from ejsika_runtime import processing
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.unit_of_work import unit_of_work

from . import households
from .register_file import FileHousehold, RowProblem, read_households
from .registrations import Outcome, member_id_for, household_id_for, register_all

CHUNK = 1000
PURPOSE = "registration of a family for a programme"
# Where a registry rule's field lies in the file: the column, and for a member the row of that member.
COLUMN_OF = {"region_code": "kode_desa", "kk_number": "no_kk", "programme": "program", "address": "alamat",
             "members": "hubungan", "nik": "nik", "birth_date": "tanggal_lahir", "pregnant": "hamil", "sex": "jenis_kelamin",
             "name": "nama", "relation": "hubungan"}


_running = 0  # imports in progress in this process


def running() -> bool:
    """Whether this process is importing: background sweeps (duplicates) wait rather than compete."""
    return _running > 0


@dataclass
class ImportSummary:
    households_read: int = 0
    registered: int = 0
    already_registered: int = 0
    rejected_households: int = 0
    problems: int = 0
    correlation_id: UUID = field(default_factory=uuid4)


@dataclass(frozen=True)
class Chunk:
    households: list[tuple[FileHousehold, HouseholdRegisteredDataV2]]
    problems: list[RowProblem]
    rejected: int  # households refused while reading (their problems are in `problems`)


def chunks(lines: Iterable[str], accepts: Callable[[str], bool], size: int = CHUNK) -> Iterator[Chunk]:
    """The file as chunks of households ready to register, with the problems found while reading."""
    ready: list[tuple[FileHousehold, HouseholdRegisteredDataV2]] = []
    problems: list[RowProblem] = []
    rejected: set[str] = set()
    for item in read_households(lines):
        if isinstance(item, RowProblem):
            problems.append(item)
            rejected.add(item.register_id)
        else:
            data = _data(item, accepts)
            if isinstance(data, RowProblem):
                problems.append(data)
                rejected.add(item.register_id)
            else:
                ready.append((item, data))
        if len(ready) >= size:
            yield Chunk(ready, problems, len(rejected))
            ready, problems, rejected = [], [], set()
    if ready or problems:
        yield Chunk(ready, problems, len(rejected))


def _data(item: FileHousehold, accepts: Callable[[str], bool]) -> HouseholdRegisteredDataV2 | RowProblem:
    registration = item.registration
    programme = registration["programme"] or "jamsosratu"
    if not accepts(programme):
        return RowProblem(item.first_row, item.register_id, "program", "programme_scope",
                          "program is not one the importer may register for")
    household_id = household_id_for(registration["request_id"])
    try:
        return HouseholdRegisteredDataV2.model_validate({
            "household_id": household_id,
            "programme": programme,
            "region_code": registration["region_code"],
            "kk_number": registration["kk_number"],
            "address": registration["address"],
            "members": [{**m, "member_id": member_id_for(household_id, i)}
                        for i, m in enumerate(registration["members"], start=1)],
            "welfare": {k: v for k, v in registration["welfare"].items() if v is not None},
        })
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False, include_context=False)[0]
        return _problem(item, tuple(str(p) for p in first["loc"]), first["type"], "breaks the registration's schema")


def _problem(item: FileHousehold, location: tuple[str, ...], rule: str, reason: str) -> RowProblem:
    """A registry rule broken at `location` (("members", "2", "nik")) as the row and column of the file."""
    row = item.first_row
    if location and location[0] == "members" and len(location) > 1 and location[1].isdigit():
        index = int(location[1])
        row = item.member_rows[index] if index < len(item.member_rows) else item.first_row + index
        location = location[2:] or ("members",)
    column = COLUMN_OF.get(location[0], location[0]) if location else "id_dtks"
    return RowProblem(row, item.register_id, column, rule, f"{column}: {reason}")


def _outcome_problems(item: FileHousehold, outcome: Outcome) -> list[RowProblem]:
    found = [_problem(item, tuple(v.field.replace("[", ".").replace("]", "").split(".")), v.rule, v.reason)
             for v in outcome.errors]
    return found or [_problem(item, (), outcome.result, outcome.reason or outcome.result)]


async def import_register(
    lines: Iterable[str], pool, outbox: Outbox, nik_key: bytes, *, importer: processing.Processor,
    accepts: Callable[[str], bool] = lambda programme: True,
    on_problem: Callable[[RowProblem], None] = lambda problem: None,
    on_progress: Callable[[ImportSummary], None] = lambda summary: None,
) -> ImportSummary:
    """Register every good household of the file; report each problem to `on_problem` as it is found."""
    summary = ImportSummary()
    queue: asyncio.Queue[Chunk | None] = asyncio.Queue(maxsize=2)

    failed: list[Exception] = []

    async def read() -> None:
        try:
            for chunk in chunks(lines, accepts):
                await queue.put(chunk)  # lets the writer's database round trips run meanwhile
        except Exception as error:  # a file that is no register: the writer stops and raises it
            failed.append(error)
        await queue.put(None)

    global _running
    _running += 1
    reader = asyncio.create_task(read())
    try:
        while (chunk := await queue.get()) is not None:
            await _store(chunk, pool, outbox, nik_key, importer, summary, on_problem)
            on_progress(summary)
    finally:
        _running -= 1
        reader.cancel()
    if failed:
        raise failed[0]
    return summary


async def _store(chunk: Chunk, pool, outbox: Outbox, nik_key: bytes, importer: processing.Processor, summary: ImportSummary,
                 on_problem: Callable[[RowProblem], None]) -> None:
    for problem in chunk.problems:
        on_problem(problem)
    summary.problems += len(chunk.problems)
    summary.rejected_households += chunk.rejected
    summary.households_read += chunk.rejected + len(chunk.households)
    if not chunk.households:
        return
    requests = [(file.registration["request_id"], data) for file, data in chunk.households]
    async with unit_of_work(pool, outbox) as uow:
        outcomes = await register_all(uow, requests, summary.correlation_id, nik_key, source="import",
                                      actor=importer.subject)
        registered = [o.household_id for o in outcomes if o.result == "registered"]
        await processing.record(uow.conn, importer, "write", registered, households.PERSONAL_FIELDS,
                                "import of a register file", PURPOSE)
    for (file, _), outcome in zip(chunk.households, outcomes):
        if outcome.result == "registered":
            summary.registered += 1
        elif outcome.result == "already_registered":
            summary.already_registered += 1
        else:
            summary.rejected_households += 1
            found = _outcome_problems(file, outcome)
            summary.problems += len(found)
            for problem in found:
                on_problem(problem)
