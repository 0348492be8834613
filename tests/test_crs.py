"""Tests for geo.crs: GCJ-02/BD-09 converters, CRS spec parsing, EPSG and geometry conversion."""

from __future__ import annotations

import csv
import itertools
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import prcoords  # test dependency (pyproject [test] extra): independent scalar implementation
import pytest
import shapely
from pyproj import Geod

from geo.crs import (
    ACCEPTED_FORMS,
    BD09,
    CGCS2000,
    CHINA_LAT_RANGE,
    CHINA_LON_RANGE,
    GCJ02,
    INVERSE_TOL_DEG,
    WGS84,
    CrsSpec,
    UnknownCRS,
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    geometry_from_wgs84,
    geometry_to_wgs84,
    parse_crs,
    to_wgs84_xy,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

# /work/main/tests/test_crs.py -> /work/shared/realdata (sibling of the repo checkout).
REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def realdata(*parts: str) -> Path:
    """Return a path under shared/realdata; skip when missing, but fail under CI=true."""
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        reason = f"real-data file {path} is missing (expected the shared/realdata checkout)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI must provide it")
        pytest.skip(reason)
    return path


GEOD = Geod(ellps="WGS84")
Converter = Callable[..., tuple[Any, Any]]


def metres(lon1: object, lat1: object, lon2: object, lat2: object) -> np.ndarray:
    """Geodesic distance in metres between two (arrays of) lon/lat points."""
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


# ---------------------------------------------------------------------------------------
# Published reference values
# ---------------------------------------------------------------------------------------

# Values printed in the coordtransform library's README (wandergis/coordTransform and its
# Python port), input (116.404, 39.915) near Tiananmen in every row. The forward formulas
# are identical to ours, so they must agree to float noise (~1e-14 deg); 1e-9 deg is 0.1 mm.
EXACT_REFERENCE = [
    # WGS84 -> GCJ-02: the canonical GCJ-02 test vector
    pytest.param(wgs84_to_gcj02, (116.41024449916938, 39.91640428150164), id="wgs84->gcj02"),
    # GCJ-02 -> BD-09: closed-form Baidu shift
    pytest.param(gcj02_to_bd09, (116.41036949371029, 39.92133699351021), id="gcj02->bd09"),
    # WGS84 -> BD-09: composition of the two forward transforms
    pytest.param(wgs84_to_bd09, (116.41662724378733, 39.922699552216216), id="wgs84->bd09"),
]


@pytest.mark.parametrize(("convert", "expected"), EXACT_REFERENCE)
def test_forward_matches_coordtransform_reference(convert: Converter, expected: tuple) -> None:
    """Forward transforms reproduce coordtransform's published outputs."""
    lon, lat = convert(116.404, 39.915)
    assert lon == pytest.approx(expected[0], abs=1e-9)
    assert lat == pytest.approx(expected[1], abs=1e-9)


# coordtransform's inverses are the one-step approximations (no iteration), so ours, being
# exact, legitimately differ from its published numbers. We assert the published value is
# within the approximation's known error of ours, and that ours is exact (forward check).
APPROXIMATE_REFERENCE = [
    # BD-09 -> GCJ-02: coordtransform's analytic inverse is ~5 cm off here (<0.25 m anywhere)
    pytest.param(
        bd09_to_gcj02, gcj02_to_bd09, (116.39762729119315, 39.90865673957631), 0.25, id="bd09"
    ),
    # GCJ-02 -> WGS84: coordtransform's one-step inverse is ~6 cm off here (<5 m anywhere)
    pytest.param(
        gcj02_to_wgs84, wgs84_to_gcj02, (116.39775550083061, 39.91359571849836), 5.0, id="gcj02"
    ),
]


@pytest.mark.parametrize(("inverse", "forward", "published", "max_m"), APPROXIMATE_REFERENCE)
def test_inverse_vs_coordtransform_approximation(
    inverse: Converter, forward: Converter, published: tuple, max_m: float
) -> None:
    """Our exact inverses sit near coordtransform's approximate ones and are truly exact."""
    lon, lat = inverse(116.404, 39.915)
    assert metres(lon, lat, *published) < max_m
    assert (lon, lat) != pytest.approx(published, abs=1e-9)  # we are not the rough version
    back = forward(lon, lat)
    assert back == pytest.approx((116.404, 39.915), abs=INVERSE_TOL_DEG)


# ---------------------------------------------------------------------------------------
# Cross-check against prcoords (independent implementation; note its (lat, lon) order)
# ---------------------------------------------------------------------------------------

CITIES = [
    # (lon, lat)  name
    pytest.param(111.3, 23.5, id="wuzhou"),  # Guangxi, our pilot area
    pytest.param(116.404, 39.915, id="beijing"),  # capital, reference point above
    pytest.param(87.617, 43.826, id="urumqi"),  # far west, x = lon-105 strongly negative
    pytest.param(126.535, 45.803, id="harbin"),  # north-east
    pytest.param(110.33, 20.03, id="haikou"),  # Hainan
    pytest.param(109.51, 18.25, id="sanya"),  # southern Hainan
    pytest.param(91.13, 29.65, id="lhasa"),  # Tibet
    pytest.param(75.99, 39.47, id="kashgar"),  # near the western edge of the box
    pytest.param(122.54, 52.97, id="mohe"),  # near the northern edge of the box
    pytest.param(121.47, 31.23, id="shanghai"),  # east coast
    pytest.param(114.30, 30.59, id="wuhan"),  # centre of the EPSG:4547 real data
    pytest.param(105.0, 35.0, id="origin"),  # x = y = 0 in the GCJ formula
]

# name: (ours, prcoords function); prcoords' "bored" functions are its iterated inverses.
PAIRS: dict[str, tuple[Converter, Callable]] = {
    "wgs84->gcj02": (wgs84_to_gcj02, prcoords.wgs_gcj),
    "gcj02->wgs84": (gcj02_to_wgs84, prcoords.gcj_wgs_bored),
    "gcj02->bd09": (gcj02_to_bd09, prcoords.gcj_bd),
    "bd09->gcj02": (bd09_to_gcj02, prcoords.bd_gcj_bored),
    "wgs84->bd09": (wgs84_to_bd09, prcoords.wgs_bd),
    "bd09->wgs84": (bd09_to_wgs84, prcoords.bd_wgs_bored),
}


def prcoords_lonlat(func: Callable, lon: float, lat: float) -> tuple[float, float]:
    """Call a prcoords function with our (lon, lat) order."""
    out = func(prcoords.Coords(lat=lat, lon=lon))
    return out.lon, out.lat


@pytest.fixture
def precise_prcoords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make prcoords' iterated inverses converge fully before comparing with ours."""
    # prcoords stops iterating once the last correction is below PRC_EPS = 1e-5 degrees,
    # which leaves up to ~1e-7 deg (~1.3 cm) of forward error in bd_wgs_bored; ours stops at
    # 1e-9 deg. We compare the mathematics, not the stopping rules, so tighten its epsilon
    # (a module global read on every call; its loop is still capped at 10 steps).
    monkeypatch.setattr(prcoords, "PRC_EPS", 1e-12)


uses_precise_prcoords = pytest.mark.usefixtures("precise_prcoords")


@uses_precise_prcoords
@pytest.mark.parametrize("direction", list(PAIRS))
@pytest.mark.parametrize(("lon", "lat"), CITIES)
def test_agrees_with_prcoords_at_cities(direction: str, lon: float, lat: float) -> None:
    """Every direction agrees with prcoords within 1 cm at named places across China."""
    ours, theirs = PAIRS[direction]
    assert metres(*ours(lon, lat), *prcoords_lonlat(theirs, lon, lat)) < 0.01


@uses_precise_prcoords
@pytest.mark.parametrize("direction", list(PAIRS))
def test_agrees_with_prcoords_on_grid(direction: str) -> None:
    """One vectorised call over a 1-degree lattice over China matches prcoords per point."""
    lon, lat = np.meshgrid(np.arange(73.5, 135.0, 1.0), np.arange(18.5, 53.0, 1.0))
    ours, theirs = PAIRS[direction]
    got_lon, got_lat = ours(lon, lat)  # 2-D in, 2-D out
    assert got_lon.shape == lon.shape
    ref = np.array(
        [prcoords_lonlat(theirs, x, y) for x, y in zip(lon.ravel(), lat.ravel(), strict=True)]
    )
    dist = metres(got_lon.ravel(), got_lat.ravel(), ref[:, 0], ref[:, 1])
    assert dist.max() < 0.01


# ---------------------------------------------------------------------------------------
# Exactness and round trips
# ---------------------------------------------------------------------------------------

ROUND_TRIPS = [
    # (forward, inverse)
    pytest.param(wgs84_to_gcj02, gcj02_to_wgs84, id="wgs84-gcj02"),
    pytest.param(gcj02_to_bd09, bd09_to_gcj02, id="gcj02-bd09"),
    pytest.param(wgs84_to_bd09, bd09_to_wgs84, id="wgs84-bd09"),
]


def random_china_points(seed: int, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random points well inside the China box (fixed seed)."""
    rng = np.random.default_rng(seed)
    # Keep 1 degree off the box edges, where the shift switches on/off discontinuously.
    lon = rng.uniform(CHINA_LON_RANGE[0] + 1, CHINA_LON_RANGE[1] - 1, n)
    lat = rng.uniform(CHINA_LAT_RANGE[0] + 1, CHINA_LAT_RANGE[1] - 1, n)
    return lon, lat


@pytest.mark.parametrize("seed", [0, 20240601])
@pytest.mark.parametrize(("forward", "inverse"), ROUND_TRIPS)
def test_round_trip_within_half_metre(forward: Converter, inverse: Converter, seed: int) -> None:
    """forward then inverse returns to the start (<0.5 m required; really ~0.1 mm)."""
    lon, lat = random_china_points(seed)
    back_lon, back_lat = inverse(*forward(lon, lat))
    dist = metres(lon, lat, back_lon, back_lat)
    assert dist.max() < 0.5
    assert dist.max() < 0.001  # what the 1e-9 degree stopping rule actually gives


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize(("forward", "inverse"), ROUND_TRIPS)
def test_inverse_is_exact(forward: Converter, inverse: Converter, seed: int) -> None:
    """forward(inverse(p)) reproduces p within INVERSE_TOL_DEG for every point."""
    lon, lat = random_china_points(seed)
    again_lon, again_lat = forward(*inverse(lon, lat))
    assert np.abs(again_lon - lon).max() <= INVERSE_TOL_DEG
    assert np.abs(again_lat - lat).max() <= INVERSE_TOL_DEG


def test_shift_is_a_few_hundred_metres() -> None:
    """Sanity: the GCJ-02 and BD-09 shifts have the documented magnitude across China."""
    lon, lat = random_china_points(3, 2_000)
    gcj = metres(lon, lat, *wgs84_to_gcj02(lon, lat))
    bd = metres(lon, lat, *wgs84_to_bd09(lon, lat))
    assert gcj.min() > 10 and gcj.max() < 1_500
    assert bd.min() > 200 and bd.max() < 2_500


ALL_CONVERTERS = [
    wgs84_to_gcj02,
    gcj02_to_wgs84,
    gcj02_to_bd09,
    bd09_to_gcj02,
    wgs84_to_bd09,
    bd09_to_wgs84,
]

OUTSIDE_CHINA = [
    # (lon, lat)  why
    pytest.param(-0.1276, 51.5072, id="london"),
    pytest.param(139.6917, 35.6895, id="tokyo"),  # east of the box
    pytest.param(151.2093, -33.8688, id="sydney"),  # southern hemisphere
    pytest.param(103.8198, 0.5, id="south-of-box"),  # lat below 0.8293 (near Singapore)
    pytest.param(71.9, 39.0, id="west-of-box"),  # just west of lon 72.004
    pytest.param(100.0, 56.0, id="north-of-box"),  # just north of lat 55.8271
]


@pytest.mark.parametrize("convert", ALL_CONVERTERS)
@pytest.mark.parametrize(("lon", "lat"), OUTSIDE_CHINA)
def test_outside_china_unchanged(convert: Converter, lon: float, lat: float) -> None:
    """Points outside the China box come back bit-for-bit unchanged."""
    assert convert(lon, lat) == (lon, lat)


@pytest.mark.parametrize("convert", ALL_CONVERTERS)
def test_scalars_arrays_and_missing_values(convert: Converter) -> None:
    """Scalars give scalars, arrays keep their shape, NaN passes through without warnings."""
    x, y = convert(114.3, 30.6)
    assert isinstance(x, float) and isinstance(y, float)
    lon = np.array([[114.3, np.nan], [114.4, 114.5]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got_lon, got_lat = convert(lon, 30.6)  # scalar lat broadcasts
    assert got_lon.shape == got_lat.shape == (2, 2)
    # A NaN coordinate is "not in China": the point passes through, its lat untouched.
    assert np.isnan(got_lon[0, 1]) and got_lat[0, 1] == 30.6
    assert (got_lon[1, 0], got_lat[1, 0]) == convert(114.4, 30.6)


def test_inverse_terminates_at_box_edge() -> None:
    """Near the box edge (no exact pre-image exists) the bounded iteration still returns."""
    lon, lat = gcj02_to_wgs84([72.0045, 137.834], [40.0, 40.0])
    assert np.all(np.isfinite(lon)) and np.all(np.isfinite(lat))


# ---------------------------------------------------------------------------------------
# parse_crs
# ---------------------------------------------------------------------------------------

ACCEPTED = [
    # (spec, expected)
    ("wgs84", WGS84),  # alias
    ("WGS84", WGS84),  # case-insensitive
    ("EPSG:4326", WGS84),  # EPSG form of an alias gives the same spec
    ("4326", WGS84),  # bare code
    ("cgcs2000", CGCS2000),  # China's official datum
    ("epsg:4490", CGCS2000),  # lower-case EPSG prefix
    ("gcj02", GCJ02),  # AMap / Tencent
    ("GCJ02", GCJ02),  # case-insensitive
    ("bd09", BD09),  # Baidu
    (" Bd09 ", BD09),  # surrounding whitespace ignored
    ("EPSG:4547", CrsSpec("EPSG:4547", epsg=4547)),  # CGCS2000 / 3-degree GK CM 114E
    ("epsg:4547", CrsSpec("EPSG:4547", epsg=4547)),  # lower case
    ("4547", CrsSpec("EPSG:4547", epsg=4547)),  # bare code
    ("EPSG:3857", CrsSpec("EPSG:3857", epsg=3857)),  # web mercator
]


@pytest.mark.parametrize(("spec", "expected"), ACCEPTED)
def test_parse_crs_accepts(spec: str, expected: CrsSpec) -> None:
    """Every documented form parses to the right spec."""
    assert parse_crs(spec) == expected


REJECTED = [
    # (spec, why)
    pytest.param("foo", id="not-a-crs"),
    pytest.param("EPSG:999999", id="unknown-epsg-code"),
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("EPSG:", id="prefix-without-code"),
    pytest.param("gcj-02", id="unsupported-spelling"),
    pytest.param("EPSG:5773", id="vertical-crs"),  # EGM96 height: not a 2-D position
    pytest.param("4326.0", id="non-integer-code"),
]


@pytest.mark.parametrize("spec", REJECTED)
def test_parse_crs_rejects_with_helpful_message(spec: str) -> None:
    """Bad specs raise UnknownCRS naming the value and listing the accepted forms."""
    with pytest.raises(UnknownCRS) as info:
        parse_crs(spec)
    message = str(info.value)
    assert repr(spec) in message
    assert ACCEPTED_FORMS in message
    for form in ("'wgs84'", "'cgcs2000'", "'gcj02'", "'bd09'", "EPSG:<code>"):
        assert form in message
    assert isinstance(info.value, ValueError)  # API layers can treat it as bad input


def test_crsspec_needs_exactly_one_kind() -> None:
    """A CrsSpec is either EPSG or Chinese, never both or neither."""
    with pytest.raises(ValueError):
        CrsSpec("x")
    with pytest.raises(ValueError):
        CrsSpec("x", epsg=4326, chinese="gcj02")


# ---------------------------------------------------------------------------------------
# to_wgs84_xy
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["wgs84", "cgcs2000", "EPSG:4326", "4490"])
def test_wgs84_equivalents_pass_through(spec: str) -> None:
    """WGS84 and CGCS2000 lon/lat are returned unchanged."""
    lon, lat = np.array([114.3, 111.3]), np.array([30.6, 23.5])
    got = to_wgs84_xy(lon, lat, parse_crs(spec))
    np.testing.assert_array_equal(got[0], lon)
    np.testing.assert_array_equal(got[1], lat)


@pytest.mark.parametrize(
    ("spec", "inverse"), [(GCJ02, gcj02_to_wgs84), (BD09, bd09_to_wgs84), ("gcj02", gcj02_to_wgs84)]
)
def test_to_wgs84_xy_chinese(spec: CrsSpec | str, inverse: Converter) -> None:
    """GCJ-02/BD-09 specs use the exact inverses (string specs are parsed)."""
    assert to_wgs84_xy(111.3, 23.5, spec) == inverse(111.3, 23.5)


@pytest.mark.realdata
def test_to_wgs84_xy_epsg4547_matches_wuhan_data() -> None:
    """EPSG:4547 (CGCS2000 GK CM 114E) x/y from the Wuhan data land within 1 m of its lon/lat."""
    path = realdata("wuhan_residential_hgwrr", "wuhan_hp_19599_properties.csv")
    with path.open(newline="") as fh:
        rows = list(itertools.islice(csv.DictReader(fh), 50))
    assert len(rows) == 50
    col = {
        k: np.array([float(r[k]) for r in rows]) for k in ("x_epsg4547", "y_epsg4547", "lon", "lat")
    }
    lon, lat = to_wgs84_xy(col["x_epsg4547"], col["y_epsg4547"], parse_crs("EPSG:4547"))
    assert metres(lon, lat, col["lon"], col["lat"]).max() < 1.0


def test_to_wgs84_xy_epsg_scalar_and_projected_known_point() -> None:
    """A projected EPSG code works for scalars: the CM-114E false origin maps to lon 114."""
    lon, lat = to_wgs84_xy(500_000.0, 0.0, "EPSG:4547")
    assert isinstance(lon, float)
    assert (lon, lat) == pytest.approx((114.0, 0.0), abs=1e-9)


# ---------------------------------------------------------------------------------------
# Geometries
# ---------------------------------------------------------------------------------------


def wuhan_polygons() -> np.ndarray:
    """A small array of polygons (one with a hole), a line and a point around Wuhan."""
    square = shapely.box(114.25, 30.55, 114.35, 30.65)
    with_hole = shapely.Polygon(
        [(114.0, 30.0), (114.6, 30.0), (114.6, 30.9), (114.0, 30.9)],
        holes=[[(114.2, 30.2), (114.4, 30.2), (114.4, 30.4), (114.2, 30.4)]],
    )
    line = shapely.LineString([(114.1, 30.5), (114.2, 30.6), (114.3, 30.55)])
    return np.array([square, with_hole, line, shapely.Point(114.3, 30.59)], dtype=object)


@pytest.mark.parametrize(
    ("spec", "point_convert"),
    [
        # (source CRS of the geometries, point converter they must agree with)
        (GCJ02, gcj02_to_wgs84),
        (BD09, bd09_to_wgs84),
        ("gcj02", gcj02_to_wgs84),
    ],
)
def test_geometry_to_wgs84_converts_every_vertex(
    spec: CrsSpec | str, point_convert: Converter
) -> None:
    """Each vertex of each geometry equals the point conversion of that vertex."""
    geoms = wuhan_polygons()
    out = geometry_to_wgs84(geoms, spec)
    assert isinstance(out, np.ndarray) and out.shape == geoms.shape
    assert list(shapely.get_type_id(out)) == list(shapely.get_type_id(geoms))
    assert list(shapely.get_num_coordinates(out)) == list(shapely.get_num_coordinates(geoms))
    before = shapely.get_coordinates(geoms)
    expected = np.column_stack(point_convert(before[:, 0], before[:, 1]))
    np.testing.assert_allclose(shapely.get_coordinates(out), expected, rtol=0, atol=1e-12)
    assert np.all(np.abs(shapely.get_coordinates(out) - before) > 1e-4)  # really moved


def test_geometry_to_wgs84_epsg_and_single_geometry() -> None:
    """A single projected geometry converts through pyproj."""
    poly = shapely.box(500_000, 3_380_000, 512_000, 3_390_000)
    out = geometry_to_wgs84(poly, "EPSG:4547")
    assert isinstance(out, shapely.Polygon)
    xy = shapely.get_coordinates(poly)
    expected = np.column_stack(to_wgs84_xy(xy[:, 0], xy[:, 1], "EPSG:4547"))
    np.testing.assert_allclose(shapely.get_coordinates(out), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("target", ["gcj02", "bd09", GCJ02])
def test_geometry_from_wgs84_round_trip(target: str | CrsSpec) -> None:
    """Shifting overlays to GCJ-02/BD-09 and back returns the original vertices."""
    geoms = wuhan_polygons()
    shifted = geometry_from_wgs84(geoms, target)
    back = geometry_to_wgs84(shifted, target)
    moved = metres(*shapely.get_coordinates(geoms).T, *shapely.get_coordinates(shifted).T)
    assert moved.min() > 100  # shifted by hundreds of metres
    err = metres(*shapely.get_coordinates(geoms).T, *shapely.get_coordinates(back).T)
    assert err.max() < 0.001


def test_geometry_from_wgs84_rejects_epsg_target() -> None:
    """Only the Chinese systems are valid overlay targets."""
    with pytest.raises(UnknownCRS, match="gcj02"):
        geometry_from_wgs84(wuhan_polygons(), "EPSG:4547")


def test_geometry_keeps_z_and_missing() -> None:
    """Z values survive and None entries stay None."""
    poly_z = shapely.Polygon([(114.3, 30.5, 5.0), (114.4, 30.5, 6.0), (114.4, 30.6, 7.0)])
    out = geometry_to_wgs84(np.array([poly_z, None], dtype=object), "gcj02")
    assert out[1] is None
    if tuple(int(p) for p in shapely.__version__.split(".")[:2]) >= (2, 1):
        z = shapely.get_coordinates(out[0], include_z=True)[:, 2]
        np.testing.assert_array_equal(z, [5.0, 6.0, 7.0, 5.0])


def test_geoseries_in_geoseries_out() -> None:
    """A GeoSeries comes back as a GeoSeries with index/name kept and an honest CRS."""
    gpd = pytest.importorskip("geopandas")
    series = gpd.GeoSeries(list(wuhan_polygons()), index=[10, 11, 12, 13], crs=4326, name="g")
    shifted = geometry_from_wgs84(series, "gcj02")
    assert isinstance(shifted, gpd.GeoSeries)
    assert list(shifted.index) == [10, 11, 12, 13] and shifted.name == "g"
    assert shifted.crs is None  # GCJ-02 has no EPSG code; must not claim EPSG:4326
    back = geometry_to_wgs84(shifted, "gcj02")
    assert back.crs == "EPSG:4326"
    assert back.geom_equals_exact(series, tolerance=1e-8).all()
