"""Tests for the demo city generator (data/demo_city.py).

The demo city is generated once per module (plus once more for the determinism check),
in a few seconds. The city scale (10,000 grids, 100,000 issues) is generated once too,
which takes most of this file's time (about 40 s).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from data.cases import Clock
from data.demo_city import (
    CATEGORIES,
    REFERENCE_TIME,
    SCALES,
    STATUSES,
    DemoCity,
    UnknownScale,
    generate_city,
)
from data.models import Category
from data.settings import Settings
from geo.areas import LEVELS, code_scheme
from geo.coverage import Cell, check_coverage
from geo.issues import OPEN_STATUSES
from geo.worktime import WorkCalendar, parse_working_day

AREA_LEVELS = ("districts", "subdistricts", "communities", "grids")
GEO_LAYERS = (*AREA_LEVELS, "compounds", "departments", "facilities", "issues")
CODE_LENGTH = {"districts": 6, "subdistricts": 9, "communities": 12, "grids": 15}
NAME_SUFFIX = {"districts": "区", "subdistricts": "街道", "communities": "社区"}
# Relative tolerance for area comparisons: floating-point noise only. Areas are compared
# in square degrees on purpose: the generator maps metres to degrees affinely, so ratios
# of areas are the same in both, and a reprojection would only add noise.
AREA_TOLERANCE = 1e-6
# About 1 mm in degrees: "inside the parent" up to floating-point noise.
EDGE_TOLERANCE_DEG = 1e-8

# Legal status changes of the issue loop: (from, to) -> allowed actions.
TRANSITIONS: dict[tuple[str | None, str], set[str]] = {
    (None, "reported"): {"report"},
    ("reported", "accepted"): {"accept"},
    ("reported", "rejected"): {"reject"},
    ("accepted", "dispatched"): {"dispatch"},
    ("dispatched", "in_progress"): {"start"},
    ("in_progress", "responded"): {"respond"},
    ("responded", "in_progress"): {"verification_failed"},
    ("responded", "verified"): {"verify"},
    ("verified", "closed"): {"close"},
}


@pytest.fixture(scope="module")
def timed_city() -> tuple[DemoCity, float]:
    start = time.perf_counter()
    city = generate_city()
    return city, time.perf_counter() - start


@pytest.fixture(scope="module")
def city(timed_city: tuple[DemoCity, float]) -> DemoCity:
    return timed_city[0]


def _children_by_parent(
    children: gpd.GeoDataFrame, parents: gpd.GeoDataFrame, key: str = "parent_code"
) -> Iterator[tuple[pd.Series, gpd.GeoDataFrame]]:
    for _, parent in parents.iterrows():
        yield parent, children[children[key] == parent["code"]]


# --------------------------------------------------------------------------------------
# Determinism, speed, counts
# --------------------------------------------------------------------------------------


def test_generation_is_fast(timed_city: tuple[DemoCity, float]) -> None:
    assert timed_city[1] < 10.0


def test_same_seed_gives_same_city(city: DemoCity) -> None:
    again = generate_city()
    for layer in GEO_LAYERS:
        assert_geodataframe_equal(getattr(city, layer), getattr(again, layer))
    pd.testing.assert_frame_equal(city.issue_events, again.issue_events)
    pd.testing.assert_frame_equal(city.categories, again.categories)


def test_other_seed_gives_other_city(city: DemoCity) -> None:
    other = generate_city(seed=7)
    assert not city.grids.geometry.geom_equals(other.grids.geometry).all()


def test_counts(city: DemoCity) -> None:
    assert len(city.districts) == 3
    assert len(city.subdistricts) == 8
    assert len(city.communities) == 57
    assert 590 <= len(city.grids) <= 620
    assert 420 <= len(city.compounds) <= 480
    assert 1_900 <= len(city.issues) <= 2_100
    assert 18 <= len(city.categories) <= 25
    kinds = city.facilities["kind"].value_counts()
    assert 280 <= kinds["car_park"] <= 320
    assert 50 <= kinds["sports_ground"] <= 70
    assert 60 <= kinds["toilet"] <= 80
    assert set(kinds.index) == {"car_park", "sports_ground", "toilet"}


def test_layers_are_wgs84_around_wuzhou(city: DemoCity) -> None:
    for layer in GEO_LAYERS:
        frame = getattr(city, layer)
        assert frame.crs is not None and frame.crs.to_epsg() == 4326, layer
    minx, miny, maxx, maxy = city.districts.total_bounds
    assert 111.1 < minx < maxx < 111.5
    assert 23.3 < miny < maxy < 23.7
    # Roughly 20 km x 15 km.
    width_km = (maxx - minx) * 111.32 * np.cos(np.radians(23.5))
    height_km = (maxy - miny) * 110.75
    assert 17 < width_km < 23
    assert 12 < height_km < 18


# --------------------------------------------------------------------------------------
# Codes and names
# --------------------------------------------------------------------------------------


def test_district_codes_are_wuzhou_gb2260(city: DemoCity) -> None:
    assert dict(zip(city.districts["code"], city.districts["name"], strict=True)) == {
        "450403": "万秀区",
        "450405": "长洲区",
        "450406": "龙圩区",
    }
    assert city.districts["parent_code"].isna().all()


@pytest.mark.parametrize("level", AREA_LEVELS)
def test_area_codes_are_digits_of_the_right_length(city: DemoCity, level: str) -> None:
    frame = getattr(city, level)
    width = CODE_LENGTH[level]
    assert frame["code"].str.fullmatch(rf"\d{{{width}}}").all()
    assert frame["code"].is_unique
    assert frame["name"].is_unique


@pytest.mark.parametrize(
    ("child", "parent"),
    [("subdistricts", "districts"), ("communities", "subdistricts"), ("grids", "communities")],
)
def test_child_codes_extend_parent_codes_in_sequence(
    city: DemoCity, child: str, parent: str
) -> None:
    children = getattr(city, child)
    parents = getattr(city, parent)
    assert set(children["parent_code"]) == set(parents["code"])
    for parent_row, kids in _children_by_parent(children, parents):
        assert kids["code"].str.startswith(parent_row["code"]).all()
        sequence = sorted(int(code[-3:]) for code in kids["code"])
        assert sequence == list(range(1, len(kids) + 1))


def test_names_read_like_place_names(city: DemoCity) -> None:
    for level, suffix in NAME_SUFFIX.items():
        assert getattr(city, level)["name"].str.endswith(suffix).all(), level
    communities = city.communities.set_index("code")["name"]
    for _, grid in city.grids.iterrows():
        seq = int(grid["code"][-3:])
        assert grid["name"] == f"{communities[grid['parent_code']]}第{seq}网格"
    assert city.compounds["name"].str.contains(r"(?:小区|花园|苑|新村)$").all()
    assert city.compounds["name"].is_unique


def test_grids_are_numbered_north_to_south(city: DemoCity) -> None:
    """Rows run north to south: sequence falls as latitude rises, in every community."""
    centroids = shapely.centroid(city.grids.geometry.values)
    grids = pd.DataFrame(
        {
            "parent_code": city.grids["parent_code"],
            "seq": city.grids["code"].str[-3:].astype(int),
            "lat": shapely.get_y(centroids),
        }
    )
    correlations = []
    for _, kids in grids.groupby("parent_code"):
        # Spearman's rank correlation, without needing scipy.
        correlations.append(kids["seq"].rank().corr(kids["lat"].rank()))
        northern_half = kids["lat"] >= kids["lat"].median()
        assert northern_half[kids["seq"] == 1].all(), "grid 001 lies in the north"
    assert np.mean(correlations) < -0.7


# --------------------------------------------------------------------------------------
# Geometry: validity and tiling
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", GEO_LAYERS)
def test_geometries_are_valid(city: DemoCity, layer: str) -> None:
    frame = getattr(city, layer)
    geometries = frame.geometry.dropna()
    assert shapely.is_valid(geometries.values).all()
    assert not geometries.is_empty.any()


@pytest.mark.parametrize("layer", (*AREA_LEVELS, "compounds", "departments"))
def test_areas_are_multipolygons(city: DemoCity, layer: str) -> None:
    frame = getattr(city, layer)
    assert (frame.geometry.dropna().geom_type == "MultiPolygon").all()


def _assert_tiles(parent: shapely.Geometry, children: gpd.GeoSeries, label: str) -> None:
    union = shapely.union_all(children.values)
    total = float(shapely.area(children.values).sum())
    assert abs(union.area - parent.area) <= AREA_TOLERANCE * parent.area, f"{label}: gap"
    assert shapely.difference(parent, union).area <= AREA_TOLERANCE * parent.area, label
    assert total - union.area <= AREA_TOLERANCE * parent.area, f"{label}: overlap"
    halo = parent.buffer(EDGE_TOLERANCE_DEG)
    assert children.within(halo).all(), f"{label}: child outside parent"


@pytest.mark.parametrize(
    ("child", "parent"),
    [("subdistricts", "districts"), ("communities", "subdistricts"), ("grids", "communities")],
)
def test_children_tile_their_parent(city: DemoCity, child: str, parent: str) -> None:
    children = getattr(city, child)
    for parent_row, kids in _children_by_parent(children, getattr(city, parent)):
        _assert_tiles(parent_row.geometry, kids.geometry, parent_row["code"])


def test_districts_do_not_overlap(city: DemoCity) -> None:
    union = shapely.union_all(city.districts.geometry.values)
    total = float(shapely.area(city.districts.geometry.values).sum())
    assert total - union.area <= AREA_TOLERANCE * union.area


def test_grids_are_irregular(city: DemoCity) -> None:
    """Voronoi-like cells: vertex counts vary, unlike a square lattice."""
    vertices = shapely.get_num_coordinates(city.grids.geometry.values)
    assert len(set(vertices.tolist())) > 4


# --------------------------------------------------------------------------------------
# Compounds
# --------------------------------------------------------------------------------------


def test_each_compound_lies_in_exactly_one_grid(city: DemoCity) -> None:
    pairs = gpd.sjoin(
        city.compounds[["code", "community_code", "geometry"]],
        city.grids[["code", "parent_code", "geometry"]],
        predicate="within",
        lsuffix="compound",
        rsuffix="grid",
    )
    assert pairs["code_compound"].is_unique
    assert len(pairs) == len(city.compounds)
    assert (pairs["community_code"] == pairs["parent_code"]).all()
    assert (pairs["code_compound"].str[2:14] == pairs["community_code"]).all()


def test_compounds_have_plausible_size_and_households(city: DemoCity) -> None:
    metric = city.compounds.to_crs(32649)  # UTM 49N covers Wuzhou
    rectangles = metric.geometry.minimum_rotated_rectangle()
    sides = [
        max(np.hypot(*np.diff(np.asarray(r.exterior.coords)[:3], axis=0).T)) for r in rectangles
    ]
    assert 78 <= min(sides) and max(sides) <= 302
    assert city.compounds["households"].between(100, 3000).all()
    assert city.compounds["households"].dtype.kind == "i"
    assert city.compounds["code"].is_unique
    manager = city.compounds["property_manager"]
    assert manager.isna().any() and manager.notna().mean() > 0.6


# --------------------------------------------------------------------------------------
# Departments and categories
# --------------------------------------------------------------------------------------

SUBDISTRICT_KINDS = {
    "police", "traffic_police", "fire", "market_supervision", "city_management",
    "sanitation", "command_centre",
}
DISTRICT_KINDS = {"housing", "water", "greening"}


def test_departments_follow_the_street_chief_scheme(city: DemoCity) -> None:
    departments = city.departments
    assert departments["code"].is_unique
    for _, subdistrict in city.subdistricts.iterrows():
        mine = departments[departments["area_code"] == subdistrict["code"]]
        assert set(mine["kind"]) == SUBDISTRICT_KINDS and len(mine) == len(SUBDISTRICT_KINDS)
        centre = mine[mine["kind"] == "command_centre"].geometry.iloc[0]
        assert centre.equals(subdistrict.geometry)
    for _, district in city.districts.iterrows():
        mine = departments[departments["area_code"] == district["code"]]
        assert set(mine["kind"]) == DISTRICT_KINDS and len(mine) == len(DISTRICT_KINDS)
        assert all(g.equals(district.geometry) for g in mine.geometry)
    assert departments["code"].str.fullmatch(r"D\d{6}(\d{3})?-[A-Z]{3}").all()
    assert (departments["code"].str[1:].str.split("-").str[0] == departments["area_code"]).all()


def test_categories_route_to_existing_department_kinds(city: DemoCity) -> None:
    categories = city.categories
    assert categories["code"].is_unique and categories["name"].is_unique
    assert set(categories["group"]) == {"component", "event"}
    assert set(categories["department_kind"]) <= set(city.departments["kind"])
    assert (categories["time_limit_hours"] > 0).all()
    assert categories["working_hours"].dtype == bool
    limits = categories.set_index("name")["time_limit_hours"]
    assert limits["暴露垃圾"] == 4.0 and limits["道路不洁"] == 2.0


# --------------------------------------------------------------------------------------
# Facilities
# --------------------------------------------------------------------------------------


def test_facility_columns_and_types(city: DemoCity) -> None:
    facilities = city.facilities
    assert facilities["code"].is_unique
    assert facilities["name"].is_unique
    assert str(facilities["capacity"].dtype) == "Int64"
    assert str(facilities["shared_spaces"].dtype) == "Int64"
    assert set(facilities["fee"]) <= {"yes", "no"}
    assert set(facilities["access"]) <= {"yes", "permissive", "customers", "private"}
    geometry_types = facilities.groupby("kind").geometry.apply(lambda g: set(g.geom_type))
    assert geometry_types["toilet"] == {"Point"}
    assert geometry_types["sports_ground"] == {"Polygon"}
    assert geometry_types["car_park"] <= {"Point", "Polygon"}
    city_area = shapely.union_all(city.districts.geometry.values)
    assert facilities.within(city_area).all()


def test_facilities_keep_clear_of_compounds_and_each_other(city: DemoCity) -> None:
    footprints = pd.concat(
        [
            city.compounds.geometry,
            city.facilities.geometry[city.facilities.geom_type == "Polygon"],
        ],
        ignore_index=True,
    )
    tree = shapely.STRtree(footprints.values)
    overlapping = tree.query(footprints.values, predicate="intersects")
    assert (overlapping[0] == overlapping[1]).all(), "footprints overlap"
    points = city.facilities.geometry[city.facilities.geom_type == "Point"]
    assert len(tree.query(points.values, predicate="intersects")[0]) == 0


def test_institutions_share_their_car_parks(city: DemoCity) -> None:
    car_parks = city.facilities[city.facilities["kind"] == "car_park"]
    shared = car_parks[car_parks["shared_spaces"].notna()]
    assert len(shared) / len(car_parks) > 0.4
    assert (shared["shared_spaces"] > 0).all()
    assert set(shared["access"]) <= {"permissive", "customers"}
    with_capacity = shared[shared["capacity"].notna()]
    assert (with_capacity["shared_spaces"] <= with_capacity["capacity"]).all()
    assert (shared["opening_hours"] == "Mo-Fr 18:00-08:00; Sa,Su,PH 00:00-24:00").any()
    assert car_parks["capacity"].isna().any()


def test_opening_hours_parse(city: DemoCity) -> None:
    opening_hours = pytest.importorskip("opening_hours")
    values = sorted(set(city.facilities["opening_hours"].dropna()))
    assert values
    for value in values:
        opening_hours.OpeningHours(value)  # raises ParserError when invalid
    sports = city.facilities[city.facilities["kind"] == "sports_ground"]
    assert sports["opening_hours"].notna().all()
    assert (city.facilities["opening_hours"] == "24/7").any()


# --------------------------------------------------------------------------------------
# Issues and their histories
# --------------------------------------------------------------------------------------


def test_issue_points_lie_in_their_grid(city: DemoCity) -> None:
    located = gpd.sjoin(
        city.issues[["ref", "grid_code", "geometry"]],
        city.grids[["code", "geometry"]],
        predicate="within",
    )
    assert located["ref"].is_unique and len(located) == len(city.issues)
    assert (located["grid_code"] == located["code"]).all()
    issues = city.issues
    assert (issues["grid_code"].str[:12] == issues["community_code"]).all()
    assert (issues["grid_code"].str[:9] == issues["subdistrict_code"]).all()
    assert (issues["grid_code"].str[:6] == issues["district_code"]).all()


def test_issue_fields(city: DemoCity) -> None:
    issues = city.issues
    assert issues["ref"].is_unique
    assert set(issues["status"]) == set(STATUSES)  # every state occurs
    assert (issues["status"] == "closed").mean() > 0.7
    assert set(issues["category"]) <= set(city.categories["code"])
    assert str(issues["created_at"].dt.tz) == "Asia/Shanghai"
    assert issues["created_at"].min() >= REFERENCE_TIME - pd.Timedelta(days=190)
    assert issues["updated_at"].max() < REFERENCE_TIME
    assert (issues["updated_at"] >= issues["created_at"]).all()
    assert (issues.geometry.geom_type == "Point").all()
    contacts = issues["reporter_contact"].dropna()
    assert contacts.str.fullmatch(r"1\d{2}\*{4}\d{4}").all()
    assert issues["description"].str.len().gt(4).all()


def test_issue_departments_match_category_and_place(city: DemoCity) -> None:
    issues = city.issues
    departments = city.departments.set_index("code")
    kind_of_category = city.categories.set_index("code")["department_kind"]
    waiting = issues["status"].isin({"reported", "accepted", "rejected"})
    assert issues.loc[waiting, "department_code"].isna().all()
    assert issues.loc[~waiting, "department_code"].notna().all()
    for _, issue in issues[~waiting].iterrows():
        department = departments.loc[issue["department_code"]]
        assert department["kind"] == kind_of_category[issue["category"]]
        assert department["area_code"] in (issue["subdistrict_code"], issue["district_code"])


def test_event_histories_are_consistent(city: DemoCity) -> None:
    events = city.issue_events
    issues = city.issues.set_index("ref")
    assert set(events["issue_ref"]) == set(issues.index)
    assert str(events["at"].dt.tz) == "Asia/Shanghai"
    assert events["note"].str.len().gt(0).all()
    for ref, history in events.groupby("issue_ref", sort=False):
        assert history["seq"].tolist() == list(range(1, len(history) + 1)), ref
        assert history["at"].is_monotonic_increasing and history["at"].is_unique, ref
        previous: str | None = None
        for row in history.itertuples():
            from_status = None if pd.isna(row.from_status) else row.from_status
            assert from_status == previous, ref
            assert row.action in TRANSITIONS[(from_status, row.to_status)], ref
            previous = row.to_status
        issue = issues.loc[ref]
        assert previous == issue["status"], ref
        assert history["at"].iloc[-1] == issue["updated_at"], ref
        assert history["at"].iloc[0] == issue["created_at"], ref


def test_event_actors(city: DemoCity) -> None:
    events = city.issue_events
    pattern = (
        r"resident|hotline:12345|grid_worker:\d{15}"
        r"|dispatcher:D\d{9}-CMD|handler:D\d{6}(\d{3})?-[A-Z]{3}"
    )
    assert events["actor"].str.fullmatch(pattern).all()
    assert (events["action"] == "verification_failed").any()
    grid_workers = events["actor"].str.removeprefix("grid_worker:")
    assert set(grid_workers[events["actor"].str.startswith("grid_worker:")]) <= set(
        city.grids["code"]
    )
    handlers = events["actor"].str.removeprefix("handler:")
    assert set(handlers[events["actor"].str.startswith("handler:")]) <= set(
        city.departments["code"]
    )


def test_reference_time_is_fixed() -> None:
    """History is anchored to a fixed date, never to the wall clock."""
    assert REFERENCE_TIME == pd.Timestamp("2026-11-01", tz="Asia/Shanghai")


def test_issue_refs_encode_the_local_report_date(city: DemoCity) -> None:
    issues = city.issues
    assert issues["ref"].str.fullmatch(r"WZ\d{12}").all()
    assert (issues["ref"].str[2:10] == issues["created_at"].dt.strftime("%Y%m%d")).all()


# --------------------------------------------------------------------------------------
# What the closed loop records on an issue: deadline, close time, satisfaction
# --------------------------------------------------------------------------------------


def default_clock() -> Clock:
    """The intake's clock with the default calendar and working day (not the environment's)."""
    return Clock(WorkCalendar(), parse_working_day(Settings.model_fields["working_day"].default))


def expected_deadlines(city: DemoCity, refs: pd.Index) -> pd.Series:
    """``due_at`` as data/cases.py sets it: from the report, then from every dispatch."""
    events = city.issue_events
    reported = events[events["action"] == "report"].groupby("issue_ref")["at"].first()
    dispatched = events[events["action"] == "dispatch"].groupby("issue_ref")["at"].last()
    start = dispatched.reindex(refs).fillna(reported.reindex(refs))
    kinds = {
        row.code: Category(code=row.code, time_limit_hours=float(row.time_limit_hours),
                           working_hours=bool(row.working_hours))
        for row in city.categories.itertuples()
    }
    category = city.issues.set_index("ref")["category"]
    clock = default_clock()
    return pd.Series(
        [clock.due(start[ref].to_pydatetime(), kinds[category[ref]]) for ref in refs], index=refs
    )


def test_deadlines_are_set_at_report_and_again_at_dispatch(city: DemoCity) -> None:
    issues = city.issues.set_index("ref")
    assert str(issues["due_at"].dt.tz) == "Asia/Shanghai"
    expected = expected_deadlines(city, issues.index)
    assert (issues["due_at"] == expected).all()
    # Both kinds of time limit occur, and deadlines from dispatch as well as from report.
    dispatched = set(city.issue_events.loc[city.issue_events["action"] == "dispatch", "issue_ref"])
    assert 0 < len(dispatched) < len(issues)
    assert set(city.categories.set_index("code").loc[issues["category"], "working_hours"]) == {True, False}


def test_closed_issues_carry_their_close_time(city: DemoCity) -> None:
    events = city.issue_events
    issues = city.issues.set_index("ref")
    closes = events[events["action"] == "close"].set_index("issue_ref")["at"]
    closed = issues["status"] == "closed"
    assert closes.index.is_unique and set(closes.index) == set(issues.index[closed])
    assert (issues.loc[closed, "closed_at"] == closes.reindex(issues.index[closed])).all()
    assert issues.loc[~closed, "closed_at"].isna().all()


def test_satisfaction_is_the_reporters_score_at_close(city: DemoCity) -> None:
    issues = city.issues
    scored = issues["satisfaction"].notna()
    # Everyone who can be asked answers: closed cases whose reporter left a contact.
    asked = (issues["status"] == "closed") & issues["reporter_contact"].notna()
    assert scored.equals(asked) and scored.any()
    assert set(issues.loc[scored, "satisfaction"]) == {1, 2, 3, 4, 5}
    on_time = issues["closed_at"] <= issues["due_at"]
    late = issues.loc[scored & ~on_time, "satisfaction"]
    assert issues.loc[scored & on_time, "satisfaction"].mean() > late.mean()


def test_some_open_cases_are_overdue_at_the_reference_time(city: DemoCity) -> None:
    issues = city.issues
    open_ = issues["status"].isin(OPEN_STATUSES)
    overdue = open_ & (issues["due_at"] < REFERENCE_TIME)
    assert overdue.any() and (open_ & ~overdue).any()  # recent reports are still in time
    # Stalled cases past the report stage, days over their deadline: escalation's work.
    escalating = overdue & issues["status"].isin(OPEN_STATUSES - {"reported"})
    assert (issues.loc[escalating, "due_at"] < REFERENCE_TIME - pd.Timedelta(days=7)).any()
    # Closed cases are on time and late, so the on-time rate says something.
    closed = issues[issues["status"] == "closed"]
    assert 0.2 < (closed["closed_at"] <= closed["due_at"]).mean() < 0.95


# --------------------------------------------------------------------------------------
# City scale: 10,000 grids and 100,000 issues, for testing the map pages at size
# --------------------------------------------------------------------------------------

# About 40 s on a 2-core machine; the bound only catches an accidental blow-up.
CITY_GENERATION_LIMIT_S = 180.0


@pytest.fixture(scope="module")
def timed_big_city() -> tuple[DemoCity, float]:
    start = time.perf_counter()
    big = generate_city(scale="city")
    return big, time.perf_counter() - start


@pytest.fixture(scope="module")
def big_city(timed_big_city: tuple[DemoCity, float]) -> DemoCity:
    return timed_big_city[0]


def test_city_scale_generates_in_reasonable_time(timed_big_city: tuple[DemoCity, float]) -> None:
    assert timed_big_city[1] < CITY_GENERATION_LIMIT_S


def test_city_scale_counts(big_city: DemoCity) -> None:
    assert len(big_city.grids) == 10_000
    assert len(big_city.issues) == 100_000
    assert len(big_city.compounds) == SCALES["city"].compound_count == 7_000
    assert len(big_city.communities) == SCALES["city"].community_count
    assert len(big_city.subdistricts) == sum(SCALES["city"].subdistricts_per_district)
    assert len(big_city.districts) == 3
    assert len(big_city.categories) == len(CATEGORIES)
    # Histories as long as the demo's (about 6.6 events per issue).
    assert 5.0 < len(big_city.issue_events) / len(big_city.issues) < 8.0


@pytest.mark.parametrize(("level", "layer"), list(zip(LEVELS, AREA_LEVELS, strict=True)))
def test_city_scale_codes_follow_cn15(big_city: DemoCity, level: str, layer: str) -> None:
    frame = getattr(big_city, layer)
    scheme = code_scheme("cn15")
    problems = [
        problem
        for code, parent in zip(frame["code"], frame["parent_code"], strict=True)
        if (problem := scheme.problem(level, code, parent))
    ]
    assert problems == []
    assert frame["code"].is_unique and frame["name"].is_unique


def test_city_scale_children_are_numbered_from_one(big_city: DemoCity) -> None:
    for layer in AREA_LEVELS[1:]:
        frame = getattr(big_city, layer)
        sequence = frame["code"].str[-3:].astype(int)
        per_parent = sequence.groupby(frame["parent_code"])
        assert (per_parent.min() == 1).all(), layer
        assert (per_parent.max() == per_parent.count()).all(), layer


@pytest.mark.parametrize(
    ("child", "parent"),
    [("subdistricts", "districts"), ("communities", "subdistricts"), ("grids", "communities")],
)
def test_city_scale_children_tile_their_parent(big_city: DemoCity, child: str, parent: str) -> None:
    """The importer's own coverage check finds no overlap, gap or child outside its parent.

    All 930 communities are checked (about 3 s for the 10,000 grids), not a sample.
    """
    parents = getattr(big_city, parent)
    children = getattr(big_city, child)
    faults = check_coverage(
        dict(zip(parents["code"], parents.geometry, strict=True)),
        [
            Cell(code, parent_code, geom)
            for code, parent_code, geom in zip(
                children["code"], children["parent_code"], children.geometry, strict=True
            )
        ],
    )
    assert [fault.describe() for fault in faults] == []
    assert set(children["parent_code"]) == set(parents["code"])


def test_city_scale_issue_points_lie_in_the_city_and_their_grid(big_city: DemoCity) -> None:
    issues = big_city.issues
    city = shapely.union_all(big_city.districts.geometry.values)
    points = issues.geometry.values
    assert shapely.contains_xy(city, shapely.get_x(points), shapely.get_y(points)).all()
    located = gpd.sjoin(
        issues[["ref", "grid_code", "geometry"]],
        big_city.grids[["code", "geometry"]],
        predicate="within",
    )
    assert located["ref"].is_unique and len(located) == len(issues)
    assert (located["grid_code"] == located["code"]).all()
    assert issues["ref"].is_unique


def test_city_scale_issues_carry_deadlines_close_times_and_scores(big_city: DemoCity) -> None:
    issues = big_city.issues.set_index("ref")
    sample = issues.index[:: len(issues) // 2_000]  # deadlines one by one: a sample will do
    assert (issues.loc[sample, "due_at"] == expected_deadlines(big_city, sample)).all()
    assert issues["due_at"].notna().all()
    closed = issues["status"] == "closed"
    assert (issues.loc[closed, "closed_at"] == issues.loc[closed, "updated_at"]).all()
    assert issues.loc[~closed, "closed_at"].isna().all()
    scored = issues["satisfaction"].notna()
    assert scored.equals(closed & issues["reporter_contact"].notna())


def test_city_scale_compounds_lie_in_one_grid_with_unique_names(big_city: DemoCity) -> None:
    pairs = gpd.sjoin(
        big_city.compounds[["code", "community_code", "geometry"]],
        big_city.grids[["code", "parent_code", "geometry"]],
        predicate="within",
        lsuffix="compound",
        rsuffix="grid",
    )
    assert len(pairs) == len(big_city.compounds) and pairs["code_compound"].is_unique
    assert (pairs["community_code"] == pairs["parent_code"]).all()
    assert big_city.compounds["name"].is_unique
    suffixes = "|".join(SCALES["city"].compound_suffixes)
    assert big_city.compounds["name"].str.contains(rf"(?:{suffixes})$").all()


def test_city_scale_stays_around_wuzhou(big_city: DemoCity) -> None:
    minx, miny, maxx, maxy = big_city.districts.total_bounds
    assert 110.9 < minx < maxx < 111.7 and 23.2 < miny < maxy < 23.8
    width_km = (maxx - minx) * 111.32 * np.cos(np.radians(23.5))
    height_km = (maxy - miny) * 110.75
    assert 55 < width_km < 65 and 40 < height_km < 50


def test_unknown_scale_lists_the_choices() -> None:
    with pytest.raises(UnknownScale, match=r"unknown demo scale 'nope': choose one of demo, city"):
        generate_city(scale="nope")
