"""Who may see a household follows it: a consumer's projection of its scope moves with household.updated."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest

from ejsika_contracts import HouseholdUpdated, HouseholdUpdatedData
from ejsika_runtime import scopes

pytestmark = pytest.mark.infra
NO_MIGRATIONS = Path(__file__).parent / "no-migrations"


def updated(household_id, version: int, **fields) -> HouseholdUpdated:
    data = HouseholdUpdatedData(household_id=household_id, version=version, changed=sorted(fields), **fields)
    return HouseholdUpdated(source="registry", subject=str(household_id), correlation_id=uuid4(), data=data)


async def test_a_household_that_moves_or_changes_pendamping_changes_scope_and_keeps_the_rest(migrated_schema):
    _, pool = await migrated_schema("scopes", NO_MIGRATIONS)
    moving, staying, unknown = uuid4(), uuid4(), uuid4()
    async with pool.acquire() as conn:
        await scopes.remember(conn, [scopes.HouseholdScope(moving, "jscm", "3672011001", "pendamping-a"),
                                     scopes.HouseholdScope(staying, "jscm", "3672011001", "pendamping-a")])
        await scopes.follow_updates(conn, [
            updated(moving, 2, region_code="3672021001"),
            updated(moving, 3, pendamping_id="pendamping-b"),  # builds on the move of the same batch
            updated(staying, 2, address="Jl. Baru"),  # no scope field: nothing to do
            updated(unknown, 2, pendamping_id="pendamping-c"),  # registration not seen here: nothing invented
        ])
        assert await scopes.find(conn, moving) == scopes.HouseholdScope(moving, "jscm", "3672021001", "pendamping-b")
        assert await scopes.find(conn, staying) == scopes.HouseholdScope(staying, "jscm", "3672011001", "pendamping-a")
        assert await scopes.find(conn, unknown) is None
