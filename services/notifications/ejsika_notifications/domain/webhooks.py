"""The webhook message: its body, its id and its Standard Webhooks signature headers.

A message is a batch of one subscription's notifications, formed once. Its body is
`{"type": "ejsika.notifications", "notifications": [item, …]}`, each item
`{"id", "type", "reference", "time", "data"}` (the same items the pull feed serves). Its
`webhook-id` is derived from the stored message's id, so it stays the same on every retry and on a
redelivery: a receiver that already processed it can tell.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from standardwebhooks import Webhook

MESSAGE_TYPE = "ejsika.notifications"


@dataclass(frozen=True)
class Notification:
    """One notification as it leaves: never the internal household id, only the agency's reference."""

    id: UUID
    event_type: str
    reference: str | None
    time: datetime  # when what it tells happened
    payload: Mapping[str, Any] = field(repr=False)


def item(notification: Notification) -> dict[str, Any]:
    return {
        "id": str(notification.id),
        "type": notification.event_type,
        "reference": notification.reference,
        "time": notification.time.isoformat(),
        "data": notification.payload,
    }


def body(notifications: Sequence[Notification]) -> bytes:
    return json.dumps({"type": MESSAGE_TYPE, "notifications": [item(n) for n in notifications]},
                      separators=(",", ":")).encode()


def webhook_id(message_id: UUID) -> str:
    return f"msg_{message_id.hex}"


def signed_headers(secrets: Sequence[str], msg_id: str, payload: bytes, at: datetime) -> dict[str, str]:
    """Headers of one attempt: a fresh timestamp, and one v1 signature per valid secret (the new
    and the previous one while a secret is rotated), space-separated as the standard allows."""
    if not secrets:
        raise ValueError("a webhook is signed with at least one secret")
    # The library reads `at` as UTC wall time whatever its zone, so hand it UTC.
    at = at.astimezone(timezone.utc)
    text = payload.decode()
    signatures = " ".join(Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=text) for secret in secrets)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }
