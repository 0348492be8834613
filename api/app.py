"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles

from api import media
from api.errors import OPEN311_ERRORS, install_error_handlers, problem_responses
from api.routes import (
    areas,
    facilities,
    health,
    issues,
    locate,
    open311,
    pages,
    resident_page,
    tiles,
)
from api.security import RateLimiter
from data.cases import Clock, escalate
from data.db import make_engine, session_factory
from data.migrate import upgrade
from data.settings import Settings, get_settings
from data.stamps import database_identity
from maps.local_assets import VENDOR_URL, vendor_dir


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (the environment's by default)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.resolved_database_url())
        upgrade(engine)
        # Written now if missing (a restored or truncated database), so that no request
        # needs a second connection to write it while holding its own (data/stamps.py).
        with session_factory(engine)() as session:
            database_identity(session)
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.write_sessions = session_factory(engine, write=True)
        tiles.seed_in_background(app)
        task = None
        if settings.escalate_every_seconds:
            task = asyncio.create_task(_escalate_periodically(app, settings.escalate_every_seconds))
        yield
        if task is not None:
            task.cancel()
        engine.dispose()

    app = FastAPI(
        title="gridmap",
        summary="Community grid governance: areas, grids, issues and shared facilities.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = Clock.from_settings(settings)
    app.state.report_limiter = RateLimiter(settings.report_rate_per_minute)
    install_error_handlers(app)
    # Stats and tiles compress five- to tenfold; the maps at city scale feel it. Level 5,
    # not Starlette's 9: a 560 KB low-zoom tile of city grids took 63 ms at 9, 12 ms at 5, for 5 % fewer bytes.
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=5)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET"],
                           allow_credentials=False)
    # Each router's error answers, so that the OpenAPI document says what clients get.
    app.include_router(health.router, responses=problem_responses(500, 503))
    app.include_router(areas.router, responses=problem_responses(422, 500, 503))
    app.include_router(locate.router, responses=problem_responses(422, 500, 503))
    app.include_router(issues.router, responses=problem_responses(400, 401, 403, 404, 409, 412, 413, 422, 429, 500, 503))
    app.include_router(open311.router, responses={**OPEN311_ERRORS, **problem_responses(500, 503)})  # JSON or XML
    app.include_router(facilities.router, responses=problem_responses(400, 401, 403, 404, 409, 422, 500, 503))
    app.include_router(resident_page.router, responses=problem_responses(500, 503))
    app.include_router(tiles.router, responses=problem_responses(404, 422, 500, 503))
    app.include_router(pages.router, responses=problem_responses(500, 503))
    app.openapi = lambda: _staff_token_optional(app)  # type: ignore[method-assign]
    # check_dir=False: the app still starts (and says how to fix it) before `make assets`.
    app.mount(VENDOR_URL, StaticFiles(directory=vendor_dir(), check_dir=False), name="vendor")
    # Reports' photos: staff-only until a report is accepted (api/media.py), so a route, not StaticFiles.
    app.include_router(media.router, responses=problem_responses(401, 404, 500))
    return app


def _staff_token_optional(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, saying that the bearer token is optional where it is.

    FastAPI lists the scheme as required; the public may call these routes (and see less),
    so each operation also gets the empty requirement, which OpenAPI reads as "or none".
    """
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, summary=app.summary,
                               description=app.description, routes=app.routes)
        for path in document.get("paths", {}).values():
            for operation in path.values():
                if isinstance(operation, dict) and operation.get("security"):
                    operation["security"] = [{}, *operation["security"]]
        app.openapi_schema = document
    return app.openapi_schema


async def _escalate_periodically(app: FastAPI, every: int) -> None:
    """Run the escalation use case on a timer, as `gridmap escalate` does by hand."""
    while True:
        await asyncio.sleep(every)
        try:
            await asyncio.to_thread(_escalate_once, app)
        except Exception:
            logging.getLogger("gridmap").exception("escalation run failed")


def _escalate_once(app: FastAPI) -> None:
    with app.state.write_sessions() as session, session.begin():
        escalate(session)
