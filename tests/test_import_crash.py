"""An import killed half-way loses nothing: the database is exactly as before it started.

The import runs as a user runs it, ``gridmap import`` in a process of its own. It is
killed with SIGKILL (no handler, no cleanup) once its progress says the rows are written
and the database shows its write transaction open; then the database must hold exactly
what it held before, and the same import must succeed.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import box, mapping
from sqlalchemy import Engine, text

from data.models import Base

GRIDMAP = Path(sys.executable).with_name("gridmap")
# Big enough that checking coverage, after the rows are written and before the commit,
# takes a second or more even on a fast machine.
SIDE = 120


def grid_file(path: Path, side: int, prefix: str) -> Path:
    cell = 0.001
    features = [
        {
            "type": "Feature",
            "properties": {"code": f"{prefix}{r:03d}{c:03d}"},
            "geometry": mapping(
                box(111 + c * cell, 23 + r * cell, 111 + (c + 1) * cell, 23 + (r + 1) * cell)
            ),
        }
        for r in range(side)
        for c in range(side)
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def gridmap(*args: object, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(GRIDMAP), *map(str, args)],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def snapshot(engine: Engine) -> dict[str, Any]:
    """Every table's row count, and the versions and areas row by row (without geometry)."""
    with engine.connect() as conn:
        state: dict[str, Any] = {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            for table in Base.metadata.tables
        }
        state["versions"] = conn.execute(text("SELECT * FROM layer_versions ORDER BY id")).all()
        state["areas"] = conn.execute(
            text(
                "SELECT id, layer_version_id, level, code, name, parent_code FROM areas ORDER BY id"
            )
        ).all()
    return state


def write_transaction_open(engine: Engine) -> bool:
    """Whether another process holds a write transaction in the database right now."""
    if engine.dialect.name == "sqlite":
        probe = sqlite3.connect(engine.url.database, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")  # needs the write lock a writer holds
            probe.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as exc:
            return "locked" in str(exc)
        finally:
            probe.close()
    with engine.connect() as conn:  # a backend with a transaction id has written something
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
                )
            ).scalar()
        )


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_an_import_killed_half_way_leaves_the_database_as_it_was(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")}
    env |= {
        "GRIDMAP_DATABASE_URL": database_url,
        "GRIDMAP_DATA_DIR": str(tmp_path),
        "GRIDMAP_TILE_SEED_ZOOM": "0",
    }
    small = grid_file(tmp_path / "small.geojson", 3, "S")
    first = gridmap("import", "grids", small, "--effective", "2026-01-01", env=env)
    assert first.wait(timeout=300) == 0, first.stderr.read() if first.stderr else ""
    before = snapshot(engine)
    engine.dispose()  # no pooled connection of ours stays in the way

    big = grid_file(tmp_path / "big.geojson", SIDE, "B")
    run = gridmap("import", "grids", big, "--effective", "2026-06-01", env=env)
    assert run.stderr is not None
    seen = []
    for line in run.stderr:  # one line per step when stderr is not a terminal
        seen.append(line)
        if line.startswith("checking grid coverage"):  # every row is written, not committed
            break
    assert seen and seen[-1].startswith("checking grid coverage"), "".join(seen)
    assert write_transaction_open(engine)
    run.send_signal(signal.SIGKILL)
    assert run.wait(timeout=60) == -signal.SIGKILL  # killed, not finished
    engine.dispose()

    assert snapshot(engine) == before
    again = gridmap("import", "grids", big, "--effective", "2026-06-01", env=env)
    out = again.stderr.read() if again.stderr else ""
    assert again.wait(timeout=300) == 0, out
    assert f"imported {SIDE * SIDE} grids" in out
    after = snapshot(engine)
    assert after["areas"][: len(before["areas"])] == before["areas"]
    assert after["layer_versions"] == before["layer_versions"] + 1
