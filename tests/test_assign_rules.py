"""The assignment rules on a table of tricky cases, with tiny inline polygons.

Layout (lon, lat), near the equator so a degree is ~111 km:

    community C1 = [0, 0.02] x [0, 0.01], split into grids G2 (west) and G1 (east) at x = 0.01
    grid G3 = a square with a hole, in community C2 = [0.03, 0.04] x [0, 0.01]
    grid G4 = a multipolygon of two squares, also in C2
    sub-district S1 holds C1 and C2 and reaches beyond them to x = 0.06; district D1 holds S1
    compound X1 inside G1
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from shapely.geometry import MultiPolygon, Polygon, box

from geo.assign import Assigner, Layer, records
from geo.crs import parse_crs, to_wgs84_xy, wgs84_to_gcj02

HOLE = Polygon(box(0.03, 0, 0.035, 0.01).exterior.coords, [box(0.031, 0.004, 0.034, 0.006).exterior.coords])
LAYERS = {
    "grid": Layer(
        codes=["G2", "G1", "G3", "G4"],
        names=["西网格", "东网格", "回字网格", "双块网格"],
        geoms=[box(0, 0, 0.01, 0.01), box(0.01, 0, 0.02, 0.01), HOLE,
               MultiPolygon([box(0.035, 0, 0.04, 0.005), box(0.035, 0.006, 0.04, 0.01)])],
        parents=["C1", "C1", "C2", "C2"],
    ),
    "community": Layer(["C1", "C2"], ["一社区", "二社区"], [box(0, 0, 0.02, 0.01), box(0.03, 0, 0.04, 0.01)], ["S1", "S1"]),
    "subdistrict": Layer(["S1"], ["街道"], [box(0, 0, 0.06, 0.01)], ["D1"]),
    "district": Layer(["D1"], ["区"], [box(-1, -1, 1, 1)], [None]),
}
COMPOUNDS = Layer(["X1"], ["花园小区"], [box(0.012, 0.002, 0.014, 0.004)])
METRES_PER_DEGREE = 111_319.49  # of longitude at the equator


@pytest.fixture(scope="module")
def assigner() -> Assigner:
    return Assigner(LAYERS, COMPOUNDS, snap_metres=50, layer_version="2026-01-01")


@pytest.mark.parametrize(
    ("lon", "lat", "match", "grid", "chain_from", "compound"),
    [
        (0.005, 0.005, "inside", "G2", "grid", None),  # plain interior
        (0.013, 0.003, "inside", "G1", "grid", "X1"),  # inside a compound too
        (0.01, 0.005, "boundary", "G1", "grid", None),  # shared edge: G1 < G2 by code
        (0.01, 0.0, "boundary", "G1", "grid", None),  # shared vertex on the outer edge
        (0.0, 0.005, "boundary", "G2", "grid", None),  # outer edge of the layer, one grid
        (0.0325, 0.005, "outside", None, "community", None),  # in the hole of G3, 111 m from its ring; C2 holds it
        (0.031, 0.005, "boundary", "G3", "grid", None),  # on the hole's ring
        (0.0375, 0.0025, "inside", "G4", "grid", None),  # first part of a multipolygon
        (0.0375, 0.008, "inside", "G4", "grid", None),  # second part
        (0.0375, 0.0055, "outside", None, "community", None),  # between the parts, 56 m from each: too far to snap
        (0.0203, 0.005, "snapped", "G1", "grid", None),  # 33 m east of G1
        (0.0206, 0.005, "outside", None, "subdistrict", None),  # 67 m: too far to snap; S1 holds it
        (0.5, 0.5, "outside", None, "district", None),  # only the district
        (5.0, 5.0, "outside", None, None, None),  # outside everything
    ],
)
def test_rule_table(assigner: Assigner, lon: float, lat: float, match: str, grid: str | None,
                    chain_from: str | None, compound: str | None) -> None:
    row = assigner.assign_one(lon, lat)
    assert (row["match"], row["grid_code"], row["compound_code"]) == (match, grid, compound)
    levels = ("grid", "community", "subdistrict", "district")
    expected_present = levels[levels.index(chain_from):] if chain_from else ()
    assert tuple(lvl for lvl in levels if row[f"{lvl}_code"]) == expected_present
    assert row["layer_version"] == "2026-01-01"


def test_chain_and_names(assigner: Assigner) -> None:
    row = assigner.assign_one(0.013, 0.003)
    assert [row[f"{lvl}_code"] for lvl in ("grid", "community", "subdistrict", "district")] == ["G1", "C1", "S1", "D1"]
    assert (row["grid_name"], row["community_name"], row["compound_name"]) == ("东网格", "一社区", "花园小区")


def test_snapping_distance_in_metres(assigner: Assigner) -> None:
    row = assigner.assign_one(0.0203, 0.005)
    assert row["distance_m"] == pytest.approx(0.0003 * METRES_PER_DEGREE, abs=0.05)


def test_snap_ties_go_to_the_smallest_code() -> None:
    layers = {"grid": Layer(["B", "A"], ["b", "a"], [box(0, 0, 1e-3, 1e-3), box(2e-3, 0, 3e-3, 1e-3)])}
    row = Assigner(layers, snap_metres=100).assign_one(1.5e-3, 5e-4)  # equidistant, ~56 m from each
    assert (row["match"], row["grid_code"]) == ("snapped", "A")


def test_bulk_equals_single_point(assigner: Assigner) -> None:
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(-0.01, 0.05, 3000), rng.uniform(-0.005, 0.015, 3000)
    bulk = records(assigner.assign(lon, lat))
    for i in range(0, 3000, 97):
        single = assigner.assign_one(lon[i], lat[i])
        row = bulk[i]
        assert {k: v for k, v in row.items() if k != "distance_m"} == {k: v for k, v in single.items() if k != "distance_m"}


def test_gcj02_input_lands_in_the_right_grid() -> None:
    """A phone reports in GCJ-02; unconverted it would land a few hundred metres off."""
    size = 0.002  # ~200 m grids near Wuzhou
    grids = [box(111.3 + i * size, 23.5, 111.3 + (i + 1) * size, 23.5 + size) for i in range(5)]
    assigner = Assigner({"grid": Layer([f"G{i}" for i in range(5)], ["g"] * 5, grids)}, snap_metres=0)
    true_lon, true_lat = 111.3 + 2.5 * size, 23.5 + size / 2  # centre of G2
    gx, gy = wgs84_to_gcj02(true_lon, true_lat)
    lon, lat = to_wgs84_xy(gx, gy, parse_crs("gcj02"))
    assert assigner.assign_one(float(lon), float(lat))["grid_code"] == "G2"
    assert assigner.assign_one(float(gx), float(gy))["grid_code"] != "G2"
    assert math.dist((gx, gy), (true_lon, true_lat)) > size  # the shift is larger than a grid
