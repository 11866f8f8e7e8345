"""Use case: activate a rule-set version and reassess every household of its programme in the background.

Activation switches the programme's active version at once: live assessments from then on use it.
A job then walks the programme's households in id order, a chunk per transaction: it reads the chunk's
inputs as columns (packed by PostgreSQL when they were written), decides them with `domain.columns`, and
writes the new version's decisions beside the old ones, which step back (active_rule false) and stay for
comparison. Two chunks are written at once, on two connections, while the next one is decided.
The new version's run towards mandiri starts from each household's current welfare observation
(`domain.assessment.prior_high`): earlier observations are not kept, so their desil under the new
rules is not known. A family halfway to mandiri starts its run again.
Only households whose decision changed get a history row and are announced, their explanation and event
written from the columns (`domain.announcements`, held equal to `assess` by the tests), both by COPY.

A live assessment of a household during the job writes the new version's decision itself; the job
never overwrites it (its inputs may be newer than the chunk's read). A live batch that read the old
version just before the switch may still write an old-version decision after the job passed: the job
ends by reassessing those. Progress is a row of `reassessments`, held under a lease renewed each
chunk: a restarted service (or another replica, once the lease lapses) resumes from the last chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import date
from uuid import UUID, uuid4

import asyncpg
import numpy as np

from ejsika_contracts import EligibilityAssessed
from ejsika_runtime import processing
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.programme_time import programme_today
from ejsika_runtime.unit_of_work import UnitOfWork, unit_of_work

from . import decisions, household_columns, rule_book
from .domain import announcements, columns
from .domain.announcements import random_uuids
from .domain.assessment import Escalation
from .domain.columns import EXITS, GRADUATIONS, STATUSES, Decided, Households, uuid_texts
from .domain.rules import RuleSet

log = logging.getLogger(__name__)

CHUNK = 20_000
WRITERS = 2  # chunks written at once: PostgreSQL writes each on its own core
LEASE_S = 120
POLL_S = 2.0
FIRST = UUID(int=0)


class ActivationRefused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


async def activate(pool: asyncpg.Pool, programme: str, version: int, requested_by: str) -> UUID:
    """Make `version` the programme's active rule set and start the job that reassesses its households."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch("SELECT version, active FROM rule_sets WHERE programme = $1 FOR UPDATE", programme)
        if version not in {r["version"] for r in rows}:
            raise ActivationRefused(404, "no such rule set")
        current = next((r["version"] for r in rows if r["active"]), None)
        if current == version:
            raise ActivationRefused(409, "this version is already the programme's active rule set")
        if await conn.fetchval("SELECT EXISTS (SELECT FROM reassessments WHERE programme = $1 AND state = 'running')",
                               programme):
            raise ActivationRefused(409, "a reassessment of this programme is still running")
        # two statements: the one-active index is checked row by row
        await conn.execute("UPDATE rule_sets SET active = false WHERE programme = $1 AND active", programme)
        await conn.execute("UPDATE rule_sets SET active = true WHERE programme = $1 AND version = $2", programme, version)
        job_id = uuid4()
        await conn.execute(
            "INSERT INTO reassessments (job_id, programme, from_version, to_version, total, requested_by)"
            " SELECT $1, $2, $3, $4, count(*), $5 FROM households WHERE programme = $2",
            job_id, programme, current, version, requested_by)
    return job_id


# The chunk's new decisions, fixed-width, as a binary COPY builds them (numpy, no object per household).
_STAGED = (
    "CREATE TEMP TABLE rule_change_chunk (i int4, household_id uuid, score real, desil int2, status int2,"
    " components int4, missing int4, yearly_amount int8, graduation int2, proposed_exit int2, prior_high int2,"
    " fingerprint text, event_id uuid, welfare_version int4) ON COMMIT DROP"
)
_STAGED_ROW = np.dtype([("count", ">i2")] + [x for name, kind in (
    ("i", ">i4"), ("household_id", "V16"), ("score", ">f4"), ("desil", ">i2"), ("status", ">i2"),
    ("components", ">i4"), ("missing", ">i4"), ("yearly_amount", ">i8"), ("graduation", ">i2"),
    ("proposed_exit", ">i2"), ("prior_high", ">i2"), ("fingerprint", "S64"), ("event_id", "V16"),
    ("welfare_version", ">i4")) for x in ((f"{name}_len", ">i4"), (name, kind))])
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"

# One statement: the old version's decisions step back, the new ones go in beside them (never over one a live
# assessment wrote meanwhile), and the rows whose outcome differs from the decision in force before are answered
# with the inputs they were decided on, for their history: looked up for those rows alone, once they are known
# (a join would carry every row's inputs through the statement, and sorting them spilled to disk).
# The chunk's id range ($9, $10) keeps each table to the chunk's part of its primary key (the planner knows
# nothing of the staged rows, and would scan the whole programme's decisions and households each chunk).
_DECIDE = (
    "WITH stepped AS ("
    "  UPDATE decisions o SET active_rule = false FROM rule_change_chunk t"
    "  WHERE o.household_id = t.household_id AND o.programme = $1 AND o.rule_version <> $2 AND o.active_rule"
    "   AND o.household_id BETWEEN $9 AND $10"
    "  RETURNING o.household_id, o.status, o.desil, o.components, o.yearly_amount, o.graduation, o.proposed_exit),"
    " made AS ("
    "  INSERT INTO decisions (household_id, programme, rule_version, region_code, score, desil, status, missing,"
    "   components, yearly_amount, graduation, proposed_exit, prior_high, assessed_on, fingerprint, event_id,"
    "   welfare_version, active_rule)"
    "  SELECT t.household_id, $1, $2, h.region_code, t.score, nullif(t.desil, 0), ($4::text[])[t.status + 1],"
    "   string_to_array(($5::text[])[t.missing + 1], ','), string_to_array(($6::text[])[t.components + 1], ','),"
    "   t.yearly_amount, ($7::text[])[t.graduation + 1], ($8::text[])[t.proposed_exit + 1], t.prior_high, $3,"
    "   t.fingerprint, t.event_id, t.welfare_version, true"
    "  FROM rule_change_chunk t JOIN households h ON h.household_id = t.household_id"
    "   AND h.household_id BETWEEN $9 AND $10"
    "  ON CONFLICT (household_id, programme, rule_version) DO NOTHING"
    "  RETURNING household_id, region_code, status, desil, components, yearly_amount, graduation, proposed_exit)"
    " SELECT t.i, m.region_code, m.proposed_exit,"
    "  (SELECT x.inputs::text FROM households x WHERE x.household_id = m.household_id) AS inputs"
    " FROM made m JOIN rule_change_chunk t ON t.household_id = m.household_id"
    " LEFT JOIN stepped s ON s.household_id = m.household_id"
    " WHERE s.household_id IS NULL OR (s.status, s.desil, s.components, s.yearly_amount, s.graduation, s.proposed_exit)"
    "  IS DISTINCT FROM (m.status, m.desil, m.components, m.yearly_amount, m.graduation, m.proposed_exit)"
)
# The history of the decisions announced and their events: COPY (a multi-row insert, where INSERT ... SELECT adds
# row by row), into tables that keep rows of up to a page uncompressed (migrations runtime 007 and 017).
_HISTORY_COLUMNS = (
    "event_id", "household_id", "rule_set", "score", "eligible", "components", "explanation", "programme",
    "rule_version", "status", "desil", "missing", "benefits", "yearly_amount", "graduation", "proposed_exit",
    "fingerprint", "inputs", "assessed_on", "prior_high", "active", "announced")


async def read_chunk(conn: asyncpg.Connection, programme: str, after: UUID, size: int) -> Households:
    return await household_columns.read(conn, programme, after, size)


def staged(households: Households, decided: Decided, event_ids: np.ndarray) -> bytes:
    """The chunk's new decisions as a binary COPY of `rule_change_chunk`."""
    n = len(households)
    rows = np.zeros(n, dtype=_STAGED_ROW)
    rows["count"] = len(_STAGED_ROW.names) // 2
    for name in _STAGED_ROW.names[2::2]:
        rows[f"{name}_len"] = _STAGED_ROW[name].itemsize
    scores = decided.scores
    rows["i"] = np.arange(n)
    rows["household_id"] = np.frombuffer(households.ids.tobytes(), dtype="V16")
    rows["score"], rows["desil"], rows["status"] = scores.score, scores.desil, scores.status
    rows["components"], rows["missing"] = decided.components, decided.missing
    rows["yearly_amount"] = decided.benefits.amount
    rows["graduation"], rows["proposed_exit"], rows["prior_high"] = decided.graduation, decided.exit, decided.prior
    rows["fingerprint"] = np.asarray(decided.fingerprint, dtype="S64")
    rows["event_id"] = np.frombuffer(event_ids.tobytes(), dtype="V16")
    rows["welfare_version"] = households.welfare_version
    return _COPY_HEADER + rows.tobytes() + _COPY_TRAILER


async def write_chunk(uow: UnitOfWork, outbox: Outbox, households: Households, rules: RuleSet, today: date,
                      decided: Decided, job_id: UUID) -> int:
    """Store the chunk's new decisions (never over a live one), step the old ones back, keep the history of and
    announce those whose outcome changed; answer how many were announced."""
    conn, n = uow.conn, len(households)
    event_ids = random_uuids(n)  # the assessment that made each decision (its event, when announced)
    await conn.execute(_STAGED)
    await conn.copy_to_table("rule_change_chunk", source=io.BytesIO(staged(households, decided, event_ids)),
                             format="binary")
    changed = await conn.fetch(
        _DECIDE, rules.programme, rules.version, today, list(STATUSES), decided.missing_lists,
        decided.component_lists, list(GRADUATIONS), list(EXITS), household_columns.uuid_of(households.ids[0]),
        household_columns.uuid_of(households.ids[-1]))
    if not changed:
        return 0
    changed = sorted(changed, key=lambda r: r["i"])  # in id order, as the chunk
    rows = np.fromiter((r["i"] for r in changed), dtype=np.int64, count=len(changed))
    escalations = {r["i"]: Escalation.model_validate(json.loads(r["inputs"])["escalation"])
                   for r in changed if r["proposed_exit"] == "paksa"}
    correlation_ids = random_uuids(len(rows))  # the passing of rules starts its own chains of events
    told = announcements.told(households, decided, rules, rows, [r["region_code"] for r in changed], escalations,
                              event_ids[rows], correlation_ids)
    ids = uuid_texts(households.ids[rows]).tolist()
    assessment_ids = uuid_texts(event_ids[rows]).tolist()
    await conn.copy_records_to_table("assessments", columns=_HISTORY_COLUMNS, records=history(
        households, decided, rules, today, rows, ids, assessment_ids, [r["inputs"] for r in changed], told))
    await outbox.copy_serialized(conn, EligibilityAssessed, zip(
        ids, assessment_ids, uuid_texts(correlation_ids).tolist(), told.events))
    await processing.record(conn, processing.Processor(decisions.SOURCE, "service"), "write", ids, decisions.DECIDED,
                            f"rule change {job_id}", decisions.PURPOSE)
    return len(rows)


def history(households: Households, decided: Decided, rules: RuleSet, today: date, rows: np.ndarray,
            ids: list[str], assessment_ids: list[str], inputs: list[str], told: announcements.Told) -> list[tuple]:
    """The history rows (`_HISTORY_COLUMNS`) of the households at `rows`, with the inputs they were decided on."""
    scores = decided.scores
    status = np.asarray(STATUSES, dtype=object)[scores.status[rows]].tolist()
    desil = [d or None for d in scores.desil[rows].tolist()]
    as_list = [listed.split(",") if listed else [] for listed in decided.component_lists]
    components = [as_list[c] for c in decided.components[rows].tolist()]
    as_list = [listed.split(",") if listed else [] for listed in decided.missing_lists]
    missing = [as_list[m] for m in decided.missing[rows].tolist()]
    graduation = [GRADUATIONS[g] for g in decided.graduation[rows].tolist()]
    fingerprints = np.asarray(decided.fingerprint, dtype=object)[rows].tolist()
    return list(zip(
        assessment_ids, ids, [rules.id] * len(rows), scores.score[rows].tolist(), [s == "eligible" for s in status],
        components, told.explanation, [rules.programme] * len(rows), [rules.version] * len(rows), status, desil,
        missing, told.benefits, decided.benefits.amount[rows].tolist(), graduation, told.proposed_exit, fingerprints,
        inputs, [today] * len(rows), decided.prior[rows].tolist(), households.active[rows].tolist(),
        [True] * len(rows)))


async def claim(pool: asyncpg.Pool, job_id: UUID) -> asyncpg.Record | None:
    """Take (or renew) the job's lease; None when it is done or another replica holds it."""
    return await pool.fetchrow(
        "UPDATE reassessments SET claimed_until = now() + make_interval(secs => $2)"
        " WHERE job_id = $1 AND state = 'running' AND (claimed_until IS NULL OR claimed_until < now())"
        " RETURNING job_id, programme, to_version, after_id", job_id, LEASE_S)


async def run(pool: asyncpg.Pool, outbox: Outbox, job_id: UUID, chunk_size: int = CHUNK,
              today: date | None = None) -> bool:
    """Run (or resume) a job to its end; False when another replica holds it or it is over."""
    job = await claim(pool, job_id)
    if job is None:
        return False
    today = today or programme_today()
    rules = await rule_book.version(pool, job["programme"], job["to_version"])
    try:
        await walk(pool, outbox, job_id, rules, job["after_id"] or FIRST, chunk_size, today)
        await finish(pool, outbox, job_id, rules, today)
    except Exception as error:
        log.exception("reassessment %s failed", job_id)
        await pool.execute("UPDATE reassessments SET state = 'failed', finished_at = now(), error = $2"
                           " WHERE job_id = $1", job_id, type(error).__name__)
        raise
    return True


async def finish(pool: asyncpg.Pool, outbox: Outbox, job_id: UUID, rules: RuleSet, today: date) -> None:
    """After the last chunk: reassess what a live batch wrote under the old version meanwhile; done."""
    await _sweep(pool, outbox, rules, today)
    await pool.execute("UPDATE reassessments SET state = 'done', finished_at = now(), claimed_until = NULL"
                       " WHERE job_id = $1", job_id)


async def prepare(pool: asyncpg.Pool, rules: RuleSet, after: UUID, chunk_size: int, today: date
                  ) -> tuple[Households, Decided | None]:
    """The chunk after `after`, read and decided (None when there was none left)."""
    async with pool.acquire() as conn:
        households = await read_chunk(conn, rules.programme, after, chunk_size)
    # the new version's run towards mandiri starts from the observation at hand (domain.assessment.prior_high)
    return households, columns.decide(households, rules, today) if len(households) else None


async def commit(pool: asyncpg.Pool, outbox: Outbox, job_id: UUID, rules: RuleSet, today: date,
                 households: Households, decided: Decided, before: Awaitable | None = None) -> UUID:
    """Write a decided chunk with its progress, in one transaction; answer its last household.

    `before`: the commit of the chunk before, when it is still being written: this chunk's progress is recorded
    only once that one is, so that a resumed job never starts after a chunk that was not written (a chunk written
    twice writes nothing the second time: its decisions are there)."""
    async with unit_of_work(pool, outbox) as uow:
        announced = await write_chunk(uow, outbox, households, rules, today, decided, job_id)
        last = household_columns.uuid_of(households.ids[-1])
        if before is not None:
            await before
        await uow.conn.execute(
            "UPDATE reassessments SET done = done + $2, changed = changed + $3, after_id = $4,"
            " claimed_until = now() + make_interval(secs => $5) WHERE job_id = $1",
            job_id, len(households), announced, last, LEASE_S)
    return last


async def step(pool: asyncpg.Pool, outbox: Outbox, job_id: UUID, rules: RuleSet, after: UUID, chunk_size: int,
               today: date) -> UUID | None:
    """One chunk after `after`; the last household done, or None when there was none left."""
    households, decided = await prepare(pool, rules, after, chunk_size, today)
    return None if decided is None else await commit(pool, outbox, job_id, rules, today, households, decided)


async def walk(pool: asyncpg.Pool, outbox: Outbox, job_id: UUID, rules: RuleSet, after: UUID, chunk_size: int,
               today: date, done: Callable[[], None] | None = None, writers: int = WRITERS) -> None:
    """Every chunk after `after`: each read and decided (on its own connection) while up to `writers` chunks
    before it are written, each in its own transaction on its own connection, so that PostgreSQL writes on as
    many cores while Python decides the next. Progress moves chunk by chunk, in order (`commit`)."""
    # The chunk's statement joins what it stepped back to what it wrote: planned from a count of decisions taken
    # before the last job wrote a whole programme's, it loops over one for each row of the other (minutes a chunk).
    await pool.execute("ANALYZE decisions")
    ahead = asyncio.ensure_future(prepare(pool, rules, after, chunk_size, today))
    writing: list[asyncio.Future] = []  # in chunk order
    try:
        while True:
            households, decided = await ahead
            if decided is None:
                break
            ahead = asyncio.ensure_future(
                prepare(pool, rules, household_columns.uuid_of(households.ids[-1]), chunk_size, today))
            if len(writing) >= writers:
                await _written(writing.pop(0), done)
            writing.append(asyncio.ensure_future(commit(pool, outbox, job_id, rules, today, households, decided,
                                                        writing[-1] if writing else None)))
        while writing:
            await _written(writing.pop(0), done)
    finally:
        for pending in (ahead, *writing):
            if not pending.done():
                pending.cancel()
            with contextlib.suppress(BaseException):
                await pending


async def _written(chunk: asyncio.Future, done: Callable[[], None] | None) -> None:
    await chunk
    if done is not None:
        done()


async def _sweep(pool: asyncpg.Pool, outbox: Outbox, rules: RuleSet, today: date, batch: int = 2_000) -> None:
    """Reassess, live, the households whose decision in force is still of another version: written by a
    live batch that read the old version just before the switch."""
    while True:
        async with unit_of_work(pool, outbox) as uow:
            ids = [r["household_id"] for r in await uow.conn.fetch(
                "SELECT household_id FROM decisions WHERE programme = $1 AND active_rule AND rule_version <> $2"
                " LIMIT $3", rules.programme, rules.version, batch)]
            if ids:
                await decisions.reassess(uow, [(h, None) for h in ids], today)
        if len(ids) < batch:
            return


async def resume_all(pool: asyncpg.Pool, outbox: Outbox) -> int:
    """Run every job left running (by a stopped replica, or just requested); answer how many ran."""
    ran = 0
    for row in await pool.fetch("SELECT job_id FROM reassessments WHERE state = 'running'"
                                " AND (claimed_until IS NULL OR claimed_until < now()) ORDER BY started_at"):
        with contextlib.suppress(Exception):  # a failed job is marked failed; the others still run
            ran += await run(pool, outbox, row["job_id"])
    return ran


def worker(pool_of: Callable[[], asyncpg.Pool], outbox: Outbox) -> Callable[[], Awaitable[None]]:
    """The background loop: jobs requested here or on another replica, and jobs a restart left behind."""

    async def reassess_after_rule_changes() -> None:
        while True:
            try:
                await resume_all(pool_of(), outbox)
            except Exception:
                log.exception("reassessment worker")
            await asyncio.sleep(POLL_S)

    return reassess_after_rule_changes

