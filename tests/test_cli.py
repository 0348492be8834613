"""The gridmap command line, as a user runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box, mapping
from sqlalchemy import Engine
from typer.testing import CliRunner

from api.cli import app
from data.db import drop_database, holds_gridmap, recreate_database
from data.settings import get_settings

GRIDMAP = Path(sys.executable).with_name("gridmap")


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
    result = cli("assign", points, "--out", out, "--lon-field", "x", "--lat-field", "y", "--at", "2026-02-01", "--crs", "wgs84")
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


def run_gridmap(*args: object, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed command in a process of its own, as a user runs it (stderr apart)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")}
    return subprocess.run(
        [str(GRIDMAP), *map(str, args)], env={**base, "GRIDMAP_TILE_SEED_ZOOM": "0", **env}, cwd=cwd,
        capture_output=True, text=True, timeout=300, check=False,
    )


def library_noise(stderr: str) -> list[str]:
    """Lines that come from Python's warnings machinery rather than from gridmap."""
    return [line for line in stderr.splitlines() if re.search(r"Warning\b|warnings\.warn|^\s+\S+\(|\.py:\d+", line)]


def test_cli_output_is_clean(database_url: str, tmp_path: Path) -> None:
    env = {"GRIDMAP_DATABASE_URL": database_url, "GRIDMAP_DATA_DIR": str(tmp_path)}
    # A missing department used to print SQLAlchemy's SAWarning before the error.
    done = run_gridmap("users", "add", "x", "--role", "handler", "--department", "NOPE", env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert "error: no department 'NOPE'" in done.stderr
    assert library_noise(done.stderr) == []
    # A .cpg saying GBK over GB18030 text used to print GDAL's RuntimeWarning (and garble it).
    frame = gpd.GeoDataFrame({"code": ["G1"], "name": ["第一网格𠀀"]}, geometry=[box(111.3, 23.5, 111.31, 23.51)], crs=4326)
    frame.to_file(tmp_path / "g.shp", encoding="gb18030")
    (tmp_path / "g.cpg").write_text("GBK")
    done = run_gridmap("import", "grids", tmp_path / "g.shp", "--effective", "2026-01-01", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "imported 1 grids" in done.stderr
    assert library_noise(done.stderr) == []


def test_read_only_commands_on_a_missing_spatialite_file_create_nothing(tmp_path: Path) -> None:
    wrong = tmp_path / "forgot_to_set_it"
    env = {"GRIDMAP_DATA_DIR": str(wrong)}
    points = tmp_path / "p.csv"
    points.write_text("ref,lon,lat\nr1,111.305,23.505\n")
    info = run_gridmap("info", env=env, cwd=tmp_path)
    assert info.returncode == 0
    assert f"the database {wrong / 'gridmap.sqlite'} does not exist" in info.stderr
    assert "GRIDMAP_DATA_DIR" in info.stderr
    for command in (["check", "grids"], ["assign", points, "--out", tmp_path / "o.csv", "--crs", "wgs84"]):
        done = run_gridmap(*command, env=env, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert str(wrong / "gridmap.sqlite") in done.stderr and "nothing was created" in done.stderr
    assert not wrong.exists()  # no empty database left behind
    assert not (tmp_path / "o.csv").exists()


def test_read_only_commands_on_an_empty_postgis_database(postgis_engine: Engine, tmp_path: Path) -> None:
    url = postgis_engine.url.set(database=f"{postgis_engine.url.database}_empty").render_as_string(hide_password=False)
    recreate_database(url)
    try:
        env = {"GRIDMAP_DATABASE_URL": url, "GRIDMAP_DATA_DIR": str(tmp_path)}
        done = run_gridmap("check", "grids", env=env, cwd=tmp_path)
        assert done.returncode == 2
        assert "holds no gridmap data" in done.stderr and "GRIDMAP_DATABASE_URL" in done.stderr
        info = run_gridmap("info", env=env, cwd=tmp_path)
        assert info.returncode == 0 and "holds no gridmap data" in info.stderr
        assert not holds_gridmap(url)  # no schema was made in it
    finally:
        drop_database(url)


def test_assign_with_no_areas_in_force_stops(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    points = tmp_path / "p.csv"
    points.write_text("ref,lon,lat\nr1,111.305,23.505\n")
    result = cli("assign", points, "--out", tmp_path / "o.csv", "--crs", "wgs84")
    assert result.exit_code == 2
    assert "no areas are in force" in result.output and "nothing to assign against" in result.output
