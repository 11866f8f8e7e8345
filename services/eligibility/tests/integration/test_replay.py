"""Replay equal to live, on the real Kafka and PostgreSQL.

Realistic registry and monitoring events go to their topics in waves while a live eligibility service
consumes them (small batches, the three topics interleaved as they come). A second service, on a fresh
schema and a new consumer group, then reads the same topics from their start (large batches, each topic
at its own pace). Both must end in the same state: households and their inputs, the facts they are
folded from, the decisions, the enrolment steps and who may see each household. Only what is generated
where it happens (decisions' event ids, timestamps) may differ.

Families prosperous over several welfare surveys, visited in between, are among them: their run
towards mandiri (`decisions.prior_high`) counts the registry's welfare observations, not decisions,
so how the three topics interleave (a visit read before or after a welfare update) does not change
it, nor the graduation, the proposed exit or the fingerprint.

A service runs under its name as its schema and its consumer group, so each run here is the
eligibility service's consumers under a name of its own.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from pathlib import Path

import asyncpg
import pytest

import ejsika_eligibility
from ejsika_contracts import Event, topic_of
from ejsika_eligibility import inputs
from ejsika_runtime.kafka import new_producer
from ejsika_runtime.service import Service
from ejsika_runtime.settings import Settings
from ejsika_runtime.testing import ISSUER

from ..family_events import POOR, Family, member

pytestmark = pytest.mark.infra

MIGRATIONS = Path(ejsika_eligibility.__file__).parent / "migrations"
BETTER_OFF = {**POOR, "earth_or_bamboo_floor": False, "bamboo_or_unplastered_walls": False,
              "no_private_toilet": False, "cooks_with_wood_or_kerosene": False, "floor_area_per_person_m2": 10.0}
PROSPEROUS = {**{name: False for name, value in POOR.items() if isinstance(value, bool)},
              "floor_area_per_person_m2": 30.0, "installed_power_va": 2200}  # desil 10
# Families surveyed three times (registration, second and third wave) and visited between the surveys:
# three prosperous surveys make a mandiri candidate; poor then prosperous twice does not, however
# many decisions follow.
SURVEYS = {5: [PROSPEROUS, PROSPEROUS, {**PROSPEROUS, "installed_power_va": 1300}],
           11: [POOR, PROSPEROUS, {**PROSPEROUS, "installed_power_va": 1300}]}

# The state compared, in a stable order; what is generated where it happens is left out.
STATE = {
    "households": "SELECT household_id, programme, region_code, inputs::text, version, enrolment_status,"
                  " registered_on, next_review_on, compliance::text FROM households ORDER BY household_id",
    "facts": "SELECT household_id, facts::text FROM household_facts ORDER BY household_id",
    "decisions": "SELECT household_id, programme, rule_version, region_code, score, desil, status, missing,"
                 " components, yearly_amount, graduation, proposed_exit, prior_high, assessed_on, fingerprint,"
                 " welfare_version, active_rule FROM decisions ORDER BY household_id, programme, rule_version",
    "enrolment_steps": "SELECT * FROM enrolment_steps ORDER BY household_id, version",
    "scopes": "SELECT * FROM household_scope ORDER BY household_id",
}


def waves() -> list[list[Event]]:
    """What happens to twelve families over a few months, in four waves, each family's events in order."""
    first, second, third, fourth = [], [], [], []
    families = [Family(programme="jscm" if i % 3 == 0 else "jamsosratu",
                       region_code="3672011001" if i % 3 == 0 else f"36010{i % 5 + 1}1001") for i in range(12)]
    people = {}
    for i, family in enumerate(families):
        head, spouse = member("head", "1975-04-01"), member("spouse", "1980-08-01", sex="F")
        pupil, toddler = member("child", f"{2010 + i % 6}-02-01", in_school=True), member("child", "2022-05-01")
        people[family.id] = (head, spouse, pupil, toddler)
        welfare = SURVEYS[i][0] if i in SURVEYS else None
        first += [family.registered([head, spouse, pupil, toddler], welfare=welfare), family.enrolment("candidate", None)]
    for i, family in enumerate(families):
        head, spouse, pupil, toddler = people[family.id]
        second.append(family.enrolment("active", "candidate"))
        second.append(family.visit(school=[(pupil["member_id"], i % 2 == 0)],
                                   antenatal=[spouse["member_id"]] if i % 4 == 0 else []))
        if i % 3 == 1:
            second.append(family.updated(welfare=BETTER_OFF))
        if i % 4 == 2:
            second.append(family.added(member("child", "2026-02-20", sex="M")))
        if i in SURVEYS:
            second.append(family.updated(welfare=SURVEYS[i][1]))
    a, b, c, d = families[0], families[1], families[2], families[3]
    # a member marries into another family; a family splits; a head dies and the spouse heads the family
    third.append(b.moved_in(a, people[a.id][2]["member_id"], member("spouse", people[a.id][2]["birth_date"])))
    split_off = Family(household_id=uuid.uuid4(), programme=c.programme, region_code=c.region_code)
    third.append(c.split(split_off.id, [people[c.id][2]["member_id"]]))
    third.append(split_off.registered([member("head", people[c.id][2]["birth_date"])], split_from=str(c.id)))
    third.append(d.ended(people[d.id][0]["member_id"]))
    third.append(d.head_changed(people[d.id][1]["member_id"], people[d.id][0]["member_id"], []))
    for i, family in enumerate(families):
        pupil = people[family.id][2]["member_id"]
        third.append(family.verified(date(2026, 3, 31), [(pupil, "school", "compliant" if i % 2 else "non_compliant")]))
        if i % 2 == 0:
            third.append(family.escalated(pupil, date(2026, 3, 31)))
        if i in SURVEYS:  # a visit, then the third survey, then another visit
            third += [family.visit(school=[(pupil, True)]), family.updated(welfare=SURVEYS[i][2]),
                      family.visit(school=[(pupil, False)])]
    for i, family in enumerate(families):
        pupil = people[family.id][2]["member_id"]
        if i % 4 == 0:
            fourth.append(family.verified(date(2026, 4, 30), [(pupil, "school", "compliant")]))
        if i % 5 == 4:
            fourth.append(family.enrolment("exited", "active", "paksa"))
        fourth.append(family.member_updated({**people[family.id][3], "disability": True}, "disability"))
        if i in SURVEYS:
            fourth.append(family.visit(school=[(pupil, True)]))
    fourth.append(a.updated(region_code="3672021002"))
    return [first, second, third, fourth]


async def produce(bootstrap: str, events: list[Event]) -> None:
    producer = new_producer(bootstrap, f"replay-test-{uuid.uuid4().hex[:6]}")
    await producer.start()
    try:
        sent = [await producer.send(topic_of(e).name, e.to_bytes(), key=e.key()) for e in events]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def eligibility(name: str, database_url: str, bootstrap: str) -> Service:
    """The eligibility service's consumers, under `name` (its schema and consumer group)."""
    settings = Settings(database_url=database_url, kafka_bootstrap=bootstrap, auth_issuer=ISSUER,
                        consumer_concurrency=2, consumer_batch_timeout_ms=200, relay_poll_interval_s=0.2)
    service = Service(name, settings, MIGRATIONS)
    inputs.consume(service)
    return service


async def applied(service: Service, ids: set[uuid.UUID], timeout: float = 120) -> None:
    """Wait until the service's inbox holds every one of `ids`."""
    async with asyncio.timeout(timeout):
        while True:
            found = await service.pool.fetchval("SELECT count(*) FROM inbox WHERE event_id = ANY($1::uuid[])", list(ids))
            if found == len(ids):
                return
            await asyncio.sleep(0.3)


async def state(service: Service) -> dict[str, list[dict]]:
    return {name: [dict(r) for r in await service.pool.fetch(sql)] for name, sql in STATE.items()}


async def test_a_replay_from_the_start_of_the_topics_ends_in_the_live_state(database_url, kafka_bootstrap):
    batches = waves()
    every = {e.id for wave in batches for e in wave}
    suffix = uuid.uuid4().hex[:6]
    live = eligibility(f"eligibility_live_{suffix}", database_url, kafka_bootstrap)
    replay = eligibility(f"eligibility_replay_{suffix}", database_url, kafka_bootstrap)
    try:
        async with live.running():
            for wave in batches:  # the live service reads each wave as it comes
                await produce(kafka_bootstrap, wave)
                await applied(live, {e.id for e in wave})
            live_state = await state(live)
        async with replay.running():
            await applied(replay, every)
            replay_state = await state(replay)
    finally:
        await drop(database_url, live.name, replay.name)

    households = {r["household_id"] for r in live_state["households"]}
    assert len(households) == 13 and len(live_state["decisions"]) == 13
    assert {r["status"] for r in live_state["enrolment_steps"]} == {"candidate", "active", "exited"}
    assert any(r["proposed_exit"] == "paksa" for r in live_state["decisions"])
    # the two surveyed families (no other is at desil 10): a mandiri candidate, and one run short of it
    runs = sorted(((r["prior_high"], r["graduation"], r["proposed_exit"]) for r in live_state["decisions"]
                   if r["desil"] == 10), key=lambda run: run[0])
    assert runs == [(1, None, None), (2, "mandiri", "mandiri")]
    for name in STATE:
        assert replay_state[name] == live_state[name], (name, differences(live_state[name], replay_state[name]))


def differences(live: list[dict], replay: list[dict]) -> list[tuple]:
    """Each column that differs, row by row: (row, column, live, replay)."""
    if len(live) != len(replay):
        return [("rows", len(live), len(replay))]
    return [(i, k, a[k], b.get(k)) for i, (a, b) in enumerate(zip(live, replay)) for k in a if a[k] != b.get(k)]


async def drop(database_url: str, *schemas: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
