"""Request limits applied before any route runs: body size (413) and NUL characters (422).

PostgreSQL refuses the NUL character in text, so a NUL anywhere in the query or the JSON body is
refused here with a reason rather than failing deep in a transaction.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import FieldError, problem_response

_NUL_IN_JSON = b"\\u0000"


class RequestLimits:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query or "\x00" in scope.get("path", ""):
            await _refuse(scope, receive, send, 422, "the request contains a NUL character",
                          [FieldError(field="query", rule="nul_character")])
            return
        length = _content_length(scope)
        if length is not None and length > self.max_body_bytes:
            await _refuse(scope, receive, send, 413, f"the body is larger than {self.max_body_bytes} bytes")
            return
        if scope.get("method") in ("GET", "HEAD", "DELETE", "OPTIONS") and not length:
            await self.app(scope, receive, send)
            return
        # Read the body once, bounded, then hand it on; an upload of 1,000 households is ~1.5 MB.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _refuse(scope, receive, send, 413, f"the body is larger than {self.max_body_bytes} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if _NUL_IN_JSON in body or b"\x00" in body:
            await _refuse(scope, receive, send, 422, "the body contains a NUL character",
                          [FieldError(field="body", rule="nul_character")])
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str,
                  errors: list[FieldError] | None = None) -> None:
    response: Any = problem_response(status, detail, errors)
    await response(scope, receive, send)
