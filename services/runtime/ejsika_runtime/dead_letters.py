"""Dead letters: a message that cannot be applied goes, with its original bytes and the reason,
to its topic's dead-letter topic; the partition moves on (its household's later events wait behind
it, see `holds`). Listed, replayed and given up on from the CLI (`ejsika dead-letters`)."""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from .logs import mask_identifiers
from .problems import field_path

PREFIX = "ejsika-dlq-"
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class DeadLetter:
    record: ConsumerRecord
    reason: str  # a short machine word: invalid, handler_failed, parked_behind
    error: str
    attempts: int
    group: str

    def headers(self) -> list[tuple[str, bytes]]:
        own = {
            "reason": self.reason,
            "error": self.error[:MAX_ERROR_CHARS],
            "attempts": str(self.attempts),
            "topic": self.record.topic,
            "partition": str(self.record.partition),
            "offset": str(self.record.offset),
            "group": self.group,
        }
        original = [(name, value) for name, value in (self.record.headers or ()) if not name.startswith(PREFIX)]
        return original + [(PREFIX + name, value.encode()) for name, value in own.items()]


def describe(error: BaseException) -> str:
    """An error text safe to store and show: no input values, no NIK."""
    if isinstance(error, ValidationError):
        parts = [
            f"{field_path(tuple(e['loc']), e['type']) if e['loc'] else '(root)'}: {e['msg']}"
            for e in error.errors(include_url=False, include_input=False, include_context=False)
        ]
        return mask_identifiers(f"{error.error_count()} validation error(s): " + "; ".join(parts))
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}" if frame else ""
    return mask_identifiers(f"{type(error).__name__}: {error}{where}")


def header_map(headers) -> dict[str, str]:
    return {name[len(PREFIX):]: value.decode(errors="replace") for name, value in headers or () if name.startswith(PREFIX)}
