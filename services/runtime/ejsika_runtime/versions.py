"""Optimistic concurrency over HTTP: a read answers an `ETag` (the resource's version), a write sends it
back in `If-Match`, so that two caseworkers editing one family never overwrite each other silently.

428 when a write has no `If-Match`, 412 when it names another version than the current one (the
answer carries the current `ETag`), as CONVENTIONS.md says for every service.
"""

from __future__ import annotations

import re

from fastapi import Header, Response

from .problems import Problem, documented

_TAG = re.compile(r'^\s*(?:W/)?"(\d{1,9})"\s*$')

RESPONSES = {
    412: documented("If-Match names another version than the current one; the answer's ETag is the current one"),
    428: documented("The write needs an If-Match header with the version it was based on (the ETag of a read)"),
}


def etag(version: int) -> str:
    return f'"{version}"'


def set_version(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


def expected_version(if_match: str | None = Header(
        default=None, alias="If-Match", description='The ETag of the read this write is based on, e.g. "3".')) -> int:
    """A FastAPI dependency: the version named by `If-Match`."""
    if if_match is None:
        raise Problem(428, "send If-Match with the ETag of the version this change is based on")
    found = _TAG.match(if_match)
    if found is None:
        raise Problem(400, 'If-Match must be one ETag of this resource, e.g. "3"')
    return int(found.group(1))


def stale(current: int) -> Problem:
    """The answer to a write based on an old version: 412 with the current ETag."""
    return Problem(412, f"changed since this version was read; the current version is {current}",
                   headers={"ETag": etag(current)})
