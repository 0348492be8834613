"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.staticfiles import StaticFiles

from api.errors import install_error_handlers
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
from maps.local_assets import VENDOR_URL, vendor_dir


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (the environment's by default)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.resolved_database_url())
        upgrade(engine)
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
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
    app.include_router(health.router)
    app.include_router(areas.router)
    app.include_router(locate.router)
    app.include_router(issues.router)
    app.include_router(open311.router)
    app.include_router(facilities.router)
    app.include_router(resident_page.router)
    app.include_router(tiles.router)
    app.include_router(pages.router)
    # check_dir=False: the app still starts (and says how to fix it) before `make assets`.
    app.mount(VENDOR_URL, StaticFiles(directory=vendor_dir(), check_dir=False), name="vendor")
    # Media file names are random (api/media.py), so a URL is only known from an issue view.
    app.mount("/media", StaticFiles(directory=settings.data_dir / "media", check_dir=False), name="media")
    return app


async def _escalate_periodically(app: FastAPI, every: int) -> None:
    """Run the escalation use case on a timer, as `gridmap escalate` does by hand."""
    while True:
        await asyncio.sleep(every)
        try:
            await asyncio.to_thread(_escalate_once, app)
        except Exception:
            logging.getLogger("gridmap").exception("escalation run failed")


def _escalate_once(app: FastAPI) -> None:
    with app.state.sessions() as session, session.begin():
        escalate(session)
