"""Delivery metrics, labelled by agency code (and result): never anything about a family.

Not by subscription id: series would grow with every subscription ever made, whereas agencies are
few and created by an admin only. `GET /deliveries?subscription_id=` tells a subscription apart.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class DeliveryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.pending = Gauge(
            "ejsika_deliveries_pending", "Deliveries waiting to be sent (one replica reports the total)",
            ["agency"], registry=registry,
        )
        self.delivered = Counter(
            "ejsika_deliveries_delivered", "Deliveries acknowledged by the agency with a 2xx",
            ["agency"], registry=registry,
        )
        self.failed = Counter(
            "ejsika_deliveries_failed", "Deliveries given up after the last attempt",
            ["agency"], registry=registry,
        )
        self.requests = Counter(
            "ejsika_webhook_requests", "Webhook POSTs by result (ok, http_error, network_error, refused, secret_error)",
            ["agency", "result"], registry=registry,
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

    def report_pending(self, counts: Mapping[str, int]) -> None:
        """Pending deliveries per agency code; an agency no longer counted is reported at 0."""
        current = dict(counts)
        for agency in self._reported - current.keys():
            self.pending.labels(agency).set(0)
        for agency, count in current.items():
            self.pending.labels(agency).set(count)
        self._reported |= current.keys()

    def stop_reporting_pending(self) -> None:
        self.pending.clear()
        self._reported.clear()
