"""JSON log lines with the correlation id, and a filter that masks any NIK before it is written."""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import datetime, timezone

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)

# A NIK or a KK number is a run of exactly 16 digits; mask any such run, whatever field it sits in.
_SIXTEEN_DIGITS = re.compile(r"(?<!\d)\d{16}(?!\d)")
MASK = "****************"


def mask_identifiers(text: str) -> str:
    return _SIXTEEN_DIGITS.sub(MASK, text)


class MaskIdentifiers(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_identifiers(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = mask_identifiers(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (cid := correlation_id.get()) is not None:
            line["correlation_id"] = cid
        for key in ("event_id", "event_type", "count", "topic"):
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_text:
            line["error"] = record.exc_text
        elif record.exc_info:
            line["error"] = mask_identifiers(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


def configure(service: str, level: str = "INFO", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(MaskIdentifiers())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
