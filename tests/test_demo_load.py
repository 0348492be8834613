"""The demo city loads into both backends, tiles cleanly, and is only loaded into an empty database."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from api.app import create_app
from data.cases import Clock, escalate
from data.db import session_factory
from data.demo import DEMO_EFFECTIVE, DatabaseNotEmpty, load_demo_city
from data.demo_city import REFERENCE_TIME, UnknownScale, generate_city
from data.importer import coverage_faults
from data.models import Area, Category, Issue, IssueEvent
from data.repository import areas_at, is_empty, version_in_force
from data.settings import Settings
from geo.worktime import WorkCalendar, parse_working_day


@pytest.fixture(scope="module")
def city():  # type: ignore[no-untyped-def]
    return generate_city(2026)


def test_demo_loads_and_matches_the_generator(engine: Engine, city) -> None:  # type: ignore[no-untyped-def]
    counts = load_demo_city(engine)
    assert counts == {
        "district": len(city.districts), "subdistrict": len(city.subdistricts),
        "community": len(city.communities), "grid": len(city.grids),
        "compounds": len(city.compounds), "departments": len(city.departments),
        "facilities": len(city.facilities), "issues": len(city.issues),
        "issue_events": len(city.issue_events),
        "categories": len(city.categories), "routing_rules": counts["routing_rules"],
    }
    assert counts["routing_rules"] >= len(city.categories) * 3  # every category routed in every district at least
    with session_factory(engine)() as session:
        # Grids tile their communities: the coverage check finds nothing.
        assert coverage_faults(session, DEMO_EFFECTIVE) == []
        # Each issue's stored grid is the grid the database finds at its point.
        grid_version = version_in_force(session, "grid", DEMO_EFFECTIVE)
        sample = session.execute(
            select(Issue.grid_code, func.ST_X(Issue.geom), func.ST_Y(Issue.geom)).order_by(Issue.ref).limit(40)
        ).all()
        for grid_code, lon, lat in sample:
            assert grid_code in areas_at(session, lon, lat, grid_version.id)
        statuses = dict(session.execute(select(Issue.status, func.count()).group_by(Issue.status)).all())
        assert statuses == city.issues["status"].value_counts().to_dict()
        assert session.scalar(select(func.count()).select_from(IssueEvent)) == len(city.issue_events)
        assert session.scalar(select(func.count()).select_from(Area)) == 3 + 8 + 57 + len(city.grids)


def test_demo_issues_carry_what_the_loop_records(engine: Engine, city) -> None:  # type: ignore[no-untyped-def]
    """Deadline from the last dispatch (or the report), close time, and the generator's score."""
    load_demo_city(engine)
    # The intake's clock with the default calendar and working day.
    clock = Clock(WorkCalendar(), parse_working_day(Settings.model_fields["working_day"].default))
    with session_factory(engine)() as session:
        kinds = {c.code: c for c in session.scalars(select(Category))}
        issues = session.execute(select(Issue.id, Issue.ref, Issue.category, Issue.status, Issue.due_at,
                                        Issue.closed_at, Issue.satisfaction)).all()
        history: dict[int, list[tuple]] = defaultdict(list)
        for issue_id, at, action in session.execute(
            select(IssueEvent.issue_id, IssueEvent.at, IssueEvent.action).order_by(IssueEvent.issue_id, IssueEvent.seq)
        ):
            history[issue_id].append((at, action))
    scores = city.issues.set_index("ref")["satisfaction"]
    dispatched = 0
    for issue in issues:
        events = history[issue.id]
        closes = [at for at, action in events if action == "close"]
        assert issue.closed_at == (closes[-1] if issue.status == "closed" else None), issue.ref
        dispatches = [at for at, action in events if action == "dispatch"]
        dispatched += bool(dispatches)
        start = dispatches[-1] if dispatches else events[0][0]  # the report
        assert issue.due_at == clock.due(start, kinds[issue.category]), issue.ref
        score = scores[issue.ref]
        assert issue.satisfaction == (None if pd.isna(score) else int(score)), issue.ref
    assert 0 < dispatched < len(issues)
    assert any(issue.satisfaction is not None for issue in issues)


def test_demo_stats_and_escalation_see_the_deadlines(engine: Engine, database_url: str, tmp_path: Path) -> None:
    load_demo_city(engine)
    settings = Settings(database_url=database_url, data_dir=tmp_path, escalate_every_seconds=0)
    with TestClient(create_app(settings)) as client:
        items = client.get("/api/v1/stats", params={"level": "community"}).json()["items"]
    with session_factory(engine)() as session:
        timed = set(session.scalars(select(Issue.community_code).where(
            Issue.status == "closed", Issue.closed_at.is_not(None), Issue.due_at.is_not(None))))
    # Every community with closed cases that had a deadline gets an on-time rate, and only those.
    assert timed and {i["key"] for i in items if i["on_time_rate"] is not None} == timed
    assert any(0 < i["on_time_rate"] < 1 for i in items if i["on_time_rate"] is not None)
    assert all(i["median_handling_hours"] is not None for i in items if i["key"] in timed)
    assert any(i["mean_satisfaction"] is not None for i in items)
    assert sum(i["overdue"] for i in items) > 0
    # At the demo's "now", stalled cases are past due and escalation raises them.
    with session_factory(engine)() as session, session.begin():
        raised = escalate(session, REFERENCE_TIME.to_pydatetime())
    assert raised["district"] > 0


def test_demo_refuses_a_database_with_data(engine: Engine) -> None:
    load_demo_city(engine)
    assert load_demo_city(engine, if_empty=True) is None
    with pytest.raises(DatabaseNotEmpty, match="empty database"):
        load_demo_city(engine)


def test_unknown_scale_fails_before_touching_the_database(engine: Engine) -> None:
    with pytest.raises(UnknownScale, match=r"unknown demo scale 'nope': choose one of demo, city"):
        load_demo_city(engine, scale="nope")
    with session_factory(engine)() as session:
        assert is_empty(session)
