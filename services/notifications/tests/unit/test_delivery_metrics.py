import uuid

from prometheus_client import CollectorRegistry, generate_latest

from ejsika_notifications.metrics import DeliveryMetrics


def test_pending_is_reported_per_subscription_and_drops_to_zero_when_drained():
    registry = CollectorRegistry()
    metrics = DeliveryMetrics(registry)
    a, b = uuid.uuid4(), uuid.uuid4()
    metrics.report_pending({a: 3, b: 1})
    metrics.report_pending({b: 2})
    text = generate_latest(registry).decode()
    assert f'ejsika_deliveries_pending{{subscription="{a}"}} 0.0' in text
    assert f'ejsika_deliveries_pending{{subscription="{b}"}} 2.0' in text
