"""What the consumer decides without a database: which errors are transient, when failures are
systemic rather than poison, and how a household's events wait behind its dead letter."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry, generate_latest
from ruamel.yaml import YAML

from ejsika_contracts import VISIT, VisitScheduled, VisitScheduledData
from ejsika_runtime.consumer import systemic, transient
from ejsika_runtime.holds import REPLAYED_FOR, REPLAYED_FROM, Arrival, Holds, Verdict, letter_of
from ejsika_runtime.metrics import RuntimeMetrics
from ejsika_runtime.testing import promtool

ALERTS = Path(__file__).parents[4] / "deploy" / "prometheus" / "alerts.yml"


def server_error(sqlstate: str) -> asyncpg.PostgresError:
    """The asyncpg exception the server's SQLSTATE maps to, as a connection would raise it."""
    return asyncpg.PostgresError.new({"C": sqlstate, "M": "from the server", "S": "ERROR"})


@pytest.mark.parametrize("sqlstate", [
    "08006",  # connection failure
    "40001",  # serialization failure
    "40P01",  # deadlock detected
    "53300",  # too many connections
    "57P01",  # admin shutdown
    "57014",  # query cancelled (statement timeout)
    "55P03",  # lock not available
    "25006",  # read-only transaction: a standby after a failover
])
def test_errors_of_a_database_that_cannot_serve_now_are_transient(sqlstate):
    assert transient(server_error(sqlstate))


@pytest.mark.parametrize("sqlstate", ["23505", "22P02", "42P01", "42501", "55000", "25001"])
def test_errors_that_a_retry_will_not_fix_are_not_transient(sqlstate):
    assert not transient(server_error(sqlstate))


def test_a_transient_error_wrapped_by_a_handler_stays_transient():
    try:
        try:
            raise server_error("40P01")
        except asyncpg.PostgresError as error:
            raise RuntimeError("could not store the visit") from error
    except RuntimeError as wrapped:
        assert transient(wrapped)
    assert not transient(ValueError("a bad event"))
    assert transient(ConnectionResetError()) and transient(TimeoutError())


def test_more_than_half_failing_with_two_failures_in_a_row_is_systemic():
    assert systemic(failures=6, tried=10, streak=0, ratio=0.5, least=2)
    assert not systemic(failures=5, tried=10, streak=0, ratio=0.5, least=2), "half is not more than half"
    assert not systemic(failures=1, tried=3, streak=0, ratio=0.5, least=2), "one poison event among good ones"
    # a lone failing event is poison after a success, systemic right after another failure
    assert not systemic(failures=1, tried=1, streak=0, ratio=0.5, least=2)
    assert systemic(failures=1, tried=1, streak=1, ratio=0.5, least=2)


def record(key: bytes, offset: int, value: bytes, replayed: bool = False) -> ConsumerRecord:
    headers = [(REPLAYED_FROM, b"0:7")] if replayed else []
    return ConsumerRecord(VISIT.name, 0, offset, 0, 0, key, value, None, len(value), len(value), headers)


def event(household: uuid.UUID) -> VisitScheduled:
    return VisitScheduled(source="test", subject=str(household), correlation_id=uuid.uuid4(),
                          data=VisitScheduledData(household_id=household, visit_id=uuid.uuid4(),
                                                  kind="first_visit", due_date="2026-12-01"))


def arrival(e: VisitScheduled, offset: int, replayed: bool = False) -> Arrival:
    return Arrival(record(e.subject.encode(), offset, e.to_bytes(), replayed), e)


def test_a_household_s_events_wait_behind_its_dead_letter_and_replay_in_their_order():
    household, other = uuid.uuid4(), uuid.uuid4()
    e1, e2, e3, x = event(household), event(household), event(household), event(other)
    holds = Holds({})

    # e1 fails for good: its household's later events are parked, another household's go through
    assert holds.admit(arrival(e1, 1)) is Verdict.APPLY
    holds.failed(arrival(e1, 1), "handler_failed")
    assert [holds.admit(arrival(e, o)) for e, o in ((e2, 2), (x, 3), (e3, 4))] == \
        [Verdict.PARK, Verdict.APPLY, Verdict.PARK]
    assert [(a.event, reason) for a, reason in holds.added] == \
        [(e1, "handler_failed"), (e2, "parked_behind"), (e3, "parked_behind")]

    # the same records read again after a rewind are not dead-lettered twice
    assert [holds.admit(arrival(e, o)) for e, o in ((e1, 1), (e2, 2))] == [Verdict.PASS, Verdict.PASS]

    # replayed out of order: e3 and e2 wait again until e1 is applied, then follow in order
    assert holds.admit(arrival(e3, 10, replayed=True)) is Verdict.PARK
    assert holds.admit(arrival(e2, 11, replayed=True)) is Verdict.PARK
    assert holds.admit(arrival(e1, 12, replayed=True)) is Verdict.APPLY
    holds.applied(arrival(e1, 12, replayed=True))
    assert holds.admit(arrival(e3, 13, replayed=True)) is Verdict.PARK, "e2 is older"
    assert holds.admit(arrival(e2, 14, replayed=True)) is Verdict.APPLY
    holds.applied(arrival(e2, 14, replayed=True))
    assert holds.admit(arrival(e3, 15, replayed=True)) is Verdict.APPLY
    holds.applied(arrival(e3, 15, replayed=True))
    assert holds.released == [arrival(e, 0).letter for e in (e1, e2, e3)]
    assert not holds.held(str(household).encode()) and holds.admit(arrival(event(household), 16)) is Verdict.APPLY


def test_a_replay_of_another_group_s_letter_is_passed_over():
    e = event(uuid.uuid4())
    value = e.to_bytes()
    mine, theirs = ((Arrival(ConsumerRecord(VISIT.name, 0, 1, 0, 0, e.key(), value, None, 0, 0,
                                            [(REPLAYED_FROM, b"0:7"), (REPLAYED_FOR, group)]), e))
                    for group in (b"monitoring", b"eligibility"))
    holds = Holds({}, group="monitoring")
    assert holds.admit(theirs) is Verdict.PASS, "applied before, though the inbox may have forgotten it"
    assert holds.admit(mine) is Verdict.APPLY


def test_a_record_that_is_no_event_holds_its_key_and_an_event_applied_before_is_not_parked():
    household = uuid.uuid4()
    key = str(household).encode()
    garbage = Arrival(record(key, 1, b"{oops"), None, "not JSON")
    holds = Holds({})
    assert holds.admit(garbage) is Verdict.INVALID
    later, applied_before = event(household), event(household)
    holds.applied_ids = {applied_before.id}
    assert holds.admit(arrival(later, 2)) is Verdict.PARK
    assert holds.admit(arrival(applied_before, 3)) is Verdict.PASS
    # the same bytes under another key are another letter
    assert letter_of(b"a", b"{oops") != letter_of(b"b", b"{oops") != letter_of(None, b"{oops")
    assert holds.admit(Arrival(record(b"another", 4, b"{oops"), None, "not JSON")) is Verdict.INVALID


def exposition() -> str:
    registry = CollectorRegistry()
    metrics = RuntimeMetrics(registry, "eligibility")
    metrics.consumer_paused("ejsika.household", True)
    metrics.rewound("ejsika.household", "systemic")
    metrics.dead_letter("ejsika.household", "parked_behind")
    return generate_latest(registry).decode()


def test_the_pause_metrics_pass_promtool_and_an_alert_watches_them():
    checked = promtool("check", "metrics", input=exposition())
    assert checked.returncode == 0 and not checked.stdout.strip() and not checked.stderr.strip(), checked
    rules = {rule["alert"]: rule["expr"] for group in YAML(typ="safe").load(ALERTS.read_text())["groups"]
             for rule in group["rules"]}
    exposed = set(re.findall(r"^(ejsika_\w+?)(?:\{| )", exposition(), re.MULTILINE))
    assert "ejsika_consumer_paused" in rules["EjsikaConsumerPaused"] and "ejsika_consumer_paused" in exposed
    assert "ejsika_consumer_rewinds_total" in rules["EjsikaConsumerRewinding"]
    assert "ejsika_consumer_rewinds_total" in exposed
