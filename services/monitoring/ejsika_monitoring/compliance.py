"""Use case: verifikasi komitmen when a period closes, and its corrections when visits come late.

Closing: once a programme's period has ended (its last day is over in Asia/Jakarta), every household
active in the programme is verified, in bounded batches (one transaction each, keyed by household id,
resumable where the last one stopped), never one long transaction that would hold up visit intake.
Each household with a commitment gets one stored result and one `compliance.verified`; a household of
which monitoring knows no member (registered with household.registered v1) is `not_verifiable`; one
whose members have no commitment in the period has nothing to verify and gets no result.

Late visits, decoupled from intake: the same loop reads the visits received since its mark (a little
behind now, so that an intake transaction still open is not passed over) and re-verifies the closed
periods their `captured_at` falls into. A correction (revision + 1) is published only when the result
changed. Either way the same visits give the same result, whatever order they arrived in.

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
from uuid import NAMESPACE_URL, UUID, uuid5

import asyncpg

from ejsika_contracts import (
    ComplianceEscalated,
    ComplianceEscalatedData,
    ComplianceVerified,
    ComplianceVerifiedData,
    MemberCompliance,
    Observations,
)
from ejsika_runtime.outbox import Outbox
from ejsika_runtime.programme_time import ZONE, programme_today
from ejsika_runtime.unit_of_work import UnitOfWork, unit_of_work

from .domain import programmes
from .domain.compliance import (
    Commitments,
    HouseholdVerification,
    MemberFacts,
    Period,
    Visit,
    escalations,
    last_finished_period,
    period_of,
    periods_back,
    verify_household,
)

SOURCE = "monitoring"
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


async def verify(conn: asyncpg.Connection, household_ids: Sequence[UUID], period: Period,
                 c: Commitments) -> dict[UUID, HouseholdVerification]:
    """The verification of these households in `period` (two statements for the whole batch); a household
    without a commitment is left out."""
    start, end = _bounds(period)
    members: dict[UUID, list[MemberFacts]] = defaultdict(list)
    for r in await conn.fetch("SELECT member_id, household_id, birth_date, sex, pregnant FROM members"
                              " WHERE household_id = ANY($1::uuid[]) AND active", household_ids):
        members[r["household_id"]].append(MemberFacts(r["member_id"], r["birth_date"], r["sex"], r["pregnant"]))
    visits: dict[UUID, list[Visit]] = defaultdict(list)
    for r in await conn.fetch("SELECT visit_id, household_id, captured_at, observations FROM visit_records"
                              " WHERE household_id = ANY($1::uuid[]) AND captured_at >= $2 AND captured_at < $3",
                              household_ids, start, end):
        visits[r["household_id"]].append(
            Visit(r["visit_id"], r["captured_at"], Observations.model_validate_json(r["observations"])))
    found = {}
    for household in household_ids:
        # No member known at all: registered with v1 (no member ids), so nothing can be verified yet.
        outcome = verify_household(members.get(household), visits.get(household, ()), period, c)
        if outcome is not None:
            found[household] = outcome
    return found


def _verified(household: UUID, programme: str, period: Period, v: HouseholdVerification,
              revision: int) -> ComplianceVerified:
    # Built without validating again what the verification just made (a million of them per period);
    # the contract's own test proves this shape.
    data = ComplianceVerifiedData.model_construct(
        household_id=household, programme=programme, period_start=period.start, period_end=period.end,
        result=v.result, members=v.members, revision=revision)
    return ComplianceVerified.model_construct(source=SOURCE, subject=str(household), data=data,
                                              correlation_id=_correlation(household, programme, period))


def _correlation(household: UUID, programme: str, period: Period) -> UUID:
    """One correlation for a household's period: its verification, corrections and escalations."""
    return uuid5(CORRELATION, f"{household}/{programme}/{period.start}")


def _outcome(result: str, members: list[dict]) -> tuple:
    """What a correction is about: the household's and each member's result. A new attendance rate that
    leaves every result as it was is not a correction (the stored row stays as it was published)."""
    return result, sorted((m["member_id"], m["commitment"], m["result"]) for m in members)


def _members_json(v: HouseholdVerification) -> str:
    return json.dumps([m.model_dump(mode="json") for m in v.members])


async def _escalate(uow: UnitOfWork, programme: str, period: Period, found: dict[UUID, HouseholdVerification],
                    c: Commitments) -> None:
    """Escalations completed by `period` for these households (only those with a non-compliant member)."""
    candidates = [h for h, v in found.items() if v.result == "non_compliant"]
    if not candidates:
        return
    earlier = periods_back(period, c.escalate_after_periods, c)
    history: dict[UUID, dict[date, list[MemberCompliance]]] = defaultdict(dict)
    for r in await uow.conn.fetch(
            "SELECT household_id, period_start, members FROM compliance_results WHERE household_id = ANY($1::uuid[])"
            " AND programme = $2 AND period_start = ANY($3::date[])",
            candidates, programme, [p.start for p in earlier]):
        history[r["household_id"]][r["period_start"]] = [MemberCompliance.model_validate(m)
                                                         for m in json.loads(r["members"])]
    raised = [(h, e) for h in candidates
              for e in escalations(found[h].members, [history[h].get(p.start, []) for p in earlier], c)]
    if not raised:
        return
    new = {(r["member_id"], r["commitment"]) for r in await uow.conn.fetch(
        "INSERT INTO compliance_escalations (member_id, commitment, programme, period_start, household_id)"
        " SELECT m, k, $3, $4, h FROM unnest($1::uuid[], $2::text[], $5::uuid[]) AS t(m, k, h)"
        " ON CONFLICT DO NOTHING RETURNING member_id, commitment",
        [e.member_id for _, e in raised], [e.commitment for _, e in raised], programme, period.start,
        [h for h, _ in raised])}
    uow.emit_all([ComplianceEscalated(
        source=SOURCE, subject=str(h), correlation_id=_correlation(h, programme, period),
        data=ComplianceEscalatedData(household_id=h, programme=programme, member_id=e.member_id,
                                     commitment=e.commitment, kind=e.kind, consecutive_periods=e.consecutive_periods,
                                     period_end=period.end))
        for h, e in raised if (e.member_id, e.commitment) in new])


async def close_batch(pool: asyncpg.Pool, outbox: Outbox, programme: str, period: Period,
                      batch: int = BATCH_HOUSEHOLDS) -> int | None:
    """Close the next batch of `period` for `programme` in one transaction: the households verified, or
    None when the period is (now) closed."""
    c = commitments_for(programme)
    async with unit_of_work(pool, outbox) as uow:
        conn = uow.conn
        await conn.execute("INSERT INTO compliance_periods (programme, period_start, period_end) VALUES ($1, $2, $3)"
                           " ON CONFLICT DO NOTHING", programme, period.start, period.end)
        # The row lock makes replicas take turns: each batch is closed once.
        state = await conn.fetchrow("SELECT closed_through, closed_at FROM compliance_periods"
                                    " WHERE programme = $1 AND period_start = $2 FOR UPDATE", programme, period.start)
        if state["closed_at"] is not None:
            return None
        households = [r["household_id"] for r in await conn.fetch(
            "SELECT household_id FROM enrolments WHERE programme = $1 AND status = 'active'"
            " AND household_id > coalesce($2, '00000000-0000-0000-0000-000000000000'::uuid)"
            " ORDER BY household_id LIMIT $3",
            programme, state["closed_through"], batch)]
        found = await verify(conn, households, period, c)
        stored = {r["household_id"] for r in await conn.fetch(
            "INSERT INTO compliance_results (household_id, programme, period_start, period_end, result, members)"
            " SELECT h, $2, $3, $4, r, m::jsonb FROM unnest($1::uuid[], $5::text[], $6::text[]) AS t(h, r, m)"
            " ON CONFLICT DO NOTHING RETURNING household_id",
            list(found), programme, period.start, period.end, [v.result for v in found.values()],
            [_members_json(v) for v in found.values()])}
        uow.emit_all([_verified(h, programme, period, v, 1) for h, v in found.items() if h in stored])
        await _escalate(uow, programme, period, {h: v for h, v in found.items() if h in stored}, c)
        done = len(households) < batch
        await conn.execute("UPDATE compliance_periods SET closed_through = coalesce($3, closed_through),"
                           " closed_at = CASE WHEN $4 THEN now() END WHERE programme = $1 AND period_start = $2",
                           programme, period.start, households[-1] if households else None, done)
        return len(households)


async def close_period(pool: asyncpg.Pool, outbox: Outbox, programme: str, period: Period,
                       batch: int = BATCH_HOUSEHOLDS) -> int:
    """Close `period` of `programme` batch by batch; the households verified by this call."""
    total = 0
    while (closed := await close_batch(pool, outbox, programme, period, batch)) is not None:
        total += closed
    return total


async def recheck_late(pool: asyncpg.Pool, outbox: Outbox, batch: int = LATE_BATCH_VISITS,
                       lag: timedelta = LATE_LAG) -> int | None:
    """Re-verify the closed periods of the next visits received after the mark: the corrections
    published, or None when no visit is waiting."""
    async with unit_of_work(pool, outbox) as uow:
        conn = uow.conn
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
        corrected = await reverify(uow, [(r["household_id"], r["programme"], r["day"]) for r in rows])
        await conn.execute("UPDATE compliance_late_mark SET received_through = $1", upto)
        return corrected


async def reverify(uow: UnitOfWork, visited: Sequence[tuple[UUID, str, date]]) -> int:
    """Verify again the periods already published that these (household, programme, day) fall into; publish
    a correction where the result changed. Answers how many."""
    by_period: dict[tuple[str, Period], set[UUID]] = defaultdict(set)
    for household, programme, day in visited:
        by_period[(programme, period_of(day, commitments_for(programme)))].add(household)
    corrected = 0
    for (programme, period), households in by_period.items():
        c = commitments_for(programme)
        published = {r["household_id"]: r for r in await uow.conn.fetch(
            "SELECT household_id, result, members, revision FROM compliance_results"
            " WHERE household_id = ANY($1::uuid[]) AND programme = $2 AND period_start = $3 FOR UPDATE",
            list(households), programme, period.start)}
        if not published:
            continue  # not closed yet (the close will count these visits), or nothing to verify then
        found = await verify(uow.conn, list(published), period, c)
        changed = {h: v for h, v in found.items() if _outcome(v.result, [m.model_dump(mode="json") for m in v.members])
                   != _outcome(published[h]["result"], json.loads(published[h]["members"]))}
        if not changed:
            continue
        await uow.conn.execute(
            "UPDATE compliance_results r SET result = t.r, members = t.m::jsonb, revision = r.revision + 1,"
            " published_at = now() FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t(h, r, m)"
            " WHERE r.household_id = t.h AND r.programme = $4 AND r.period_start = $5",
            list(changed), [v.result for v in changed.values()], [_members_json(v) for v in changed.values()],
            programme, period.start)
        uow.emit_all([_verified(h, programme, period, v, published[h]["revision"] + 1) for h, v in changed.items()])
        await _escalate(uow, programme, period, changed, c)
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
