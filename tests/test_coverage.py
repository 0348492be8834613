"""Grid coverage rules on tiny inline polygons."""

from __future__ import annotations

import pytest
from shapely.geometry import box

from geo.coverage import Cell, area_m2, check_coverage

COMMUNITY = box(0, 0, 0.02, 0.01)  # about 2.2 km x 1.1 km at the equator


@pytest.mark.parametrize(
    ("grids", "expected"),
    [
        # two halves that tile the community exactly
        ([box(0, 0, 0.01, 0.01), box(0.01, 0, 0.02, 0.01)], []),
        # the halves overlap by a 0.001° strip
        ([box(0, 0, 0.011, 0.01), box(0.01, 0, 0.02, 0.01)], [("overlap", ("A", "B"))]),
        # a strip between them is covered by no grid
        ([box(0, 0, 0.009, 0.01), box(0.01, 0, 0.02, 0.01)], [("gap", ())]),
        # the east grid pokes out of the community
        ([box(0, 0, 0.01, 0.01), box(0.01, 0, 0.021, 0.01)], [("outside", ("B",))]),
        # a sliver far below a square metre is floating-point noise, not a fault
        ([box(0, 0, 0.01 + 1e-12, 0.01), box(0.01, 0, 0.02, 0.01)], []),
    ],
)
def test_faults(grids: list, expected: list) -> None:
    cells = [Cell(code, "C", geom) for code, geom in zip("AB", grids, strict=True)]
    faults = check_coverage({"C": COMMUNITY}, cells)
    assert [(f.kind, f.grid_codes) for f in faults] == expected
    assert all(f.community_code == "C" and f.area_m2 >= 1 for f in faults)


def test_grids_of_unknown_communities_are_skipped() -> None:
    assert check_coverage({"C": COMMUNITY}, [Cell("A", "ELSEWHERE", box(5, 5, 6, 6))]) == []


def test_area_in_square_metres() -> None:
    # 0.001° x 0.001° at 60°N: 111.2 m x 55.6 m
    assert area_m2(box(10, 59.9995, 10.001, 60.0005)) == pytest.approx(111.195 * 55.6, rel=1e-3)
