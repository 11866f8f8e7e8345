"""Cursor pagination, one way for every list: `limit` and an opaque `cursor` in, `items` and
`next_cursor` out. A cursor is the position after the last item given (JSON, base64url), so a page
is a keyset query and stays stable while rows are added."""

from __future__ import annotations

import base64
import json
from datetime import date, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from fastapi import Query
from pydantic import BaseModel

from .problems import FieldError, Problem

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode(*position: Any) -> str:
    values = [str(v) if isinstance(v, UUID) else v.isoformat() if isinstance(v, (date, datetime)) else v
              for v in position]
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(cursor: str | None, *kinds: type) -> tuple | None:
    """The position of a cursor this service gave, its values of `kinds` (int, str, UUID, date,
    datetime with its offset); None without a cursor.

    422 (field query.cursor) for anything else.
    """
    if not cursor:
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(position, list) or len(position) != len(kinds):
            raise ValueError
        return tuple(_read(value, kind) for value, kind in zip(position, kinds))
    except ValueError:  # also binascii.Error and UnicodeDecodeError
        raise Problem(422, "cursor is not one this list gave",
                      errors=[FieldError(field="query.cursor", rule="cursor")]) from None


def _read(value: Any, kind: type) -> Any:
    if kind is UUID and isinstance(value, str):
        return UUID(value)
    if kind is datetime and isinstance(value, str):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("a moment without its offset")
        return moment
    if kind is date and isinstance(value, str):
        return date.fromisoformat(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError("not a position of this list")
    return value


def limit(default: int = 50, most: int = 500) -> Any:
    return Query(default, ge=1, le=most, description="How many items a page holds at most.")


def cursor() -> Any:
    return Query(None, max_length=512, description="The next_cursor of the previous page; none for the first.")
