"""The web app: health, GeoJSON area layers and the city page with local assets only."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from data.db import session_factory
from data.models import Area
from data.repository import add_version, insert_rows
from data.settings import Settings
from maps.local_assets import assets_built
from tests.conftest import IN_CI


def _load_grids(engine: Engine) -> None:
    with session_factory(engine)() as session, session.begin():
        version = add_version(session, "grid", dt.date(2026, 1, 1), "test")
        insert_rows(session, Area.__table__, [
            {"layer_version_id": version.id, "level": "grid", "code": f"G{i}", "name": f"第{i}网格",
             "parent_code": None, "geom": shapely.MultiPolygon([shapely.box(111.3 + i / 100, 23.5, 111.31 + i / 100, 23.51)])}
            for i in range(3)
        ])


@pytest.fixture
def client(engine: Engine, database_url: str, tmp_path) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    _load_grids(engine)
    settings = Settings(database_url=database_url, data_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        yield client


def test_health_reports_backend_and_counts(client: TestClient, backend: str) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["backend"] == backend
    assert body["counts"]["areas"] == 3


def test_area_layer_is_geojson_and_filters_by_bbox(client: TestClient) -> None:
    response = client.get("/api/v1/areas/grids", params={"bbox": "111.295,23.49,111.315,23.52"})
    assert response.headers["content-type"].startswith("application/geo+json")
    body = response.json()
    assert body["type"] == "FeatureCollection"
    assert sorted(f["properties"]["code"] for f in body["features"]) == ["G0", "G1"]
    assert client.get("/api/v1/areas/grid", params={"at": "2025-06-01"}).json()["numberReturned"] == 0


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/api/v1/areas/parish", "unknown level 'parish'"),
        ("/api/v1/areas/grid?bbox=1,2,3", "give four numbers"),
        ("/api/v1/areas/grid?bbox=10,95,11,96", "-90"),
        ("/api/v1/areas/grid?at=yesterday", "at"),
    ],
)
def test_bad_parameters_get_a_problem_response(client: TestClient, path: str, fragment: str) -> None:
    response = client.get(path)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert fragment in response.json()["detail"]


@pytest.mark.parametrize("path", ["/maps/planner", "/maps/dispatch", "/maps/resident"])
def test_pages_use_only_local_assets_and_stay_small(client: TestClient, path: str) -> None:
    if not assets_built():
        message = "map assets not built: run `make assets`"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    page = client.get(path)
    assert page.status_code == 200
    # Only the page's own tags: the scripts build popup links (href="${...}") at run time.
    tags = re.findall(r'<(?:script|link|img)\b[^>]*\b(?:src|href)="([^"]+)"', page.text)
    urls = [u for u in tags if u != "data:,"]
    assert urls, "the page links no assets at all"
    for url in urls:
        assert url.startswith("/static/vendor/"), f"{url} is not served by the app"
        assert client.get(url).status_code == 200, url
    # No data is embedded: the pages fetch it, so their size does not grow with the city.
    assert len(page.content) < 100_000


def test_home_is_the_planners_map(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code in (302, 307)
    assert response.headers["location"] == "/maps/planner"
