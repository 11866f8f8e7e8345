"""The envelope every e-JSiKa event travels in (CloudEvents-style attributes)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, ClassVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

SPEC_VERSION = "1.0"


class Contract(BaseModel):
    """Base of every model that crosses a service boundary.

    Producers are strict: building a model with an unknown field is an error. Readers are
    tolerant: `Topic.parse` ignores the unknown fields of a newer compatible version.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


class Event(Contract):
    """One event. Subclasses pin `type`, `dataversion` and the model of `data`.

    `subject` is the household id: it is the Kafka message key, so every event of one family
    lands on one partition and keeps its order.
    """

    id: UUID = Field(default_factory=uuid4, description="Unique event id; the dedup key of every inbox.")
    type: str
    source: str = Field(description="The service that emitted the event.")
    time: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    subject: str = Field(description="The household id; also the Kafka message key.")
    specversion: str = SPEC_VERSION
    dataversion: int = Field(description="Version of this event type's data schema.")
    correlation_id: UUID = Field(description="Set once at the entry point, carried by every event that follows.")
    causation_id: UUID | None = Field(default=None, description="Id of the event that caused this one.")
    data: Any

    event_type: ClassVar[str]
    version: ClassVar[int]

    @classmethod
    def schema_name(cls) -> str:
        return f"{cls.event_type}.v{cls.version}"

    @classmethod
    def caused_by(cls, cause: Event, *, source: str, data: Any) -> Event:
        """A new event that follows from `cause`: same subject and correlation, causation = cause."""
        return cls(
            source=source,
            subject=cause.subject,
            correlation_id=cause.correlation_id,
            causation_id=cause.id,
            data=data,
        )

    def key(self) -> bytes:
        return self.subject.encode()

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()
