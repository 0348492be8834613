"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.errors import install_error_handlers
from api.routes import areas, health, locate, pages
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
        yield
        engine.dispose()

    app = FastAPI(
        title="gridmap",
        summary="Community grid governance: areas, grids, issues and shared facilities.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(areas.router)
    app.include_router(locate.router)
    app.include_router(pages.router)
    # check_dir=False: the app still starts (and says how to fix it) before `make assets`.
    app.mount(VENDOR_URL, StaticFiles(directory=vendor_dir(), check_dir=False), name="vendor")
    return app
