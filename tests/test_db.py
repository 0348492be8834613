"""The schema on both backends: spatial indexes, constraints, append-only history."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap

import pytest
import shapely
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import DatabaseError, IntegrityError

from data.db import backend_name, make_engine, session_factory
from data.migrate import is_current, upgrade
from data.models import Area, Issue, IssueEvent, LayerVersion
from data.repository import areas_at, dialect_for, insert_rows

UTC = dt.UTC
GEOMETRY_TABLES = ("areas", "compounds", "departments", "facilities", "issues")


def test_spatialite_then_pyogrio_does_not_crash(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """STACK.md's trap: GDAL imported after mod_spatialite segfaults. data.db imports it first."""
    script = textwrap.dedent(f"""
        from data.db import make_engine
        from sqlalchemy import text
        engine = make_engine("sqlite:///{tmp_path / 'x.sqlite'}")
        with engine.connect() as conn:
            conn.execute(text("SELECT spatialite_version()"))
        import geopandas, pyogrio
        frame = geopandas.GeoDataFrame(geometry=[geopandas.points_from_xy([1], [2])[0]], crs=4326)
        frame.to_file("{tmp_path / 'x.gpkg'}")
        print(len(pyogrio.read_dataframe("{tmp_path / 'x.gpkg'}")))
    """)
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"exit {result.returncode} (-11 is a segfault): {result.stderr[-2000:]}"
    assert result.stdout.strip() == "1"


def test_migrations_are_idempotent_and_current(engine: Engine) -> None:
    upgrade(engine)
    assert is_current(engine)
    assert set(GEOMETRY_TABLES) <= set(inspect(engine).get_table_names())


def test_every_geometry_column_has_a_spatial_index(engine: Engine) -> None:
    with engine.connect() as conn:
        if backend_name(engine) == "spatialite":
            indexed = {
                row[0]
                for row in conn.execute(
                    text("SELECT f_table_name FROM geometry_columns WHERE spatial_index_enabled = 1")
                )
            }
        else:
            indexed = {
                row[0]
                for row in conn.execute(
                    text("SELECT tablename FROM pg_indexes WHERE indexdef ILIKE '%USING gist (geom)%'")
                )
            }
    assert set(GEOMETRY_TABLES) <= indexed


def _two_areas(engine: Engine) -> int:
    with session_factory(engine)() as session, session.begin():
        version = LayerVersion(level="grid", effective_from=dt.date(2026, 1, 1))
        session.add(version)
        session.flush()
        insert_rows(session, Area.__table__, [
            {"layer_version_id": version.id, "level": "grid", "code": code, "name": code, "parent_code": None,
             "geom": shapely.MultiPolygon([shapely.box(x, 0, x + 1, 1)])}
            for code, x in (("A", 0.0), ("B", 1.0))
        ])
        return version.id


def test_point_lookup_goes_through_the_spatial_index(engine: Engine) -> None:
    version = _two_areas(engine)
    with session_factory(engine)() as session:
        assert areas_at(session, 0.5, 0.5, version) == ["A"]
        assert areas_at(session, 1.0, 0.5, version) == ["A", "B"]  # the shared edge is in both
        assert areas_at(session, 5.0, 0.5, version) == []
        where = dialect_for(session).bbox_filter(Area.__table__, (0.5, 0.5, 0.5, 0.5))
        query = select(Area.__table__.c.code).where(where)
        sql = str(query.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
        if backend_name(engine) == "spatialite":
            plan = " ".join(str(r) for r in session.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
            assert "idx_areas_geom" in plan or "SpatialIndex" in plan, plan
        else:
            session.execute(text("SET enable_seqscan = off"))  # tiny table: make the planner show the index path
            plan = " ".join(r[0] for r in session.execute(text(f"EXPLAIN {sql}")))
            assert "idx_areas_geom" in plan, plan


def _issue(engine: Engine) -> int:
    with session_factory(engine)() as session, session.begin():
        issue = Issue(ref="T1", category="road_damaged", description="坑", status="reported",
                      geom="SRID=4326;POINT(111.3 23.5)",
                      created_at=dt.datetime(2026, 3, 1, 8, tzinfo=UTC), updated_at=dt.datetime(2026, 3, 1, 8, tzinfo=UTC))
        session.add(issue)
        session.flush()
        session.add(IssueEvent(issue_id=issue.id, seq=1, action="report", to_status="reported", actor="resident",
                               at=dt.datetime(2026, 3, 1, 8, tzinfo=UTC)))
        return issue.id


def test_issue_history_is_append_only(engine: Engine) -> None:
    _issue(engine)
    for statement in ("UPDATE issue_events SET note = 'rewritten'", "DELETE FROM issue_events"):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM issue_events")).scalar() == 1


def test_timestamps_keep_their_instant(engine: Engine) -> None:
    issue_id = _issue(engine)
    with session_factory(engine)() as session:
        issue = session.get(Issue, issue_id)
        assert issue.created_at == dt.datetime(2026, 3, 1, 16, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@pytest.mark.parametrize(
    ("statement", "why"),
    [
        ("UPDATE issues SET status = 'lost'", "status outside the loop"),
        ("INSERT INTO layer_versions (level, effective_from, imported_at) VALUES ('city', '2026-01-01', '2026-01-01')", "unknown level"),
    ],
)
def test_check_constraints(engine: Engine, statement: str, why: str) -> None:
    _issue(engine)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(statement))


def test_unsupported_url_says_what_to_use() -> None:
    with pytest.raises(RuntimeError, match="postgresql"):
        make_engine("mysql://localhost/x")
