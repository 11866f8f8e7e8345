"""Rotating a subscription's signing secret with a grace period.

During the grace period both the new and the previous secret sign every webhook (Standard Webhooks
allows several space-separated signatures), so an agency can switch its verifier at any moment in
that window without losing a message. A second rotation within the window drops the oldest.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg


async def rotate(conn: asyncpg.Connection, subscription_id: UUID, secret_encrypted: bytes,
                 grace_s: float) -> datetime | None:
    """Make `secret_encrypted` the signing secret; the current one keeps signing for `grace_s`.
    Returns until when (None if there is no such webhook subscription)."""
    return await conn.fetchval(
        "UPDATE subscriptions SET previous_secret_encrypted = secret_encrypted,"
        " previous_secret_until = now() + make_interval(secs => $3), secret_encrypted = $2, legacy_secret = NULL"
        " WHERE id = $1 AND channel = 'webhook' RETURNING previous_secret_until",
        subscription_id, secret_encrypted, grace_s,
    )
