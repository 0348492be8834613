"""No false all-clear from the coverage check (issue 11, item 2), and the overlap flag.

Overlaps are checked across the whole grid layer whatever the parents; gaps and grids
outside their community need the communities, and the report says when they could not be
checked. Through the CLI (import and ``gridmap check grids``) and the API
(``/api/v1/coverage/faults``, ``/api/v1/locate``), on both backends, on a small layer
written here and on real files: Shanghai's 251 streets and Macau's grid.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli_app
from data.settings import Settings, get_settings
from tests.conftest import realdata, realdata_extra

ALL_CLEAR = "coverage: grids tile their communities (no overlaps, gaps or grids outside)"
ALL_CLEAR_WORDS = "grids tile their communities"  # the all-clear, whatever its wording around
EFFECTIVE = "2026-01-01"


@pytest.fixture
def cli(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[..., Any]]:
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", database_url)
    monkeypatch.setenv("GRIDMAP_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()

    def run(*args: object) -> str:
        result = CliRunner().invoke(cli_app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())  # rich wraps long lines on narrow terminals

    yield run
    get_settings.cache_clear()


def write(path: Path, features: list[tuple[dict[str, Any], Any]]) -> Path:
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": p, "geometry": mapping(g)}
                    for p, g in features
                ],
            }
        )
    )
    return path


def coverage_api(database_url: str, tmp_path: Path) -> dict[str, Any]:
    settings = Settings(database_url=database_url, data_dir=tmp_path, escalate_every_seconds=0)
    with TestClient(create_app(settings)) as client:
        response = client.get("/api/v1/coverage/faults", params={"at": "2026-03-01"})
    assert response.status_code == 200
    return response.json()


# --- a small layer: two grids overlapping by a strip, no parents ---------------------------------

# 0.001° x 0.01° at 23.5°N: about 102 m x 1,112 m, some 113,000 m².
STRIP = box(111.309, 23.50, 111.31, 23.51)
WEST, EAST = box(111.30, 23.50, 111.31, 23.51), box(111.309, 23.50, 111.32, 23.51)


def test_overlapping_grids_without_parents_get_no_all_clear(
    cli: Callable[..., str], database_url: str, tmp_path: Path
) -> None:
    grids = write(
        tmp_path / "g.geojson",
        [({"code": "G1", "name": "西"}, WEST), ({"code": "G2", "name": "东"}, EAST)],
    )
    imported = cli(
        "import", "grids", grids, "--effective", EFFECTIVE, "--report", tmp_path / "r.json"
    )
    checked = cli("check", "grids", "--on", "2026-03-01")
    for output in (imported, checked):
        assert ALL_CLEAR_WORDS not in output
        assert "overlap" in output and "no community layer is in force" in output
    assert "overlap of" in checked and "between grids G1, G2" in checked
    report = json.loads((tmp_path / "r.json").read_text())
    assert [(f["kind"], f["grids"]) for f in report["faults"]] == [("overlap", ["G1", "G2"])]
    assert report["coverage"]["complete"] is False

    body = coverage_api(database_url, tmp_path)
    assert [f["properties"]["kind"] for f in body["features"]] == ["overlap"]
    assert body["coverage"]["complete"] is False and body["coverage"]["communities_loaded"] is False
    overlap = shapely.geometry.shape(body["features"][0]["geometry"])
    assert overlap.symmetric_difference(STRIP).area < 1e-12


def test_communities_without_parents_check_gaps_but_say_outside_was_not_checked(
    cli: Callable[..., str], database_url: str, tmp_path: Path
) -> None:
    community = write(
        tmp_path / "c.geojson",
        [({"code": "C1", "name": "社区"}, box(111.30, 23.50, 111.33, 23.51))],
    )
    cli("import", "communities", community, "--effective", EFFECTIVE)
    grids = write(
        tmp_path / "g.geojson",
        [
            ({"code": "G1", "name": "西"}, box(111.30, 23.50, 111.31, 23.51)),
            ({"code": "G2", "name": "东"}, box(111.31, 23.50, 111.32, 23.51)),
        ],
    )
    output = cli("import", "grids", grids, "--effective", EFFECTIVE)
    assert ALL_CLEAR_WORDS not in output
    assert "2 of 2 grids have no parent community" in output and "not checked" in output
    checked = cli("check", "grids", "--on", "2026-03-01")
    assert "gap of" in checked and "in community C1" in checked  # the east third has no grid
    body = coverage_api(database_url, tmp_path)
    assert [f["properties"]["kind"] for f in body["features"]] == ["gap"]
    assert body["coverage"]["grids_without_parent"] == ["G1", "G2"]


def test_a_complete_clean_layer_still_gets_the_all_clear(
    cli: Callable[..., str], tmp_path: Path
) -> None:
    community = write(
        tmp_path / "c.geojson",
        [({"code": "C1", "name": "社区"}, box(111.30, 23.50, 111.32, 23.51))],
    )
    cli("import", "communities", community, "--effective", EFFECTIVE)
    grids = write(
        tmp_path / "g.geojson",
        [
            ({"code": "G1", "name": "西", "parent_code": "C1"}, box(111.30, 23.50, 111.31, 23.51)),
            ({"code": "G2", "name": "东", "parent_code": "C1"}, box(111.31, 23.50, 111.32, 23.51)),
        ],
    )
    assert ALL_CLEAR in cli("import", "grids", grids, "--effective", EFFECTIVE)


# --- the overlap flag on assignments ------------------------------------------------------------------


def test_a_point_in_overlapping_grids_is_flagged_everywhere(
    cli: Callable[..., str], database_url: str, tmp_path: Path
) -> None:
    grids = write(
        tmp_path / "g.geojson",
        [({"code": "G1", "name": "西"}, WEST), ({"code": "G2", "name": "东"}, EAST)],
    )
    cli("import", "grids", grids, "--effective", EFFECTIVE)
    # (lon, lat, grid, match, overlap), each row a case:
    cases = [
        (111.3095, 23.505, "G1", "inside", True),  # in the strip: both grids; the smaller code
        (111.305, 23.505, "G1", "inside", False),  # west only
        (111.315, 23.505, "G2", "inside", False),  # east only
        (111.309, 23.505, "G1", "inside", True),  # on G2's edge, inside G1: still the overlap
        (
            111.3095,
            23.50,
            "G1",
            "boundary",
            False,
        ),  # on the strip's outer edge: no area either side
    ]
    points = tmp_path / "p.csv"
    points.write_text(
        "id,lon,lat\n" + "".join(f"p{i},{lon},{lat}\n" for i, (lon, lat, *_) in enumerate(cases))
    )
    out = tmp_path / "out.csv"
    output = cli("assign", points, "--out", out, "--crs", "wgs84", "--at", "2026-03-01")
    assert "2 points lie where grids overlap" in output
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["grid_code"], r["match"], r["overlap"]) for r in rows] == [
        (grid, match, str(flag)) for _, _, grid, match, flag in cases
    ]
    settings = Settings(database_url=database_url, data_dir=tmp_path, escalate_every_seconds=0)
    with TestClient(create_app(settings)) as client:
        for lon, lat, grid, match, flag in cases:
            body = client.get(
                "/api/v1/locate", params={"lon": lon, "lat": lat, "at": "2026-03-01"}
            ).json()
            assert (body["grid_code"], body["match"], body["overlap"]) == (grid, match, flag), (
                lon,
                lat,
            )


# --- real files -----------------------------------------------------------------------------------------


def independent_overlaps(
    path: Path, codes: list[str], crs: int
) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """Pairs of polygons sharing at least 1.5 m² and more than 0.5 m², measured by geopandas
    in a UTM zone: what the check must and may report around its 1 m² threshold."""
    frame = gpd.read_file(path)
    frame = (frame.set_crs(4326) if frame.crs is None else frame).to_crs(crs)
    geoms = frame.geometry.values
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    area = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    pairs = [tuple(sorted((codes[i], codes[j]))) for i, j in zip(left, right, strict=True)]
    must = {p for p, a in zip(pairs, area, strict=True) if a >= 1.5}
    may = {p for p, a in zip(pairs, area, strict=True) if a > 0.5}
    return must, may


def test_shanghai_streets_overlap_and_get_no_all_clear(
    cli: Callable[..., str], database_url: str, tmp_path: Path
) -> None:
    path = realdata_extra("shanghai_streets_covid2022/shanghai_street.shp")
    report = tmp_path / "r.json"
    output = cli(
        "import",
        "grids",
        path,
        "--crs",
        "wgs84",
        "--code-field",
        ":row",
        "--code-prefix",
        "SH",
        "--effective",
        EFFECTIVE,
        "--report",
        report,
    )
    assert ALL_CLEAR_WORDS not in output and "no community layer is in force" in output
    codes = [f"SH{i + 1:03d}" for i in range(251)]
    must, may = independent_overlaps(path, codes, 32651)  # UTM 51N
    found = {
        tuple(f["grids"])
        for f in json.loads(report.read_text())["faults"]
        if f["kind"] == "overlap"
    }
    assert must <= found <= may and len(must) >= 80
    checked = cli("check", "grids", "--on", "2026-03-01")
    assert ALL_CLEAR_WORDS not in checked and f"overlap │ {len(found)}" in checked
    body = coverage_api(database_url, tmp_path)
    assert len(body["features"]) == len(found) and body["coverage"]["complete"] is False


def test_macau_grids_get_no_all_clear_with_or_without_communities(
    cli: Callable[..., str], database_url: str, tmp_path: Path
) -> None:
    grid_file = realdata("macau_osm_gemacau/macau-grid.geojson")
    alone = cli(
        "import",
        "grids",
        grid_file,
        "--code-field",
        ":row",
        "--code-prefix",
        "MO",
        "--effective",
        EFFECTIVE,
    )
    assert ALL_CLEAR_WORDS not in alone and "no community layer is in force" in alone
    # The README's example: the parishes as communities, then the grid without parents.
    parishes = realdata("macau_osm_gemacau/macau-freguesias.geojson")
    cli(
        "import",
        "communities",
        parishes,
        "--code-field",
        "osmId",
        "--repair",
        "--effective",
        EFFECTIVE,
    )
    again = cli(
        "import",
        "grids",
        grid_file,
        "--code-field",
        ":row",
        "--code-prefix",
        "MO",
        "--effective",
        EFFECTIVE,
        "--replace",
    )
    count = len(gpd.read_file(grid_file))
    assert ALL_CLEAR_WORDS not in again
    assert f"{count:,} of {count:,} grids have no parent community" in again
    body = coverage_api(database_url, tmp_path)
    assert body["coverage"]["complete"] is False and body["coverage"]["communities_loaded"] is True
    assert len(body["coverage"]["grids_without_parent"]) == count
    # Gaps were checked against the parishes: the grid leaves parts of them uncovered.
    parish_codes = {str(c) for c in pyogrio.read_dataframe(parishes, read_geometry=False)["osmId"]}
    gaps = [f["properties"] for f in body["features"] if f["properties"]["kind"] == "gap"]
    assert gaps and {g["community_code"] for g in gaps} <= parish_codes
