"""Import: every bad-input case is refused with a clear report and changes nothing."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import Polygon, box, mapping
from sqlalchemy import Engine

from data.db import session_factory
from data.importer import FieldMap, ImportOptions, ImportRejected, import_layer
from data.models import Area, Facility, LayerVersion
from data.repository import area_geoms, count_rows, latest_version
from geo.crs import wgs84_to_gcj02

DAY = dt.date(2026, 1, 1)
# Two unit-ish squares side by side near Wuzhou (lon, lat).
WEST = box(111.30, 23.50, 111.31, 23.51)
EAST = box(111.31, 23.50, 111.32, 23.51)
BOWTIE = Polygon([(111.30, 23.50), (111.31, 23.51), (111.31, 23.50), (111.30, 23.51)])


def geojson(path: Path, features: list[tuple[dict, object]]) -> Path:
    """Write a FeatureCollection of (properties, shapely geometry or raw geometry dict)."""
    body = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": props,
             "geometry": geom if isinstance(geom, dict) or geom is None else mapping(geom)}
            for props, geom in features
        ],
    }
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


def run(engine: Engine, layer: str, path: Path, **options: object):
    options.setdefault("effective", DAY)
    with session_factory(engine)() as session:
        return import_layer(session, ImportOptions(layer=layer, path=path, **options))  # type: ignore[arg-type]


def rejected(engine: Engine, layer: str, path: Path, **options: object) -> ImportRejected:
    with pytest.raises(ImportRejected) as caught:
        run(engine, layer, path, **options)
    return caught.value


def counts(engine: Engine) -> tuple[int, int, int]:
    with session_factory(engine)() as session:
        return count_rows(session, Area), count_rows(session, LayerVersion), count_rows(session, Facility)


@pytest.fixture
def districts(engine: Engine, tmp_path: Path) -> Engine:
    """A district layer to hang sub-districts from."""
    run(engine, "districts", geojson(tmp_path / "d.geojson", [({"code": "450403", "name": "万秀区"}, WEST.union(EAST))]))
    return engine


def messages(error: ImportRejected) -> list[str]:
    return [p.describe() for p in error.report.problems]


# --- good input -------------------------------------------------------------------------


def test_imports_geojson_with_parents_and_versions(districts: Engine, tmp_path: Path) -> None:
    path = geojson(tmp_path / "s.geojson", [
        ({"code": "450403001", "name": "城东街道", "parent_code": "450403"}, WEST),
        ({"code": "450403002", "name": "城西街道", "parent_code": "450403"}, EAST),
    ])
    report = run(districts, "subdistricts", path, code_scheme="cn15")
    assert (report.imported, report.problems) == (2, [])
    with session_factory(districts)() as session:
        version = latest_version(session, "subdistrict")
        assert version is not None and version.effective_from == DAY
        geoms = area_geoms(session, version.id)
    assert geoms["450403001"].geom_type == "MultiPolygon"  # polygons stored as MultiPolygon
    assert geoms["450403001"].equals(shapely.MultiPolygon([WEST]))


def test_redrawn_layer_loads_beside_the_old_one(districts: Engine, tmp_path: Path) -> None:
    path = geojson(tmp_path / "d2.geojson", [({"code": "450403", "name": "万秀区"}, WEST)])
    run(districts, "districts", path, effective=dt.date(2027, 1, 1))
    assert counts(districts)[:2] == (2, 2)


def test_same_effective_date_needs_replace(districts: Engine, tmp_path: Path) -> None:
    path = geojson(tmp_path / "d2.geojson", [({"code": "450405", "name": "长洲区"}, WEST)])
    error = rejected(districts, "districts", path)
    assert "already exists" in messages(error)[0] and "--replace" in messages(error)[0]
    run(districts, "districts", path, replace=True)
    with session_factory(districts)() as session:
        assert set(area_geoms(session, latest_version(session, "district").id)) == {"450405"}


def test_csv_points_with_named_columns(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "parks.csv"
    path.write_text("编号,名称,经,纬,kind\nP1,停车场一,111.3,23.5,car_park\nP2,停车场二,111.4,23.6,car_park\n", encoding="utf-8")
    fields = FieldMap(code="编号", name="名称")
    # A CSV does not say its coordinate system: it is never assumed to be WGS84.
    refused = rejected(engine, "facilities", path, fields=fields, lon_field="经", lat_field="纬")
    assert "does not say which coordinate system" in str(refused)
    assert counts(engine) == (0, 0, 0)
    report = run(engine, "facilities", path, fields=fields, lon_field="经", lat_field="纬", crs="wgs84")
    assert report.imported == 2


def test_geopackage_and_zipped_shapefile_in_projected_crs(engine: Engine, tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"code": ["A"], "name": ["a"]}, geometry=[WEST], crs=4326).to_crs(4547)
    frame.to_file(tmp_path / "a.gpkg", driver="GPKG")
    shp = tmp_path / "shp"
    shp.mkdir()
    frame.to_file(shp / "a.shp")
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as archive:
        for part in shp.iterdir():
            archive.write(part, part.name)
    run(engine, "districts", tmp_path / "a.gpkg")
    run(engine, "districts", tmp_path / "a.zip", effective=dt.date(2026, 2, 1))
    with session_factory(engine)() as session:
        for version in (1, 2):
            geom = area_geoms(session, version)["A"]
            # Gauss-Kruger zone 38 (EPSG:4547) back to lon/lat within a millimetre or so.
            assert shapely.hausdorff_distance(geom, WEST) < 1e-7


def test_gcj02_boundaries_are_converted(engine: Engine, tmp_path: Path) -> None:
    xs, ys = shapely.get_coordinates(WEST).T
    gx, gy = wgs84_to_gcj02(xs, ys)
    shifted = Polygon(list(zip(gx, gy, strict=True)))
    run(engine, "districts", geojson(tmp_path / "g.geojson", [({"code": "A", "name": "a"}, shifted)]), crs="gcj02")
    with session_factory(engine)() as session:
        geom = area_geoms(session, 1)["A"]
    assert shapely.hausdorff_distance(geom, WEST) < 1e-8  # about a millimetre


# --- bad input: refused, with every feature named, and nothing written ---------------------


def test_invalid_polygon_is_refused_then_repaired(engine: Engine, tmp_path: Path) -> None:
    path = geojson(tmp_path / "bad.geojson", [({"code": "A", "name": "a"}, WEST), ({"code": "B", "name": "b"}, BOWTIE)])
    error = rejected(engine, "districts", path)
    assert messages(error) == [
        "feature #2 (B): invalid polygon: Self-intersection[111.305 23.505] (use --repair to fix it with make_valid)"
    ]
    assert counts(engine) == (0, 0, 0)
    report = run(engine, "districts", path, repair=True)
    assert [r.describe() for r in report.repairs] == [
        "feature #2 (B): repaired Self-intersection[111.305 23.505] -> valid MultiPolygon of 2 part(s)"
    ]
    assert counts(engine)[0] == 2


def test_duplicate_and_malformed_codes(districts: Engine, tmp_path: Path) -> None:
    path = geojson(tmp_path / "s.geojson", [
        ({"code": "450403001", "name": "a", "parent_code": "450403"}, WEST),
        ({"code": "450403001", "name": "b", "parent_code": "450403"}, EAST),
        ({"code": "45040300X", "name": "c", "parent_code": "450403"}, EAST),
        ({"code": "450405001", "name": "d", "parent_code": "450403"}, EAST),
        ({"code": "", "name": "e", "parent_code": "450403"}, EAST),
    ])
    before = counts(districts)
    error = rejected(districts, "subdistricts", path, code_scheme="cn15")
    assert messages(error) == [
        "feature #2 (450403001): duplicate code '450403001', also used by feature #1",
        "feature #3 (45040300X): malformed subdistrict code '45040300X': expected 9 digits",
        "feature #4 (450405001): subdistrict code '450405001' does not start with its parent code '450403'",
        "feature #5: has no code",
    ]
    assert counts(districts) == before


def test_parent_that_does_not_exist(districts: Engine, tmp_path: Path) -> None:
    path = geojson(tmp_path / "s.geojson", [
        ({"code": "S1", "name": "a", "parent_code": "450403"}, WEST),
        ({"code": "S2", "name": "b", "parent_code": "999999"}, EAST),
    ])
    error = rejected(districts, "subdistricts", path)
    assert messages(error) == [
        "feature #2 (S2): parent district '999999' does not exist in the district layer in force on 2026-01-01"
    ]
    assert counts(districts)[0] == 1


def test_out_of_range_and_swapped_coordinates(engine: Engine, tmp_path: Path) -> None:
    swapped = shapely.transform(WEST, lambda xy: xy[:, ::-1])  # (lat, lon)
    far = shapely.affinity.translate(WEST, xoff=100)  # longitude 211
    path = geojson(tmp_path / "c.geojson", [
        ({"code": "A", "name": "a"}, WEST), ({"code": "B", "name": "b"}, swapped), ({"code": "C", "name": "c"}, far),
    ])
    error = rejected(engine, "districts", path)
    lines = messages(error)
    assert len(lines) == 2
    assert lines[0].startswith("feature #2 (B): latitude 111.31 is out of range") and "swapped" in lines[0]
    assert lines[1].startswith("feature #3 (C): longitude 211.3") and "out of range" in lines[1]
    assert counts(engine) == (0, 0, 0)


def test_swapped_csv_columns(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("code,name,lon,lat,kind\nP1,a,23.5,111.3,toilet\nP2,b,abc,23.5,toilet\n", encoding="utf-8")
    error = rejected(engine, "facilities", path, crs="wgs84")
    assert messages(error) == [
        "feature #1 (P1): latitude 111.3 is out of range; longitude and latitude appear to be swapped (x must be longitude, y latitude)",
        "feature #2: lon/lat 'abc', '23.5' are not numbers",
    ]
    assert counts(engine) == (0, 0, 0)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.geojson", '{"type": "FeatureCollection", "features": []}', "the file contains no features"),
        ("blank.geojson", "", "the file is empty"),
        ("text.gpkg", "code,name\n1,a\n", "the content is not GeoPackage although the extension says so"),
        ("csv.geojson", "code,name\n1,a\n", "the content is not GeoJSON although the extension says so"),
        ("notzip.zip", "hello", "the content is not zipped Shapefile although the extension says so"),
        ("broken.geojson", '{"type": "FeatureCollection", "features": [', "cannot read it as GeoJSON"),
        ("layer.kml", "<kml/>", "unsupported file type '.kml'"),
    ],
)
def test_file_level_problems(engine: Engine, tmp_path: Path, name: str, content: str, expected: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    error = rejected(engine, "districts", path)
    assert expected in str(error)
    assert counts(engine) == (0, 0, 0)


def test_unknown_crs_option_and_missing_crs(engine: Engine, tmp_path: Path) -> None:
    path = geojson(tmp_path / "a.geojson", [({"code": "A", "name": "a"}, WEST)])
    error = rejected(engine, "districts", path, crs="mars")
    assert "'mars'" in str(error) and "gcj02" in str(error)
    shp = tmp_path / "noprj"
    shp.mkdir()
    gpd.GeoDataFrame({"code": ["A"], "name": ["a"]}, geometry=[WEST]).to_file(shp / "a.shp")
    assert not (shp / "a.prj").exists()
    error = rejected(engine, "districts", shp / "a.shp")
    assert "unknown CRS" in str(error) and "--crs" in str(error)
    assert counts(engine) == (0, 0, 0)


def test_one_bad_feature_among_many_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    good = [({"code": f"G{i}", "name": f"g{i}"}, shapely.affinity.translate(WEST, 0.01 * i)) for i in range(50)]
    path = geojson(tmp_path / "m.geojson", [*good, ({"code": "BAD", "name": "bad"}, BOWTIE)])
    rejected(engine, "districts", path)
    assert counts(engine) == (0, 0, 0)


def test_database_error_mid_write_rolls_back(engine: Engine, tmp_path: Path) -> None:
    """A constraint the database enforces (shared spaces above capacity) undoes the whole import."""
    path = geojson(tmp_path / "f.geojson", [
        ({"code": "F1", "name": "a", "kind": "car_park"}, shapely.Point(111.3, 23.5)),
        ({"code": "F2", "name": "b", "kind": "car_park", "capacity": "5", "shared_spaces": "9"}, shapely.Point(111.3, 23.5)),
    ])
    error = rejected(engine, "facilities", path)
    assert messages(error) == ["feature #2 (F2): shared_spaces 9 exceeds capacity 5"]
    assert counts(engine) == (0, 0, 0)


def test_malformed_codes_outside_the_hierarchy(engine: Engine, tmp_path: Path) -> None:
    path = geojson(tmp_path / "f.geojson", [
        ({"code": "P 1", "name": "a", "kind": "toilet"}, shapely.Point(111.3, 23.5)),
        ({"code": "P2", "name": "b", "kind": "toilet"}, shapely.Point(111.3, 23.5)),
    ])
    error = rejected(engine, "facilities", path)
    assert [p.message.split(":")[0] for p in error.report.problems] == ["malformed facilities code 'P 1'"]
    assert counts(engine) == (0, 0, 0)
