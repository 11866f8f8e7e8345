"""The webhook message: a batch body, its id and its Standard Webhooks signature headers."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any
from uuid import UUID, uuid5

from standardwebhooks import Webhook

# Fixed namespace: the same batch of deliveries always gets the same webhook id.
_WEBHOOK_ID_NAMESPACE = UUID("5b1c1f7e-4f7a-4c55-9d55-6a3f0e0b8c21")


def body(event_type: str, items: Sequence[Mapping[str, Any]]) -> bytes:
    return json.dumps({"type": event_type, "events": list(items)}, separators=(",", ":")).encode()


def webhook_id(subscription_id: UUID, delivery_ids: Iterable[UUID]) -> str:
    """Deterministic per (subscription, set of deliveries), so a retried POST keeps its id and a
    receiver can dedupe on `webhook-id` as the standard suggests."""
    key = f"{subscription_id}:" + ",".join(sorted(str(d) for d in delivery_ids))
    return f"msg_{uuid5(_WEBHOOK_ID_NAMESPACE, key).hex}"


def signed_headers(secret: str, msg_id: str, payload: bytes, at: datetime) -> dict[str, str]:
    # The library reads `at` as UTC wall time whatever its zone, so hand it UTC.
    at = at.astimezone(timezone.utc)
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=payload.decode())
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
