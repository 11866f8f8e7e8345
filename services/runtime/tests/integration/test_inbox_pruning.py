"""The inbox forgets only the ids whose events can no longer come again."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from ejsika_runtime import inbox
from ejsika_runtime.settings import Settings

pytestmark = pytest.mark.infra

NO_MIGRATIONS = Path(__file__).parent / "no-migrations"


async def test_prune_forgets_the_old_ids_in_batches_and_keeps_the_recent(migrated_schema) -> None:
    _schema, pool = await migrated_schema("inbox", NO_MIGRATIONS)
    old, recent = [uuid.uuid4() for _ in range(25)], [uuid.uuid4() for _ in range(5)]
    async with pool.acquire() as conn:
        await inbox.claim(conn, "ejsika.household", old + recent)
        await conn.execute("UPDATE inbox SET applied_at = now() - interval '15 days' WHERE event_id = ANY($1)", old)

        forgotten = await inbox.prune(conn, timedelta(days=14), batch=10)

        assert forgotten == 25
        left = {row["event_id"] for row in await conn.fetch("SELECT event_id FROM inbox")}
        assert left == set(recent)
        # a recent id still makes its redelivery a no-op; a forgotten one is new again
        assert await inbox.claim(conn, "ejsika.household", [recent[0], old[0]]) == {old[0]}


def test_the_inbox_outlives_the_topics_retention() -> None:
    assert Settings().inbox_keep_days > 7
    with pytest.raises(ValidationError):
        Settings(inbox_keep_days=7)
