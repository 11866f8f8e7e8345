"""Issue 8: the overdue check and the period close run "without stopping live visit intake", on the real
PostgreSQL. A batch of each is held open at its worst moment (its statement done, its transaction not yet
committed) and a visit is taken meanwhile through monitoring's intake (`recorded_visits.take`, the path
of POST /visits):

- overdue: a visit to a household of the open batch waits for that one batch (the batch holds its row
  lock), then is recorded and ends the overdue state the batch raised; a household outside the batch is
  not held up at all;
- period close: intake never waits for a close batch; the visit its batch's statement did not see is
  corrected by the late-visit recheck, even when the recheck runs while that batch is still open (it
  waits for the batch rather than pass over the visit).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

import ejsika_monitoring
from ejsika_contracts import Observations
from ejsika_monitoring import compliance
from ejsika_monitoring.domain.compliance import Period
from ejsika_monitoring.domain.visits import VisitPolicy
from ejsika_monitoring.recorded_visits import Outcome, Visit, take
from ejsika_monitoring.schedules import mark_overdue_batch
from ejsika_runtime.access import Caller, Policy
from ejsika_runtime.auth import Principal, Role
from ejsika_runtime.db import create_pool
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.programme_time import programme_today
from ejsika_runtime.unit_of_work import unit_of_work

pytestmark = pytest.mark.infra

MIGRATIONS = Path(ejsika_monitoring.__file__).parent / "migrations"
MARCH = Period(date(2026, 3, 1), date(2026, 3, 31))
PENDAMPING = "pendamping-1"
CALLER = Caller(Principal(PENDAMPING, frozenset({Role.PENDAMPING})),
                Policy(frozenset({Role.PENDAMPING}), "recording a pendamping's visit to a family", frozenset()),
                "POST /visits")
# Bounds a hang (a visit that never gets through) so that it fails instead; never a latency measure.
HANG = 60


class Gate:
    """A pool whose connections stop, once, right after the first statement containing `after` (in their
    transaction, still open) until `open()`: the moment a batch has done its work and not committed."""

    def __init__(self, pool, after: str) -> None:
        self.pool, self.after = pool, after
        self.reached, self._opened = asyncio.Event(), asyncio.Event()

    def open(self) -> None:
        self._opened.set()

    @contextlib.asynccontextmanager
    async def acquire(self):
        async with self.pool.acquire() as conn:
            yield _Held(conn, self)

    async def _passed(self, sql: str) -> None:
        if self.after in sql and not self.reached.is_set():
            self.reached.set()
            await self._opened.wait()


class _Held:
    def __init__(self, conn, gate: Gate) -> None:
        self._conn, self._gate = conn, gate

    def __getattr__(self, name):
        return getattr(self._conn, name)

    async def execute(self, sql, *args, **kwargs):
        answer = await self._conn.execute(sql, *args, **kwargs)
        await self._gate._passed(sql)
        return answer

    async def fetch(self, sql, *args, **kwargs):
        answer = await self._conn.fetch(sql, *args, **kwargs)
        await self._gate._passed(sql)
        return answer

    async def fetchrow(self, sql, *args, **kwargs):
        answer = await self._conn.fetchrow(sql, *args, **kwargs)
        await self._gate._passed(sql)
        return answer


@pytest.fixture
async def schema(migrated_schema, database_url):
    """The schema, and a pool big enough for a held batch, a visit, a recheck and the test's own reads."""
    name, _ = await migrated_schema("monitoring", MIGRATIONS)
    pool = await create_pool(database_url, name, size=6)
    try:
        yield name, pool
    finally:
        await pool.close()


async def household(pool, next_due: date | None = None, births: tuple[str, ...] = ()) -> tuple[uuid.UUID, list]:
    """An active JSCM household of the pendamping's caseload, its open due visit on `next_due`, its members
    born on `births`."""
    h = uuid.uuid4()
    await pool.execute("INSERT INTO households (household_id, programme, region_code, registered_at, status,"
                       " interval_days, next_due) VALUES ($1, 'jscm', '3672011001', '2025-01-01', 'active', 30, $2)",
                       h, next_due)
    await pool.execute("INSERT INTO household_scope (household_id, programme, region_code, pendamping_id)"
                       " VALUES ($1, 'jscm', '3672011001', $2)", h, PENDAMPING)
    await pool.execute("INSERT INTO enrolments (household_id, programme, status, effective_date, version, changed_at)"
                       " VALUES ($1, 'jscm', 'active', '2025-01-01', 1, now())", h)
    if next_due:
        await pool.execute("INSERT INTO visits (visit_id, household_id, kind, opens_on, due_date)"
                           " VALUES ($1, $2, 'monthly_session', $3, $4)", uuid.uuid4(), h,
                           next_due - timedelta(days=29), next_due)
    members = [uuid.uuid4() for _ in births]
    await pool.executemany("INSERT INTO members (member_id, household_id, birth_date, sex) VALUES ($1, $2, $3, 'F')",
                           [(m, h, date.fromisoformat(b)) for m, b in zip(members, births)])
    return h, members


async def take_visit(pool, schema: str, household_id: uuid.UUID, captured_at: datetime,
                     observations: Observations | None = None) -> Outcome:
    """One visit through the intake of POST /visits, in its own transaction."""
    visit = Visit(uuid.uuid4(), household_id, PENDAMPING, captured_at, None, observations or Observations(), None)
    async with unit_of_work(pool, Outbox(schema)) as uow:
        (outcome,) = await take(uow, [visit], CALLER, datetime.now(timezone.utc), VisitPolicy())
    return outcome


async def waits_for_a_lock(pool, task: asyncio.Task, statement: str) -> bool:
    """Whether `task` came to wait, in its statement containing `statement`, for a lock another transaction
    holds (False: it finished without waiting)."""
    while not task.done():
        if await pool.fetchval("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                               " WHERE NOT l.granted AND strpos(a.query, $1) > 0", statement):
            return True
        await asyncio.sleep(0.02)
    return False


async def events(pool, topic: str) -> list[dict]:
    rows = await pool.fetch("SELECT value FROM outbox WHERE topic = $1 ORDER BY id", topic)
    return [json.loads(bytes(r["value"])) for r in rows]


async def test_a_visit_to_a_household_of_an_open_overdue_batch_waits_for_it_then_ends_its_overdue(schema):
    name, pool = schema
    today = programme_today()
    late, _ = await household(pool, today - timedelta(days=3))
    also_late, _ = await household(pool, today - timedelta(days=2))
    up_to_date, _ = await household(pool, today + timedelta(days=10))
    gate = Gate(pool, "overdue_since = h.next_due")
    batch = asyncio.create_task(mark_overdue_batch(gate, Outbox(name), 10))
    await asyncio.wait_for(gate.reached.wait(), HANG)  # both households marked, not committed

    # Outside the batch: recorded while the batch is still open.
    elsewhere = await asyncio.wait_for(take_visit(pool, name, up_to_date, datetime.now(timezone.utc)), HANG)
    assert elsewhere.result == "recorded" and not batch.done()

    # In the batch: waits for that batch's row lock, and for nothing else.
    visit = asyncio.create_task(take_visit(pool, name, late, datetime.now(timezone.utc)))
    assert await waits_for_a_lock(pool, visit, "FOR UPDATE OF h")
    gate.open()
    assert await asyncio.wait_for(batch, HANG) == 2
    assert (await asyncio.wait_for(visit, HANG)).result == "recorded"

    overdue = {r["household_id"]: r["overdue_since"] for r in await pool.fetch(
        "SELECT household_id, overdue_since FROM households")}
    assert overdue == {late: None, also_late: today - timedelta(days=2), up_to_date: None}
    raised = [(e["data"]["household_id"], e["data"]["overdue"]) for e in await events(pool, "ejsika.visit")
              if e["type"] == "visit.overdue"]
    # The batch's event first (it committed first), then the visit's: raised once, ended once.
    assert [r for r in raised if r[0] == str(late)] == [(str(late), True), (str(late), False)]
    assert [r for r in raised if r[0] == str(also_late)] == [(str(also_late), True)]
    assert await pool.fetchval("SELECT done_at IS NOT NULL FROM visits WHERE household_id = $1"
                               " AND due_date = $2", late, today - timedelta(days=3))


async def test_a_visit_during_an_open_close_batch_is_recorded_at_once_and_corrected_after_it(schema):
    name, pool = schema
    outbox = Outbox(name)
    h, (child,) = await household(pool, births=("2014-06-01",))  # at school: attendance is its commitment
    shard = h.int >> 126
    gate = Gate(pool, "INSERT INTO compliance_results")
    close = asyncio.create_task(compliance.close_batch(gate, outbox, "jscm", MARCH, shard))
    await asyncio.wait_for(gate.reached.wait(), HANG)  # verified without any visit, not committed

    present = Observations.model_validate(
        {"school": [{"member_id": child, "enrolled": True, "days_present": 20, "school_days": 20}]})
    visit = await asyncio.wait_for(
        take_visit(pool, name, h, datetime(2026, 3, 20, 3, tzinfo=timezone.utc), present), HANG)
    assert visit.result == "recorded" and not close.done()  # intake did not wait for the close

    # The recheck reads the visit while the batch that missed it is still open: it waits for the batch.
    recheck = asyncio.create_task(compliance.recheck_late(pool, outbox, lag=timedelta(0)))
    assert await waits_for_a_lock(pool, recheck, "pg_advisory_xact_lock(")
    gate.open()
    assert await asyncio.wait_for(close, HANG) == 1
    assert await asyncio.wait_for(recheck, HANG) == 1

    row = await pool.fetchrow("SELECT result, revision FROM compliance_results WHERE household_id = $1", h)
    assert (row["result"], row["revision"]) == ("compliant", 2)
    published = [(e["data"]["result"], e["data"]["revision"]) for e in await events(pool, "ejsika.compliance")
                 if e["type"] == "compliance.verified"]
    assert published == [("not_verifiable", 1), ("compliant", 2)]
    assert await pool.fetchval("SELECT count(*) FROM visit_records WHERE household_id = $1", h) == 1
