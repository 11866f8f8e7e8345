import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from ejsika_notifications.domain import webhooks
from ejsika_notifications.domain.subscriptions import new_secret

NOTIFICATIONS = [
    webhooks.Notification(uuid.uuid4(), "compliance.escalated", "abcdefghijklmnopqrstuvwxyz",
                          datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc), {"kind": "school_dropout_risk"}),
    webhooks.Notification(uuid.uuid4(), "eligibility.assessed", None,
                          datetime(2026, 12, 1, 8, 1, tzinfo=timezone.utc), {"eligible": True}),
]


def signed(secrets: list[str], at: datetime | None = None) -> tuple[bytes, dict[str, str]]:
    body = webhooks.body(NOTIFICATIONS)
    return body, webhooks.signed_headers(secrets, webhooks.webhook_id(uuid.uuid4()), body,
                                         at or datetime.now(timezone.utc))


def test_an_agency_verifies_the_message_with_its_secret_and_reads_each_notification():
    secret = new_secret()
    body, headers = signed([secret])
    payload = Webhook(secret).verify(body, headers)
    assert payload["type"] == "ejsika.notifications"
    assert payload["notifications"] == [
        {"id": str(NOTIFICATIONS[0].id), "type": "compliance.escalated", "reference": "abcdefghijklmnopqrstuvwxyz",
         "time": "2026-12-01T08:00:00+00:00", "data": {"kind": "school_dropout_risk"}},
        {"id": str(NOTIFICATIONS[1].id), "type": "eligibility.assessed", "reference": None,
         "time": "2026-12-01T08:01:00+00:00", "data": {"eligible": True}},
    ]
    assert headers["content-type"] == "application/json"
    assert headers["webhook-signature"].startswith("v1,") and " " not in headers["webhook-signature"]


def test_during_a_rotation_both_secrets_verify_the_same_message():
    old, new = new_secret(), new_secret()
    body, headers = signed([new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(body, headers) == Webhook(old).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_a_signature_made_in_another_time_zone_still_verifies():
    secret = new_secret()
    body, headers = signed([secret], datetime.now(timezone(timedelta(hours=7))))  # WIB
    assert Webhook(secret).verify(body, headers)


def test_a_changed_body_or_another_secret_fails_verification():
    secret = new_secret()
    body, headers = signed([secret])
    tampered = json.dumps({"type": "ejsika.notifications", "notifications": []}).encode()
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_the_webhook_id_is_the_stored_message_s_id():
    message = uuid.uuid4()
    assert webhooks.webhook_id(message) == f"msg_{message.hex}" == webhooks.webhook_id(message)
    assert webhooks.webhook_id(uuid.uuid4()) != webhooks.webhook_id(message)


def test_nothing_is_signed_without_a_secret():
    with pytest.raises(ValueError):
        webhooks.signed_headers([], "msg_x", b"{}", datetime.now(timezone.utc))
