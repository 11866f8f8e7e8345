import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from ejsika_notifications.domain import webhooks
from ejsika_notifications.domain.subscriptions import new_secret

ITEMS = [{"event_id": str(uuid.uuid4()), "household_id": str(uuid.uuid4()), "eligible": True}]


def signed(secret: str, at: datetime | None = None) -> tuple[bytes, dict[str, str]]:
    body = webhooks.body("eligibility.assessed", ITEMS)
    msg_id = webhooks.webhook_id(uuid.uuid4(), [uuid.uuid4()])
    return body, webhooks.signed_headers(secret, msg_id, body, at or datetime.now(timezone.utc))


def test_an_agency_verifies_the_batch_with_its_secret():
    secret = new_secret()
    body, headers = signed(secret)
    assert Webhook(secret).verify(body, headers) == {"type": "eligibility.assessed", "events": ITEMS}
    assert headers["content-type"] == "application/json"
    assert headers["webhook-signature"].startswith("v1,")


def test_a_signature_made_in_another_time_zone_still_verifies():
    secret = new_secret()
    body, headers = signed(secret, datetime.now(timezone(timedelta(hours=7))))  # WIB
    assert Webhook(secret).verify(body, headers)


def test_a_changed_body_or_another_secret_fails_verification():
    secret = new_secret()
    body, headers = signed(secret)
    tampered = json.dumps({"type": "eligibility.assessed", "events": []}).encode()
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_the_webhook_id_is_the_same_for_the_same_batch_and_differs_otherwise():
    subscription, a, b = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    first = webhooks.webhook_id(subscription, [a, b])
    assert first == webhooks.webhook_id(subscription, [b, a]), "a retry of the same POST keeps its id"
    assert first.startswith("msg_")
    assert first != webhooks.webhook_id(subscription, [a])
    assert first != webhooks.webhook_id(uuid.uuid4(), [a, b])
