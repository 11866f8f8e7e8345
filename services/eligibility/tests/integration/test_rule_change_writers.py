"""A rule change writes two chunks at once: progress still moves in chunk order, so a chunk that fails takes the
one after it down with it, nothing of either is kept, and the job resumes from before them and ends whole."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import date
from pathlib import Path

import pytest

import ejsika_eligibility
from ejsika_contracts import EligibilityAssessed
from ejsika_eligibility import rule_book, rule_change
from ejsika_runtime.outbox import Outbox

from ..unit.test_columns import random_household

pytestmark = pytest.mark.infra

MIGRATIONS = Path(ejsika_eligibility.__file__).parent / "migrations"
TODAY = date(2026, 11, 28)
CHUNK = 20


@pytest.fixture
async def register(migrated_schema):
    schema, pool = await migrated_schema("eligibility", MIGRATIONS)
    rng = random.Random(11)
    households = [random_household(rng) for _ in range(100)]
    await pool.execute(
        "INSERT INTO households (household_id, programme, region_code, inputs, enrolment_status) SELECT u.h,"
        " 'jamsosratu', '3601011001', u.i, 'candidate' FROM unnest($1::uuid[], $2::json[]) AS u(h, i)",
        [uuid.UUID(h["household_id"]) for h in households], [json.dumps(h) for h in households])
    await rule_book.seed_defaults(pool)
    await pool.execute("UPDATE rule_sets SET active = false WHERE programme = 'jamsosratu'")
    return schema, pool, sorted(uuid.UUID(h["household_id"]) for h in households)


def first_chunk_waits_for_the_second(write_chunk, then):
    """A `write_chunk` whose first call, once written, waits until the second chunk is written too, then `then()`."""
    calls: list[bool] = []
    second_written = asyncio.Event()

    async def write(uow, *args):
        first = not calls
        calls.append(first)
        written = await write_chunk(uow, *args)
        if first:
            await asyncio.wait_for(second_written.wait(), 60)  # only if two chunks are written at once
            await then()
        else:
            second_written.set()
        return written

    return write, calls


async def test_a_failed_chunk_takes_the_next_one_down_and_the_job_resumes_before_both(register, monkeypatch):
    schema, pool, ids = register
    outbox = Outbox(schema)
    job = await rule_change.activate(pool, "jamsosratu", 1, "test")
    rules = await rule_book.version(pool, "jamsosratu", 1)
    write_chunk = rule_change.write_chunk

    async def fail():
        raise RuntimeError("the database went away")

    failing, calls = first_chunk_waits_for_the_second(write_chunk, fail)
    monkeypatch.setattr(rule_change, "write_chunk", failing)
    assert await rule_change.claim(pool, job) is not None
    with pytest.raises(RuntimeError):
        await rule_change.walk(pool, outbox, job, rules, rule_change.FIRST, CHUNK, TODAY, writers=2)
    assert len(calls) >= 2  # the second chunk was written beside the first
    progress = await pool.fetchrow("SELECT done, changed, after_id FROM reassessments WHERE job_id = $1", job)
    assert tuple(progress) == (0, 0, None)
    assert await pool.fetchval("SELECT count(*) FROM decisions") == 0
    assert await pool.fetchval("SELECT count(*) FROM assessments") == 0
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0

    monkeypatch.setattr(rule_change, "write_chunk", write_chunk)
    await pool.execute("UPDATE reassessments SET claimed_until = NULL WHERE job_id = $1", job)
    assert await rule_change.run(pool, outbox, job, chunk_size=CHUNK, today=TODAY)
    progress = await pool.fetchrow("SELECT state, done, changed, after_id FROM reassessments WHERE job_id = $1", job)
    assert tuple(progress) == ("done", len(ids), len(ids), ids[-1])
    assert sorted(r["household_id"] for r in await pool.fetch("SELECT household_id FROM decisions")) == ids
    events = [EligibilityAssessed.model_validate_json(bytes(r["value"]))
              for r in await pool.fetch("SELECT value FROM outbox ORDER BY id")]
    assert sorted(e.data.household_id for e in events) == ids  # each first decision announced once
    history = await pool.fetch("SELECT event_id, household_id FROM assessments")
    assert {(r["event_id"], r["household_id"]) for r in history} == {(e.id, e.data.household_id) for e in events}


async def test_chunks_written_two_at_a_time_commit_in_their_order(register, monkeypatch):
    schema, pool, ids = register
    outbox = Outbox(schema)
    job = await rule_change.activate(pool, "jamsosratu", 1, "test")
    rules = await rule_book.version(pool, "jamsosratu", 1)
    # the first chunk lingers once the second is written: the second would commit first, were it not made to wait
    lingering, _ = first_chunk_waits_for_the_second(rule_change.write_chunk, lambda: asyncio.sleep(0.5))
    monkeypatch.setattr(rule_change, "write_chunk", lingering)
    commit, committed = rule_change.commit, []

    async def noted(*args, **kwargs):
        committed.append(await commit(*args, **kwargs))
        return committed[-1]

    monkeypatch.setattr(rule_change, "commit", noted)
    assert await rule_change.claim(pool, job) is not None
    await rule_change.walk(pool, outbox, job, rules, rule_change.FIRST, CHUNK, TODAY, writers=2)
    assert committed == [ids[k - 1] for k in range(CHUNK, len(ids) + 1, CHUNK)]
    progress = await pool.fetchrow("SELECT done, after_id FROM reassessments WHERE job_id = $1", job)
    assert tuple(progress) == (len(ids), ids[-1])
