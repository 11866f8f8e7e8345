"""Use case: reassess households from their stored inputs and keep their current decision.

Called by the input use cases for the households an event changed (with that event as the cause),
by the daily review as time passes (without one), and by a rule change for households a live
assessment wrote under the old version meanwhile. Each household is assessed under its programme's
active rule set; a new decision is stored, appended to the history and announced
(`eligibility.assessed`) only when what the family is told changed: a redelivered or replayed input,
or one that moves nothing, writes no decision and emits nothing.

One statement per table for the whole batch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from pydantic import TypeAdapter

from ejsika_contracts import EligibilityAssessed, Event, ScoreContribution
from ejsika_runtime import processing
from ejsika_runtime.programme_time import programme_today
from ejsika_runtime.unit_of_work import UnitOfWork

from . import rule_book
from .domain.assessment import AssessmentInputs, Context, Decision, Standing, assess, next_review, prior_high
from .domain.rules import RuleSet

SOURCE = "eligibility"
PURPOSE = "assessing a family's eligibility"
DECIDED = ("eligibility.decision",)
EXPLANATION = TypeAdapter(list[ScoreContribution])


@dataclass(frozen=True)
class Stored:
    """The decision in force for a household (under whichever version wrote it last)."""

    rule_version: int
    status: str
    desil: int | None
    components: tuple[str, ...]
    yearly_amount: int
    graduation: str | None
    proposed_exit: str | None
    prior_high: int
    fingerprint: str
    welfare_version: int
    region_code: str

    def standing(self) -> Standing:
        return Standing(self.rule_version, self.welfare_version, self.desil, self.prior_high)

    def outcome(self) -> tuple:
        return (self.status, self.desil, self.components, self.yearly_amount, self.graduation, self.proposed_exit)


@dataclass(frozen=True)
class Made:
    """A decision made in a batch, with what it is stored and announced as."""

    decision: Decision
    inputs: AssessmentInputs
    inputs_json: str  # as stored in `households`, kept in the history as it is
    today: date
    context: Context
    assessment_id: UUID
    announced: EligibilityAssessed | None
    cause_id: UUID | None


@dataclass(frozen=True)
class Written:
    """A household's row of `households` as its caller just wrote it (what `reassess` would read back)."""

    programme: str
    inputs: str  # the inputs JSON as stored
    enrolment_status: str | None


async def reassess(uow: UnitOfWork, causes: Sequence[tuple[UUID, Event | None]],
                   today: date | None = None, review: bool = True,
                   written: Mapping[UUID, Written] | None = None) -> list[EligibilityAssessed]:
    """Reassess these households as of `today` (Asia/Jakarta; default: today); answer the events emitted.

    A household named twice is assessed once, caused by its last cause (causes come in partition order).
    `review`: set each household's next review day (False where the caller wrote it with the inputs).
    `written`: the rows of those the caller has just written in this transaction, which are not read again.
    """
    conn = uow.conn
    today = today or programme_today()
    latest: dict[UUID, Event | None] = {}
    for household_id, cause in causes:
        latest.pop(household_id, None)
        latest[household_id] = cause
    if not latest:
        return []
    written = written or {}
    rows: list[Mapping[str, Any]] = [
        {"household_id": h, "programme": w.programme, "inputs": w.inputs, "enrolment_status": w.enrolment_status}
        for h in latest if (w := written.get(h)) is not None]
    if len(rows) < len(latest):
        rows += await conn.fetch(
            "SELECT household_id, programme, inputs::text AS inputs, enrolment_status FROM households"
            " WHERE household_id = ANY($1::uuid[])", [h for h in latest if h not in written])
    if not rows:
        return []
    rules = await rule_book.active(conn, {r["programme"] for r in rows})
    stored = await _stored(conn, list(latest))
    made: list[Made] = []
    reviews: list[tuple[UUID, date]] = []
    for row in rows:
        household_id, rule = row["household_id"], rules.get(row["programme"])
        if rule is None:
            continue  # a programme without rules here: nothing to decide
        inputs = AssessmentInputs.model_validate_json(row["inputs"])
        if review:
            reviews.append((household_id, next_review(inputs, rule, today)))
        active = row["enrolment_status"] == "active"
        decision = decide(inputs, rule, today, active, stored.get((household_id, row["programme"])))
        if decision is None:
            continue
        decision, context, previous = decision
        cause = latest[household_id]
        assessment_id = uuid4()
        announced = None
        if previous is None or previous.outcome() != decision.outcome():
            announced = announcement(assessment_id, decision, cause)
        made.append(Made(decision, inputs, row["inputs"], today, context, assessment_id, announced,
                         cause.id if cause else None))
    await store(conn, made)
    # Only where the day moves: rewriting a household's wide row (its packed inputs computed again, its narrow state
    # compared) costs more than assessing it. The input use cases write it with the inputs (`inputs.review_days`).
    if reviews:
        await conn.execute(
            "UPDATE households h SET next_review_on = u.day FROM unnest($1::uuid[], $2::date[]) AS u(household_id, day)"
            " WHERE h.household_id = u.household_id AND h.next_review_on IS DISTINCT FROM u.day",
            [h for h, _ in reviews], [d for _, d in reviews])
    events = [m.announced for m in made if m.announced is not None]
    uow.emit_all(events)
    return events


def decide(inputs: AssessmentInputs, rule: RuleSet, today: date, active: bool,
           stored: Stored | None) -> tuple[Decision, Context, Stored | None] | None:
    """The new decision and its context, or None when it would be the stored one again (same
    fingerprint and region: a replay, a no-op). The region decides nothing, so it is not in the
    fingerprint, but the decision in force is counted in its village (quotas, figures): a move alone
    is stored, and not announced.

    The run towards mandiri moves only with a newer welfare observation (`domain.assessment.prior_high`),
    so the decisions in between (a visit, the passing of time) neither grow nor break it.
    """
    prior = prior_high(stored.standing() if stored else None, inputs.welfare_version, rule)
    context = Context(prior, active)
    decision = assess(inputs, rule, today, context)
    if (stored is not None and stored.rule_version == rule.version and decision.fingerprint == stored.fingerprint
            and decision.region_code == stored.region_code):
        return None
    return decision, context, stored


def announcement(assessment_id: UUID, decision: Decision, cause: Event | None) -> EligibilityAssessed:
    subject = str(decision.household_id)
    if cause is None:  # the passing of time starts its own chain of events
        return EligibilityAssessed(id=assessment_id, source=SOURCE, subject=subject, correlation_id=uuid4(),
                                   data=decision.event_data())
    return EligibilityAssessed(id=assessment_id, source=SOURCE, subject=subject, correlation_id=cause.correlation_id,
                               causation_id=cause.id, data=decision.event_data())


async def _stored(conn: asyncpg.Connection, household_ids: list[UUID]) -> dict[tuple[UUID, str], Stored]:
    rows = await conn.fetch(
        "SELECT household_id, programme, rule_version, status, desil, components, yearly_amount, graduation,"
        " proposed_exit, prior_high, fingerprint, welfare_version, region_code FROM decisions"
        " WHERE household_id = ANY($1::uuid[]) AND active_rule", household_ids)
    return {(r["household_id"], r["programme"]): Stored(
        r["rule_version"], r["status"], r["desil"], tuple(r["components"]), r["yearly_amount"], r["graduation"],
        r["proposed_exit"], r["prior_high"], r["fingerprint"], r["welfare_version"], r["region_code"]) for r in rows}


async def store(conn: asyncpg.Connection, made: Sequence[Made], channel: str = "reassessment") -> None:
    """Make these the decisions in force (any other version's decision of the household steps back),
    append them to the history and to the record of processing."""
    if not made:
        return
    await _in_force(conn, made)
    await append(conn, made, channel)


async def _in_force(conn: asyncpg.Connection, made: Sequence[Made]) -> None:
    d = [m.decision for m in made]
    await conn.execute(
        "WITH made AS ("
        "  INSERT INTO decisions (household_id, programme, rule_version, region_code, score, desil, status, missing,"
        "   components, yearly_amount, graduation, proposed_exit, prior_high, assessed_on, fingerprint, event_id,"
        "   welfare_version, active_rule)"
        "  SELECT u.household_id, u.programme, u.rule_version, u.region_code, u.score, u.desil, u.status,"
        "   string_to_array(u.missing, ','), string_to_array(u.components, ','), u.yearly_amount, u.graduation,"
        "   u.proposed_exit, u.prior_high, u.assessed_on, u.fingerprint, u.event_id, u.welfare_version, true"
        "  FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::real[], $6::smallint[], $7::text[],"
        "   $8::text[], $9::text[], $10::bigint[], $11::text[], $12::text[], $13::smallint[], $14::date[],"
        "   $15::text[], $16::uuid[], $17::int[]) AS u(household_id, programme, rule_version, region_code, score,"
        "   desil, status, missing, components, yearly_amount, graduation, proposed_exit, prior_high, assessed_on,"
        "   fingerprint, event_id, welfare_version)"
        "  ON CONFLICT (household_id, programme, rule_version) DO UPDATE SET region_code = excluded.region_code,"
        "   score = excluded.score, desil = excluded.desil, status = excluded.status, missing = excluded.missing,"
        "   components = excluded.components, yearly_amount = excluded.yearly_amount,"
        "   graduation = excluded.graduation, proposed_exit = excluded.proposed_exit,"
        "   prior_high = excluded.prior_high, assessed_on = excluded.assessed_on,"
        "   fingerprint = excluded.fingerprint, event_id = excluded.event_id,"
        "   welfare_version = excluded.welfare_version, decided_at = now(), active_rule = true"
        "  RETURNING household_id)"
        " UPDATE decisions o SET active_rule = false"
        " FROM unnest($1::uuid[], $2::text[], $3::int[]) AS u(household_id, programme, rule_version)"
        " WHERE o.household_id = u.household_id AND o.programme = u.programme AND o.rule_version <> u.rule_version"
        "  AND o.active_rule",
        [x.household_id for x in d], [x.programme for x in d], [x.rule_version for x in d],
        [x.region_code for x in d], [x.score for x in d], [x.desil for x in d], [x.status for x in d],
        # unnest cannot carry an array per row; indicator and component names are identifiers, without commas
        [",".join(x.missing) for x in d], [",".join(x.components) for x in d], [x.yearly_amount for x in d],
        [x.graduation for x in d], [(x.proposed_exit or {}).get("kind") for x in d],
        [m.context.prior_high for m in made], [m.today for m in made], [x.fingerprint for x in d],
        [m.assessment_id for m in made], [m.inputs.welfare_version for m in made],
    )


_HISTORY = ("event_id", "household_id", "cause_id", "rule_set", "score", "eligible", "components", "explanation",
            "programme", "rule_version", "status", "desil", "missing", "benefits", "yearly_amount", "graduation",
            "proposed_exit", "fingerprint", "inputs", "assessed_on", "prior_high", "active", "announced")


async def append(conn: asyncpg.Connection, made: Sequence[Made], channel: str) -> None:
    """Append decisions to the history (with the inputs, day and context to recompute them) and to the
    record of processing."""
    d = [m.decision for m in made]
    # COPY: an INSERT of the batch unnested from arrays cost about as much as the rest of the batch's writes
    await conn.copy_records_to_table("assessments", columns=_HISTORY, records=[(
        m.assessment_id, x.household_id, m.cause_id, x.rule_set, x.score, x.status == "eligible", list(x.components),
        EXPLANATION.dump_json(list(x.explanation)).decode(), x.programme, x.rule_version, x.status, x.desil,
        list(x.missing),
        json.dumps([{"component": b.component, "member_id": str(b.member_id) if b.member_id else None,
                     "amount": b.amount} for b in x.benefits]),
        x.yearly_amount, x.graduation, json.dumps(x.proposed_exit) if x.proposed_exit else None, x.fingerprint,
        m.inputs_json, m.today, m.context.prior_high, m.context.active, m.announced is not None)
        for m, x in zip(made, d)])
    await processing.record(conn, processing.Processor(SOURCE, "service"), "write", [x.household_id for x in d],
                            DECIDED, channel, PURPOSE)
