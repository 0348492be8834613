"""Server-side issue clusters: counts add up, filters apply, on both backends."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import Engine, func, select

from data.clusters import cell_degrees, issue_clusters, zoom_for_box
from data.db import session_factory
from data.demo import load_demo_city
from data.models import Issue

CITY = (111.1, 23.3, 111.5, 23.7)
NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def test_clusters_count_every_issue_once(engine: Engine) -> None:
    load_demo_city(engine)
    with session_factory(engine)() as session:
        total = session.scalar(select(func.count()).select_from(Issue))
        open_total = session.scalar(select(func.count()).select_from(Issue).where(Issue.status.not_in(["closed", "rejected"])))
        for zoom in (11, 13, 16):
            found = issue_clusters(session, CITY, zoom, NOW)
            assert sum(c["count"] for c in found) == total
            assert sum(c["open"] for c in found) == open_total
            assert all(c["overdue"] <= c["open"] for c in found)
        coarse, fine = issue_clusters(session, CITY, 11, NOW), issue_clusters(session, CITY, 16, NOW)
        assert len(coarse) < len(fine) <= total  # zooming in splits clusters
        singles = [c for c in fine if c["count"] == 1]
        assert singles and all(session.get(Issue, c["issue_id"]) is not None for c in singles)
        closed = issue_clusters(session, CITY, 13, NOW, statuses=["closed"])
        assert sum(c["count"] for c in closed) == session.scalar(
            select(func.count()).select_from(Issue).where(Issue.status == "closed"))
        assert issue_clusters(session, (0.0, 0.0, 1.0, 1.0), 13, NOW) == []


def test_cell_size_and_zoom() -> None:
    assert cell_degrees(0) == pytest.approx(360 / 256 * 60)
    assert cell_degrees(1) == pytest.approx(cell_degrees(0) / 2)
    assert zoom_for_box((111.1, 23.3, 111.5, 23.7), 1024) == int(np.log2(360 * 1024 / (256 * 0.4)))
    with pytest.raises(ValueError, match="zoom 30"):
        issue_clusters(None, CITY, 30, NOW)  # type: ignore[arg-type]
