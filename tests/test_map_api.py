"""The endpoints the map pages read, on both backends: search, layer versions, coverage
faults, stats with areas and densities, clusters by status and period, the facility,
department and category lists, and the transport (gzip, CORS for GETs only).

Expected answers are computed from the database independently of the endpoints.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from api.app import create_app
from api.routes.issues import reported_window
from data.db import session_factory
from data.demo import load_demo_city
from data.importer import coverage_faults, today
from data.models import Area, Category, Department, Facility, Issue
from data.repository import add_version, areas, insert_rows, version_in_force
from data.settings import Settings
from geo.coverage import area_m2

CITY = "111.1,23.3,111.5,23.7"


@pytest.fixture
def client(engine: Engine, database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    load_demo_city(engine)
    settings = Settings(database_url=database_url, data_dir=tmp_path, escalate_every_seconds=0)
    with TestClient(create_app(settings)) as client:
        yield client


def test_search_finds_areas_and_compounds_by_code_and_name(client: TestClient, engine: Engine) -> None:
    with session_factory(engine)() as session:
        grid = areas(session, version_in_force(session, "grid", today()).id)[5]  # type: ignore[union-attr]
    exact = client.get("/api/v1/search", params={"q": grid.code}).json()
    first = exact["places"][0]
    assert (first["kind"], first["code"], first["name"]) == ("grid", grid.code, grid.name)
    minx, miny, maxx, maxy = first["bbox"]
    assert shapely.box(minx, miny, maxx, maxy).equals_exact(shapely.box(*grid.geom.bounds), 1e-9)
    # A code prefix lists the coarser levels first.
    prefix = client.get("/api/v1/search", params={"q": grid.code[:9], "limit": 50}).json()["places"]
    kinds = [p["kind"] for p in prefix]
    assert kinds[0] == "subdistrict" and kinds.index("community") < kinds.index("grid")
    assert all(p["code"].startswith(grid.code[:9]) for p in prefix)
    # Part of a name; compounds too.
    by_name = client.get("/api/v1/search", params={"q": "小区"}).json()["places"]
    assert by_name and all("小区" in p["name"] for p in by_name)
    assert {p["kind"] for p in by_name} == {"compound"}
    # LIKE wildcards are taken literally.
    assert client.get("/api/v1/search", params={"q": "%"}).json()["places"] == []
    assert client.get("/api/v1/search", params={"q": ""}).status_code == 422


def test_versions_and_coverage_faults_follow_the_layer_in_force(client: TestClient, engine: Engine) -> None:
    body = client.get("/api/v1/areas/grids/versions").json()
    assert [v["effective_from"] for v in body["versions"]] == ["2026-01-01"]
    assert client.get("/api/v1/coverage/faults").json()["features"] == []
    with session_factory(engine)() as session, session.begin():
        rows = areas(session, version_in_force(session, "grid", today()).id)  # type: ignore[union-attr]
        version = add_version(session, "grid", dt.date(2026, 6, 1), "test")
        insert_rows(session, Area.__table__, [
            {"layer_version_id": version.id, "level": "grid", "code": r.code, "name": r.name,
             "parent_code": r.parent_code, "geom": shapely.MultiPolygon(list(shapely.get_parts(
                 r.geom.buffer(0.001) if i == 0 else r.geom)))} for i, r in enumerate(rows)])
    body = client.get("/api/v1/areas/grids/versions").json()
    assert [(v["effective_from"], v["areas"]) for v in body["versions"]] == [("2026-01-01", len(rows)), ("2026-06-01", len(rows))]
    faults = client.get("/api/v1/coverage/faults").json()
    with session_factory(engine)() as session:
        expected = coverage_faults(session, today())
    assert len(faults["features"]) == len(expected) > 0
    assert Counter(f["properties"]["kind"] for f in faults["features"]) == Counter(f.kind for f in expected)
    assert all(rows[0].code in f["properties"]["grid_codes"] for f in faults["features"] if f["properties"]["kind"] != "gap")
    # The old version, asked for by date, is clean.
    assert client.get("/api/v1/coverage/faults", params={"at": "2026-03-01"}).json()["features"] == []
    assert client.get("/api/v1/areas/nope/versions").status_code == 422


def test_stats_give_areas_and_densities_and_clusters_split_by_status(client: TestClient, engine: Engine) -> None:
    since, until = dt.date(2026, 8, 1), dt.date(2026, 9, 30)
    start, end = reported_window(since, until)
    with session_factory(engine)() as session:
        per_grid = dict(session.execute(select(Issue.grid_code, func.count()).where(
            Issue.created_at >= start, Issue.created_at < end).group_by(Issue.grid_code)).all())
        geoms = {r.code: r.geom for r in areas(session, version_in_force(session, "grid", today()).id)}  # type: ignore[union-attr]
        by_status = Counter(session.scalars(select(Issue.status).where(
            Issue.created_at >= start, Issue.created_at < end, Issue.geom.is_not(None))))
    body = client.get("/api/v1/stats", params={"level": "grid", "from": since.isoformat(), "to": until.isoformat()}).json()
    items = {i["key"]: i for i in body["items"]}
    assert {k: i["received"] for k, i in items.items()} == per_grid
    for code, item in items.items():
        if code is None:
            continue
        km2 = area_m2(geoms[code]) / 1e6
        assert item["area_km2"] == pytest.approx(km2, rel=1e-3)
        assert item["density_per_km2"] == pytest.approx(per_grid[code] / km2, rel=1e-2)
    assert "area_km2" not in client.get("/api/v1/stats", params={"level": "department"}).json()["items"][0]

    clusters = client.get("/api/v1/issues/clusters", params={
        "bbox": CITY, "zoom": 13, "from": since.isoformat(), "to": until.isoformat(),
        "status": list(by_status)}).json()["features"]
    total: Counter[str] = Counter()
    for c in clusters:
        props = c["properties"]
        total.update(props["statuses"])
        assert sum(props["statuses"].values()) == props["count"]
        minx, miny, maxx, maxy = props["bbox"]
        assert minx <= props["lon"] <= maxx and miny <= props["lat"] <= maxy  # the centre lies in its cell
    assert total == by_status
    bad = client.get("/api/v1/issues/clusters", params={"bbox": CITY, "zoom": 13, "status": "lost"})
    assert bad.status_code == 422 and "unknown status 'lost'" in bad.json()["detail"]
    swapped = client.get("/api/v1/issues/clusters", params={"bbox": CITY, "zoom": 13, "from": "2026-09-30", "to": "2026-08-01"})
    assert swapped.status_code == 422 and "swap" in swapped.json()["detail"]


def test_reference_lists_and_facilities(client: TestClient, engine: Engine) -> None:
    with session_factory(engine)() as session:
        departments = session.scalar(select(func.count()).select_from(Department))
        categories = session.scalar(select(func.count()).select_from(Category))
        toilets = session.scalar(select(func.count()).select_from(Facility).where(Facility.kind == "toilet"))
        polygons = {code: geom for code, geom in session.execute(
            select(Facility.code, func.ST_AsBinary(Facility.geom)).where(Facility.kind == "toilet"))}
    assert len(client.get("/api/v1/departments").json()["departments"]) == departments
    assert len(client.get("/api/v1/categories").json()["categories"]) == categories
    body = client.get("/api/v1/facilities", params={"kind": "toilet"}).json()
    assert body["numberReturned"] == toilets
    for feature in body["features"]:
        point = shapely.Point(feature["geometry"]["coordinates"])
        assert shapely.from_wkb(bytes(polygons[feature["properties"]["code"]])).buffer(1e-9).covers(point)
    assert client.get("/api/v1/facilities", params={"bbox": "0,0,1,1"}).json()["features"] == []


def test_gzip_and_cors_for_reading_only(client: TestClient) -> None:
    stats = client.get("/api/v1/stats", params={"level": "grid"}, headers={"Accept-Encoding": "gzip"})
    assert stats.headers.get("content-encoding") == "gzip"
    cors = client.get("/api/v1/departments", headers={"Origin": "null"})  # a page opened from a file
    assert cors.headers.get("access-control-allow-origin") == "*"
    preflight = client.options("/api/v1/issues", headers={
        "Origin": "http://elsewhere.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 400  # writing stays same-origin


def test_render_writes_a_standalone_page(engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from api.cli import app as cli_app
    from data.settings import get_settings
    from maps.local_assets import assets_built
    from tests.browser import unavailable

    if not assets_built():
        unavailable("map assets not built: run `make assets`")
    load_demo_city(engine)
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", database_url)
    monkeypatch.setenv("GRIDMAP_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        out = tmp_path / "maps" / "dispatch.html"
        done = CliRunner().invoke(cli_app, ["render", "dispatch", "--out", str(out), "--server", "http://gridmap.intranet:8000/"])
        assert done.exit_code == 0, done.output
        html = out.read_text(encoding="utf-8")
        # Every asset inside, the data from the named server.
        assert "<script src=" not in html and 'rel="stylesheet"' not in html and "/static/vendor" not in html
        assert '"api": "http://gridmap.intranet:8000/api/v1"' in html
        unknown = CliRunner().invoke(cli_app, ["render", "atlas", "--out", str(out)])
        assert unknown.exit_code == 2 and "use planner, dispatch, resident" in unknown.output
        bad = CliRunner().invoke(cli_app, ["render", "planner", "--out", str(out), "--server", "gridmap.intranet"])
        assert bad.exit_code == 2 and "http://" in bad.output
    finally:
        get_settings.cache_clear()
