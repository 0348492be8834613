"""The three pages at city scale (10,000 grids, 100,000 issues) in Chromium.

The city is generated and loaded once for the module, on SpatiaLite (about a minute):
loading it into PostGIS as well would add another minute to every run, and the tiles,
clusters and stats are checked on both backends at demo scale in test_map_pages.py and
test_map_api.py; benchmarks/map_pages.py --scale city --backend postgis covers PostGIS here.
Nothing is timed: how fast the pages draw is the benchmark's business.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from api.app import create_app
from data.db import make_engine, session_factory
from data.demo import load_demo_city
from data.importer import today
from data.models import Area, Issue
from data.repository import version_in_force
from data.settings import Settings
from geo.issues import OPEN_STATUSES
from tests.browser import (
    LiveServer,
    chromium,
    live_server,
    open_ready_page,
    require_assets,
    screenshot,
)

DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def city(spatialite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Any]]:
    require_assets()
    folder = tmp_path_factory.mktemp("city_scale")
    shutil.copy(spatialite_template, folder / "gridmap.sqlite")
    url = f"sqlite:///{folder / 'gridmap.sqlite'}"
    engine = make_engine(url)
    load_demo_city(engine, scale="city")
    app = create_app(Settings(database_url=url, data_dir=folder, escalate_every_seconds=0))
    with live_server(app) as server:
        yield server, engine
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def _open(browser: Any, url: str, panel: str) -> tuple[Any, Any, Any]:
    return open_ready_page(browser, url, panel, viewport=DESKTOP, timeout_ms=90_000)


def test_planner_draws_every_grid_of_the_city(city: tuple[LiveServer, Any], browser: Any) -> None:
    server, engine = city
    with session_factory(engine)() as session:
        version = version_in_force(session, "grid", today())
        grids = session.scalar(select(func.count()).select_from(Area).where(Area.layer_version_id == version.id))  # type: ignore[union-attr]
    assert grids == 10_000
    context, page, watch = _open(browser, f"{server.url}/maps/planner", "planner-panel")
    handle = "gridmapPlannerPage"
    assert page.evaluate(f"{handle}.rendered('grids').size") == grids
    assert page.evaluate(f"{handle}.state.stats.size") > 0.9 * grids
    page.get_by_label("网格 Grids").uncheck()
    assert page.evaluate(f"{handle}.map.hasLayer({handle}.areaLayers.grids)") is False
    page.get_by_label("网格 Grids").check()
    page.wait_for_function(f"!{handle}.areaLayers.grids.isLoading()")
    page.select_option("#planner-figure", "density_per_km2")
    assert "Issues per km²" in page.inner_text(".gm-legend")
    centre = page.evaluate(f"(() => {{ const c = {handle}.map.getSize(); return [c.x / 2, c.y / 2]; }})()")
    box = page.locator(".folium-map").bounding_box()
    page.mouse.click(box["x"] + centre[0], box["y"] + centre[1])
    popup = page.wait_for_selector(".leaflet-popup-content .gm-popup")
    assert "Received" in popup.inner_text()
    screenshot(page, "city-planner")
    watch.assert_clean()
    context.close()


def test_dispatch_clusters_every_open_case(city: tuple[LiveServer, Any], browser: Any) -> None:
    server, engine = city
    with session_factory(engine)() as session:
        open_located = session.scalar(select(func.count()).select_from(Issue).where(
            Issue.status.in_(sorted(OPEN_STATUSES)), Issue.geom.is_not(None)))
    context, page, watch = _open(browser, f"{server.url}/maps/dispatch", "dispatch-panel")
    drawn = page.evaluate("Array.from(document.querySelectorAll('[data-count]')).reduce((n, e) => n + Number(e.dataset.count), 0)")
    assert drawn == open_located > 1000
    # A cluster's popup lists its cases.
    page.locator(".gm-cluster").first.click()
    popup = page.wait_for_selector(".leaflet-popup-content .gm-popup li")
    assert "/api/v1/issues/" in popup.inner_html()
    screenshot(page, "city-dispatch")
    watch.assert_clean()
    context.close()


def test_resident_page_at_city_scale(city: tuple[LiveServer, Any], browser: Any) -> None:
    server, _engine = city
    context, page, watch = _open(browser, f"{server.url}/maps/resident", "resident-panel")
    page.wait_for_function("document.getElementById('resident-panel').dataset.loads > 0")
    assert page.locator(".leaflet-marker-pane .fac").count() > 0
    screenshot(page, "city-resident")
    watch.assert_clean()
    context.close()
