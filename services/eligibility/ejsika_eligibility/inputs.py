"""Use case: keep each household's inputs current from the events of the registry and of monitoring,
and reassess the households whose inputs changed.

One handler per topic, for the whole batch in partition order: lock the facts of the households it
names, fold the events into them (`domain.inputs`), store facts, inputs, enrolment steps and scopes
(one statement per table), and hand the households whose inputs changed to `decisions.reassess`,
each with the event that changed them. A household whose inputs changed twice in the batch is
assessed twice, on each state in turn (`domain.inputs.assessments`), so batching never changes a
decision: a replay reading large batches ends where live reading ended.

Events of a household whose registration was never seen here. Monitoring's events (visits,
verifications, escalations) are kept: they travel on other topics than the registration, so in a
replay or after a lag they may come first, and they join the inputs when it comes. So is a member
moving out of such a household (the move is keyed by the household joined). The registry's other
events are counted (`ejsika_eligibility_unregistered_events_total`) and otherwise ignored: they
follow the registration on the same partition, so a household without one was registered before
this service read the topic, and no later event would complete it. Neither keeping them nor a
dead letter would help: the cure is a replay of the topic from its start, which rebuilds the family
whole. A dead letter would also be wrong, since nothing is wrong with the event.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from uuid import UUID

from prometheus_client import CollectorRegistry, Counter

from ejsika_contracts import COMPLIANCE, HOUSEHOLD, VISIT, Event
from ejsika_runtime import processing, scopes
from ejsika_runtime.programme_time import programme_date
from ejsika_runtime.service import Service
from ejsika_runtime.unit_of_work import UnitOfWork

from . import decisions, rule_book
from .domain.assessment import next_review
from .domain.rules import RuleSet
from .domain.inputs import (
    INPUT_EVENTS, Facts, assessments, compliance_of, fold, from_assessed, households_of, inputs_of,
)

SOURCE = "eligibility"
PURPOSE = "assessing a family's eligibility"
# What of a family this service keeps (the record of processing names them).
PROCESSED = ("welfare", "members.sex", "members.birth_date", "members.relation", "members.in_school",
             "members.pregnant", "members.disability", "enrolments.status", "compliance")


class InputMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.unregistered = Counter(
            "ejsika_eligibility_unregistered_events", "Registry events of households whose registration this "
            "service never saw, ignored (a replay of the topic from its start rebuilds them)", ["event_type"],
            registry=registry)


class Inputs:
    """The consumers of the three input topics, for one service (its metrics)."""

    def __init__(self, metrics: InputMetrics | None = None) -> None:
        self.metrics = metrics

    async def apply(self, uow: UnitOfWork, events: list[Event]) -> None:
        """Fold a batch of one topic into the households' facts and reassess those whose inputs changed."""
        conn = uow.conn
        events = [e for e in events if isinstance(e, INPUT_EVENTS)]
        if not events:
            return
        ids = sorted({h for e in events for h in households_of(e)}, key=str)
        # The rows first, so that two batches meeting a new household (a move names the household
        # left, keyed elsewhere) wait for each other instead of one overwriting the other; then locked
        # in one order, so they cannot deadlock.
        await conn.execute("INSERT INTO household_facts (household_id) SELECT unnest($1::uuid[])"
                           " ON CONFLICT (household_id) DO NOTHING", ids)
        rows = await conn.fetch(
            "SELECT f.household_id, f.facts::text, h.inputs::text AS assessed, h.version, h.updated_at"
            " FROM household_facts f LEFT JOIN households h ON f.facts IS NULL AND h.household_id = f.household_id"
            " WHERE f.household_id = ANY($1::uuid[]) ORDER BY f.household_id FOR UPDATE OF f", ids)
        before = {r["household_id"]: _facts(r) for r in rows if r["facts"] is not None or r["assessed"] is not None}
        folded = fold(before, events)
        if self.metrics is not None:
            for event in folded.unknown:
                self.metrics.unregistered.labels(event.type).inc()
        changed = sorted(folded.changed, key=str)
        if len(folded.facts) < len(ids):  # rows made for households nothing is known of: not kept
            await conn.execute("DELETE FROM household_facts WHERE household_id = ANY($1::uuid[]) AND facts IS NULL",
                               [h for h in ids if h not in folded.facts])
        if not changed:
            return
        await conn.execute(
            "UPDATE household_facts f SET facts = u.facts, updated_at = now()"
            " FROM unnest($1::uuid[], $2::json[]) AS u(household_id, facts) WHERE f.household_id = u.household_id",
            changed, [folded.facts[h].model_dump_json() for h in changed])
        registered = [folded.facts[h] for h in changed if inputs_of(folded.facts[h]) is not None]
        await _store_steps(conn, folded.steps)
        await _follow_scopes(conn, before, registered)
        written: dict[UUID, Facts] = {}
        rounds = assessments(before, folded)
        rules = await rule_book.active(conn, {f.programme for round_ in rounds for _, _, f in round_}) if rounds else {}
        for round_ in rounds:  # mostly one: a household's inputs change once a batch
            rows = await _store_households(conn, [facts for _, _, facts in round_], review_days(round_, rules))
            written.update((h, facts) for h, _, facts in round_)
            await reassess_on_their_day(uow, [(h, event) for h, event, _ in round_], rows)
        # the households whose last change was not of their inputs (a version, a pendamping)
        await _store_households(conn, [f for f in registered if written.get(f.household_id) != f])


async def reassess_on_their_day(uow: UnitOfWork, causes: Sequence[tuple[UUID, Event]],
                                written: dict[UUID, decisions.Written] | None = None) -> None:
    """Reassess each household as of the day (Asia/Jakarta) of the event that changed it (`written`: the rows of
    `households` just written for them, not read again).

    The day comes from the event, not the clock, so the same events give the same decisions whenever
    they are read: live, or in a replay years later (the passing of time since is `review`'s).
    """
    by_day: dict[date, list[tuple[UUID, Event]]] = defaultdict(list)
    for household_id, cause in causes:
        by_day[programme_date(cause.time)].append((household_id, cause))
    for day in sorted(by_day):
        await decisions.reassess(uow, by_day[day], today=day, review=False, written=written)  # review: written


def review_days(round_: Sequence[tuple[UUID, Event, Facts]], rules: dict[str, RuleSet]) -> dict[UUID, date]:
    """The day each household of a round is next reviewed, as its assessment on the day of its event will set it
    (`decisions.reassess`): written with its inputs, the household's wide row is written once."""
    days = {}
    for household_id, event, facts in round_:
        rule = rules.get(facts.programme)
        if rule is not None:
            days[household_id] = next_review(inputs_of(facts), rule, programme_date(event.time))
    return days


async def _store_households(conn, facts: Sequence[Facts], review: dict[UUID, date] | None = None
                            ) -> dict[UUID, decisions.Written]:
    """Write the households' rows; answer them as written (their assessment reads them)."""
    if not facts:
        return {}
    review = review or {}
    stored = [inputs_of(f).model_dump_json() for f in facts]
    # The review day only when known here (else the one stored stays): the assessment sets it.
    await conn.execute(
        "INSERT INTO households (household_id, programme, region_code, inputs, version, enrolment_status,"
        "  registered_on, compliance, next_review_on)"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::json[], $5::int[], $6::text[], $7::date[],"
        "  $8::json[], $9::date[])"
        " ON CONFLICT (household_id) DO UPDATE SET programme = excluded.programme,"
        "  region_code = excluded.region_code, inputs = excluded.inputs, version = excluded.version,"
        "  enrolment_status = excluded.enrolment_status, registered_on = excluded.registered_on,"
        "  compliance = excluded.compliance, updated_at = now(),"
        "  next_review_on = coalesce(excluded.next_review_on, households.next_review_on)",
        [f.household_id for f in facts], [f.programme for f in facts], [f.region_code for f in facts],
        stored, [f.version for f in facts],
        [f.enrolment_status for f in facts], [f.registered_on for f in facts],
        [_json(compliance_of(f)) for f in facts], [review.get(f.household_id) for f in facts],
    )
    return {f.household_id: decisions.Written(f.programme, inputs, f.enrolment_status)
            for f, inputs in zip(facts, stored)}


async def _store_steps(conn, steps) -> None:
    if steps:
        await conn.execute(
            "INSERT INTO enrolment_steps (event_id, household_id, version, programme, region_code, status,"
            "  previous_status, exit_kind, effective_date)"
            " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[],"
            "  $8::text[], $9::date[])"
            " ON CONFLICT (event_id) DO NOTHING",
            *map(list, zip(*[(s.event_id, s.household_id, s.version, s.programme, s.region_code, s.status,
                              s.previous_status, s.exit_kind, s.effective_date) for s in steps])),
        )


async def _follow_scopes(conn, before: dict[UUID, Facts], facts: Iterable[Facts]) -> None:
    """Who may see a household here follows its programme, village and pendamping; a new one is recorded
    in the record of processing as written by this service."""
    moved, new = [], []
    for f in facts:
        old = before.get(f.household_id)
        if old is None or not old.registered:
            new.append(f.household_id)
        if old is None or (old.programme, old.region_code, old.pendamping_id) != (f.programme, f.region_code,
                                                                                  f.pendamping_id):
            moved.append(scopes.HouseholdScope(f.household_id, f.programme, f.region_code, f.pendamping_id))
    await scopes.remember(conn, moved)
    await processing.record(conn, processing.Processor(SOURCE, "service"), "write", new, PROCESSED,
                            "event household.registered", PURPOSE)


def _facts(row) -> Facts:
    if row["facts"] is not None:
        return Facts.model_validate_json(row["facts"])
    # assessed at registration before every event was kept (migration 010): its registration goes on
    return from_assessed(row["household_id"], row["assessed"], row["version"], row["updated_at"])


def _json(value) -> str | None:
    return None if value is None else json.dumps(value)


def consume(service: Service) -> Inputs:
    """Wire the consumers of the registry's and monitoring's topics into `service`."""
    inputs = Inputs(InputMetrics(service.registry))
    for topic in (HOUSEHOLD, VISIT, COMPLIANCE):
        service.consumes(topic, inputs.apply)
    return inputs
