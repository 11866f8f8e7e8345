"""Business metrics shared by all services (message metrics come from FastStream's middleware)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector, PlatformCollector


def new_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


class RuntimeMetrics:
    """Label values are service, topic and reason names only: never anything about a person."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        self.outbox_pending = Gauge(
            "ejsika_outbox_pending", "Outbox rows not yet published", ["service"], registry=registry
        ).labels(service)
        self.outbox_oldest_age = Gauge(
            "ejsika_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox row",
            ["service"],
            registry=registry,
        ).labels(service)
        self.published = Counter(
            "ejsika_outbox_published", "Outbox rows published to Kafka", ["service"], registry=registry
        ).labels(service)
        self.outbox_quarantine_rows = Gauge(
            "ejsika_outbox_quarantine_rows",
            "Outbox rows Kafka will never take as they are (too large, unknown topic, unreadable), held for release",
            ["service"],
            registry=registry,
        ).labels(service)
        self._quarantined = Counter(
            "ejsika_outbox_quarantined", "Outbox rows moved to the quarantine", ["service", "topic", "reason"],
            registry=registry,
        )
        self._publish_failures = Counter(
            "ejsika_outbox_publish_failures", "Partitions of a relay round that Kafka did not acknowledge",
            ["service", "error"], registry=registry,
        )
        self._loop_up = Gauge(
            "ejsika_background_loop_up", "1 while a background loop runs (or finished its work), 0 while it waits"
            " to restart", ["service", "loop"], registry=registry,
        )
        self._loop_restarts = Counter(
            "ejsika_background_loop_restarts", "Background loops restarted after a failure", ["service", "loop"],
            registry=registry,
        )
        self._dead_letters = Counter(
            "ejsika_dead_letters", "Messages sent to a dead-letter topic", ["service", "topic", "reason"], registry=registry
        )
        self._consumer_paused = Gauge(
            "ejsika_consumer_paused", "1 while a consumer gives its batches back to Kafka and waits (a systemic"
            " failure of its handler, or the database unreachable); 0 once a batch is applied", ["service", "topic"],
            registry=registry,
        )
        self._rewinds = Counter(
            "ejsika_consumer_rewinds", "Batches given back to Kafka uncommitted, by cause (systemic, transient,"
            " cut_short, other)", ["service", "topic", "cause"], registry=registry,
        )
        self._events_applied = Counter(
            "ejsika_events_applied", "Events applied by a consumer (after dedup)", ["service", "topic"], registry=registry
        )
        self._duplicates = Counter(
            "ejsika_events_duplicate", "Redelivered events skipped by the inbox", ["service", "topic"], registry=registry
        )

    def quarantined(self, topic: str, reason: str) -> None:
        self._quarantined.labels(self.service, topic, reason).inc()

    def publish_failed(self, error: str) -> None:
        """`error` is the exception's class name: a bounded set."""
        self._publish_failures.labels(self.service, error).inc()

    def loop_up(self, loop: str, up: bool) -> None:
        self._loop_up.labels(self.service, loop).set(1 if up else 0)

    def loop_restarted(self, loop: str) -> None:
        self._loop_restarts.labels(self.service, loop).inc()

    def dead_letter(self, topic: str, reason: str) -> None:
        self._dead_letters.labels(self.service, topic, reason).inc()

    def consumer_paused(self, topic: str, paused: bool) -> None:
        self._consumer_paused.labels(self.service, topic).set(1 if paused else 0)

    def rewound(self, topic: str, cause: str) -> None:
        """`cause` is one of a fixed few words (BatchConsumer._rewind)."""
        self._rewinds.labels(self.service, topic, cause).inc()

    def applied(self, topic: str, count: int, duplicates: int) -> None:
        self._events_applied.labels(self.service, topic).inc(count)
        if duplicates:
            self._duplicates.labels(self.service, topic).inc(duplicates)
