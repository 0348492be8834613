"""`gridmap assign` never takes coordinates as WGS84 unasked, and stops on swapped columns."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from shapely.geometry import box, mapping
from typer.testing import CliRunner

from api.cli import app
from data.settings import get_settings
from geo.crs import wgs84_to_gcj02

# A 10 x 10 block of 200 m grid cells in Wuzhou, where GCJ-02 is about 500 m off WGS84:
# a point given in GCJ-02 and read as WGS84 lands in another cell.
WEST, SOUTH, CELL, SIDE = 111.30, 23.48, 0.002, 10
Cli = Callable[..., Result]


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Cli]:
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", database_url)
    monkeypatch.setenv("GRIDMAP_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GRIDMAP_ASSIGN_CRS", raising=False)
    get_settings.cache_clear()
    yield lambda *args: CliRunner().invoke(app, [str(a) for a in args])
    get_settings.cache_clear()


def cell_code(col: int, row: int) -> str:
    return f"G{row:02d}{col:02d}"


@pytest.fixture
def grids(cli: Cli, tmp_path: Path) -> None:
    features = [
        {
            "type": "Feature",
            "properties": {"code": cell_code(c, r)},
            "geometry": mapping(
                box(
                    WEST + c * CELL, SOUTH + r * CELL, WEST + (c + 1) * CELL, SOUTH + (r + 1) * CELL
                )
            ),
        }
        for r in range(SIDE)
        for c in range(SIDE)
    ]
    path = tmp_path / "grids.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    result = cli("import", "grids", path, "--effective", "2026-01-01")
    assert result.exit_code == 0, result.output


def centres() -> list[tuple[str, float, float]]:
    """(the cell it was placed in, lon, lat) in WGS84 for the centre of every inner cell."""
    return [
        (cell_code(c, r), WEST + (c + 0.5) * CELL, SOUTH + (r + 0.5) * CELL)
        for r in range(2, SIDE - 2)
        for c in range(2, SIDE - 2)
    ]


def write_points(
    path: Path, rows: list[tuple[str, float, float]], header: str = "ref,lon,lat"
) -> Path:
    path.write_text(header + "\n" + "".join(f"{ref},{x:.7f},{y:.7f}\n" for ref, x, y in rows))
    return path


def assigned(out: Path) -> dict[str, str]:
    with out.open(encoding="utf-8") as handle:
        return {row["id"]: row["grid_code"] for row in csv.DictReader(handle)}


def test_a_csv_without_crs_is_refused_and_gcj02_is_converted(
    cli: Cli, grids: None, tmp_path: Path
) -> None:
    placed = centres()
    shifted = [(code, *map(float, wgs84_to_gcj02(x, y))) for code, x, y in placed]
    points = write_points(tmp_path / "app.csv", shifted)
    out = tmp_path / "out.csv"

    result = cli("assign", points, "--out", out, "--at", "2026-02-01")
    assert result.exit_code == 2
    assert (
        "--crs" in result.output
        and "gcj02" in result.output
        and "GRIDMAP_ASSIGN_CRS" in result.output
    )
    assert not out.exists()

    result = cli("assign", points, "--out", out, "--at", "2026-02-01", "--crs", "gcj02")
    assert result.exit_code == 0, result.output
    assert "coordinates read as gcj02, from --crs" in result.output
    assert assigned(out) == {code: code for code, _, _ in placed}

    # Read as WGS84, as the command did before, most points land in another cell.
    result = cli("assign", points, "--out", out, "--at", "2026-02-01", "--crs", "wgs84")
    assert result.exit_code == 0, result.output
    wrong = sum(got != ref for ref, got in assigned(out).items())
    assert wrong > len(placed) / 2


def test_the_setting_supplies_the_crs(
    cli: Cli, grids: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    placed = centres()
    points = write_points(
        tmp_path / "app.csv", [(c, *map(float, wgs84_to_gcj02(x, y))) for c, x, y in placed]
    )
    monkeypatch.setenv("GRIDMAP_ASSIGN_CRS", "gcj02")
    get_settings.cache_clear()
    out = tmp_path / "out.csv"
    result = cli("assign", points, "--out", out, "--at", "2026-02-01")
    assert result.exit_code == 0, result.output
    assert "coordinates read as gcj02, from GRIDMAP_ASSIGN_CRS" in result.output
    assert assigned(out) == {code: code for code, _, _ in placed}


def test_geojson_points_are_wgs84_by_their_spec(cli: Cli, grids: None, tmp_path: Path) -> None:
    placed = centres()
    path = tmp_path / "points.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"ref": code},
                        "geometry": {"type": "Point", "coordinates": [x, y]},
                    }
                    for code, x, y in placed
                ],
            }
        )
    )
    out = tmp_path / "out.csv"
    result = cli("assign", path, "--out", out, "--at", "2026-02-01")
    assert result.exit_code == 0, result.output
    assert "coordinates read as wgs84, from the file" in result.output
    assert assigned(out) == {code: code for code, _, _ in placed}


def test_mostly_swapped_rows_stop_with_the_hint(cli: Cli, grids: None, tmp_path: Path) -> None:
    placed = centres()
    # Columns named lon,lat but holding latitude then longitude, as spreadsheets often do.
    points = write_points(tmp_path / "swapped.csv", [(code, y, x) for code, x, y in placed])
    out = tmp_path / "out.csv"
    result = cli("assign", points, "--out", out, "--at", "2026-02-01", "--crs", "wgs84")
    assert result.exit_code == 2, result.output
    assert "lon and lat look swapped" in result.output
    assert f"{len(placed)} of {len(placed)}" in result.output
    assert not out.exists()


def test_a_few_swapped_rows_are_flagged(cli: Cli, grids: None, tmp_path: Path) -> None:
    placed = centres()
    swapped = {placed[0][0], placed[5][0]}
    rows = [(code, y, x) if code in swapped else (code, x, y) for code, x, y in placed]
    points = write_points(tmp_path / "some.csv", rows)
    out = tmp_path / "out.csv"
    result = cli("assign", points, "--out", out, "--at", "2026-02-01", "--crs", "wgs84")
    assert result.exit_code == 0, result.output
    assert "2 rows: lon and lat look swapped" in result.output
    with out.open(encoding="utf-8") as handle:
        notes = {row["id"]: row["note"] for row in csv.DictReader(handle)}
    assert {ref for ref, note in notes.items() if note == "lon and lat look swapped"} == swapped
    assert all(note == "" for ref, note in notes.items() if ref not in swapped)
