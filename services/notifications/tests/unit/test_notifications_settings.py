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
