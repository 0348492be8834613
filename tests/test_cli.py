"""The gridmap command line, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapely.geometry import box, mapping
from typer.testing import CliRunner

from api.cli import app
from data.settings import get_settings


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", database_url)
    monkeypatch.setenv("GRIDMAP_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield lambda *args: CliRunner().invoke(app, [str(a) for a in args])
    get_settings.cache_clear()


def write(path: Path, features: list[tuple[dict, object]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": p, "geometry": mapping(g)} for p, g in features]}))
    return path


def test_import_check_and_fault_file(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    community = write(tmp_path / "c.geojson", [({"code": "C1", "name": "社区"}, box(111.3, 23.5, 111.32, 23.51))])
    grids = write(tmp_path / "g.geojson", [
        ({"code": "G1", "name": "一", "parent_code": "C1"}, box(111.3, 23.5, 111.309, 23.51)),
        ({"code": "G2", "name": "二", "parent_code": "C1"}, box(111.31, 23.5, 111.32, 23.51)),
    ])
    result = cli("import", "communities", community, "--effective", "2026-01-01")
    assert result.exit_code == 0, result.output
    faults = tmp_path / "faults.geojson"
    result = cli("import", "grids", grids, "--effective", "2026-01-01", "--faults", faults, "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert "imported 2 grids" in result.output and "gap" in result.output
    body = json.loads(faults.read_text())
    assert [f["properties"]["kind"] for f in body["features"]] == ["gap"]
    assert json.loads((tmp_path / "r.json").read_text())["imported"] == 2
    result = cli("check", "grids", "--on", "2026-06-01")
    assert result.exit_code == 0 and "gap of" in result.output


def test_rejected_import_exits_non_zero_and_lists_problems(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = write(tmp_path / "d.geojson", [({"code": "A", "name": "a"}, box(23.5, 111.3, 23.6, 111.4))])
    result = cli("import", "districts", bad, "--report", tmp_path / "r.json")
    assert result.exit_code == 1
    assert "feature #1 (A): latitude" in result.output and "swapped" in result.output
    assert "nothing imported, 1 problem found" in result.output
    assert json.loads((tmp_path / "r.json").read_text())["problems"][0]["feature"] == 1
    result = cli("import", "parishes", bad)
    assert result.exit_code == 2 and "unknown layer 'parishes'" in result.output


def test_assign_writes_one_row_per_point_in_input_order(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    grids = write(tmp_path / "g.geojson", [
        ({"code": "G1", "name": "一"}, box(111.30, 23.50, 111.31, 23.51)),
        ({"code": "G2", "name": "二"}, box(111.31, 23.50, 111.32, 23.51)),
    ])
    assert cli("import", "grids", grids, "--effective", "2026-01-01").exit_code == 0
    points = tmp_path / "p.csv"
    points.write_text("ref,x,y\nr3,111.315,23.505\nr1,111.305,23.505\nr2,111.31,23.505\nr4,abc,23.5\nr5,111.3203,23.505\n")
    out = tmp_path / "out.csv"
    result = cli("assign", points, "--out", out, "--lon-field", "x", "--lat-field", "y", "--at", "2026-02-01")
    assert result.exit_code == 0, result.output
    rows = [line.split(",") for line in out.read_text().splitlines()]
    header = rows[0]
    got = [(r[header.index("id")], r[header.index("match")], r[header.index("grid_code")]) for r in rows[1:]]
    assert got == [("r3", "inside", "G2"), ("r1", "inside", "G1"), ("r2", "boundary", "G1"),
                   ("r4", "outside", ""), ("r5", "snapped", "G2")]
    assert "wrote 5 rows" in result.output


def test_loop_commands(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    departments = tmp_path / "departments.csv"
    departments.write_text("code,name,kind,area_code\nSAN,环卫站,sanitation,\nCMD,指挥中心,command_centre,\n")
    assert cli("import", "departments", departments).exit_code == 0
    categories = tmp_path / "categories.csv"
    categories.write_text("code,name,group,time_limit_hours,working_hours\nexposed_rubbish,暴露垃圾,event,4,true\n")
    assert cli("import", "categories", categories).exit_code == 0
    bad = tmp_path / "bad_routing.csv"
    bad.write_text("category,department_code,area_code\nexposed_rubbish,NOPE,\nmissing_category,SAN,\n")
    result = cli("import", "routing", bad)
    assert result.exit_code == 1
    assert "row 1 (exposed_rubbish @ city): unknown department 'NOPE'" in result.output
    assert "row 2 (missing_category @ city): unknown category 'missing_category'" in result.output
    good = tmp_path / "routing.csv"
    good.write_text("category,department_code,area_code\nexposed_rubbish,SAN,\n")
    assert "imported 1 routing rules" in cli("import", "routing", good).output
    added = cli("users", "add", "wang", "--role", "dispatcher")
    assert added.exit_code == 0 and len(added.output.strip().splitlines()[-1]) >= 40  # the token
    assert cli("users", "add", "li", "--role", "handler").exit_code == 1  # a handler needs a department
    assert "raised 0 overdue cases" in cli("escalate").output


def test_demo_rejects_an_unknown_scale(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("demo", "--scale", "nope")
    assert result.exit_code == 2
    # Rich draws the message in a box and may wrap it: compare the words only.
    words = " ".join(result.output.replace("│", " ").split())
    assert "unknown demo scale 'nope': choose one of demo, city" in words
