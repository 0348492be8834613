"""The demo city loads into both backends, tiles cleanly, and is only loaded into an empty database."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from data.db import session_factory
from data.demo import DEMO_EFFECTIVE, DatabaseNotEmpty, load_demo_city
from data.demo_city import UnknownScale, generate_city
from data.importer import coverage_faults
from data.models import Area, Issue, IssueEvent
from data.repository import areas_at, is_empty, version_in_force


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
