"""`ejsika outbox quarantine|release`: an operator sees what Kafka refused and puts it back once fixed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ejsika_runtime import cli

pytestmark = pytest.mark.infra

NO_MIGRATIONS = Path(__file__).parent / "no-migrations"


async def test_listing_shows_no_payload_and_release_puts_the_rows_back(
        migrated_schema, database_url, monkeypatch, capsys) -> None:
    schema, pool = await migrated_schema("quarantine", NO_MIGRATIONS)
    await pool.executemany(
        "INSERT INTO outbox_quarantine (id, topic, key, value, headers, created_at, partition, reason, error)"
        " VALUES ($1, 'ejsika.household', 'k', $2, '[]', now(), 2, 'too_large', 'MessageSizeTooLargeError')",
        [(7, b'{"name": "SITI AMINAH"}'), (9, b'{"name": "DEDI"}')],
    )
    monkeypatch.setenv("EJSIKA_DATABASE_URL", database_url)

    await asyncio.to_thread(cli.main, ["outbox", "quarantine", schema])
    listed = capsys.readouterr().out
    assert "ejsika.household[2]\ttoo_large" in listed and "2 quarantined row(s)" in listed
    assert "SITI" not in listed

    await asyncio.to_thread(cli.main, ["outbox", "release", schema, "9"])
    assert "released 1 row(s)" in capsys.readouterr().out
    assert await pool.fetchval("SELECT array_agg(id) FROM outbox_quarantine") == [7]
    assert await pool.fetchval("SELECT value FROM outbox") == b'{"name": "DEDI"}'


def test_a_service_name_is_checked_before_it_reaches_sql() -> None:
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["outbox", "release", 'registry"; DROP SCHEMA x; --'])
