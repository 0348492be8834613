"""The planners' and dispatchers' pages in a real browser, on both backends.

Each test loads the demo city, serves the app, opens the page in Chromium with every
request off 127.0.0.1 blocked, and holds what the page drew to the database: features in
the tiles, figures in the choropleth, issues in the clusters, text in popups. The
standalone copy written by ``gridmap render`` is opened from a file the same way.
Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shapely
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from api.app import create_app
from api.routes.issues import reported_window
from api.routes.pages import render_page
from data.db import session_factory
from data.demo import load_demo_city
from data.importer import coverage_faults, today
from data.models import Area, Compound, Facility, Issue
from data.repository import add_version, areas, insert_rows, version_in_force
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
SECOND_VERSION = dt.date(2026, 6, 1)  # after the demo's 2026-01-01, before any test day


def _redraw_one_grid(session: Session) -> str:
    """A second grid version, effective SECOND_VERSION: the same grids but one grown by
    about 150 m, so that it overlaps its neighbours and leaves its community."""
    first = version_in_force(session, "grid", dt.date(2026, 1, 1))
    assert first is not None
    rows = areas(session, first.id)
    version = add_version(session, "grid", SECOND_VERSION, "test: one grid redrawn")
    grown = rows[0].code
    insert_rows(session, Area.__table__, [
        {"layer_version_id": version.id, "level": "grid", "code": r.code, "name": r.name, "parent_code": r.parent_code,
         "geom": shapely.MultiPolygon([p for p in shapely.get_parts(r.geom.buffer(0.0015) if r.code == grown else r.geom)])}
        for r in rows
    ])
    return grown


@pytest.fixture
def city(engine: Engine, database_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, Engine]]:
    require_assets()
    load_demo_city(engine)
    with session_factory(engine)() as session, session.begin():
        _redraw_one_grid(session)
        # Some open cases past due, so that overdue marking has something to show.
        open_ids = session.scalars(select(Issue.id).where(Issue.status.in_(sorted(OPEN_STATUSES)), Issue.geom.is_not(None))
                                   .order_by(Issue.id).limit(12)).all()
        session.execute(update(Issue).where(Issue.id.in_(open_ids))
                        .values(due_at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC)))
    app = create_app(Settings(database_url=database_url, data_dir=tmp_path, escalate_every_seconds=0))
    with live_server(app) as server:
        yield server, engine


# A 1x1 grey PNG: the base tiles' content does not matter, only that they are asked for.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360606060000000050001a5f645400000000049454e44ae426082"
)


@pytest.fixture
def gcj_city(engine: Engine, database_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, Engine]]:
    """The demo city under a GCJ-02 base map (as AMap/Gaode or Tencent tiles are), served locally."""
    from fastapi import Response

    require_assets()
    load_demo_city(engine)
    settings = Settings(database_url=database_url, data_dir=tmp_path, escalate_every_seconds=0,
                        tile_url="/basetiles/{z}/{x}/{y}.png", tile_attribution="test tiles", tile_crs="gcj02")
    app = create_app(settings)
    app.add_api_route("/basetiles/{z}/{x}/{y}.png", lambda z, x, y: Response(PIXEL, media_type="image/png"))
    with live_server(app) as server:
        yield server, engine


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def _open(browser: Any, url: str, panel: str, allow_files: bool = False) -> tuple[Any, Any, Any]:
    return open_ready_page(browser, url, panel, viewport=DESKTOP, allow_files=allow_files)


def _grid_count(session: Session, on: dt.date) -> int:
    version = version_in_force(session, "grid", on)
    assert version is not None
    return int(session.scalar(select(func.count()).select_from(Area).where(Area.layer_version_id == version.id)) or 0)


def _click_at(page: Any, lon: float, lat: float, handle: str) -> None:
    point = page.evaluate(f"([lon, lat]) => {{ const p = {handle}.map.latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }}", [lon, lat])
    box = page.locator(".folium-map").bounding_box()
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])


def test_planner_page(city: tuple[LiveServer, Engine], browser: Any) -> None:
    server, engine = city
    context, page, watch = _open(browser, f"{server.url}/maps/planner", "planner-panel")
    sessions = session_factory(engine)
    on = today()
    with sessions() as session:
        grids_now = _grid_count(session, on)
        car_parks = session.scalar(select(func.count()).select_from(Facility).where(Facility.kind == "car_park"))
        start, end = reported_window(on - dt.timedelta(days=365), on)
        per_grid = dict(session.execute(
            select(Issue.grid_code, func.count()).where(Issue.created_at >= start, Issue.created_at < end,
                                                        Issue.grid_code.is_not(None)).group_by(Issue.grid_code)).all())
        faults = coverage_faults(session, on)
        grid = next(r for r in areas(session, version_in_force(session, "grid", on).id) if per_grid.get(r.code))  # type: ignore[union-attr]
    handle = "gridmapPlannerPage"

    # What was drawn, against the database.
    assert page.evaluate(f"{handle}.rendered('grids').size") == grids_now
    assert page.evaluate(f"{handle}.rendered('districts').size") == 3
    page.wait_for_function(f"{handle}.facilityLayers.car_park.getLayers().length > 0")
    assert page.evaluate(f"{handle}.facilityLayers.car_park.getLayers().length") == car_parks
    assert page.evaluate(f"{handle}.state.stats.size") == len(per_grid)
    assert "Issues received" in page.inner_text(".gm-legend")
    screenshot(page, "planner-choropleth")

    # A grid's popup names it and gives its figures for the period.
    inside = grid.geom.representative_point()
    _click_at(page, inside.x, inside.y, handle)
    popup = page.wait_for_selector(".leaflet-popup-content .gm-popup")
    text = popup.inner_text()
    assert grid.name in text and grid.code in text
    assert f"Received\t{per_grid[grid.code]}" in text or f"Received {per_grid[grid.code]}" in text, text
    page.keyboard.press("Escape")

    # Toggle a layer off in the layer control.
    page.get_by_label("区 Districts").uncheck()
    assert page.evaluate(f"{handle}.map.hasLayer({handle}.areaLayers.districts)") is False

    # Heat map: the clusters behind it hold every issue of the period with a location
    # (back to the whole city first: the popup may have panned the map).
    page.evaluate(f"void {handle}.map.fitBounds({handle}.cfg.bounds, {{animate: false}})")
    page.get_by_label("热力图 Issue heat map").check()
    page.wait_for_function(f"{handle}.heat.options.points > 0")
    heat_total = page.evaluate(f"{handle}.heat._latlngs.reduce((n, p) => n + p[2], 0)")
    with sessions() as session:
        located = session.scalar(select(func.count()).select_from(Issue).where(
            Issue.created_at >= start, Issue.created_at < end, Issue.geom.is_not(None)))
    assert heat_total == located

    # Coverage faults of the grid version in force (one grid was grown over its neighbours).
    page.get_by_label("覆盖检查 Coverage faults").check()
    page.wait_for_function(f"{handle}.faults.options.loadedCount !== undefined")
    assert page.evaluate(f"{handle}.faults.getLayers().length") == len(faults) > 0
    assert "coverage faults" in page.inner_text("#planner-status")
    screenshot(page, "planner-heat-faults")

    # Search by code zooms to the grid.
    page.fill("#planner-search", grid.code)
    page.wait_for_selector("#planner-results li[data-i]")
    page.press("#planner-search", "Enter")
    page.wait_for_function(f"document.getElementById('planner-panel').dataset.found === '{grid.code}'")
    assert page.evaluate(f"{handle}.map.getBounds().contains([{inside.y}, {inside.x}])")
    assert page.evaluate(f"{handle}.map.getZoom()") >= 14
    # The zoom animation must end first: it would re-apply its zoom after a new view.
    page.wait_for_function(f"!{handle}.map._animatingZoom")
    # Zoomed in, the compounds layer draws the compounds there (they start at zoom 13).
    page.get_by_label("小区 Compounds").check()
    page.wait_for_function(f"{handle}.areaLayers.compounds._map && !{handle}.areaLayers.compounds.isLoading()")
    view = page.evaluate(f"{handle}.map.getBounds().toBBoxString()")
    with sessions() as session:
        west, south, east, north = (float(v) for v in view.split(","))
        in_view = set(session.scalars(select(Compound.code).where(
            func.ST_Intersects(Compound.geom, func.ST_GeomFromText(shapely.box(west, south, east, north).wkt, 4326)) == True)))
    drawn_compounds = set(page.evaluate(f"Array.from({handle}.rendered('compounds'))"))
    assert in_view and in_view <= drawn_compounds

    # Two versions side by side: each half draws its own version's grids.
    page.evaluate(f"void {handle}.map.fitBounds({handle}.cfg.bounds, {{animate: false}})")
    page.get_by_label("Compare grid versions").check()
    page.wait_for_function(f"{handle}.compare.left && !{handle}.compare.left.isLoading() && !{handle}.compare.right.isLoading()")
    for side in ("left", "right"):
        codes = page.evaluate(f"Array.from(gridmap.renderedCodes({handle}.compare.{side}))")
        assert len(codes) == grids_now
    assert page.is_visible("#planner-swipe")
    screenshot(page, "planner-compare")
    watch.assert_clean()
    context.close()


def test_dispatch_page(city: tuple[LiveServer, Engine], browser: Any) -> None:
    server, engine = city
    context, page, watch = _open(browser, f"{server.url}/maps/dispatch", "dispatch-panel")
    sessions = session_factory(engine)
    handle = "gridmapDispatchPage"
    open_located = (Issue.status.in_(sorted(OPEN_STATUSES)), Issue.geom.is_not(None))
    now = dt.datetime.now(dt.UTC)
    with sessions() as session:
        open_count = session.scalar(select(func.count()).select_from(Issue).where(*open_located))
        overdue = session.scalar(select(func.count()).select_from(Issue).where(*open_located, Issue.due_at < now))
        dept, dept_count = session.execute(
            select(Issue.department_code, func.count()).where(*open_located, Issue.department_code.is_not(None)).group_by(Issue.department_code)
            .order_by(func.count().desc(), Issue.department_code).limit(1)).one()
        grids_now = _grid_count(session, today())

    # Every open case is in exactly one cluster; overdue ones are counted and ringed.
    drawn = page.evaluate("Array.from(document.querySelectorAll('[data-count]')).reduce((n, e) => n + Number(e.dataset.count), 0)")
    assert drawn == open_count
    assert page.evaluate(f"{handle}.clusters().reduce((n, p) => n + p.overdue, 0)") == overdue > 0
    assert page.locator(".gm-cluster.overdue, .gm-case.overdue").count() > 0
    assert page.evaluate(f"{handle}.rendered('grids').size") == grids_now
    screenshot(page, "dispatch")

    # Filter by department.
    loads = int(page.get_attribute("#dispatch-panel", "data-loads"))
    page.select_option("#dispatch-department", dept)
    page.wait_for_function(f"Number(document.getElementById('dispatch-panel').dataset.loads) > {loads}")
    assert page.evaluate(f"{handle}.clusters().reduce((n, p) => n + p.count, 0)") == dept_count
    page.select_option("#dispatch-department", "")

    # A single case's popup: zoom to it until its cluster holds only it.
    with sessions() as session:
        issue = session.scalars(select(Issue).where(*open_located).order_by(Issue.id.desc()).limit(1)).one()
        lon, lat = session.execute(select(func.ST_X(Issue.geom), func.ST_Y(Issue.geom)).where(Issue.id == issue.id)).one()
    with sessions() as session, session.begin():  # its deadline as if computed on a provisional calendar
        session.execute(update(Issue).where(Issue.id == issue.id).values(due_provisional=True))
    loads = int(page.get_attribute("#dispatch-panel", "data-loads"))
    page.evaluate(f"void {handle}.map.setView([{lat}, {lon}], 19)")
    page.wait_for_function(f"Number(document.getElementById('dispatch-panel').dataset.loads) > {loads}"
                           f" && {handle}.clusters().some(p => p.issue_id === {issue.id})")
    page.evaluate(f"{handle}.markers.getLayers().find(m => m.getLatLng().distanceTo([{lat}, {lon}]) < 1)._icon.click()")
    popup = page.wait_for_selector(f".leaflet-popup-content .gm-popup:has-text('{issue.ref}')")
    assert f"/api/v1/issues/{issue.id}" in popup.inner_html()
    assert "(provisional)" in popup.inner_text()  # the Due row says the deadline may move
    page.keyboard.press("Escape")

    # Refresh redraws the cases without reloading the page.
    page.evaluate(f"void {handle}.map.fitBounds({handle}.cfg.bounds)")
    page.wait_for_function(f"{handle}.clusters().reduce((n, p) => n + p.count, 0) === {open_count}")
    page.evaluate("window.notReloaded = true")
    with sessions() as session, session.begin():
        session.execute(update(Issue).where(Issue.id == issue.id).values(status="closed", closed_at=now))
    loads = int(page.get_attribute("#dispatch-panel", "data-loads"))
    page.click("#dispatch-refresh")
    page.wait_for_function(f"Number(document.getElementById('dispatch-panel').dataset.loads) > {loads}")
    assert page.evaluate(f"{handle}.clusters().reduce((n, p) => n + p.count, 0)") == open_count - 1
    assert page.evaluate("window.notReloaded") is True

    # Toggle the grid layer off.
    page.get_by_label("网格 Grids").uncheck()
    assert page.evaluate(f"{handle}.map.hasLayer({handle}.grids)") is False
    watch.assert_clean()
    context.close()


@pytest.mark.parametrize("name", ["planner", "dispatch", "resident"])
def test_standalone_copy_works_from_a_file(city: tuple[LiveServer, Engine], browser: Any, tmp_path: Path, name: str) -> None:
    server, engine = city
    with session_factory(engine)() as session:
        html = render_page(name, session, server.app.state.settings, server=server.url, standalone=True)
        grids_now = _grid_count(session, today())
    assert "/static/vendor" not in html
    out = tmp_path / f"{name}.html"
    out.write_text(html, encoding="utf-8")
    panel = {"planner": "planner-panel", "dispatch": "dispatch-panel", "resident": "resident-panel"}[name]
    context, page, watch = _open(browser, out.as_uri(), panel, allow_files=True)
    if name == "planner":
        assert page.evaluate("gridmapPlannerPage.rendered('grids').size") == grids_now
    elif name == "dispatch":
        assert page.evaluate("gridmapDispatchPage.clusters().length") > 0
    watch.assert_clean()
    context.close()


def test_overlays_line_up_with_a_gcj02_base_map(gcj_city: tuple[LiveServer, Engine], browser: Any) -> None:
    from geo.crs import wgs84_to_gcj02

    server, engine = gcj_city
    context, page, watch = _open(browser, f"{server.url}/maps/planner", "planner-panel")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    with session_factory(engine)() as session:
        grid = areas(session, version_in_force(session, "grid", today()).id)[40]  # type: ignore[union-attr]
    assert page.locator("img.leaflet-tile[src*='/basetiles/']").count() > 0
    # A click where the grid is drawn on GCJ-02 tiles finds that grid: the shift is undone.
    inside = grid.geom.representative_point()
    x, y = (float(v) for v in wgs84_to_gcj02(inside.x, inside.y))
    _click_at(page, x, y, "gridmapPlannerPage")
    popup = page.wait_for_selector(".leaflet-popup-content .gm-popup")
    assert grid.code in popup.inner_text()
    assert any("/locate" in u and "crs=gcj02" in u for u in requests)
    tiles = page.evaluate("gridmapPlannerPage.areaLayers.grids._url")
    assert "crs=gcj02" in tiles
    screenshot(page, "planner-gcj02")
    watch.assert_clean()
    context.close()

    # The dispatch map puts each case where the GCJ-02 tiles show its place.
    context, page, watch = _open(browser, f"{server.url}/maps/dispatch", "dispatch-panel")
    with session_factory(engine)() as session:
        issue_id, lon, lat = session.execute(select(Issue.id, func.ST_X(Issue.geom), func.ST_Y(Issue.geom)).where(
            Issue.status.in_(sorted(OPEN_STATUSES)), Issue.geom.is_not(None)).order_by(Issue.id).limit(1)).one()
    gx, gy = (float(v) for v in wgs84_to_gcj02(lon, lat))
    loads = int(page.get_attribute("#dispatch-panel", "data-loads"))
    page.evaluate(f"void gridmapDispatchPage.map.setView([{gy}, {gx}], 19)")
    page.wait_for_function(f"Number(document.getElementById('dispatch-panel').dataset.loads) > {loads}"
                           f" && gridmapDispatchPage.clusters().some(p => p.issue_id === {issue_id})")
    distance = page.evaluate(f"Math.min(...gridmapDispatchPage.markers.getLayers().map(m => m.getLatLng().distanceTo([{gy}, {gx}])))")
    assert distance < 0.5  # metres
    watch.assert_clean()
    context.close()
