from prometheus_client import CollectorRegistry, generate_latest

from ejsika_notifications.metrics import DeliveryMetrics
from ejsika_runtime.testing import promtool


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


def test_sent_attempts_and_latency_are_per_agency_and_promtool_clean(tmp_path):

    registry = CollectorRegistry()
    metrics = DeliveryMetrics(registry)
    metrics.sent.labels("dinas-pendidikan", "webhook").inc(100)
    metrics.sent.labels("dinas-kesehatan", "feed").inc(3)
    metrics.message_seconds.labels("dinas-pendidikan").observe(0.2)
    metrics.messages_failed.labels("dinas-kesehatan", "gone").inc()
    metrics.lag_seconds.observe(0.3)
    text = generate_latest(registry).decode()
    assert 'ejsika_notifications_sent_total{agency="dinas-pendidikan",channel="webhook"} 100.0' in text
    assert 'ejsika_webhook_message_seconds_count{agency="dinas-pendidikan"} 1.0' in text
    assert 'ejsika_webhook_messages_failed_total{agency="dinas-kesehatan",reason="gone"} 1.0' in text
    checked = promtool("check", "metrics", input=text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
