"""The map pages: planners', dispatchers' (and, in resident_page.py, residents').

Pages carry no data of their own: each is a few kilobytes of configuration, and the
browser asks the tile, stats, cluster and locate endpoints for what it draws.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from api.deps import SessionDep, SettingsDep
from api.routes.resident_page import resident_html
from data.importer import today
from data.places import layer_versions
from data.settings import Settings
from data.tiles import LAYERS, layer_bounds, tile_source
from maps.dispatch import DispatchOptions, render_dispatch_map
from maps.planner import PlannerOptions, render_planner_map
from maps.shell import BaseMap
from maps.standalone import standalone as inline_assets

router = APIRouter(tags=["pages"])


def base_map(settings: Settings) -> BaseMap:
    return BaseMap(settings.tile_url, settings.tile_attribution, settings.tile_crs)


def city_bounds(session: Session) -> tuple[float, float, float, float] | None:
    """The extent of the coarsest area layer in force: the first view of every page."""
    for layer in ("districts", "subdistricts", "communities", "grids"):
        bounds = layer_bounds(session, tile_source(session, LAYERS[layer], today()))
        if bounds is not None:
            return bounds
    return None


def planner_options(session: Session, server: str = "") -> PlannerOptions:
    versions = tuple(v["effective_from"] for v in layer_versions(session, "grid"))
    return PlannerOptions(server=server, today=today(), grid_versions=versions)


def render_page(page: str, session: Session, settings: Settings, server: str = "", standalone: bool = False) -> str:
    """One page's HTML; ``server`` is where its data comes from ("": the serving app).

    ``standalone`` writes every asset into the page (``gridmap render``).
    """
    base = base_map(settings)
    if page == "planner":
        html = render_planner_map(city_bounds(session), base, planner_options(session, server))
    elif page == "dispatch":
        html = render_dispatch_map(city_bounds(session), base, DispatchOptions(server=server))
    elif page == "resident":
        html = resident_html(session, base, f"{server}/api/v1/facilities/nearby")
    else:
        raise ValueError(f"unknown page {page!r}: use planner, dispatch or resident")
    return inline_assets(html) if standalone else html


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/maps/planner")


@router.get("/maps/planner", response_class=HTMLResponse)
def planner_map(session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """Areas, compounds and facilities; grids coloured by a figure; heat map; search; faults; versions."""
    return HTMLResponse(render_page("planner", session, settings))


@router.get("/maps/dispatch", response_class=HTMLResponse)
def dispatch_map(session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """Issues clustered by the server, coloured by status, with filters and refresh."""
    return HTMLResponse(render_page("dispatch", session, settings))
