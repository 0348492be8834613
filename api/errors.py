"""One error shape for clients: RFC 9457 problem details, mapped in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from data.cases import CaseError
from maps.local_assets import AssetsNotBuiltError

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, **extra: object) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


class BadRequest(ValueError):
    """A request parameter a person can fix; the message says how."""


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"][1:]), "message": e["msg"]} for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(422, "Invalid request", detail, errors=errors)

    @app.exception_handler(BadRequest)
    async def _bad(_: Request, exc: BadRequest) -> JSONResponse:
        return problem(422, "Invalid request", str(exc))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), str(exc.detail))

    @app.exception_handler(CaseError)
    async def _case(_: Request, exc: CaseError) -> JSONResponse:
        # Use-case errors carry their status; 409s list the allowed actions, 412s the version.
        titles = {401: "Unauthorized", 403: "Forbidden", 404: "Not found", 409: "Conflict",
                  412: "Precondition failed", 422: "Invalid request", 429: "Too many requests",
                  503: "Service unavailable"}
        return problem(exc.status, titles.get(exc.status, "Error"), str(exc), **exc.details)

    @app.exception_handler(AssetsNotBuiltError)
    async def _assets(_: Request, exc: AssetsNotBuiltError) -> JSONResponse:
        return problem(503, "Map assets missing", str(exc))
