"""Redrawn boundaries: issues move to the new grids and keep the old ones in their history."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from shapely.geometry import box, mapping
from sqlalchemy import Engine, select

from data.db import session_factory
from data.importer import FieldMap, ImportOptions, import_layer
from data.models import Issue, IssueEvent, utcnow
from data.reassign import reassign_issues

OLD, NEW = dt.date(2026, 1, 1), dt.date(2026, 7, 1)


def layer(path: Path, features: list[tuple[str, str, object]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": c, "name": c, **({"parent_code": p} if p else {})}, "geometry": mapping(g)}
        for c, p, g in features]}))
    return path


def setup(engine: Engine, tmp_path: Path) -> None:
    west, east = box(111.30, 23.50, 111.31, 23.51), box(111.31, 23.50, 111.32, 23.51)
    steps = [
        ("communities", [("C1", None, west.union(east))], OLD),
        ("grids", [("G1", "C1", west), ("G2", "C1", east)], OLD),
        # Redrawn in July: the boundary moves east by a quarter of a grid.
        ("grids", [("H1", "C1", box(111.30, 23.50, 111.3125, 23.51)), ("H2", "C1", box(111.3125, 23.50, 111.32, 23.51))], NEW),
    ]
    for i, (name, features, effective) in enumerate(steps):
        with session_factory(engine)() as session:
            import_layer(session, ImportOptions(name, layer(tmp_path / f"{i}.geojson", features), FieldMap(), effective=effective))
    with session_factory(engine)() as session, session.begin():
        for ref, lon, grid, status in (("A", 111.305, "G1", "in_progress"), ("B", 111.311, "G2", "dispatched"),
                                       ("C", 111.311, "G2", "closed"), ("D", 111.318, "G2", "reported")):
            issue = Issue(ref=ref, category="road_damaged", description="x", status=status, grid_code=grid,
                          community_code="C1", geom=f"SRID=4326;POINT({lon} 23.505)", created_at=utcnow(), updated_at=utcnow())
            session.add(issue)
            session.flush()
            session.add(IssueEvent(issue_id=issue.id, seq=1, action="report", to_status="reported", actor="resident"))


def grids(engine: Engine) -> dict[str, str]:
    with session_factory(engine)() as session:
        return dict(session.execute(select(Issue.ref, Issue.grid_code)).all())


def test_open_only_moves_open_issues_and_keeps_history(engine: Engine, tmp_path: Path) -> None:
    setup(engine, tmp_path)
    with session_factory(engine)() as session, session.begin():
        summary = reassign_issues(session, dt.date(2026, 8, 1), 50, open_only=True)
    assert grids(engine) == {"A": "H1", "B": "H1", "C": "G2", "D": "H2"}  # C is closed: untouched
    assert summary.to_dict("records") == [{"community_code": "C1", "issues": 3, "changed_grid": 3}]
    with session_factory(engine)() as session:
        b = session.scalar(select(Issue).where(Issue.ref == "B"))
        events = [(e.seq, e.action, (e.data or {}).get("from", {}).get("grid_code")) for e in b.events]
    assert events == [(1, "report", None), (2, "reassigned", "G2")]


def test_all_issues_and_a_second_run_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    setup(engine, tmp_path)
    with session_factory(engine)() as session, session.begin():
        reassign_issues(session, dt.date(2026, 8, 1), 50)
    assert grids(engine)["C"] == "H1"
    with session_factory(engine)() as session, session.begin():
        again = reassign_issues(session, dt.date(2026, 8, 1), 50)
    assert int(again["changed_grid"].sum()) == 0
    # Back to the old layers: the issues return to their first grids.
    with session_factory(engine)() as session, session.begin():
        reassign_issues(session, dt.date(2026, 3, 1), 50)
    assert grids(engine) == {"A": "G1", "B": "G2", "C": "G2", "D": "G2"}
