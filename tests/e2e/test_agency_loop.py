"""The whole loop of issue 10, on the four services as processes over real Kafka, PostgreSQL and Keycloak:
a caseworker's visits posted to monitoring → the verification of commitments escalates a school dropout
risk → the education office's webhook (a real HTTP receiver verifying Standard Webhooks signatures) →
the office answers the notification → the registry shows the answer on the family's record.

Escalation takes three verification periods in a row, and a period is closed by monitoring's background
loop the day after it ends. A test cannot wait three months, so the family is one registered before
those periods (its registration moment in monitoring is set back, as for a family imported from the
register), its visits are posted as captured in them, and each period is closed in order by Cilegon's
operator through monitoring's API (`POST /compliance/periods/jscm/{period_start}/closing`, what the loop
does the day after a period ends). Everything after that is the platform's own work: the outbox relays,
the consumers, the webhook, the answer's event, the registry.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone

import httpx

from ejsika_monitoring.domain.compliance import Period
from ejsika_runtime.demo.launcher import new_webhook_secret, start_receiver, stop
from ejsika_runtime.demo.synthetic import Families
from ejsika_runtime.embedded import free_port

from .conftest import Platform, activate, eventually, query

PERIODS = [Period(date(2025, 1, 1), date(2025, 1, 31)), Period(date(2025, 2, 1), date(2025, 2, 28)),
           Period(date(2025, 3, 1), date(2025, 3, 31))]
# What the education office must be allowed to see to hear of a school escalation at all (its ready-made
# profile grants these; the launcher's demo agency was made with a narrower one, and no API changes a profile).
SCHOOL_ESCALATION_GRANTS = ["compliance.school", "commitment", "kind", "consecutive_periods", "period_end"]


def _school_family(families: Families) -> tuple[dict, int]:
    """A Cilegon (jscm) registration with a member of school age (8-20) in the periods: it and the index."""
    for _ in range(200):
        body = families.registration(programme="jscm")
        for index, member in enumerate(body["members"]):
            born = date.fromisoformat(member["birth_date"])
            if 8 <= (PERIODS[0].end - born).days // 366 <= 20:
                body["region_code"] = "3672011001"
                return body, index
    raise AssertionError("no synthetic family with a school-age child")


def _visit(household_id: str, member_id: str, period: Period) -> dict:
    captured = datetime(period.start.year, period.start.month, 15, 3, 0, tzinfo=timezone.utc)
    return {"visit_id": str(uuid.uuid4()), "household_id": household_id, "captured_at": captured.isoformat(),
            "observations": {"school": [{"member_id": member_id, "enrolled": True, "days_present": 4,
                                         "school_days": 20}]},
            "notes": "anak jarang masuk sekolah"}


def _close(operator: httpx.Client, periods: list[Period]) -> None:
    """Close the periods, oldest first, as monitoring's period-close loop does the day after each ends."""
    for period in periods:
        closed = operator.post(f"/compliance/periods/jscm/{period.start.isoformat()}/closing", timeout=120)
        assert closed.status_code == 202, closed.text


def _escalations(receiver: str) -> list[dict]:
    """The compliance.escalated notifications the office's receiver verified and kept."""
    hooks = httpx.get(f"{receiver}/received", timeout=10).json()
    return [n for hook in hooks for n in hook["payload"].get("notifications", [])
            if n.get("type") == "compliance.escalated"]


def test_a_visit_escalated_reaches_the_education_office_whose_answer_shows_on_the_family(platform: Platform):
    database = platform.env["EJSIKA_DATABASE_URL"]
    body, child_index = _school_family(Families(seed=1010))
    registered = platform.client("registry").post("/households", json=body)  # by pendamping-demo
    assert registered.status_code == 201, registered.text
    household_id = registered.json()["household_id"]
    child = platform.client("registry").get(f"/households/{household_id}").json()["members"][child_index]
    assert child["birth_date"] == body["members"][child_index]["birth_date"]
    activate(platform, household_id, "jscm")
    monitoring = platform.client("monitoring")
    eventually(lambda: monitoring.get(f"/households/{household_id}/visits").json())  # active and scheduled

    # The education office: its system receives webhooks at its own HTTPS endpoint (here a local one).
    secret, port = new_webhook_secret(), free_port()
    receiver_process = start_receiver(port, secret, platform.env)
    receiver = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: _up(receiver), timeout=30)
        query(database, "UPDATE notifications.agencies SET profile = ARRAY(SELECT DISTINCT unnest(profile || $1::text[]))"
                        " WHERE code = 'dinas-pendidikan'", SCHOOL_ESCALATION_GRANTS)
        subscribed = platform.client("notifications", role="admin").post("/subscriptions", json={
            "agency": "dinas-pendidikan", "event_type": "compliance.escalated", "url": f"{receiver}/webhooks",
            "secret": secret, "filter": {"region_prefix": "3672", "escalation_kinds": ["school_dropout_risk"]}})
        assert subscribed.status_code == 201, subscribed.text

        # Three months of visits: the child attends 4 school days of 20 each month.
        query(database, "UPDATE monitoring.households SET registered_at = '2024-12-01T00:00:00+07:00'"
                        " WHERE household_id = $1", uuid.UUID(household_id))
        for period in PERIODS:
            visit = monitoring.post("/visits", json=_visit(household_id, child["member_id"], period))
            assert visit.status_code == 201, visit.text
        _close(platform.client("monitoring", role="operator"), PERIODS)
        results = monitoring.get(f"/households/{household_id}/compliance").json()["items"]
        assert [r["result"] for r in results] == ["non_compliant"] * 3

        # The escalation reaches the office, signed (the receiver keeps only what it verified).
        [notification] = eventually(lambda: _escalations(receiver), timeout=120)
        assert household_id not in str(notification)  # the office knows the family by its own reference
        assert notification["data"]["kind"] == "school_dropout_risk"
        [about] = query(database, "SELECT household_id::text FROM notifications.deliveries WHERE id = $1",
                        uuid.UUID(notification["id"]))
        assert about["household_id"] == household_id

        # The office answers: the child is taken into its programme, then back at school.
        office = platform.client("notifications", role="agency")
        answers = [office.post(f"/notifications/{notification['id']}/answers", json={
            "client_id": str(uuid.uuid4()), "programme": "school_return", "outcome": outcome})
            for outcome in ("accepted", "service_delivered")]
        assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
        figures = office.get("/agencies/dinas-pendidikan/figures").json()
        assert figures["answers"]["answered"] >= 1 and figures["answers"]["time_to_answer"]["count"] >= 1
    finally:
        stop([receiver_process])

    # The family's record in the registry, as its pendamping reads it.
    def shown() -> list[dict]:
        answer = platform.client("registry").get(f"/households/{household_id}/agency-services")
        assert answer.status_code == 200, answer.text
        services = answer.json()["services"]
        return services if services and len(services[0]["history"]) == 2 else []

    [service] = eventually(shown, timeout=60)
    assert (service["agency"], service["programme"], service["outcome"], service["benefits"]) == (
        "dinas-pendidikan", "school_return", "service_delivered", True)
    assert [h["notification_id"] for h in service["history"]] == [notification["id"]] * 2
    # ... and its supervisor; the agency itself never reads the registry.
    assert platform.client("registry", role="supervisor").get(
        f"/households/{household_id}/agency-services").json()["services"] == [service]
    assert platform.client("registry", role="agency").get(
        f"/households/{household_id}/agency-services").status_code == 404


def _up(receiver: str) -> bool:
    try:
        return httpx.get(f"{receiver}/received", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
