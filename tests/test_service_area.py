"""The service area at intake, on both backends, through both APIs (JSON and Open311).

A point far outside the city is refused with a clear message; a point in the city but in no
grid, and a report with an address only, go to the configured fallback department, named
in the answer with the reason; with no fallback they are held unrouted, never sent to an
arbitrary command centre. Swapped coordinates get the same hint as ``/locate`` gives.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from api.app import create_app
from data import repository as repo
from data.cases import add_user
from data.db import session_factory
from data.demo import load_demo_city
from data.importer import FieldMap, ImportOptions, import_layer
from data.models import Department, Issue
from data.settings import Settings

BEIJING = (116.397, 39.909)  # Tiananmen: about 1,900 km from the Wuzhou demo city
V2 = "/open311/v2"


@dataclass
class City:
    engine: Engine
    database_url: str
    data_dir: Path
    api_key: str  # an Open311 client's key (a staff token)
    outside: tuple[float, float]  # in no area at all, about 400 m west of the city's westmost point
    inside: tuple[float, float]  # a demo issue's place, in a grid
    fallback: str  # a command centre that the old "first command centre" rule would not pick

    def issue_count(self) -> int:
        with session_factory(self.engine)() as session:
            return session.scalar(select(func.count()).select_from(Issue)) or 0

    @contextmanager
    def client(self, **settings: Any) -> Iterator[TestClient]:
        base = {
            "database_url": self.database_url,
            "data_dir": self.data_dir,
            "escalate_every_seconds": 0,
            "report_rate_per_minute": 1000,
        }
        with TestClient(create_app(Settings(**{**base, **settings}))) as client:
            yield client

    def open311(self, **fields: Any) -> dict[str, str]:
        base = {
            "api_key": self.api_key,
            "service_code": "exposed_rubbish",
            "description": "垃圾堆积",
        }
        return {k: str(v) for k, v in {**base, **fields}.items() if v is not None}


@pytest.fixture
def city(engine: Engine, database_url: str, tmp_path: Path) -> City:
    load_demo_city(engine)
    with session_factory(engine)() as session, session.begin():
        api_key = add_user(session, "relay", "dispatcher")
        version = repo.version_in_force(session, "district", dt.date(2026, 6, 1))
        assert version is not None
        city_area = shapely.union_all([a.geom for a in repo.areas(session, version.id)])
        inside = session.execute(
            select(func.ST_X(Issue.geom), func.ST_Y(Issue.geom))
            .where(Issue.grid_code.is_not(None))
            .order_by(Issue.id)
            .limit(1)
        ).one()
        centres = session.scalars(
            select(Department.code)
            .where(Department.kind == "command_centre")
            .order_by(Department.code.desc())
        ).all()
    x, y = min(shapely.get_coordinates(city_area).tolist())  # the westmost vertex
    outside = (
        x - 0.004,
        y,
    )  # 0.004° of longitude is about 410 m here: past snapping, within the margin
    assert not city_area.intersects(shapely.Point(outside))
    return City(
        engine,
        database_url,
        tmp_path,
        api_key,
        outside,
        (float(inside[0]), float(inside[1])),
        fallback=centres[0],
    )  # the last by code; the old rule took the first


def report(lon: float | None, lat: float | None, **extra: Any) -> dict[str, Any]:
    body = {
        "lon": lon,
        "lat": lat,
        "category": "exposed_rubbish",
        "description": "垃圾堆积",
        **extra,
    }
    return {k: v for k, v in body.items() if v is not None}


def open311_error(response: Any, status: int = 400) -> str:
    """The description of Open311's one-element error list."""
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body, list) and body[0]["code"] == status, body
    return str(body[0]["description"])


def test_a_point_far_outside_the_city_is_refused(city: City) -> None:
    before = city.issue_count()
    with city.client(fallback_department=city.fallback) as client:
        refused = client.post("/api/v1/issues", json=report(*BEIJING))
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert (
            "outside the service area" in problem["detail"]
            and "the district layer in force" in problem["detail"]
        )
        assert problem["distance_m"] > 1_000_000  # Beijing is well over 1,000 km away
        description = open311_error(
            client.post(f"{V2}/requests.json", data=city.open311(long=BEIJING[0], lat=BEIJING[1]))
        )
        assert "outside the service area" in description
        # Within the margin (about 400 m out) is not refused; a margin smaller than that refuses it.
        assert client.post("/api/v1/issues", json=report(*city.outside)).status_code == 201
    with city.client(fallback_department=city.fallback, service_area_margin_m=100) as client:
        near = client.post("/api/v1/issues", json=report(*city.outside))
        assert near.status_code == 422 and "up to 100 m outside it" in near.json()["detail"]
    assert city.issue_count() == before + 1


def test_in_no_grid_goes_to_the_fallback_named_in_the_answer(city: City) -> None:
    with city.client(fallback_department=city.fallback) as client:
        body = client.post("/api/v1/issues", json=report(*city.outside)).json()
        assert body["areas"] == {
            "grid": None,
            "community": None,
            "subdistrict": None,
            "district": None,
        }
        assert body["department_code"] == city.fallback
        assert "in no grid" in body["routing"] and "GRIDMAP_FALLBACK_DEPARTMENT" in body["routing"]
        sent = client.post(
            f"{V2}/requests.json", data=city.open311(long=city.outside[0], lat=city.outside[1])
        )
        assert sent.status_code == 200, sent.text
        notice = sent.json()[0]["service_notice"]
        assert city.fallback in notice and "in no grid" in notice
        # A point in a grid is routed as before: by rule or its sub-district's command centre.
        inside = client.post("/api/v1/issues", json=report(*city.inside)).json()
        assert inside["areas"]["grid"] is not None and "fallback" not in inside["routing"]
    with session_factory(city.engine)() as session:
        issue = session.get(Issue, body["id"])
        assert issue is not None and issue.department_code == city.fallback


def test_address_only_reports_go_to_the_fallback(city: City) -> None:
    with city.client(fallback_department=city.fallback) as client:
        body = client.post("/api/v1/issues", json=report(None, None, address="文庭街39号")).json()
        assert body["department_code"] == city.fallback and "an address only" in body["routing"]
        # GeoReport v2 allows an address_string without lat/long; it is taken in the same way.
        sent = client.post(f"{V2}/requests.json", data=city.open311(address_string="文庭街39号"))
        assert sent.status_code == 200, sent.text
        request_id = sent.json()[0]["service_request_id"]
        assert city.fallback in sent.json()[0]["service_notice"]
        shown = client.get(f"{V2}/requests/{request_id}.json").json()[0]
        assert (shown["address"], shown["lat"], shown["long"], shown["agency_responsible"]) == (
            "文庭街39号",
            None,
            None,
            city.fallback,
        )
        # Half a location is still refused: it is a client's mistake, not an address.
        assert "location required" in open311_error(
            client.post(f"{V2}/requests.json", data=city.open311(lat=23.5))
        )


def test_without_a_fallback_nothing_is_routed_arbitrarily(city: City) -> None:
    with city.client() as client:
        for body in (report(*city.outside), report(None, None, address="文庭街39号")):
            answer = client.post("/api/v1/issues", json=body)
            assert answer.status_code == 201, answer.text
            assert answer.json()["department_code"] is None  # not "the first command centre"
            assert "held unrouted" in answer.json()["routing"]
        notice = client.post(
            f"{V2}/requests.json", data=city.open311(address_string="文庭街39号")
        ).json()
        assert "held unrouted" in notice[0]["service_notice"]
    with city.client(fallback_department="NO-SUCH-DEPT") as client:
        answer = client.post("/api/v1/issues", json=report(*city.outside)).json()
        assert (
            answer["department_code"] is None
            and "'NO-SUCH-DEPT' is not a department" in answer["routing"]
        )


def test_swapped_coordinates_get_the_locate_hint(city: City) -> None:
    lon, lat = city.inside
    with city.client() as client:
        hint = client.get("/api/v1/locate", params={"lon": lat, "lat": lon}).json()["detail"]
        assert "look swapped" in hint
        ours = client.post("/api/v1/issues", json=report(lat, lon))
        assert (
            ours.status_code == 422 and hint in ours.json()["detail"]
        )  # the same words as /locate
        assert hint in open311_error(
            client.post(f"{V2}/requests.json", data=city.open311(long=lat, lat=lon))
        )
    # Swapped but in range, and outside the service area while the swap is inside it.
    with city.client(service_area="20,60,21,61") as client:
        expected = (
            "but lon=20.5, lat=60.5 falls in the service area: were longitude and latitude swapped?"
        )
        ours = client.post("/api/v1/issues", json=report(60.5, 20.5))
        assert ours.status_code == 422 and expected in ours.json()["detail"]
        assert expected in open311_error(
            client.post(f"{V2}/requests.json", data=city.open311(long=60.5, lat=20.5))
        )
        # The configured box is the area now: the demo city itself lies outside it.
        assert (
            "GRIDMAP_SERVICE_AREA"
            in client.post("/api/v1/issues", json=report(*city.inside)).json()["detail"]
        )


def test_the_area_follows_a_replaced_district_layer(city: City, tmp_path: Path) -> None:
    """The cached area is keyed on the layer's content: a --replace takes effect at once."""

    def districts(box: tuple[float, float, float, float]) -> Path:
        path = tmp_path / "districts.geojson"
        feature = {
            "type": "Feature",
            "properties": {"code": "X1", "name": "新区"},
            "geometry": shapely.geometry.mapping(shapely.box(*box)),
        }
        path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
        return path

    def load(box: tuple[float, float, float, float], replace: bool) -> None:
        options = ImportOptions(
            "districts",
            districts(box),
            FieldMap(code="code", name="name"),
            effective=dt.date(2026, 6, 1),
            replace=replace,
        )
        with session_factory(city.engine)() as session:
            import_layer(session, options)

    with city.client(fallback_department=city.fallback) as client:
        assert client.post("/api/v1/issues", json=report(*BEIJING)).status_code == 422
        load((116.3, 39.8, 116.5, 40.0), replace=False)  # a district around Beijing
        assert client.post("/api/v1/issues", json=report(*BEIJING)).status_code == 201
        assert client.post("/api/v1/issues", json=report(*city.inside)).status_code == 422
        x, y = city.inside
        load((x - 1, y - 1, x + 1, y + 1), replace=True)  # the same version, redrawn around Wuzhou
        assert client.post("/api/v1/issues", json=report(*city.inside)).status_code == 201
        assert client.post("/api/v1/issues", json=report(*BEIJING)).status_code == 422
