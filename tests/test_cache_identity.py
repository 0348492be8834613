"""Caches never answer from a replaced layer or from another database (issue 11, item 1).

Each test runs on SpatiaLite and PostGIS, through the CLI (typer's CliRunner) and the HTTP
API (TestClient). The grids are two squares whose codes change on ``import --replace``
while their shapes stay: exactly what a stale cache keyed on ids, counts or areas cannot see.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import pytest
import shapely
import shapely.affinity
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping
from sqlalchemy import Engine, event, update
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli_app
from data.db import make_engine, session_factory
from data.models import Compound
from data.repository import to_db_geom
from data.settings import Settings, get_settings

EFFECTIVE = "2026-01-01"
AT = "2026-03-01"
WEST, EAST = box(111.30, 23.50, 111.31, 23.51), box(111.31, 23.50, 111.32, 23.51)
POINT = (111.305, 23.505)  # inside the west square


def tile_at(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """The slippy-map tile containing a point (OSM wiki formula)."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


TILE = tile_at(111.31, 23.505, 12)  # a tile holding both squares (each some 1 km wide)

Cli = Callable[..., Any]


def geojson(path: Path, features: list[tuple[dict[str, Any], Any]]) -> Path:
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": props, "geometry": mapping(geom)}
                    for props, geom in features
                ],
            }
        )
    )
    return path


def grids_file(tmp_path: Path, prefix: str) -> Path:
    """The two squares, coded ``{prefix}1`` (west) and ``{prefix}2`` (east)."""
    return geojson(
        tmp_path / f"grids-{prefix}.geojson",
        [
            ({"code": f"{prefix}1", "name": f"{prefix} 西"}, WEST),
            ({"code": f"{prefix}2", "name": f"{prefix} 东"}, EAST),
        ],
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The one data directory every database of a test shares (index and tiles)."""
    path = tmp_path / "shared-data-dir"
    path.mkdir()
    return path


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Iterator[Callable[..., Any]]:
    """``gridmap ARGS...`` on the database ``url``, as a user with one GRIDMAP_DATA_DIR."""

    def run(url: str, *args: object) -> Any:
        monkeypatch.setenv("GRIDMAP_DATABASE_URL", url)
        monkeypatch.setenv("GRIDMAP_DATA_DIR", str(data_dir))
        get_settings.cache_clear()
        result = CliRunner().invoke(cli_app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result

    yield run
    get_settings.cache_clear()


def assign_codes(cli: Cli, url: str, tmp_path: Path) -> dict[str, str]:
    """``gridmap assign`` of the one point: its grid and compound codes."""
    points = tmp_path / "points.csv"
    points.write_text(f"id,lon,lat\np1,{POINT[0]},{POINT[1]}\n")
    out = tmp_path / "assigned.csv"
    cli(url, "assign", points, "--out", out, "--crs", "wgs84", "--at", AT)
    with out.open(newline="") as handle:
        row = next(csv.DictReader(handle))
    return {"grid": row["grid_code"], "compound": row["compound_code"]}


def open_app(url: str, data_dir: Path) -> TestClient:
    return TestClient(
        create_app(Settings(database_url=url, data_dir=data_dir, escalate_every_seconds=0))
    )


def tile_codes(client: TestClient) -> tuple[str, set[str]]:
    """The grids tile holding both squares: its ETag and the codes drawn in it."""
    z, x, y = TILE
    response = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", params={"at": AT})
    assert response.status_code == 200, response.text
    layer = mapbox_vector_tile.decode(response.content)["grids"]
    return response.headers["etag"], {f["properties"]["code"] for f in layer["features"]}


def second_spatialite(tmp_path: Path, template: Path) -> str:
    """Another SpatiaLite file, made as the suite makes its own: a copy of a migrated file.

    On the SpatiaLite run both databases are copies of one file, so they even share the
    identity written at creation; only their addresses tell them apart.
    """
    path = tmp_path / "second" / "gridmap.sqlite"
    path.parent.mkdir()
    shutil.copy(template, path)
    return f"sqlite:///{path}"


# --- import --replace: the first request after it answers with the new codes -------------------


def test_cli_assign_after_replace_answers_with_the_new_codes(
    cli: Cli, database_url: str, tmp_path: Path, data_dir: Path
) -> None:
    cli(database_url, "import", "grids", grids_file(tmp_path, "A"), "--effective", EFFECTIVE)
    assert assign_codes(cli, database_url, tmp_path)["grid"] == "A1"
    assert list((data_dir / "index").rglob("*.pickle")), "the index is persisted"
    cli(
        database_url,
        "import",
        "grids",
        grids_file(tmp_path, "B"),
        "--effective",
        EFFECTIVE,
        "--replace",
    )
    assert assign_codes(cli, database_url, tmp_path)["grid"] == "B1"


def test_api_locate_and_tiles_after_replace_answer_with_the_new_codes(
    cli: Cli, database_url: str, tmp_path: Path, data_dir: Path
) -> None:
    cli(database_url, "import", "grids", grids_file(tmp_path, "A"), "--effective", EFFECTIVE)
    with open_app(database_url, data_dir) as client:
        params = {"lon": POINT[0], "lat": POINT[1], "at": AT}
        assert client.get("/api/v1/locate", params=params).json()["grid_code"] == "A1"
        etag, codes = tile_codes(client)
        assert codes == {"A1", "A2"}
        cli(
            database_url,
            "import",
            "grids",
            grids_file(tmp_path, "B"),
            "--effective",
            EFFECTIVE,
            "--replace",
        )
        # The very next requests, with no pause: nothing may be served from before.
        assert client.get("/api/v1/locate", params=params).json()["grid_code"] == "B1"
        new_etag, new_codes = tile_codes(client)
        assert new_codes == {"B1", "B2"} and new_etag != etag
        z, x, y = TILE
        revalidated = client.get(
            f"/tiles/grids/{z}/{x}/{y}.mvt", params={"at": AT}, headers={"If-None-Match": etag}
        )
        assert revalidated.status_code == 200, "the old ETag must not get a 304"


def test_cache_checks_are_single_row_reads_never_an_aggregate(
    cli: Cli, database_url: str, tmp_path: Path, data_dir: Path
) -> None:
    cli(database_url, "import", "grids", grids_file(tmp_path, "A"), "--effective", EFFECTIVE)
    with open_app(database_url, data_dir) as client:
        tile_codes(client)  # drawn and cached
        client.get("/api/v1/locate", params={"lon": POINT[0], "lat": POINT[1], "at": AT})
        statements: list[str] = []
        engine: Engine = client.app.state.engine  # type: ignore[attr-defined]

        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(" ".join(statement.lower().split()))

        event.listen(engine, "before_cursor_execute", record)
        try:
            tile_codes(client)
            client.get("/api/v1/locate", params={"lon": POINT[0], "lat": POINT[1], "at": AT})
        finally:
            event.remove(engine, "before_cursor_execute", record)
    assert statements, "the cache keys are read on every request"
    # A warm request reads the keys (identity, versions, stamps, generations) only.
    touched = [s for s in statements if " from areas" in s or " from compounds" in s]
    aggregates = [
        s for s in statements if any(f in s for f in ("count(", "sum(", "max(", "st_area("))
    ]
    assert touched == [] and aggregates == [], touched + aggregates


# --- two databases sharing one data directory never mix ---------------------------------------------


def test_two_databases_sharing_a_data_dir_never_mix(
    cli: Cli, database_url: str, tmp_path: Path, data_dir: Path, spatialite_template: Path
) -> None:
    """The test's database (SpatiaLite or PostGIS) and a second SpatiaLite file: the same
    shapes, the same version ids and row ids, but different codes."""
    other = second_spatialite(tmp_path, spatialite_template)
    cli(database_url, "import", "grids", grids_file(tmp_path, "A"), "--effective", EFFECTIVE)
    cli(other, "import", "grids", grids_file(tmp_path, "B"), "--effective", EFFECTIVE)
    assert assign_codes(cli, database_url, tmp_path)["grid"] == "A1"
    assert assign_codes(cli, other, tmp_path)["grid"] == "B1"
    assert assign_codes(cli, database_url, tmp_path)["grid"] == "A1"
    assert len([p for p in (data_dir / "index").iterdir() if p.is_dir()]) == 2, (
        "a folder per database"
    )
    with open_app(database_url, data_dir) as client:
        first_etag, first = tile_codes(client)
    with open_app(other, data_dir) as client:  # a new server: only the tiles on disk are shared
        second_etag, second = tile_codes(client)
    assert (first, second) == ({"A1", "A2"}, {"B1", "B2"}) and first_etag != second_etag
    assert len([p for p in (data_dir / "tiles").iterdir() if p.is_dir()]) == 2, (
        "a folder per database"
    )


# --- compounds: any insert, delete or update invalidates the index -------------------------------------


def test_a_compound_change_invalidates_the_index(
    cli: Cli, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    cli(database_url, "import", "grids", grids_file(tmp_path, "A"), "--effective", EFFECTIVE)
    around = shapely.box(POINT[0] - 0.001, POINT[1] - 0.001, POINT[0] + 0.001, POINT[1] + 0.001)
    compounds = geojson(tmp_path / "k1.geojson", [({"code": "K1", "name": "一小区"}, around)])
    cli(database_url, "import", "compounds", compounds)
    assert assign_codes(cli, database_url, tmp_path)["compound"] == "K1"
    # Reloaded under another code: one row deleted, one inserted (SQLite reuses its id).
    renamed = geojson(tmp_path / "k2.geojson", [({"code": "K2", "name": "二小区"}, around)])
    cli(database_url, "import", "compounds", renamed, "--replace")
    assert assign_codes(cli, database_url, tmp_path)["compound"] == "K2"
    # Moved away by an UPDATE: same count, same ids, on both backends.
    with session_factory(engine)() as session, session.begin():
        moved = shapely.MultiPolygon([shapely.affinity.translate(around, 0.01)])
        session.execute(
            update(Compound).values(geom=to_db_geom(moved)).where(Compound.code == "K2")
        )
    assert assign_codes(cli, database_url, tmp_path)["compound"] == ""


def test_the_api_sees_a_compound_change_at_once(
    cli: Cli, database_url: str, engine: Engine, tmp_path: Path, data_dir: Path
) -> None:
    cli(database_url, "import", "grids", grids_file(tmp_path, "A"), "--effective", EFFECTIVE)
    around = shapely.box(POINT[0] - 0.001, POINT[1] - 0.001, POINT[0] + 0.001, POINT[1] + 0.001)
    cli(
        database_url,
        "import",
        "compounds",
        geojson(tmp_path / "k1.geojson", [({"code": "K1", "name": "一"}, around)]),
    )
    with open_app(database_url, data_dir) as client:
        params = {"lon": POINT[0], "lat": POINT[1], "at": AT}
        assert client.get("/api/v1/locate", params=params).json()["compound_code"] == "K1"
        with session_factory(engine)() as session, session.begin():
            session.execute(update(Compound).values(code="K9").where(Compound.code == "K1"))
        assert client.get("/api/v1/locate", params=params).json()["compound_code"] == "K9"


def test_a_missing_identity_is_written_once_and_kept(database_url: str) -> None:
    """A database whose identity row is gone (a truncated one) gets one that lasts: a
    read-only caller's rollback must not make every later cache key new."""
    from sqlalchemy import delete

    from data.models import Meta
    from data.stamps import database_identity

    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session, session.begin():
            session.execute(delete(Meta))
        with session_factory(engine)() as session:
            first = database_identity(session)
            session.rollback()
        with session_factory(engine)() as session:
            assert database_identity(session) == first
    finally:
        engine.dispose()


def test_every_path_that_loads_areas_stamps_the_version(
    cli: Cli, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    """The demo city and the importer (with and without --replace) write each version's
    stamp in their own transaction, equal to a fresh hash of the rows as stored."""
    from sqlalchemy import select

    from data.demo import load_demo_city
    from data.models import Area, LayerVersion
    from data.repository import geom_column
    from data.stamps import content_stamp

    load_demo_city(engine)
    cli(database_url, "import", "grids", grids_file(tmp_path, "A"), "--effective", "2027-01-01")
    stamps = {}
    for replaced in (False, True):
        if replaced:
            cli(
                database_url,
                "import",
                "grids",
                grids_file(tmp_path, "B"),
                "--effective",
                "2027-01-01",
                "--replace",
            )
        with session_factory(engine)() as session:
            versions = session.scalars(select(LayerVersion)).all()
            assert len(versions) == 5
            for version in versions:
                table = Area.__table__
                rows = session.execute(
                    select(table.c.code, geom_column(table)).where(
                        table.c.layer_version_id == version.id
                    )
                ).all()
                assert version.content_stamp == content_stamp([tuple(r) for r in rows]), (
                    version.level
                )
                stamps.setdefault(version.id, set()).add(version.content_stamp)
    assert [len(s) for s in stamps.values()].count(2) == 1, "only the replaced version changed"
