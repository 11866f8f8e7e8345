"""What agencies get, on the real PostgreSQL: the family projection, the notifications each agency's
subscriptions and profile allow, per-agency references, the daily digest and the daily derived facts,
and the ready-made subscriptions loaded through the API."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from ejsika_contracts import (
    ComplianceEscalated,
    ComplianceEscalatedData,
    EnrolmentChanged,
    EnrolmentChangedData,
    HouseholdMember,
    HouseholdRegisteredDataV2,
    HouseholdRegisteredV2,
    WelfareIndicators,
)
from ejsika_notifications import digest, pseudonyms
from ejsika_notifications.domain.subscriptions import Filter
from ejsika_notifications.handlers import Handlers
from ejsika_notifications.pseudonyms import Pseudonyms
from ejsika_notifications.ready_made import configurations
from ejsika_notifications.store import subscriptions
from ejsika_runtime.unit_of_work import UnitOfWork

pytestmark = pytest.mark.infra

AT = datetime(2026, 11, 20, 3, tzinfo=timezone.utc)  # 10:00 in Jakarta, school year 2026/2027
REFERENCES = Pseudonyms(b"integration-test-pseudonym-key-0123456789")
HANDLERS = Handlers(REFERENCES)
EDUCATION, HEALTH = configurations()["dinas-pendidikan"].agency, configurations()["dinas-kesehatan"].agency


class Family:
    def __init__(self) -> None:
        self.id = uuid.uuid4()
        self.mother = HouseholdMember(member_id=uuid.uuid4(), nik="3672014101850001", name="Siti Aminah", sex="F",
                                      birth_date=date(1985, 1, 1), relation="spouse")
        self.child = HouseholdMember(member_id=uuid.uuid4(), nik="3672010103110002", name="Ani", sex="F",
                                     birth_date=date(2011, 3, 1), relation="child", in_school=True)
        self.toddler = HouseholdMember(member_id=uuid.uuid4(), nik_status="pending", name="Budi", sex="M",
                                       birth_date=date(2024, 5, 1), relation="child")

    def envelope(self, at=AT) -> dict:
        return dict(source="registry", subject=str(self.id), correlation_id=uuid.uuid4(), time=at)

    def registered(self) -> HouseholdRegisteredV2:
        return HouseholdRegisteredV2(**self.envelope(), data=HouseholdRegisteredDataV2(
            household_id=self.id, programme="jamsosratu", region_code="3672011001", kk_number="3672010101200001",
            address="Jl. Mawar 1 RT 01 RW 02", members=[self.mother, self.child, self.toddler],
            welfare=WelfareIndicators(head_low_income=True)))

    def enrolled(self, status="active", version=2) -> EnrolmentChanged:
        return EnrolmentChanged(**self.envelope(), data=EnrolmentChangedData(
            household_id=self.id, version=version, programme="jamsosratu", region_code="3672011001", status=status,
            previous_status="candidate", effective_date=date(2026, 11, 20)))

    def escalated(self, member: HouseholdMember, commitment: str, kind: str, at=AT) -> ComplianceEscalated:
        return ComplianceEscalated(source="monitoring", subject=str(self.id), correlation_id=uuid.uuid4(), time=at,
                                   data=ComplianceEscalatedData(
                                       household_id=self.id, programme="jamsosratu", member_id=member.member_id,
                                       commitment=commitment, kind=kind, consecutive_periods=2,
                                       period_end=date(2026, 10, 31)))


async def subscribe(db, agency, event_type, filter=Filter("36"), frequency="immediate"):
    async with db.pool.acquire() as conn:
        await subscriptions.add_agency(conn, agency)
        record = await subscriptions.add_subscription(
            conn, agency=agency.code, event_type=event_type, filter=filter, url="https://opd.example/hooks",
            secret_encrypted=db.cipher.encrypt("whsec_" + "A" * 40), frequency=frequency)
    return record.id


async def apply(db, handler, events) -> None:
    async with db.pool.acquire() as conn, conn.transaction():
        await handler(UnitOfWork(conn), list(events))


async def notifications(db, subscription_id) -> list[dict]:
    rows = await db.pool.fetch("SELECT * FROM deliveries WHERE subscription_id = $1 ORDER BY seq", subscription_id)
    return [dict(r) | {"payload": json.loads(r["payload"])} for r in rows]


async def test_registry_events_keep_only_the_profiled_fields_and_the_child_entering_sma_is_told_once(db):
    family = Family()
    placement = await subscribe(db, EDUCATION, "children.entering_sma", Filter("36", enrolment_statuses=("active",)))
    health_visits = await subscribe(db, HEALTH, "enrolment.changed")

    await apply(db, HANDLERS.on_household, [family.registered()])
    assert not await notifications(db, placement), "a candidate is not a KPM yet"
    await apply(db, HANDLERS.on_household, [family.enrolled()])

    kept = await db.pool.fetchrow("SELECT * FROM families WHERE household_id = $1", family.id)
    assert (kept["version"], kept["enrolment_status"], kept["region_code"]) == (2, "active", "3672011001")
    columns = {r["column_name"] for r in await db.pool.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = $1"
        " AND table_name IN ('families', 'family_members')", db.schema)}
    assert not columns & {"address", "kk_number", "welfare", "pregnant", "disability", "pendamping_id"}
    members = await db.pool.fetch("SELECT name, nik FROM family_members WHERE household_id = $1 ORDER BY name", family.id)
    assert [(m["name"], m["nik"]) for m in members] == [("Ani", "3672010103110002"), ("Budi", None),
                                                       ("Siti Aminah", "3672014101850001")]

    (told,) = await notifications(db, placement)
    reference = REFERENCES.reference_of(EDUCATION.code, family.id)
    assert told["reference"] == reference and told["event_type"] == "children.entering_sma"
    assert told["household_id"] == family.id, "kept internally for the record of processing"
    assert told["payload"] == {
        "region_code": "3672011001", "programme": "jamsosratu", "enrolment_status": "active",
        "school_year": "2026/2027", "entering_school_year": "2027/2028",
        "members": [{"reference": REFERENCES.member_reference_of(EDUCATION.code, family.child.member_id),
                     "nik": "3672010103110002", "name": "Ani", "birth_date": "2011-03-01", "in_school": True,
                     "school_level": "smp"}]}
    (enrolment,) = await notifications(db, health_visits)
    assert enrolment["payload"] == {"region_code": "3672011001", "programme": "jamsosratu",
                                    "enrolment_status": "active"}, "no member: the health profile names none here"
    assert enrolment["reference"] != reference, "each agency its own reference"

    # redelivered, replayed, and computed again by the daily job: still one notification
    await apply(db, HANDLERS.on_household, [family.registered(), family.enrolled()])
    async with db.pool.acquire() as conn:
        assert await digest.derive(conn, HANDLERS.notify, AT + timedelta(days=30)) == 1
    assert len(await notifications(db, placement)) == 1

    async with db.pool.acquire() as conn:
        assert await pseudonyms.resolve(conn, EDUCATION.code, reference) == family.id
        assert await pseudonyms.resolve(conn, HEALTH.code, reference) is None, "another agency's reference"
        child = REFERENCES.member_reference_of(EDUCATION.code, family.child.member_id)
        assert await pseudonyms.resolve(conn, EDUCATION.code, child, "member") == family.child.member_id


async def test_each_subscription_is_cut_to_its_own_agency_s_profile_as_the_database_joins_them(db):
    """The profile is read with each subscription (`active_subscriptions` joins the agencies): one
    registry event, its members chosen by age, reaches each office with its own profile's fields
    only. The two profiles differ here (sex and relation for health, schooling for education), so a
    join giving every subscription one agency's profile fails this."""
    family = Family()
    teenagers = Filter("36", member_age_min=13, member_age_max=18)
    school = await subscribe(db, EDUCATION, "enrolment.changed", teenagers)
    health = await subscribe(db, HEALTH, "enrolment.changed", teenagers)
    await apply(db, HANDLERS.on_household, [family.registered(), family.enrolled()])

    (to_school,), (to_health,) = await notifications(db, school), await notifications(db, health)
    (pupil,), (patient,) = to_school["payload"]["members"], to_health["payload"]["members"]
    assert pupil == {"reference": REFERENCES.member_reference_of(EDUCATION.code, family.child.member_id),
                     "nik": "3672010103110002", "name": "Ani", "birth_date": "2011-03-01", "in_school": True,
                     "school_level": "smp"}
    assert {k: patient.get(k) for k in ("reference", "name", "sex", "relation")} == {
        "reference": REFERENCES.member_reference_of(HEALTH.code, family.child.member_id), "name": "Ani",
        "sex": "F", "relation": "child"}
    health_fields = {f.removeprefix("members.") for f in HEALTH.profile if f.startswith("members.")}
    assert set(patient) <= health_fields | {"reference"}, "nothing outside the health office's profile"
    assert not {"in_school", "school_level"} & set(patient)


async def test_escalations_go_to_the_agency_whose_commitment_and_filter_they_fit(db):
    family = Family()
    dropout = await subscribe(db, EDUCATION, "compliance.escalated", Filter("36", escalation_kinds=("school_dropout_risk",)))
    antenatal = await subscribe(db, HEALTH, "compliance.escalated", Filter("3672"))
    lebak = await subscribe(db, HEALTH, "compliance.escalated", Filter("3602"))
    await apply(db, HANDLERS.on_household, [family.registered(), family.enrolled()])

    await apply(db, HANDLERS.on_events, [
        family.escalated(family.child, "school", "school_dropout_risk"),
        family.escalated(family.mother, "antenatal", "no_antenatal_care"),
    ])
    (school,) = await notifications(db, dropout)
    assert school["payload"]["kind"] == "school_dropout_risk"
    assert [m["name"] for m in school["payload"]["members"]] == ["Ani"]
    (mother,) = await notifications(db, antenatal)
    assert mother["payload"]["kind"] == "no_antenatal_care"
    assert mother["payload"]["members"] == [{
        "reference": REFERENCES.member_reference_of(HEALTH.code, family.mother.member_id), "nik": "3672014101850001",
        "name": "Siti Aminah", "birth_date": "1985-01-01", "sex": "F", "relation": "spouse",
        "health_insurance": None}], "the health office may know her JKN cover: not recorded here"
    assert not await notifications(db, lebak), "another regency"
    text = json.dumps([school["payload"], mother["payload"]])
    assert str(family.id) not in text and str(family.child.member_id) not in text


async def test_a_daily_digest_holds_the_day_and_releases_it_together_the_next_day(db):
    family = Family()
    daily = await subscribe(db, HEALTH, "compliance.escalated", Filter("36"), frequency="daily_digest")
    await apply(db, HANDLERS.on_household, [family.registered(), family.enrolled()])
    await apply(db, HANDLERS.on_events, [
        family.escalated(family.mother, "antenatal", "no_antenatal_care"),
        family.escalated(family.toddler, "toddler", "toddler_not_monitored", at=AT + timedelta(hours=2)),
    ])
    assert not await notifications(db, daily)
    held = await db.pool.fetch("SELECT digest_day, reference FROM digest_entries WHERE subscription_id = $1", daily)
    assert [r["digest_day"] for r in held] == [date(2026, 11, 20)] * 2

    async with db.pool.acquire() as conn:
        assert await digest.release(conn, date(2026, 11, 20)) == 0, "the day is not over"
        assert await digest.release(conn, date(2026, 11, 21)) == 2
        assert await digest.release(conn, date(2026, 11, 21)) == 0, "taken once"
    released = await notifications(db, daily)
    assert [n["payload"]["kind"] for n in released] == ["no_antenatal_care", "toddler_not_monitored"]
    assert {n["reference"] for n in released} == {REFERENCES.reference_of(HEALTH.code, family.id)}
    assert not await db.pool.fetchval("SELECT count(*) FROM digest_entries")


@pytest.fixture
def client(api_client):
    return api_client()  # the admin client's token


async def test_an_admin_loads_the_ready_made_subscriptions_once(client, db):
    catalogue = (await client.get("/ready-made")).json()
    health = next(c for c in catalogue if c["agency"]["code"] == "dinas-kesehatan")
    insurance = next(s for s in health["subscriptions"] if s["name"] == "families-without-health-insurance")
    assert insurance["unavailable"] is None
    assert (insurance["event_type"], insurance["frequency"]) == ("families.without_health_insurance", "daily_digest")

    loaded = await client.post("/agencies/dinas-pendidikan/ready-made", json={"url": "https://opd.example/hooks"})
    assert loaded.status_code == 201, loaded.text
    made = loaded.json()
    assert {s["ready_made"] for s in made} == {"sma-smk-placement", "dropout-risk"}
    assert len({s["secret"] for s in made}) == 1 and made[0]["secret"].startswith("whsec_")
    placement = next(s for s in made if s["ready_made"] == "sma-smk-placement")
    assert (placement["event_type"], placement["frequency"]) == ("children.entering_sma", "daily_digest")
    assert placement["filter"]["enrolment_statuses"] == ["active"]
    assert (await client.post("/agencies/dinas-pendidikan/ready-made", json={})).json() == [], "loaded already"
    agencies = {a["code"]: a for a in (await client.get("/agencies")).json()}
    assert set(agencies["dinas-pendidikan"]["profile"]) == set(EDUCATION.profile)

    feed = await client.post("/agencies/dinas-kesehatan/ready-made", json={"names": ["antenatal-care"]})
    assert feed.status_code == 201 and [s["ready_made"] for s in feed.json()] == ["antenatal-care"]
    assert "url" not in feed.json()[0], "no URL: the agency reads its pull feed"
    unknown = await client.post("/agencies/dinas-kesehatan/ready-made", json={"names": ["x-ray"]})
    assert unknown.status_code == 422 and unknown.json()["errors"] == [
        {"field": "names[0]", "rule": "ready_made", "reason": unknown.json()["errors"][0]["reason"]}]
    assert (await client.post("/agencies/dinas-sosial/ready-made", json={})).status_code == 404


async def test_a_subscription_keeps_its_dci_criteria(client):
    await client.post("/agencies", json={"code": "dinas-pendidikan", "name": "Dinas Pendidikan",
                                         "profile": ["region_code", "members.name"]})
    body = {"agency": "dinas-pendidikan", "event_type": "visit.recorded", "url": "https://opd.example/hooks",
            "frequency": "daily_digest",
            "filter": {"region_prefix": "3672", "programmes": ["jscm"], "enrolment_statuses": ["active"],
                       "member_age": {"min": 7, "max": 18}, "school_levels": ["smp", "sma"]}}
    created = await client.post("/subscriptions", json=body)
    assert created.status_code == 201, created.text
    (listed,) = (await client.get("/subscriptions")).json()
    assert listed["frequency"] == "daily_digest"
    assert listed["filter"] == body["filter"] | {"eligible_only": False, "escalation_kinds": []}
    types = {t["event_type"]: t for t in (await client.get("/event-types")).json()}
    assert "children.entering_sma" in types and "kind" in types["compliance.escalated"]["fields"]
    assert "members.nik" in types["visit.recorded"]["family_fields"]


async def test_the_health_office_hears_once_a_year_of_members_outside_jkn_and_no_one_else_does(db):
    family = Family()
    family.mother = family.mother.model_copy(update={"health_insurance": "none"})
    family.child = family.child.model_copy(update={"health_insurance": "pbi_jkn"})
    health = await subscribe(db, HEALTH, "families.without_health_insurance")
    education = await subscribe(db, EDUCATION, "families.without_health_insurance")

    await apply(db, HANDLERS.on_household, [family.registered()])
    assert not await notifications(db, health), "a candidate is not a KPM yet"
    await apply(db, HANDLERS.on_household, [family.enrolled()])
    covers = await db.pool.fetch("SELECT name, health_insurance FROM family_members WHERE household_id = $1"
                                 " ORDER BY name", family.id)
    assert [tuple(c) for c in covers] == [("Ani", "pbi_jkn"), ("Budi", None), ("Siti Aminah", "none")]

    (told,) = await notifications(db, health)
    assert told["event_type"] == "families.without_health_insurance"
    assert told["payload"]["year"] == 2026 and told["payload"]["region_code"] == "3672011001"
    assert [(m["name"], m["health_insurance"]) for m in told["payload"]["members"]] == [("Siti Aminah", "none")]
    assert not await notifications(db, education), "its profile does not name the cover: it never learns of a lack"

    async with db.pool.acquire() as conn:  # the daily job finds her again: still one notification this year
        await digest.derive(conn, HANDLERS.notify, AT + timedelta(days=30))
    assert len(await notifications(db, health)) == 1
