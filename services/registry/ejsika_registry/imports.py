"""Use case: import a DTKS-style register file, streaming, a thousand households per transaction.

Good households go in while broken ones are reported row by row (row, column, rule, never a value).
Each household's request id comes from the register's own id, so importing the same file again finds
every household already there and changes nothing.

Reading and checking the next thousand households overlaps with storing the last: a thread builds
them while the event loop waits on the database. A household is checked and its rows and
event built without models (`import_rows`; what it is unsure of goes through the model and
`domain.registration`, as any registration), and every table takes a chunk in one statement (COPY
where nothing can be there already). The active-NIK index, not a lookup of each person, refuses a
person active elsewhere: only a chunk it refuses is stored again, looking each person up to name the
household they are active in. A big file is imported this way by a process of its own (`import_worker`).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import BinaryIO
from uuid import UUID, uuid4

import asyncpg
from pydantic import ValidationError

from ejsika_contracts import HouseholdRegisteredDataV2, HouseholdRegisteredV2
from ejsika_runtime import processing, scopes
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.programme_time import programme_date, programme_today

from . import enrolments, history, households, import_rows
from .domain.registration import RegistrationRejected, Violation, register
from .import_rows import Registration, event_time, registration_of_event
from .register_file import FileHousehold, RowProblem, read_households
from .registrations import ConcurrentRegistration, Outcome, household_id_for, member_id_for

CHUNK = 1000
ATTEMPTS = 3  # a chunk whose person is active elsewhere is stored again, looking each person up
HOUSEHOLD_COLUMNS = ("id", "programme", "region_code", "kk_number", "address", "welfare")
PURPOSE = "registration of a family for a programme"
# Where a registry rule's field lies in the file: the column, and for a member the row of that member.
COLUMN_OF = {"region_code": "kode_desa", "kk_number": "no_kk", "programme": "program", "address": "alamat",
             "members": "hubungan", "nik": "nik", "birth_date": "tanggal_lahir", "pregnant": "hamil", "sex": "jenis_kelamin",
             "name": "nama", "relation": "hubungan"}


_running = 0  # imports in progress in this process


def running() -> bool:
    """Whether this process is importing: background sweeps (duplicates) wait rather than compete."""
    return _running > 0


@contextmanager
def running_elsewhere() -> Iterator[None]:
    """This process is importing through a worker (`import_worker`): `running` says so meanwhile."""
    global _running
    _running += 1
    try:
        yield
    finally:
        _running -= 1


def text_lines(file: BinaryIO) -> Iterator[str]:
    """A register file as text lines, read a piece at a time: UTF-8 (a BOM tolerated; a byte that is not
    UTF-8 becomes U+FFFD in its cell rather than failing the rows after it) without NUL characters,
    which PostgreSQL refuses in text and no register needs."""
    # io's reader, not codecs': the same decoding in C, ten times cheaper a line (codecs' StreamReader
    # splits in Python, and on every Unicode line boundary, even inside a cell)
    text = io.TextIOWrapper(file, encoding="utf-8-sig", errors="replace", newline=None)
    try:
        for line in text:
            yield line.replace("\x00", "")
    finally:
        if not file.closed:
            text.detach()  # the caller's file stays open: a collected wrapper would close it


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
    registrations: list[Registration]
    problems: list[RowProblem]
    rejected: int  # households refused while reading (their problems are in `problems`)


def chunks(lines: Iterable[str], accepts: Callable[[str], bool], nik_key: bytes, correlation_id: UUID,
           size: int = CHUNK) -> Iterator[Chunk]:
    """The file as chunks of households ready to store, with the problems found while reading and judging
    them: a household breaking a registry rule is reported here, before any database work."""
    ready: list[Registration] = []
    problems: list[RowProblem] = []
    rejected: set[str] = set()
    today = programme_today()
    correlation = str(correlation_id)
    time, day = _moment()
    for item in read_households(lines, today=today):
        if isinstance(item, RowProblem):
            problems.append(item)
            rejected.add(item.register_id)
            continue
        programme = item.registration["programme"] or "jamsosratu"
        if not accepts(programme):
            problems.append(RowProblem(item.first_row, item.register_id, "program", "programme_scope",
                                       "program is not one the importer may register for"))
            rejected.add(item.register_id)
            continue
        found = import_rows.registration(item, programme, correlation, nik_key, today, time, day) \
            or _judged(item, programme, correlation_id, nik_key, today, day)
        if isinstance(found, Registration):
            ready.append(found)
        else:
            problems.extend(found)
            rejected.add(item.register_id)
        if len(ready) >= size:
            yield Chunk(ready, problems, len(rejected))
            ready, problems, rejected = [], [], set()
            time, day = _moment()
    if ready or problems:
        yield Chunk(ready, problems, len(rejected))


def _moment() -> tuple[str, date]:
    """The events' time of a chunk, and its day in Asia/Jakarta (a candidate's enrolment starts then)."""
    now = datetime.now(timezone.utc)
    return event_time(now), programme_date(now)


def _judged(item: FileHousehold, programme: str, correlation_id: UUID, nik_key: bytes, today: date,
            day: date) -> Registration | list[RowProblem]:
    """The general path, for a household the quick one was unsure of: the model and every rule."""
    data = _data(item, programme)
    if isinstance(data, RowProblem):
        return [data]
    try:
        event = register(data, correlation_id, today)
    except RegistrationRejected as error:
        return _outcome_problems(item, Outcome(item.registration["request_id"], None, "rejected", str(error),
                                               error.violations))
    return registration_of_event(item, event, nik_key, day)


def _data(item: FileHousehold, programme: str) -> HouseholdRegisteredDataV2 | RowProblem:
    registration = item.registration
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
    correlation_id: UUID | None = None,
) -> ImportSummary:
    """Register every good household of the file; report each problem to `on_problem` as it is found."""
    summary = ImportSummary(correlation_id=correlation_id or uuid4())
    queue: asyncio.Queue[Chunk | None] = asyncio.Queue(maxsize=2)

    failed: list[Exception] = []

    async def read() -> None:
        # Each chunk is built in a thread: built on the event loop, it held the loop for the whole chunk
        # while the writer's answers from the database waited, and reading and storing took turns.
        # In a thread the loop gets the interpreter back within its switch interval (5 ms).
        pending = chunks(lines, accepts, nik_key, summary.correlation_id)
        try:
            while (chunk := await asyncio.to_thread(next, pending, None)) is not None:
                await queue.put(chunk)
        except Exception as error:  # a file that is no register: the writer stops and raises it
            failed.append(error)
        await queue.put(None)

    global _running
    _running += 1
    reader = asyncio.create_task(read())
    try:
        while (chunk := await queue.get()) is not None:
            await _store(chunk, pool, outbox, importer, summary, on_problem)
            on_progress(summary)
    finally:
        _running -= 1
        reader.cancel()
    if failed:
        raise failed[0]
    return summary


async def _store(chunk: Chunk, pool, outbox: Outbox, importer: processing.Processor, summary: ImportSummary,
                 on_problem: Callable[[RowProblem], None]) -> None:
    for problem in chunk.problems:
        on_problem(problem)
    summary.problems += len(chunk.problems)
    summary.rejected_households += chunk.rejected
    summary.households_read += chunk.rejected + len(chunk.registrations)
    if not chunk.registrations:
        return
    for attempt in range(ATTEMPTS):
        try:
            async with pool.acquire() as conn, conn.transaction():
                registered, clashes = await _register(conn, chunk.registrations, outbox, importer,
                                                      summary.correlation_id, careful=attempt > 0)
            break
        except asyncpg.UniqueViolationError:
            # A NIK of the chunk is active elsewhere (in the chunk, the registry, or an import committing
            # meanwhile): once more, this time looking each person up first.
            if attempt == ATTEMPTS - 1:
                raise ConcurrentRegistration() from None
    summary.registered += registered
    summary.already_registered += len(chunk.registrations) - registered - len(clashes)
    summary.rejected_households += len(clashes)
    for found in clashes:
        summary.problems += len(found)
        for problem in found:
            on_problem(problem)


async def _register(conn: asyncpg.Connection, chunk: list[Registration], outbox: Outbox,
                    importer: processing.Processor, correlation_id: UUID, *, careful: bool
                    ) -> tuple[int, list[list[RowProblem]]]:
    """Store the households of the chunk not stored yet; (how many, the problems of those refused).

    Optimistic first: the active-NIK index refuses a person active in another household, and only
    then (`careful`) is each person looked up, to name the household they are active in.
    """
    rows = await conn.fetch("SELECT id FROM households WHERE id = ANY($1::uuid[])", [r.household_id for r in chunk])
    existing = {str(r["id"]) for r in rows}
    fresh = [r for r in chunk if r.household_id not in existing]
    clashes: list[list[RowProblem]] = []
    if careful and fresh:
        fresh, clashes = await _without_clashes(conn, fresh)
    if not fresh:
        return 0, clashes
    ids = [r.household_id for r in fresh]
    await conn.copy_records_to_table("households", records=[r.household for r in fresh], columns=HOUSEHOLD_COLUMNS)
    await conn.copy_records_to_table("members", records=[m for r in fresh for m in r.members],
                                     columns=households.MEMBER_COPY_COLUMNS)
    await scopes.remember(conn, [scopes.HouseholdScope(r.household_id, r.programme, r.region_code, None)
                                 for r in fresh])
    await history.write(conn, [
        history.Change(r.household_id, 1, "registered", source="import", actor=importer.subject, cause_id=r.event_id,
                       detail={"programme": r.programme, "region_code": r.region_code})
        for r in fresh])
    await enrolments.enter(conn, [(r.household_id, r.programme, r.day) for r in fresh])
    await households.queue_duplicate_checks(conn, ids)
    await processing.record(conn, importer, "write", ids, households.PERSONAL_FIELDS,
                            "import of a register file", PURPOSE)
    await outbox.copy_serialized(conn, HouseholdRegisteredV2,
                                 [(r.household_id, r.event_id, str(correlation_id), r.event_json) for r in fresh])
    return len(fresh), clashes


async def _without_clashes(conn: asyncpg.Connection, chunk: list[Registration]
                           ) -> tuple[list[Registration], list[list[RowProblem]]]:
    """The households none of whose members is active elsewhere, and the problems of the others: the
    other household is named (a supervisor resolves the clash there), the person is not."""
    claimed = await households.active_households(conn, [n for r in chunk for n in r.niks if n is not None])
    kept, clashes = [], []
    for r in chunk:
        found = [(i, claimed[n]) for i, n in enumerate(r.niks) if n is not None and n in claimed]
        if found:
            where = ", ".join(sorted({str(h) for _, h in found}))
            reason = f"a member is an active member of household {where}"
            clashes.append(_outcome_problems(r.file, Outcome(
                r.file.registration["request_id"], None, "duplicate_member", reason,
                tuple(Violation(f"members[{i}].nik", "nik_registered", reason) for i, _ in found))))
            continue
        claimed.update((n, r.household_id) for n in r.niks if n is not None)
        kept.append(r)
    return kept, clashes
