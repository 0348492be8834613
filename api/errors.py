"""One error shape for clients: RFC 9457 problem details, mapped in one place."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from data.cases import CaseError
from geo.worktime import CalendarOutOfRange, CalendarYearMissing
from maps.local_assets import AssetsNotBuiltError

PROBLEM = "application/problem+json"
log = logging.getLogger("gridmap")


def problem(
    status: int, title: str, detail: str, headers: Mapping[str, str] | None = None, **extra: object
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


class BadRequest(ValueError):
    """A request parameter a person can fix; the message says how."""


class UnknownValue(BadRequest):
    """A value that names nothing (a category, a kind...): ``allowed`` lists the known ones."""

    def __init__(self, message: str, allowed: list[str] | None = None) -> None:
        super().__init__(message)
        self.allowed = allowed


# The problem schema, for the OpenAPI document (and schemathesis) to check answers against.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
        "allowed": {"type": "array", "items": {"type": "string"}},
        "reference": {"type": "string", "description": "Quote it to the operators (500 only)"},
    },
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for problem answers with these statuses."""
    return {
        status: {
            "description": _TITLES.get(status, "Error"),
            "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}},
        }
        for status in statuses
    }


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    412: "Precondition failed",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc[1:])


def _error(error: Any) -> dict[str, Any]:
    """One validation error; a value outside a list names the list, as the data checks do."""
    field = _field(error["loc"])
    if error["type"] in ("enum", "literal_error"):
        allowed = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
        name = next(str(p) for p in reversed(error["loc"]) if not isinstance(p, int))
        message = f"unknown {name} {error['input']!r}: use one of {', '.join(allowed)}"
        return {"field": field, "message": message, "allowed": allowed}
    return {"field": field, "message": error["msg"]}


def _unknown_id(exc: RequestValidationError) -> str | None:
    """The path id when that is all that is wrong: such an id cannot exist, so it is a 404."""
    errors = exc.errors()
    names = {e["loc"][1] for e in errors if len(e["loc"]) == 2 and e["loc"][0] == "path"}
    if len(names) == 1 and len(errors) == len([e for e in errors if e["loc"][0] == "path"]):
        name = str(next(iter(names)))
        if name.endswith("_id"):
            return name
    return None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        name = _unknown_id(exc)
        if name is not None:
            value = request.path_params.get(name)
            return problem(
                404, "Not found", f"no {name.removesuffix('_id').replace('_', ' ')} {value}"
            )
        errors = [_error(e) for e in exc.errors()]
        detail = "; ".join(
            e["message"] if "allowed" in e else f"{e['field']}: {e['message']}" for e in errors
        )
        allowed = next((e["allowed"] for e in errors if "allowed" in e), None)
        return problem(
            422,
            "Invalid request",
            detail,
            errors=errors,
            **({"allowed": allowed} if allowed else {}),
        )

    @app.exception_handler(BadRequest)
    async def _bad(_: Request, exc: BadRequest) -> JSONResponse:
        allowed = getattr(exc, "allowed", None)
        return problem(
            422, "Invalid request", str(exc), **({"allowed": allowed} if allowed else {})
        )

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), str(exc.detail), headers=exc.headers)

    @app.exception_handler(CaseError)
    async def _case(_: Request, exc: CaseError) -> JSONResponse:
        # Use-case errors carry their status; 409s list the allowed actions, 412s the version.
        # RFC 6750: a 401 names the scheme the client should use.
        headers = {"WWW-Authenticate": 'Bearer realm="gridmap"'} if exc.status == 401 else None
        return problem(
            exc.status, _TITLES.get(exc.status, "Error"), str(exc), headers, **exc.details
        )

    @app.exception_handler(AssetsNotBuiltError)
    async def _assets(_: Request, exc: AssetsNotBuiltError) -> JSONResponse:
        return problem(503, "Map assets missing", str(exc))

    @app.exception_handler(CalendarYearMissing)
    async def _calendar(_: Request, exc: CalendarYearMissing) -> JSONResponse:
        # One mapping for every route. A date outside the calendar's range is the client's
        # mistake (422, naming the range); any other gap is the operator's to fix (503).
        if isinstance(exc, CalendarOutOfRange):
            return problem(
                422,
                "Invalid request",
                str(exc),
                first=exc.first.isoformat(),
                last=exc.last.isoformat(),
            )
        return problem(503, "Calendar missing", str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Last resort: the client gets a reference to quote, the log the traceback under it.
        reference = uuid.uuid4().hex
        log.error(
            "unexpected error %s on %s %s",
            reference,
            request.method,
            request.url.path,
            exc_info=exc,
        )
        return problem(
            500,
            "Internal server error",
            f"something went wrong on our side; quote reference {reference} to the operators",
            reference=reference,
        )


# Open311 routes answer failures in the spec's error list, as JSON or XML by the path's suffix.
OPEN311_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON or XML, as the path's suffix says",
        "content": {"application/xml": {"schema": {"type": "string"}}},
    },
    "4XX": {
        "description": "GeoReport v2 errors (400, 403 or 404)",
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["code", "description"],
                        "properties": {
                            "code": {"type": "integer"},
                            "description": {"type": "string"},
                        },
                    },
                }
            },
            "application/xml": {"schema": {"type": "string"}},
        },
    },
}
