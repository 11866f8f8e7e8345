"""Delivery metrics, labelled by agency code (and result): never anything about a family.

Not by subscription id: series would grow with every subscription ever made, whereas agencies are
few and created by an admin only. `GET /deliveries?subscription_id=` tells a subscription apart.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)


class DeliveryMetrics:
    """Per agency: notifications sent (`sent`), delivered, failed; webhook attempts (`requests`, by
    result) and message latency (`message_seconds`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.pending = Gauge(
            "ejsika_deliveries_pending", "Deliveries waiting to be sent (one replica reports the total)",
            ["agency"], registry=registry,
        )
        self.delivered = Counter(
            "ejsika_deliveries_delivered",
            "Notifications acknowledged by the agency (a 2xx to their webhook message, or a feed acknowledgement)",
            ["agency"], registry=registry,
        )
        self.failed = Counter(
            "ejsika_deliveries_failed",
            "Notifications failed for good (after the last attempt, or refused with a 4xx, or a 410 Gone)",
            ["agency"], registry=registry,
        )
        self.requests = Counter(
            "ejsika_webhook_requests",
            "Webhook POSTs (attempts) by result (ok, http_error, network_error, refused, secret_error)",
            ["agency", "result"], registry=registry,
        )
        self.request_seconds = Histogram(
            "ejsika_webhook_request_seconds", "Duration of one webhook POST", registry=registry,
        )
        self.lag_seconds = Histogram(
            "ejsika_delivery_lag_seconds", "From queueing a delivery to its acknowledgement",
            buckets=_LATENCY_BUCKETS, registry=registry,
        )
        self.sent = Counter(
            "ejsika_notifications_sent",
            "Notifications offered to the agency for the first time (first POST of their message, first feed read)",
            ["agency", "channel"], registry=registry,
        )
        self.message_seconds = Histogram(
            "ejsika_webhook_message_seconds",
            "From forming a webhook message to the agency's 2xx, retries included (its count: messages delivered)",
            ["agency"], buckets=_LATENCY_BUCKETS, registry=registry,
        )
        self.messages_failed = Counter(
            "ejsika_webhook_messages_failed",
            "Webhook messages failed for good, by reason (rejected: a 4xx; gone: a 410; exhausted: the last attempt)",
            ["agency", "reason"], registry=registry,
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


class AnswerMetrics:
    """The agencies' answers (answers.py), labelled by agency code only."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.answers = Counter(
            "ejsika_agency_answers", "Answers given by agencies to their notifications (retries not counted)",
            ["agency"], registry=registry,
        )
        self.time_to_answer = Histogram(
            "ejsika_agency_time_to_answer_seconds",
            "From a notification queued to the agency's first answer of it (its count: notifications answered)",
            ["agency"],
            buckets=(60, 600, 3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400, 90 * 86400, 365 * 86400),
            registry=registry,
        )
