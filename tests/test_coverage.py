"""Grid coverage rules on tiny inline polygons."""

from __future__ import annotations

import pytest
from shapely.geometry import box

from geo.coverage import ALL_CLEAR, Cell, area_m2, check_coverage, check_coverage_report

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


def test_a_grid_of_an_unknown_community_is_not_checked_for_outside_and_gets_no_all_clear() -> None:
    report = check_coverage_report({"C": COMMUNITY}, [
        Cell("A", "C", box(0, 0, 0.01, 0.01)),
        Cell("B", "ELSEWHERE", box(0.01, 0, 0.02, 0.01)),  # fills C, but names no community
    ])
    assert report.faults == [] and report.unparented == ("B",) and not report.complete
    assert ALL_CLEAR not in report.summary()
    assert any("1 of 2 grids have no parent community" in line and "not checked" in line
               for line in report.summary())


def test_a_community_with_no_grid_at_all_is_one_gap() -> None:
    faults = check_coverage({"C": COMMUNITY}, [Cell("A", "ELSEWHERE", box(5, 5, 6, 6))])
    assert [(f.kind, f.community_code) for f in faults] == [("gap", "C")]
    assert faults[0].area_m2 == pytest.approx(area_m2(COMMUNITY))


# Two grids that overlap by a 0.001° strip, as in Shanghai's streets or Macau's grid.
OVERLAPPING = [box(0, 0, 0.011, 0.01), box(0.01, 0, 0.02, 0.01)]


@pytest.mark.parametrize(
    ("communities", "parents", "kinds", "unparented", "says"),
    [
        # no parents and no community layer: the overlap is found, the rest is said unchecked
        (None, (None, None), [("overlap", None)], ("A", "B"), "no community layer is in force"),
        # parents in two different communities: still one overlap, of no single community
        ({"C": box(0, 0, 0.01, 0.01), "D": box(0.01, 0, 0.02, 0.01)}, ("C", "D"),
         [("overlap", None), ("outside", "C")], (), None),
        # communities loaded, grids without parents: gaps checked, "outside" is not
        ({"C": COMMUNITY}, (None, None), [("overlap", None)], ("A", "B"),
         "2 of 2 grids have no parent community"),
    ],
)
def test_overlaps_are_found_across_the_layer_whatever_the_parents(
    communities: dict | None, parents: tuple, kinds: list, unparented: tuple, says: str | None
) -> None:
    cells = [Cell(code, parent, geom) for code, parent, geom in zip("AB", parents, OVERLAPPING, strict=True)]
    report = check_coverage_report(communities, cells)
    assert [(f.kind, f.community_code) for f in report.faults] == kinds
    assert report.faults[0].grid_codes == ("A", "B")
    assert report.faults[0].area_m2 == pytest.approx(area_m2(box(0.01, 0, 0.011, 0.01)), rel=1e-6)
    assert report.unparented == unparented
    assert ALL_CLEAR not in report.summary()
    if says:
        assert report.complete is False and any(says in line for line in report.summary())


def test_only_a_complete_clean_check_is_an_all_clear() -> None:
    halves = [Cell("A", "C", box(0, 0, 0.01, 0.01)), Cell("B", "C", box(0.01, 0, 0.02, 0.01))]
    assert check_coverage_report({"C": COMMUNITY}, halves).summary() == [ALL_CLEAR]
    no_communities = check_coverage_report(None, halves).summary()
    assert no_communities[0] == "coverage: no overlaps between grids" and len(no_communities) == 2
    assert check_coverage_report({"C": COMMUNITY}, []).faults == []
    assert check_coverage_report({"C": COMMUNITY}, []).summary() == [
        "coverage: no grid layer is in force, so nothing was checked"]


def test_area_in_square_metres() -> None:
    # 0.001° x 0.001° at 60°N: 111.2 m x 55.6 m
    assert area_m2(box(10, 59.9995, 10.001, 60.0005)) == pytest.approx(111.195 * 55.6, rel=1e-3)
