"""Use case: assess each newly registered household and announce the result."""

from __future__ import annotations

from pydantic import TypeAdapter

from ejsika_contracts import EligibilityAssessed, HouseholdRegistered, HouseholdRegisteredV2, ScoreContribution
from ejsika_runtime import scopes
from ejsika_runtime.programme_time import programme_date
from ejsika_runtime.unit_of_work import UnitOfWork

from .domain.assessment import assess
from .domain.rules import DEFAULT_RULE_SET, RULE_SETS

SOURCE = "eligibility"
EXPLANATION = TypeAdapter(list[ScoreContribution])
# An assessment is reproducible from ages, flags and welfare indicators: who the members are
# (NIK, name) stays in the registry.
IDENTITY = {"members": {"__all__": {"nik", "name"}}, "kk_number": True, "address": True}
PROCESSED = ("welfare", "members.sex", "members.birth_date", "members.relation", "members.in_school",
             "members.pregnant", "members.disability")


async def on_registered(uow: UnitOfWork, events: list[HouseholdRegistered | HouseholdRegisteredV2]) -> None:
    results = [
        EligibilityAssessed.caused_by(
            event,
            source=SOURCE,
            # ages on the day of registration in the programme's time zone, not the UTC date
            data=assess(event.data, RULE_SETS[DEFAULT_RULE_SET[event.data.programme]], programme_date(event.time)),
        )
        for event in events
    ]
    await uow.conn.execute(
        "INSERT INTO households (household_id, programme, region_code, inputs)"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::json[])"
        " ON CONFLICT (household_id) DO UPDATE SET inputs = excluded.inputs, updated_at = now()",
        [e.data.household_id for e in events],
        [e.data.programme for e in events],
        [e.data.region_code for e in events],
        [e.data.model_dump_json(exclude=IDENTITY) for e in events],
    )
    await uow.conn.execute(
        "INSERT INTO assessments (event_id, household_id, cause_id, rule_set, score, eligible, components, explanation)"
        " SELECT u.event_id, u.household_id, u.cause_id, u.rule_set, u.score, u.eligible,"
        "        string_to_array(u.components, ','), u.explanation"
        " FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::real[], $6::bool[], $7::text[], $8::json[])"
        "   AS u(event_id, household_id, cause_id, rule_set, score, eligible, components, explanation)",
        [r.id for r in results],
        [r.data.household_id for r in results],
        [r.causation_id for r in results],
        [r.data.rule_set for r in results],
        [r.data.score for r in results],
        [r.data.eligible for r in results],
        # unnest cannot carry an array per row; component names are identifiers, without commas.
        [",".join(r.data.components) for r in results],
        [EXPLANATION.dump_json(r.data.explanation).decode() for r in results],
    )
    await scopes.follow(uow.conn, SOURCE, events, "assessing a family's eligibility", PROCESSED)
    uow.emit_all(results)
