"""Use cases of likely duplicates: find them in the background, list them for review, and carry out
an operator's decision (merge or dismiss). Nothing is merged without that decision.

Finding them stays off the registration's path: registering (or changing members) only queues the
household (`households.queue_duplicate_checks`, in the same transaction); `watch` takes the queue a
batch at a time and compares the batch's active members with every active member of the same birth
date in the same kecamatan, in one query per batch, then scores the names (`domain.duplicates`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg

from ejsika_runtime import scopes
from ejsika_runtime.auth import Principal
from ejsika_runtime.programme_time import programme_today
from ejsika_runtime.unit_of_work import UnitOfWork

from . import changes, history, imports, members
from .changes import Author
from .domain import duplicates as rules
from .domain.duplicates import Status

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckPolicy:
    threshold: float = rules.DEFAULT_THRESHOLD  # the least name similarity proposed, 0..1
    batch: int = 1000  # households checked per transaction
    idle_s: float = 5.0  # the pause once the queue is empty


# Oldest first; SKIP LOCKED lets replicas take batches side by side.
_TAKE = """
DELETE FROM duplicate_checks WHERE household_id IN (
    SELECT household_id FROM duplicate_checks ORDER BY queued_at LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING household_id
"""

# Blocking: the batch's active members against every active member born the same day whose
# household lies in the same kecamatan, in another household, without the same NIK.
_BLOCKED_PAIRS = """
WITH checked AS (
    SELECT member_id, household_id, name, nik, birth_date, kecamatan FROM members
    WHERE household_id = ANY($1::uuid[]) AND ended_at IS NULL
)
SELECT c.member_id AS member_a, c.household_id AS household_a, c.name AS name_a, c.nik IS NOT NULL AS nik_a,
       o.member_id AS member_b, o.household_id AS household_b, o.name AS name_b, o.nik IS NOT NULL AS nik_b
FROM checked c
JOIN members o ON o.birth_date = c.birth_date AND o.kecamatan = c.kecamatan AND o.ended_at IS NULL
              AND o.household_id <> c.household_id
WHERE c.nik IS NULL OR o.nik IS NULL OR c.nik <> o.nik
"""


async def check_queued(pool: asyncpg.Pool, policy: CheckPolicy = CheckPolicy()) -> int:
    """Check one batch of the queue: propose its likely duplicates and take it off the queue, in one
    transaction (a failure leaves the batch queued). The number of households checked."""
    async with pool.acquire() as conn, conn.transaction():
        checked = [r["household_id"] for r in await conn.fetch(_TAKE, policy.batch)]
        if not checked:
            return 0
        rows = await conn.fetch(_BLOCKED_PAIRS, checked)
        found = rules.candidates([
            (rules.Member(r["member_a"], r["household_a"], r["name_a"], r["nik_a"]),
             rules.Member(r["member_b"], r["household_b"], r["name_b"], r["nik_b"]))
            for r in rows
        ], policy.threshold)
        await _propose(conn, found)
    return len(checked)


async def _propose(conn: asyncpg.Connection, found: list[rules.Candidate]) -> None:
    """New pairs open; a pair proposed before keeps its row, so a dismissed one stays dismissed."""
    if found:
        await conn.execute(
            "INSERT INTO duplicate_candidates (member_a, household_a, member_b, household_b, score, reasons)"
            " SELECT a, ha, b, hb, score, string_to_array(reasons, ',')"
            " FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::real[], $6::text[])"
            "   AS p(a, ha, b, hb, score, reasons)"
            " ON CONFLICT (member_a, member_b) DO NOTHING",
            [c.a.member_id for c in found], [c.a.household_id for c in found],
            [c.b.member_id for c in found], [c.b.household_id for c in found],
            [c.score for c in found], [",".join(c.reasons) for c in found],
        )


async def watch(pool: asyncpg.Pool, policy: CheckPolicy = CheckPolicy()) -> None:
    """The background loop: check batches while the queue holds some, then wait for more. It waits
    while this process imports a register file: the import queues its households and they are checked
    once it is done, instead of slowing it down."""
    while True:
        if imports.running():
            await asyncio.sleep(policy.idle_s)
            continue
        try:
            checked = await check_queued(pool, policy)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError) as error:
            # The batch stays queued; the error's type only, as a statement's detail may hold a value.
            log.warning("duplicate check failed (%s); retrying", type(error).__name__)
            checked = 0
        if checked < policy.batch:
            await asyncio.sleep(policy.idle_s)


# A pair as the review shows it: both members as they are now (names: reviewers compare them).
_PAIRS = """
SELECT c.id, c.status, c.score, c.reasons, c.found_at, c.decided_at, c.decided_by, c.decision_reason,
       c.kept_member_id, c.household_a, c.household_b,
       c.member_a, ma.name AS name_a, ma.birth_date AS birth_date_a, ma.nik_status AS nik_status_a,
       ma.ended_at IS NULL AS active_a, sa.region_code AS region_a,
       c.member_b, mb.name AS name_b, mb.birth_date AS birth_date_b, mb.nik_status AS nik_status_b,
       mb.ended_at IS NULL AS active_b, sb.region_code AS region_b
FROM duplicate_candidates c
JOIN members ma ON ma.member_id = c.member_a
JOIN members mb ON mb.member_id = c.member_b
JOIN household_scope sa ON sa.household_id = c.household_a
JOIN household_scope sb ON sb.household_id = c.household_b
"""


_PAIR_FIELDS = ("id", "status", "score", "reasons", "found_at", "decided_at", "decided_by", "decision_reason",
                "kept_member_id")
_SIDE_FIELDS = {"household_id": "household", "member_id": "member", "name": "name", "birth_date": "birth_date",
                "nik_status": "nik_status", "active": "active", "region_code": "region"}


def _pair(row: asyncpg.Record) -> dict[str, Any]:
    sides = [{name: row[f"{column}_{side}"] for name, column in _SIDE_FIELDS.items()} for side in ("a", "b")]
    return {**{name: row[name] for name in _PAIR_FIELDS}, "members": sides}


async def page(conn: asyncpg.Connection, caller: Principal, status: Status, region_prefix: str | None,
               after: UUID | None, limit: int) -> tuple[list[dict[str, Any]], UUID | None]:
    """The pairs of `status` both of whose households the caller covers, by id after `after`; and the
    id the next page starts after (None at the end)."""
    covers_a, args = scopes.condition(caller, "sa", 1)
    covers_b, _ = scopes.condition(caller, "sb", 1)  # the same parameters
    where = [covers_a, covers_b]
    args.append(status)
    where.append(f"c.status = ${len(args)}")
    if region_prefix:
        args.append(region_prefix)
        where.append(f"(starts_with(sa.region_code, ${len(args)}) OR starts_with(sb.region_code, ${len(args)}))")
    if after is not None:
        args.append(after)
        where.append(f"c.id > ${len(args)}")
    args.append(limit + 1)
    rows = await conn.fetch(f"{_PAIRS} WHERE {' AND '.join(where)} ORDER BY c.id LIMIT ${len(args)}", *args)
    items = [_pair(r) for r in rows[:limit]]
    return items, items[-1]["id"] if len(rows) > limit else None


async def one(conn: asyncpg.Connection, candidate_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"{_PAIRS} WHERE c.id = $1", candidate_id)
    return _pair(row) if row else None


class CandidateNotFound(LookupError):
    pass


class AlreadyDecided(Exception):
    def __init__(self, status: str) -> None:
        super().__init__(f"this pair was {status} already")
        self.status = status


class MemberGone(Exception):
    """A member of the pair is no longer an active member (they left, moved or were merged since)."""


async def _open(conn: asyncpg.Connection, candidate_id: UUID) -> asyncpg.Record:
    """The pair, locked until the decision commits; only an open pair may be decided."""
    row = await conn.fetchrow("SELECT * FROM duplicate_candidates WHERE id = $1 FOR UPDATE", candidate_id)
    if row is None:
        raise CandidateNotFound(candidate_id)
    if row["status"] != "open":
        raise AlreadyDecided(row["status"])
    return row


async def _decide(conn: asyncpg.Connection, candidate_id: UUID, status: Status, author: Author,
                  kept: UUID | None = None) -> None:
    await conn.execute(
        "UPDATE duplicate_candidates SET status = $2, decided_at = now(), decided_by = $3, decision_reason = $4,"
        " kept_member_id = $5 WHERE id = $1",
        candidate_id, status, author.actor, author.reason, kept)


async def dismiss(uow: UnitOfWork, candidate_id: UUID, author: Author) -> None:
    """Not the same person: the pair is closed for good and never proposed again. No household changes."""
    await _open(uow.conn, candidate_id)
    await _decide(uow.conn, candidate_id, "dismissed", author)


async def merge(uow: UnitOfWork, candidate_id: UUID, keep_member_id: UUID, author: Author,
                today: date | None = None) -> None:
    """The same person: the other membership ends as a correction (members.end_member: its history
    row and member.ended event, caused by this pair), and the kept member's household notes the
    merge in its history. Both households are locked in one order, so two merges cannot deadlock."""
    pair = await _open(uow.conn, candidate_id)
    kept, ended = rules.kept_and_ended(pair["member_a"], pair["member_b"], keep_member_id)
    household_of = {pair["member_a"]: pair["household_a"], pair["member_b"]: pair["household_b"]}
    states = {hid: await changes.locked(uow.conn, hid, None) for hid in sorted(set(household_of.values()))}
    if any(str(m) not in states[household_of[m]]["members"] for m in (kept, ended)):
        raise MemberGone()
    caused = replace(author, causation_id=candidate_id)
    await members.end_member(uow, household_of[ended], ended, None, "correction", today or programme_today(),
                             caused, today)
    version = await changes.next_version(uow.conn, household_of[kept])
    await history.write(uow.conn, [history.Change(
        household_of[kept], version, "duplicate_merged", {}, author.source, author.actor, candidate_id,
        author.reason, {"candidate_id": candidate_id, "kept_member_id": kept, "ended_member_id": ended,
                        "ended_household_id": household_of[ended]})])
    await _decide(uow.conn, candidate_id, "merged", author, kept)
