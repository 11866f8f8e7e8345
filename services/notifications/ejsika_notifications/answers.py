"""Use case: an agency answers a notification about a family, and the answer flows back as an event.

An agency (OPD) that was told of a family answers what it did: it took the family into one of its
programmes (accepted), the service happened (service_delivered: the child was placed at an SMA/SMK,
the check-up took place), or it declined, with a reason. Each answer is kept and becomes one
`agency.answered` through the outbox, in the same transaction, about the household the notification
was about (an internal id the agency never sees).

Answers are idempotent by the agency's `client_id`: the same client id with the same answer gives
back what the first gave and changes nothing; with another answer it is a conflict. A notification
may be answered several times (accepted first, service delivered months later): each is an answer.

Notifications are pruned after their retention; the answers keep the facts of the notification they
answered, so that a later answer of the same notification still finds its family.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

import asyncpg

from ejsika_contracts import AgencyAnswered, AgencyAnsweredData, AnswerOutcome
from ejsika_runtime.unit_of_work import UnitOfWork

SOURCE = "notifications"
# What an answer writes of a family, for the record of processing.
ANSWER_FIELDS = ("agency_answers.outcome", "agency_answers.programme", "agency_answers.reason",
                 "agency_answers.member_id")


@dataclass(frozen=True)
class Notification:
    """What an answer needs of the notification it answers."""

    id: UUID
    agency: str
    household_id: UUID
    notified_at: datetime
    event_id: UUID | None  # the event notified (None for a digest entry or a derived fact without one)


@dataclass(frozen=True)
class Wanted:
    """An answer as the agency sends it."""

    client_id: UUID
    programme: str
    outcome: AnswerOutcome
    reason: str | None = None
    member_reference: str | None = None


@dataclass(frozen=True)
class Answer:
    id: UUID
    agency: str
    client_id: UUID
    notification_id: UUID
    household_id: UUID
    programme: str
    outcome: str
    reason: str | None
    member_reference: str | None
    member_id: UUID | None
    notified_at: datetime
    answered_at: datetime
    event_id: UUID

    def same_as(self, notification_id: UUID, wanted: Wanted) -> bool:
        """Whether `wanted` for `notification_id` is this answer sent again (a retry)."""
        return (self.notification_id, self.programme, self.outcome, self.reason, self.member_reference) == (
            notification_id, wanted.programme, wanted.outcome, wanted.reason, wanted.member_reference)

    @property
    def seconds_to_answer(self) -> float:
        return max(0.0, (self.answered_at - self.notified_at).total_seconds())


class ClientIdTaken(Exception):
    """The agency used this client id for another answer."""


@dataclass(frozen=True)
class Given:
    answer: Answer
    created: bool  # False: the same answer sent again, nothing changed
    first_of_notification: bool  # the notification's first answer: its time to answer counts


_COLUMNS = ("id, agency, client_id, notification_id, household_id, programme, outcome, reason, member_reference,"
            " member_id, notified_at, answered_at, event_id")


def _answer(row: asyncpg.Record) -> Answer:
    return Answer(**dict(row))


async def notification(conn: asyncpg.Connection, notification_id: UUID) -> Notification | None:
    """The notification, from the queue or, once pruned there, from an earlier answer of it."""
    row = await conn.fetchrow(
        "SELECT d.id, s.agency, d.household_id, d.created_at AS notified_at, d.event_id"
        " FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id"
        " WHERE d.id = $1 AND d.household_id IS NOT NULL", notification_id)
    if row is None:
        row = await conn.fetchrow(
            "SELECT notification_id AS id, agency, household_id, notified_at, notified_event AS event_id"
            " FROM agency_answers WHERE notification_id = $1 LIMIT 1", notification_id)
    return Notification(**dict(row)) if row else None


async def by_client_id(conn: asyncpg.Connection, agency: str, client_id: UUID) -> Answer | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM agency_answers WHERE agency = $1 AND client_id = $2",
                              agency, client_id)
    return _answer(row) if row else None


async def of_notification(conn: asyncpg.Connection, notification_id: UUID,
                          after: tuple[datetime, UUID] | None = None, limit: int = 100) -> list[Answer]:
    """The notification's answers after the position `after` (answered_at, id), oldest first."""
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM agency_answers WHERE notification_id = $1"
                            " AND ($2::timestamptz IS NULL OR (answered_at, id) > ($2, $3::uuid))"
                            " ORDER BY answered_at, id LIMIT $4",
                            notification_id, after[0] if after else None, after[1] if after else None, limit)
    return [_answer(r) for r in rows]


def replayed(existing: Answer, notification_id: UUID, wanted: Wanted) -> Given:
    """A client id seen before: the first answer again, or ClientIdTaken if this one says otherwise."""
    if not existing.same_as(notification_id, wanted):
        raise ClientIdTaken()
    return Given(existing, created=False, first_of_notification=False)


async def give(uow: UnitOfWork, notification: Notification, wanted: Wanted, member_id: UUID | None,
               correlation_id: UUID | None = None) -> Given:
    """Keep the answer and emit its `agency.answered`, or answer the retry of one given already.

    The caller has checked that the notification is the agency's own. Concurrent retries of one client
    id meet at the unique key: one inserts, the others read what it kept.
    """
    conn = uow.conn
    if (existing := await by_client_id(conn, notification.agency, wanted.client_id)) is not None:
        return replayed(existing, notification.id, wanted)
    event_id = uuid4()
    row = await conn.fetchrow(
        "INSERT INTO agency_answers (agency, client_id, notification_id, household_id, programme, outcome, reason,"
        " member_reference, member_id, notified_at, notified_event, event_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        f" ON CONFLICT (agency, client_id) DO NOTHING RETURNING {_COLUMNS},"
        " NOT EXISTS (SELECT 1 FROM agency_answers WHERE notification_id = $3) AS first",
        notification.agency, wanted.client_id, notification.id, notification.household_id, wanted.programme,
        wanted.outcome, wanted.reason, wanted.member_reference, member_id, notification.notified_at,
        notification.event_id, event_id)
    if row is None:  # a concurrent retry of the same client id got there first
        existing = await by_client_id(conn, notification.agency, wanted.client_id)
        assert existing is not None
        return replayed(existing, notification.id, wanted)
    first = row["first"]
    answer = Answer(**{k: v for k, v in dict(row).items() if k != "first"})
    uow.emit(answered(answer, notification, correlation_id))
    return Given(answer, created=True, first_of_notification=first)


def answered(answer: Answer, notification: Notification, correlation_id: UUID | None) -> AgencyAnswered:
    """The event of an answer: caused by the event notified, when there was one."""
    return AgencyAnswered(
        id=answer.event_id,
        source=SOURCE,
        subject=str(answer.household_id),
        correlation_id=correlation_id or uuid4(),
        causation_id=notification.event_id,
        data=AgencyAnsweredData(
            household_id=answer.household_id, notification_id=answer.notification_id, agency=answer.agency,
            programme=answer.programme, outcome=answer.outcome, reason=answer.reason, member_id=answer.member_id,
            answered_at=answer.answered_at),
    )
