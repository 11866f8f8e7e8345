"""Use case: verifikasi komitmen when a period closes, and its corrections when visits come late.

Closing: once a programme's period has ended (its last day is over in Asia/Jakarta), every household
active in the programme is verified, in bounded batches (one transaction each, keyed by household id,
resumable where the last one stopped), never one long transaction that would hold up visit intake.
The household ids are split in shards closed side by side, so that the database's cores share the work.

A million households a period (issue 8: under a minute): each batch is verified, stored and announced by
one statement, the rules of `domain.compliance` written in SQL over the members projection and the visits'
observations, the events' JSON written by SQL straight into the outbox (`ejsika_runtime.outbox.insert_events_sql`); building them in
Python, a pydantic model per household, was most of the time. The pure `verify_household` stays the
reference: an integration test holds the SQL to it on generated households, another holds the events to
the frozen JSON Schemas.
Each household with a commitment gets one stored result and one `compliance.verified`; a household of
which monitoring knows no member (registered with household.registered v1) is `not_verifiable`; one
whose members have no commitment in the period has nothing to verify and gets no result.

Late visits, decoupled from intake: the same loop reads the visits received since its mark (a little
behind now, so that an intake transaction still open is not passed over) and re-verifies the closed
periods their `captured_at` falls into. A correction (revision + 1) is published only when the result
changed. Either way the same visits give the same result, whatever order they arrived in.

Intake never waits for a close (a batch locks no row a visit writes or locks). A visit committed while
its household's batch is being closed may be missed by that batch's statement (it read the database
before); the recheck then corrects it. For that, each batch holds a per-period lock shared with the other
batches, and the recheck takes it exclusively before reading the published results: it waits for a batch
still open (whose results it could not see yet) instead of passing over the visit.

Escalation: a member non-compliant on one commitment for `escalate_after_periods` periods in a row
raises one `compliance.escalated` at the period that completes the run (stored, so never twice).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from uuid import NAMESPACE_URL, UUID, uuid5

import asyncpg

from ejsika_contracts import ComplianceEscalated, ComplianceVerified
from ejsika_runtime.outbox import Outbox, insert_events_sql, wake_relay_sql
from ejsika_runtime.programme_time import ZONE, programme_today

from .domain import programmes
from .domain.compliance import (
    ESCALATION,
    Commitments,
    Period,
    last_finished_period,
    period_of,
    periods_back,
)

SOURCE = "monitoring"
# The bound of a close's transaction: 5,000 households, about a quarter of a second of one core (10,000
# measured no cheaper a household, with transactions twice as long).
BATCH_HOUSEHOLDS = 5_000
LATE_BATCH_VISITS = 5_000
# How far behind now the late-visit mark stays: an intake transaction older than this is not expected.
LATE_LAG = timedelta(seconds=60)
CORRELATION = uuid5(NAMESPACE_URL, "urn:ejsika:monitoring:compliance")
log = logging.getLogger(__name__)


def commitments_for(code: str) -> Commitments:
    """The programme's commitments, from programmes.json (its defaults for a programme not named)."""
    p = programmes.programme(code)
    c = p.commitments
    return Commitments(school_attendance_min=c.school_attendance_min, school_age=tuple(c.school_age),
                       toddler_age_months=tuple(c.toddler_age_months),
                       escalate_after_periods=c.escalate_after_periods, period_months=p.verification_period_months)


def _bounds(period: Period) -> tuple[datetime, datetime]:
    """The period as instants: from its first day's midnight to the next day after its end, in WIB."""
    return (datetime.combine(period.start, time(), ZONE),
            datetime.combine(period.end + timedelta(days=1), time(), ZONE))


# The verification of a batch of households, as CTEs of one statement: the rules of `domain.compliance`
# (whose `verify_household` is the reference the integration tests hold this to), over the members
# projection and the observations of the visits captured in the period. A household of which no active
# member is known is `not_verifiable` with no member; one whose members have no commitment has no row.
# $1 the households, $2/$3 the period as instants [from, to), $4 its last day, $5 the attendance minimum
# (numeric: 17 of 20 days is exactly 0.85), $6/$7 the school ages (years), $8/$9 a toddler's (months).
# Ages as birth-date bounds: aged at least n (years or months) on the last day E is born on or before
# E - n (a day missing from a shorter month counts as its last day, as `domain.compliance` counts), so
# each member is compared with dates, never aged row by row. The members and the visits' observations
# (jsonb: parsed when stored) are each read once.
VERIFY = """
roster AS (
  SELECT household_id, member_id, pregnant, birth_date FROM members
  WHERE household_id = ANY($1::uuid[]) AND active),
known AS (SELECT DISTINCT household_id FROM roster),
committed AS (
  SELECT household_id, member_id, 'school' AS commitment FROM roster
  WHERE birth_date <= ($4::date - make_interval(years => $6::int))::date
    AND birth_date > ($4::date - make_interval(years => $7::int + 1))::date AND birth_date <= $4::date
  UNION ALL SELECT household_id, member_id, 'toddler' FROM roster
  WHERE birth_date <= ($4::date - make_interval(months => $8::int))::date
    AND birth_date > ($4::date - make_interval(months => $9::int + 1))::date AND birth_date <= $4::date
  UNION ALL SELECT household_id, member_id, 'antenatal' FROM roster WHERE pregnant AND birth_date <= $4::date),
seen AS (
  SELECT v.household_id, o.school, o.antenatal, o.toddlers
  FROM visit_records v, jsonb_to_record(v.observations) AS o(school jsonb, antenatal jsonb, toddlers jsonb)
  WHERE v.household_id = ANY($1::uuid[]) AND v.captured_at >= $2::timestamptz AND v.captured_at < $3::timestamptz),
observed AS (
  SELECT s.household_id, 'school' AS commitment, o.member_id, o.days_present, o.school_days, o.enrolled,
    NULL::boolean AS checked, NULL::boolean AS weighed, NULL::boolean AS immunised_on_schedule
  FROM seen s, jsonb_to_recordset(s.school) AS o(member_id uuid, enrolled boolean, days_present int, school_days int)
  UNION ALL
  SELECT s.household_id, 'antenatal', o.member_id, NULL, NULL, NULL, o.checked, NULL, NULL
  FROM seen s, jsonb_to_recordset(s.antenatal) AS o(member_id uuid, checked boolean)
  UNION ALL
  SELECT s.household_id, 'toddler', o.member_id, NULL, NULL, NULL, NULL, o.weighed, o.immunised_on_schedule
  FROM seen s, jsonb_to_recordset(s.toddlers) AS o(member_id uuid, weighed boolean, immunised_on_schedule boolean)),
kept AS (
  SELECT household_id, member_id, commitment,
    sum(coalesce(days_present, 0)) AS present, sum(coalesce(school_days, 0)) AS days, bool_and(enrolled) AS enrolled,
    bool_or(checked) AS checked, bool_or(weighed) AND bool_or(immunised_on_schedule) AS monitored
  FROM observed GROUP BY 1, 2, 3),
judged AS (
  SELECT c.household_id, c.member_id, c.commitment,
    CASE WHEN k.member_id IS NULL THEN 'not_verifiable'
      WHEN c.commitment = 'school' THEN CASE WHEN NOT k.enrolled THEN 'non_compliant'
        WHEN k.days = 0 THEN 'not_verifiable' WHEN k.present >= $5::numeric * k.days THEN 'compliant'
        ELSE 'non_compliant' END
      WHEN c.commitment = 'antenatal' THEN CASE WHEN k.checked THEN 'compliant' ELSE 'non_compliant' END
      ELSE CASE WHEN k.monitored THEN 'compliant' ELSE 'non_compliant' END
    END AS result,
    CASE WHEN c.commitment = 'school' AND k.days > 0 THEN round(k.present::numeric / k.days, 4)::float8 END
      AS attendance_rate
  FROM committed c LEFT JOIN kept k USING (household_id, member_id, commitment)),
verified AS (
  SELECT household_id,
    CASE WHEN bool_or(result = 'non_compliant') THEN 'non_compliant'
      WHEN bool_or(result = 'not_verifiable') THEN 'not_verifiable' ELSE 'compliant' END AS result,
    -- [MemberCompliance] written as text: ids, constants and numbers, nothing to escape (json_build_object
    -- per member was a third of the close)
    ('[' || string_agg('{"member_id":"' || member_id || '","commitment":"' || commitment || '","result":"'
                       || result || '","attendance_rate":' || coalesce(attendance_rate::text, 'null') || '}', ','
                       -- a UUID sorts as its text does
                       ORDER BY commitment, member_id) || ']')::json AS members
  FROM judged GROUP BY household_id
  UNION ALL
  SELECT h, 'not_verifiable', '[]'::json FROM unnest($1::uuid[]) AS h
  WHERE NOT EXISTS (SELECT 1 FROM known k WHERE k.household_id = h))
"""


def _verify_arguments(household_ids: Sequence[UUID], period: Period, c: Commitments) -> tuple:
    start, end = _bounds(period)
    return (list(household_ids), start, end, period.end, Decimal(str(c.school_attendance_min)), *c.school_age,
            *c.toddler_age_months)


def _verified_data(household: str, programme: str, period_start: str, period_end: str, result: str, members: str,
                   revision: str) -> str:
    """The `data` of a compliance.verified, as a SQL expression over these columns or parameters."""
    return (f"json_build_object('household_id', {household}, 'programme', {programme}, 'period_start', {period_start},"
            f" 'period_end', {period_end}, 'result', {result}, 'members', {members}, 'revision', {revision})")


async def verify(conn: asyncpg.Connection, household_ids: Sequence[UUID], period: Period,
                 c: Commitments) -> dict[UUID, tuple[str, list[dict]]]:
    """The result and member results of these households in `period` (one statement); a household without
    a commitment is left out."""
    rows = await conn.fetch(f"WITH {VERIFY} SELECT household_id, result, members::text AS members FROM verified",
                            *_verify_arguments(household_ids, period, c))
    return {r["household_id"]: (r["result"], json.loads(r["members"])) for r in rows}


def _correlation(household: UUID, programme: str, period: Period) -> UUID:
    """One correlation for a household's period: its verification, corrections and escalations."""
    return uuid5(CORRELATION, f"{household}/{programme}/{period.start}")


def _correlations(households: Sequence[UUID], programme: str, period: Period) -> list[UUID]:
    return [_correlation(h, programme, period) for h in households]


# The per-period lock of the paragraph above, in this schema: $1 the programme, $2 the period's first day.
PERIOD_LOCK_KEY = "hashtextextended(current_schema() || '/compliance/' || $1::text || '/' || $2::date::text, 0)"
# A batch also takes, for its transaction only, the memory its statement's hash tables need: the planner
# cannot count the observations inside each visit, and with the default work_mem they spilled to disk.
CLOSE_WORK_MEM = "64MB"
CLOSING = (f"SELECT pg_advisory_xact_lock_shared({PERIOD_LOCK_KEY}),"
           f" set_config('work_mem', '{CLOSE_WORK_MEM}', true)")
CLOSES_SETTLED = f"SELECT pg_advisory_xact_lock({PERIOD_LOCK_KEY})"


def _outcome(result: str, members: list[dict]) -> tuple:
    """What a correction is about: the household's and each member's result. A new attendance rate that
    leaves every result as it was is not a correction (the stored row stays as it was published)."""
    return result, sorted((m["member_id"], m["commitment"], m["result"]) for m in members)


# A batch closed in one statement: verified, stored (a result stored already stays as it is) and announced.
# $10 the correlation of each household of $1, $11 the programme, $12 the period's first day.
CLOSE = (
    f"WITH {VERIFY},"
    " stored AS (INSERT INTO compliance_results (household_id, programme, period_start, period_end, result, members)"
    "   SELECT household_id, $11::text, $12::date, $4::date, result, members FROM verified"
    "   ON CONFLICT DO NOTHING RETURNING household_id),"
    " announced AS (SELECT v.household_id, c.correlation_id, "
    + _verified_data("v.household_id", "$11::text", "$12::date", "$4::date", "v.result", "v.members", "1") + " AS data"
    "   FROM verified v JOIN stored USING (household_id)"
    "   JOIN unnest($1::uuid[], $10::uuid[]) AS c(household_id, correlation_id) USING (household_id)),"
    f" added AS ({insert_events_sql(ComplianceVerified, SOURCE, 'announced')})"
)

# Corrections: the results that changed, stored with revision + 1 and announced.
# $1 households, $2 results, $3 members (json), $4 correlations, $5 programme, $6 the period's first day.
CORRECT = (
    "WITH t AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::json[], $4::uuid[])"
    "   AS t(household_id, result, members, correlation_id)),"
    " corrected AS (UPDATE compliance_results r SET result = t.result, members = t.members,"
    "   revision = r.revision + 1, published_at = now() FROM t"
    "   WHERE r.household_id = t.household_id AND r.programme = $5 AND r.period_start = $6"
    "   RETURNING r.household_id, r.period_end, r.revision),"
    " announced AS (SELECT t.household_id, t.correlation_id, "
    + _verified_data("t.household_id", "$5::text", "$6::date", "c.period_end", "t.result", "t.members", "c.revision")
    + " AS data FROM corrected c JOIN t USING (household_id)),"
    f" added AS ({insert_events_sql(ComplianceVerified, SOURCE, 'announced')})"
)

# Escalations completed by a period: a member non-compliant on one commitment now and in the
# `escalate_after_periods` - 1 periods before, and not in the one before those (a run of exactly that
# length: `domain.compliance.escalations`); stored, so never raised twice.
# $1 households, $2 programme, $3 the period's first day, $4 the earlier periods' first days (oldest first),
# $5 escalate_after_periods, $6 the correlations of $1, $7 the period's last day.
ESCALATE = (
    "WITH now_failing AS ("
    "   SELECT r.household_id, (m->>'member_id')::uuid AS member_id, m->>'commitment' AS commitment"
    "   FROM compliance_results r, json_array_elements(r.members) m"
    "   WHERE r.household_id = ANY($1::uuid[]) AND r.programme = $2 AND r.period_start = $3"
    "     AND r.result = 'non_compliant' AND m->>'result' = 'non_compliant'),"
    # The earlier failures of these households only: an array (the primary key is read for them, whatever
    # the table's statistics say), and no join (a run is counted by grouping the current and earlier ones).
    " failed_before AS ("
    "   SELECT r.household_id, (m->>'member_id')::uuid AS member_id, m->>'commitment' AS commitment,"
    "     array_position($4::date[], r.period_start) AS n"
    "   FROM compliance_results r, json_array_elements(r.members) m"
    "   WHERE r.household_id = ANY(ARRAY(SELECT DISTINCT household_id FROM now_failing)) AND r.programme = $2"
    "     AND r.period_start = ANY($4::date[]) AND m->>'result' = 'non_compliant'),"
    " runs AS ("
    "   SELECT household_id, member_id, commitment FROM ("
    "     SELECT household_id, member_id, commitment, 0 AS n FROM now_failing"
    "     UNION ALL SELECT household_id, member_id, commitment, n FROM failed_before) AS failures"
    "   GROUP BY 1, 2, 3"
    "   HAVING bool_or(n = 0) AND count(*) FILTER (WHERE n > 1) = $5::int - 1 AND count(*) FILTER (WHERE n = 1) = 0),"
    " raised AS (INSERT INTO compliance_escalations (member_id, commitment, programme, period_start, household_id)"
    "   SELECT member_id, commitment, $2, $3, household_id FROM runs ON CONFLICT DO NOTHING"
    "   RETURNING household_id, member_id, commitment),"
    " announced AS (SELECT r.household_id, c.correlation_id, json_build_object('household_id', r.household_id,"
    "   'programme', $2::text, 'member_id', r.member_id, 'commitment', r.commitment,"
    "   'kind', CASE r.commitment " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in ESCALATION.items()) + " END,"
    "   'consecutive_periods', $5::int, 'period_end', $7::date) AS data"
    "   FROM raised r JOIN unnest($1::uuid[], $6::uuid[]) AS c(household_id, correlation_id) USING (household_id)),"
    f" added AS ({insert_events_sql(ComplianceEscalated, SOURCE, 'announced')})"
)


async def _escalate(conn: asyncpg.Connection, outbox: Outbox, programme: str, period: Period,
                    households: Sequence[UUID], correlations: Sequence[UUID], c: Commitments) -> int:
    """Raise the escalations `period` completes for these households (their results stored): how many."""
    if not households:
        return 0
    earlier = periods_back(period, c.escalate_after_periods, c)
    row = await conn.fetchrow(f"{ESCALATE} {wake_relay_sql(outbox.channel)}", list(households), programme,
                              period.start, [p.start for p in earlier], c.escalate_after_periods,
                              list(correlations), period.end)
    return row["added"]


# The household ids in shards closed side by side (each its own batches and progress), so that a close
# uses both cores of the database: the shard i holds the ids from SHARD_FIRST[i] to SHARD_LAST[i].
SHARDS = 4
PARALLEL_SHARDS = 2
SHARD_FIRST = [UUID(int=i << 126) for i in range(SHARDS)]
SHARD_LAST = [UUID(int=((i + 1) << 126) - 1) for i in range(SHARDS)]
NEXT_IN_SHARD = (
    "SELECT household_id FROM enrolments WHERE programme = $1 AND status = 'active'"
    " AND household_id {after} $2 AND household_id <= $3 ORDER BY household_id LIMIT $4")


async def close_batch(pool: asyncpg.Pool, outbox: Outbox, programme: str, period: Period, shard: int = 0,
                      batch: int = BATCH_HOUSEHOLDS) -> int | None:
    """Close the next batch of a shard of `period` for `programme` in one transaction: the households
    verified, or None when the shard is (now) closed."""
    c = commitments_for(programme)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(CLOSING, programme, period.start)
        await conn.execute("INSERT INTO compliance_period_shards (programme, period_start, shard) VALUES ($1, $2, $3)"
                           " ON CONFLICT DO NOTHING", programme, period.start, shard)
        # The row lock makes replicas take turns: each batch is closed once.
        state = await conn.fetchrow("SELECT closed_through, closed_at FROM compliance_period_shards"
                                    " WHERE programme = $1 AND period_start = $2 AND shard = $3 FOR UPDATE",
                                    programme, period.start, shard)
        if state["closed_at"] is not None:
            return None
        after = state["closed_through"]
        households = [r["household_id"] for r in await conn.fetch(
            NEXT_IN_SHARD.format(after=">" if after else ">="), programme, after or SHARD_FIRST[shard],
            SHARD_LAST[shard], batch)]
        if households:
            correlations = _correlations(households, programme, period)
            await conn.execute(f"{CLOSE} {wake_relay_sql(outbox.channel)}", *_verify_arguments(households, period, c),
                               correlations, programme, period.start)
            await _escalate(conn, outbox, programme, period, households, correlations, c)
        await conn.execute("UPDATE compliance_period_shards SET closed_through = coalesce($4, closed_through),"
                           " closed_at = CASE WHEN $5 THEN now() END"
                           " WHERE programme = $1 AND period_start = $2 AND shard = $3",
                           programme, period.start, shard, households[-1] if households else None,
                           len(households) < batch)
        return len(households)


async def close_period(pool: asyncpg.Pool, outbox: Outbox, programme: str, period: Period,
                       batch: int = BATCH_HOUSEHOLDS, parallel: int = PARALLEL_SHARDS) -> int:
    """Close `period` of `programme`, `parallel` shards at a time, each batch by batch; the households
    verified by this call (0 when the period was closed already)."""
    await pool.execute("INSERT INTO compliance_periods (programme, period_start, period_end) VALUES ($1, $2, $3)"
                       " ON CONFLICT DO NOTHING", programme, period.start, period.end)
    if await pool.fetchval("SELECT closed_at IS NOT NULL FROM compliance_periods WHERE programme = $1"
                           " AND period_start = $2", programme, period.start):
        return 0
    waiting = list(range(SHARDS))
    total = 0

    async def work() -> None:
        nonlocal total
        while waiting:
            shard = waiting.pop(0)
            while (closed := await close_batch(pool, outbox, programme, period, shard, batch)) is not None:
                total += closed

    await asyncio.gather(*(work() for _ in range(max(1, min(parallel, SHARDS)))))
    await pool.execute("UPDATE compliance_periods p SET closed_at = now() WHERE programme = $1 AND period_start = $2"
                       " AND closed_at IS NULL AND (SELECT count(*) FROM compliance_period_shards s"
                       "   WHERE s.programme = p.programme AND s.period_start = p.period_start"
                       "   AND s.closed_at IS NOT NULL) = $3", programme, period.start, SHARDS)
    return total


async def recheck_late(pool: asyncpg.Pool, outbox: Outbox, batch: int = LATE_BATCH_VISITS,
                       lag: timedelta = LATE_LAG) -> int | None:
    """Re-verify the closed periods of the next visits received after the mark: the corrections
    published, or None when no visit is waiting."""
    async with pool.acquire() as conn, conn.transaction():
        mark = await conn.fetchval("SELECT received_through FROM compliance_late_mark FOR UPDATE")
        # The batch ends at a received_at, never between visits of one arrival (one intake statement
        # gives all its visits the same received_at).
        upto = await conn.fetchval(
            "SELECT max(received_at) FROM (SELECT received_at FROM visit_records WHERE received_at > $1"
            " AND received_at <= now() - $2::interval ORDER BY received_at LIMIT $3) AS next", mark, lag, batch)
        if upto is None:
            return None
        rows = await conn.fetch(
            "SELECT DISTINCT v.household_id, (v.captured_at AT TIME ZONE 'Asia/Jakarta')::date AS day, e.programme"
            " FROM visit_records v JOIN enrolments e USING (household_id)"
            " WHERE v.received_at > $1 AND v.received_at <= $2", mark, upto)
        corrected = await reverify(conn, outbox, [(r["household_id"], r["programme"], r["day"]) for r in rows])
        await conn.execute("UPDATE compliance_late_mark SET received_through = $1", upto)
        return corrected


async def reverify(conn: asyncpg.Connection, outbox: Outbox, visited: Sequence[tuple[UUID, str, date]]) -> int:
    """Verify again the periods already published that these (household, programme, day) fall into; publish
    a correction where the result changed. Answers how many."""
    by_period: dict[tuple[str, Period], set[UUID]] = defaultdict(set)
    for household, programme, day in visited:
        by_period[(programme, period_of(day, commitments_for(programme)))].add(household)
    corrected = 0
    for (programme, period), households in by_period.items():
        c = commitments_for(programme)
        await conn.execute(CLOSES_SETTLED, programme, period.start)  # a batch of it still open commits first
        published = {r["household_id"]: r for r in await conn.fetch(
            "SELECT household_id, result, members, revision FROM compliance_results"
            " WHERE household_id = ANY($1::uuid[]) AND programme = $2 AND period_start = $3 FOR UPDATE",
            list(households), programme, period.start)}
        if not published:
            continue  # not closed yet (the close will count these visits), or nothing to verify then
        found = await verify(conn, list(published), period, c)
        changed = {h: v for h, v in found.items()
                   if _outcome(*v) != _outcome(published[h]["result"], json.loads(published[h]["members"]))}
        if not changed:
            continue
        ids = list(changed)
        correlations = _correlations(ids, programme, period)
        await conn.execute(f"{CORRECT} {wake_relay_sql(outbox.channel)}", ids, [r for r, _ in changed.values()],
                           [json.dumps(m) for _, m in changed.values()], correlations, programme, period.start)
        await _escalate(conn, outbox, programme, period, ids, correlations, c)
        corrected += len(changed)
    return corrected


async def run_once(pool: asyncpg.Pool, outbox: Outbox, today: date | None = None) -> None:
    """Close each programme's last finished period (once), then take the late visits waiting."""
    today = today or programme_today()
    for code in sorted(programmes.PROGRAMMES):
        await close_period(pool, outbox, code, last_finished_period(today, commitments_for(code)))
    while await recheck_late(pool, outbox) is not None:
        pass


def period_close_loop(pool_of, outbox: Outbox, every_s: float = 60.0):
    """The background loop of `service.background`: `run_once` every `every_s` seconds."""

    async def close_compliance_periods() -> None:
        while True:
            try:
                await run_once(pool_of(), outbox)
            except Exception:  # the next round tries again; a batch is one transaction, so nothing is half-done
                log.exception("closing the verification periods failed")
            await asyncio.sleep(every_s)

    return close_compliance_periods
