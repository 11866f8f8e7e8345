import os
import subprocess
import sys

import pytest

from ejsika_notifications.crypto import SecretsKeysError, new_key
from ejsika_notifications.settings import NotificationsSettings


def test_defaults_and_environment(monkeypatch):
    monkeypatch.delenv("EJSIKA_HTTP_PORT", raising=False)
    monkeypatch.setenv("EJSIKA_DELIVERY_BATCH_SIZE", "25")
    monkeypatch.setenv("EJSIKA_DEMO_WEBHOOK_URL", "http://127.0.0.1:8009/webhooks")
    settings = NotificationsSettings()
    assert settings.http_port == 8004
    assert settings.demo_webhook_url == "http://127.0.0.1:8009/webhooks"
    policy = settings.delivery_policy()
    assert policy.batch_size == 25
    assert policy.lease_s >= 2 * policy.timeout_s, "a batch is never re-leased while its POST may still run"


def test_security_settings_are_off_or_absent_by_default(monkeypatch):
    for name in ("EJSIKA_SECRETS_KEYS", "EJSIKA_WEBHOOKS_ALLOW_PRIVATE"):
        monkeypatch.delenv(name, raising=False)
    settings = NotificationsSettings()
    assert settings.webhooks_allow_private is False
    with pytest.raises(SecretsKeysError, match="EJSIKA_SECRETS_KEYS is not set"):
        settings.secrets_cipher()


def test_security_settings_come_from_the_environment(monkeypatch):
    first, second = new_key(), new_key()
    monkeypatch.setenv("EJSIKA_SECRETS_KEYS", f" {first} ,{second},")
    monkeypatch.setenv("EJSIKA_WEBHOOKS_ALLOW_PRIVATE", "true")
    settings = NotificationsSettings()
    assert settings.webhooks_allow_private is True
    assert settings.secrets_cipher().key_count == 2
    assert first not in repr(settings) and first not in str(settings.model_dump())


def test_a_malformed_key_is_refused_without_showing_it(monkeypatch):
    monkeypatch.setenv("EJSIKA_SECRETS_KEYS", f"{new_key()},not-a-fernet-key-at-all")
    with pytest.raises(SecretsKeysError) as refused:
        NotificationsSettings().secrets_cipher()
    assert "key 2 of 2 is not a Fernet key" in str(refused.value)
    assert "not-a-fernet-key-at-all" not in str(refused.value)


def test_the_service_does_not_start_without_keys():
    env = {k: v for k, v in os.environ.items() if k != "EJSIKA_SECRETS_KEYS"}
    env["EJSIKA_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:9/none"  # never reached
    started = subprocess.run([sys.executable, "-m", "ejsika_notifications"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert started.returncode != 0
    assert "notifications cannot start: EJSIKA_SECRETS_KEYS is not set" in started.stderr


def test_two_consumers_per_topic_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("EJSIKA_CONSUMER_CONCURRENCY", raising=False)
    assert NotificationsSettings().consumer_concurrency == 2
    monkeypatch.setenv("EJSIKA_CONSUMER_CONCURRENCY", "6")
    assert NotificationsSettings().consumer_concurrency == 6
