from prometheus_client import CollectorRegistry, generate_latest

from ejsika_notifications.metrics import DeliveryMetrics


def test_pending_is_reported_per_agency_and_drops_to_zero_when_drained():
    registry = CollectorRegistry()
    metrics = DeliveryMetrics(registry)
    metrics.report_pending({"dinas-pendidikan": 3, "dinas-kesehatan": 1})
    metrics.report_pending({"dinas-kesehatan": 2})
    text = generate_latest(registry).decode()
    assert 'ejsika_deliveries_pending{agency="dinas-pendidikan"} 0.0' in text
    assert 'ejsika_deliveries_pending{agency="dinas-kesehatan"} 2.0' in text


def test_delivery_series_are_labelled_by_agency_never_by_subscription():
    registry = CollectorRegistry()
    metrics = DeliveryMetrics(registry)
    metrics.delivered.labels("dinas-pendidikan").inc()
    metrics.failed.labels("dinas-pendidikan").inc()
    metrics.requests.labels("dinas-pendidikan", "ok").inc()
    text = generate_latest(registry).decode()
    assert 'ejsika_deliveries_delivered_total{agency="dinas-pendidikan"} 1.0' in text
    assert 'ejsika_deliveries_failed_total{agency="dinas-pendidikan"} 1.0' in text
    assert 'ejsika_webhook_requests_total{agency="dinas-pendidikan",result="ok"} 1.0' in text
    assert "subscription" not in text
