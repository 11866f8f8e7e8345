"""Delivery metrics. The only label is the subscription id: never anything about a family."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class DeliveryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.pending = Gauge(
            "ejsika_deliveries_pending", "Deliveries waiting to be sent (every replica reports the total)",
            ["subscription"], registry=registry,
        )
        self.delivered = Counter(
            "ejsika_deliveries_delivered", "Deliveries acknowledged by the agency with a 2xx",
            ["subscription"], registry=registry,
        )
        self.failed = Counter(
            "ejsika_deliveries_failed", "Deliveries given up after the last attempt",
            ["subscription"], registry=registry,
        )
        self.requests = Counter(
            "ejsika_webhook_requests", "Webhook POSTs by result (ok, http_error, network_error, refused, secret_error)",
            ["subscription", "result"], registry=registry,
        )
        self.request_seconds = Histogram(
            "ejsika_webhook_request_seconds", "Duration of one webhook POST", registry=registry,
        )
        self.lag_seconds = Histogram(
            "ejsika_delivery_lag_seconds", "From queueing a delivery to its acknowledgement",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400),
            registry=registry,
        )
        self._reported: set[str] = set()

    def report_pending(self, counts: Mapping[UUID, int]) -> None:
        current = {str(k): v for k, v in counts.items()}
        for subscription in self._reported - current.keys():
            self.pending.labels(subscription).set(0)
        for subscription, count in current.items():
            self.pending.labels(subscription).set(count)
        self._reported |= current.keys()

    def stop_reporting_pending(self) -> None:
        self.pending.clear()
        self._reported.clear()
