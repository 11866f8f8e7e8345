"""Use case: a family admitted into its programme's quota (`quota.admitted`, from eligibility) becomes active.

The same step an operator takes with `enrolments.change`, under the same rules (`domain.enrolment.transition`,
the programme serving the household's region, exclusive programmes), with its history (old and new) and its
`enrolment.changed`, but for a whole batch in a few statements: the households' rows are locked in id order,
then enrolments, versions and history are written once each.

A household that is not a candidate of the programme any more (admitted already, exited meanwhile, or refused by
a rule) is skipped, and the reason logged with ids and rule names only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from uuid import UUID

from ejsika_contracts import EnrolmentChanged, EnrolmentChangedData, QuotaAdmitted
from ejsika_runtime import processing
from ejsika_runtime.programme_time import programme_today
from ejsika_runtime.unit_of_work import UnitOfWork

from . import changes, history
from .domain.enrolment import Enrolment, TransitionRefused, Wanted, transition
from .domain.regions import RegionError, programme_for
from .enrolments import ENROLMENT_FIELDS

log = logging.getLogger(__name__)
PROCESSOR = processing.Processor("registry", "service")
CHANNEL = f"event {QuotaAdmitted.event_type}"
PURPOSE = "admitting a family within its programme's quota"


def reason_of(event: QuotaAdmitted) -> str:
    d = event.data
    return (f"admitted within the quota of {d.programme} {d.year} for region {d.region}, rank {d.rank},"
            f" score {d.score:g} (rule set {d.rule_set})")


async def admit(uow: UnitOfWork, events: Sequence[QuotaAdmitted], today: date | None = None) -> int:
    """Make each admitted candidate active; answers how many became active."""
    today = today or programme_today()
    ids = sorted({e.data.household_id for e in events})
    households = {r["id"]: dict(r) for r in await uow.conn.fetch(
        "SELECT id, region_code, version FROM households WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE", ids)}
    enrolments: dict[UUID, dict[str, Enrolment]] = {}
    for r in await uow.conn.fetch(
            "SELECT household_id, programme, status, exit_kind, reason, effective_date FROM enrolments"
            " WHERE household_id = ANY($1::uuid[])", ids):
        enrolments.setdefault(r["household_id"], {})[r["programme"]] = Enrolment.of(r["programme"], dict(r))
    steps, logged = [], []
    for event in events:  # in partition order: a second admission of a family finds it active already
        data = event.data
        household = households.get(data.household_id)
        current = enrolments.get(data.household_id, {}).get(data.programme)
        if household is None or current is None or current.status != "candidate":
            logged.append((event, "not_a_candidate"))
            continue
        try:
            programme_for(data.programme, household["region_code"])
            others = [e for p, e in enrolments[data.household_id].items() if p != data.programme]
            new = transition(current, data.programme, Wanted("active", reason=reason_of(event)), others, today)
        except (TransitionRefused, RegionError) as refused:
            logged.append((event, refused.rule))
            continue
        household["version"] += 1
        enrolments[data.household_id][data.programme] = new
        steps.append((event, current, new, household["version"], household["region_code"]))
    for event, why in logged:
        log.info("admission of household %s into %s skipped (%s)", event.data.household_id, event.data.programme,
                 why, extra={"event_id": str(event.id), "event_type": event.type})
    if not steps:
        return 0
    await uow.conn.execute(
        "UPDATE enrolments e SET status = 'active', exit_kind = NULL, reason = u.reason, effective_date = u.day,"
        " updated_at = now()"
        " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::date[]) AS u(household_id, programme, reason, day)"
        " WHERE e.household_id = u.household_id AND e.programme = u.programme",
        [e.data.household_id for e, *_ in steps], [e.data.programme for e, *_ in steps],
        [new.reason for _, _, new, _, _ in steps], [new.effective_date for _, _, new, _, _ in steps])
    versions = {e.data.household_id: version for e, _, _, version, _ in steps}  # the last step of each wins
    await uow.conn.execute(
        "UPDATE households h SET version = u.version, updated_at = now()"
        " FROM unnest($1::uuid[], $2::int[]) AS u(id, version) WHERE h.id = u.id",
        list(versions), list(versions.values()))
    await history.write(uow.conn, [history.Change(
        e.data.household_id, version, "enrolment_changed",
        {f"enrolments/{e.data.programme}": {"old": old.state(), "new": new.state()}}, "eligibility", "eligibility",
        e.id, new.reason, detail={"programme": e.data.programme, "status": new.status})
        for e, old, new, version, _ in steps])
    for e, old, new, version, region_code in steps:
        author = changes.Author("eligibility", "eligibility", e.correlation_id, e.id)
        uow.emit(author.event(EnrolmentChanged, e.data.household_id, EnrolmentChangedData(
            household_id=e.data.household_id, version=version, programme=e.data.programme, region_code=region_code,
            status=new.status, previous_status=old.status, exit_kind=None, reason=new.reason,
            effective_date=new.effective_date)))
    await processing.record(uow.conn, PROCESSOR, "write", list(versions), ENROLMENT_FIELDS, CHANNEL, PURPOSE)
    return len(steps)
