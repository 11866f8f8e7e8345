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
    """`streamed` names the paths of uploads (a register file of a million households) that reach their
    route as a stream, unread, bounded by their own size: the route reads them piece by piece."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, streamed: dict[str, int] | None = None) -> None:
        self.app, self.max_body_bytes, self.streamed = app, max_body_bytes, streamed or {}

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
        if scope.get("path") in self.streamed and scope.get("method") == "POST":
            await self._stream(scope, receive, send, length, self.streamed[scope["path"]])
            return
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


    async def _stream(self, scope: Scope, receive: Receive, send: Send, length: int | None, most: int) -> None:
        if length is not None and length > most:
            await _refuse(scope, receive, send, 413, f"the body is larger than {most} bytes")
            return
        size = 0

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            if size > most:  # no Content-Length, or a wrong one: cut the upload off where it passes the bound
                raise UploadTooLarge(most)
            return message

        await self.app(scope, counted, send)


class UploadTooLarge(Exception):
    """A streamed upload went past its bound: the route reading it answers 413."""

    def __init__(self, most: int) -> None:
        super().__init__(f"the body is larger than {most} bytes")


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
