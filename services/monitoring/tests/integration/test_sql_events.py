"""The period close and the overdue check verify, store and write their events in SQL (issue 8's speed):
what they publish must still be the contract (the frozen JSON Schemas and the strict models), and what
they decide must still be the rules of `domain.compliance`, checked here against its pure reference."""

from __future__ import annotations

import json
import random
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

import ejsika_monitoring
from ejsika_contracts import ComplianceEscalated, ComplianceVerified, Observations, VisitOverdue
from ejsika_contracts.schemas import schema_path
from ejsika_monitoring import compliance, schedules
from ejsika_monitoring.domain.compliance import Commitments, MemberFacts, Period, Visit, verify_household
from ejsika_runtime.outbox import Outbox, event_headers

pytestmark = pytest.mark.infra

MIGRATIONS = Path(ejsika_monitoring.__file__).parent / "migrations"
MARCH = Period(date(2026, 3, 1), date(2026, 3, 31))
WIB = timezone(timedelta(hours=7))


@pytest.fixture
async def schema(migrated_schema):
    return await migrated_schema("monitoring", MIGRATIONS)


async def enrol(pool, h: uuid.UUID, *, next_due: date | None = None) -> None:
    await pool.execute("INSERT INTO households (household_id, programme, region_code, registered_at, status, next_due)"
                       " VALUES ($1, 'jscm', '3672011001', '2025-01-01', 'active', $2)", h, next_due)
    await pool.execute("INSERT INTO household_scope (household_id, programme, region_code, pendamping_id)"
                       " VALUES ($1, 'jscm', '3672011001', 'pendamping-1')", h)
    await pool.execute("INSERT INTO enrolments (household_id, programme, status, effective_date, version, changed_at)"
                       " VALUES ($1, 'jscm', 'active', '2025-01-01', 1, now())", h)


async def member(pool, h: uuid.UUID, born: date, *, pregnant: bool = False) -> uuid.UUID:
    m = uuid.uuid4()
    await pool.execute("INSERT INTO members (member_id, household_id, birth_date, sex, pregnant)"
                       " VALUES ($1, $2, $3, 'F', $4)", m, h, born, pregnant)
    return m


async def visit(pool, h: uuid.UUID, captured: datetime, observations: dict) -> None:
    await pool.execute("INSERT INTO visit_records (visit_id, household_id, pendamping_id, captured_at, observations)"
                       " VALUES ($1, $2, 'pendamping-1', $3, $4)", uuid.uuid4(), h, captured,
                       Observations.model_validate(observations).model_dump_json())


def validator(event: type) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_path(event).read_text()),
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


async def test_the_events_written_by_sql_are_the_contract_and_as_the_outbox_writes_them(schema):
    name, pool = schema
    outbox = Outbox(name)
    absent = uuid.uuid4()
    await enrol(pool, absent, next_due=date(2026, 1, 10))  # overdue too
    child = await member(pool, absent, date(2012, 6, 1))
    mother = await member(pool, absent, date(1990, 1, 1), pregnant=True)
    toddler = await member(pool, absent, date(2024, 6, 1))
    unknown = uuid.uuid4()
    await enrol(pool, unknown)  # no member known: not verifiable, members []
    periods = [Period(date(2026, m, 1), date(2026, m + 1, 1) - timedelta(days=1)) for m in (1, 2, 3)]
    for period in periods:  # non-compliant three months running: escalated at March
        await visit(pool, absent, datetime(period.start.year, period.start.month, 10, 9, tzinfo=WIB), {
            "school": [{"member_id": str(child), "enrolled": True, "days_present": 7, "school_days": 20}],
            "antenatal": [{"member_id": str(mother), "checked": True}],
            "toddlers": [{"member_id": str(toddler), "weighed": True, "immunised_on_schedule": False}]})
        await compliance.close_period(pool, outbox, "jscm", period, batch=1)
    # A late visit of March that changes its result: a correction (revision 2).
    await visit(pool, absent, datetime(2026, 3, 20, 9, tzinfo=WIB), {
        "school": [{"member_id": str(child), "enrolled": True, "days_present": 20, "school_days": 20}],
        "toddlers": [{"member_id": str(toddler), "weighed": True, "immunised_on_schedule": True}]})
    assert await compliance.recheck_late(pool, outbox, lag=timedelta(0)) == 1
    assert await schedules.mark_overdue(pool, outbox, today=date(2026, 4, 1)) == 1

    rows = await pool.fetch("SELECT topic, key, value, headers FROM outbox ORDER BY id")
    by_type: dict[str, list[dict]] = {}
    for row in rows:
        raw = bytes(row["value"])
        event = json.loads(raw)
        kind = {c.event_type: c for c in (ComplianceVerified, ComplianceEscalated, VisitOverdue)}[event["type"]]
        assert list(validator(kind).iter_errors(event)) == []
        parsed = kind.model_validate_json(raw)  # the producer's strict model: no unknown field, every type right
        assert bytes(row["key"]) == parsed.subject.encode() == str(parsed.data.household_id).encode()
        assert json.loads(row["headers"]) == [list(h) for h in event_headers(parsed)]
        assert parsed.time.tzinfo is not None and abs(parsed.time - datetime.now(timezone.utc)) < timedelta(hours=1)
        by_type.setdefault(event["type"], []).append(event)

    verified = by_type["compliance.verified"]
    assert len({e["id"] for e in verified}) == len(verified)
    assert sorted((e["subject"], e["data"]["period_start"], e["data"]["revision"]) for e in verified) == sorted(
        [(str(h), str(p.start), 1) for h in (absent, unknown) for p in periods] + [(str(absent), "2026-03-01", 2)])
    first = next(e["data"] for e in verified if e["subject"] == str(absent) and e["data"]["revision"] == 1)
    assert first["result"] == "non_compliant"
    assert [(m["commitment"], m["result"], m["attendance_rate"]) for m in first["members"]] == [
        ("antenatal", "compliant", None), ("school", "non_compliant", 0.35), ("toddler", "non_compliant", None)]
    assert {e["data"]["members"] == [] for e in verified if e["subject"] == str(unknown)} == {True}
    # Every event of a household's period shares its correlation: verification, escalations, correction.
    march = [e for e in verified + by_type["compliance.escalated"]
             if e["subject"] == str(absent) and e["data"].get("period_start", "2026-03-01") == "2026-03-01"
             and e["data"].get("period_end", "2026-03-31") == "2026-03-31"]
    assert len({e["correlation_id"] for e in march}) == 1 and len(march) == 4
    assert sorted((e["data"]["commitment"], e["data"]["kind"]) for e in by_type["compliance.escalated"]) == [
        ("school", "school_dropout_risk"), ("toddler", "toddler_not_monitored")]
    (overdue,) = by_type["visit.overdue"]
    assert overdue["data"] == {"household_id": str(absent), "due_date": "2026-01-10", "overdue": True,
                               "pendamping_id": "pendamping-1"}


def random_household(rng: random.Random, period: Period) -> tuple[list[MemberFacts], list[tuple[datetime, dict]]]:
    """Members around the commitments' edges (birthdays on the period's last day, Feb 29, ages 6/7, 21/22,
    59/60 months, pregnancy) and visits in and around the period with observations of them or of strangers."""
    end = period.end
    births = [end.replace(year=end.year - 7), end.replace(year=end.year - 7) + timedelta(days=1),
              end.replace(year=end.year - 21), end.replace(year=end.year - 22) + timedelta(days=1),
              end.replace(year=end.year - 5), end.replace(year=end.year - 5) + timedelta(days=1),
              date(2016, 2, 29), date(2024, 2, 29), date(1985, 5, 5), end + timedelta(days=3)]
    members = [MemberFacts(uuid.uuid4(), rng.choice(births) if rng.random() < 0.5
                           else end - timedelta(days=rng.randint(0, 9000)), "F", rng.random() < 0.2)
               for _ in range(rng.randint(0, 5))]
    ids = [m.member_id for m in members] + [uuid.uuid4()]
    visits = []
    for _ in range(rng.randint(0, 4)):
        day = period.start + timedelta(days=rng.randint(-3, (end - period.start).days + 3))
        captured = datetime(day.year, day.month, day.day, rng.choice([0, 6, 17, 23]), tzinfo=WIB)
        school_days = rng.choice([0, 20, 20, 17, 31])
        visits.append((captured, {
            "school": [{"member_id": str(rng.choice(ids)), "enrolled": rng.random() < 0.9,
                        "days_present": rng.randint(0, school_days), "school_days": school_days}
                       for _ in range(rng.randint(0, 3))],
            "antenatal": [{"member_id": str(rng.choice(ids)), "checked": rng.random() < 0.6}
                          for _ in range(rng.randint(0, 2))],
            "toddlers": [{"member_id": str(rng.choice(ids)), "weighed": rng.random() < 0.8,
                          "immunised_on_schedule": rng.random() < 0.8} for _ in range(rng.randint(0, 2))]}))
    return members, visits


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_sql_verification_decides_as_the_domain_rules_do(schema, seed):
    name, pool = schema
    rng = random.Random(seed)
    period = rng.choice([MARCH, Period(date(2028, 2, 1), date(2028, 2, 29)), Period(date(2026, 1, 1), date(2026, 3, 31))])
    c = Commitments(school_attendance_min=rng.choice([0.85, 0.8, 0.9]), escalate_after_periods=3)
    expected = {}
    for _ in range(150):
        h = uuid.uuid4()
        await enrol(pool, h)
        members, visits = random_household(rng, period)
        for m in members:
            await pool.execute("INSERT INTO members (member_id, household_id, birth_date, sex, pregnant)"
                               " VALUES ($1, $2, $3, 'F', $4)", m.member_id, h, m.birth_date, m.pregnant)
        for captured, observations in visits:
            await visit(pool, h, captured, observations)
        outcome = verify_household(members or None, [Visit(uuid.uuid4(), t, Observations.model_validate(o))
                                                     for t, o in visits], period, c)
        expected[h] = outcome
    async with pool.acquire() as conn:
        found = await compliance.verify(conn, list(expected), period, c)
    assert set(found) == {h for h, v in expected.items() if v is not None}
    for h, (result, members) in found.items():
        want = expected[h]
        assert result == want.result
        assert [(m["member_id"], m["commitment"], m["result"]) for m in members] == [
            (str(m.member_id), m.commitment, m.result) for m in want.members]
        for got, ref in zip(members, want.members):  # rounded to 4 places: half away from zero in SQL
            assert (got["attendance_rate"] is None) == (ref.attendance_rate is None)
            if ref.attendance_rate is not None:
                assert abs(got["attendance_rate"] - ref.attendance_rate) <= 0.0001
