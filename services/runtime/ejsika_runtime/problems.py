"""One error shape for every service: RFC 9457 problem details, from one set of handlers.

No answer ever echoes a submitted value: a value may be a NIK or a name. Input errors name the
field and the rule that failed instead.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import logs

MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(description="Where in the request, e.g. members[2].nik or query.limit.")
    rule: str = Field(description="The rule that failed, e.g. birth_date or string_pattern_mismatch.")
    reason: str | None = Field(None, description="Why, for the platform's own rules (never a submitted value).")


class ProblemDetails(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers = status, detail, errors, headers


def problem_response(
    status: int,
    detail: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ProblemDetails(title=HTTPStatus(status).phrase, status=status, detail=detail, errors=errors)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers, media_type=MEDIA_TYPE)


UNKNOWN_FIELD = "(unknown field)"


def field_path(loc: tuple[Any, ...], rule: str | None = None) -> str:
    """("body", "members", 2, "nik") -> "members[2].nik"; query and path parameters keep their place.

    The name of a field the schema does not know is the sender's text (a NIK or a name sent as a
    key, say), so it is never repeated.
    """
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    if rule == "extra_forbidden" and parts:
        parts[-1] = UNKNOWN_FIELD
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def documented(description: str) -> dict[str, Any]:
    # `model` registers the schema component; the content names the media type actually sent.
    ref = {"$ref": "#/components/schemas/ProblemDetails"}
    return {"description": description, "model": ProblemDetails, "content": {MEDIA_TYPE: {"schema": ref}}}


# Every guarded route can give these answers; each route adds what is its own (404, 409, …).
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: documented("Malformed request"),
    401: documented("No token, or a token that is invalid or expired"),
    403: documented("The caller's role may not do this"),
    404: documented("Unknown, or not the caller's to know about"),
    413: documented("Body too large"),
    422: documented("Valid JSON that breaks a rule: errors name each field and rule"),
    429: documented("Too many writes; retry after Retry-After seconds"),
    503: documented("The identity provider's keys cannot be fetched; retry after Retry-After seconds"),
}


def _reason(error: dict[str, Any]) -> str | None:
    # Only the platform's own validators (value_error) explain themselves, and their messages never
    # repeat the value; pydantic's built-in messages may, so they keep to the rule's name. Any
    # 16-digit run is masked all the same.
    if error["type"] != "value_error" or "error" not in error.get("ctx", {}):
        return None
    return logs.mask_identifiers(str(error["ctx"]["error"]))[:300]


def install(app: FastAPI) -> None:
    """The handlers that turn every error of `app` into a problem document."""

    @app.exception_handler(Problem)
    async def problem(_: Request, error: Problem) -> JSONResponse:
        return problem_response(error.status, error.detail, error.errors, error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = error.detail if isinstance(error.detail, str) and error.detail != HTTPStatus(error.status_code).phrase else None
        return problem_response(error.status_code, detail, headers=getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer echoes every invalid value back, NIKs and names among them.
        found = error.errors()
        if any(e["type"] == "json_invalid" for e in found):
            return problem_response(400, "the body is not valid JSON")
        errors = [FieldError(field=field_path(tuple(e["loc"]), e["type"]), rule=e["type"], reason=_reason(e))
                  for e in found]
        return problem_response(422, "the request breaks the rules listed in errors", errors)
