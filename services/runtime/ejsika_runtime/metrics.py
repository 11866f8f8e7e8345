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
        self._dead_letters = Counter(
            "ejsika_dead_letters", "Messages sent to a dead-letter topic", ["service", "topic", "reason"], registry=registry
        )
        self._events_applied = Counter(
            "ejsika_events_applied", "Events applied by a consumer (after dedup)", ["service", "topic"], registry=registry
        )
        self._duplicates = Counter(
            "ejsika_events_duplicate", "Redelivered events skipped by the inbox", ["service", "topic"], registry=registry
        )

    def dead_letter(self, topic: str, reason: str) -> None:
        self._dead_letters.labels(self.service, topic, reason).inc()

    def applied(self, topic: str, count: int, duplicates: int) -> None:
        self._events_applied.labels(self.service, topic).inc(count)
        if duplicates:
            self._duplicates.labels(self.service, topic).inc(duplicates)
