"""Many residents reporting at once: every report is taken in, none is refused with a 500.

On SpatiaLite a deferred transaction that turns into a write while another writer commits
fails at once with "database is locked", whatever the busy timeout; 20 clients reporting at
once got hundreds of 500s that way (benchmarks/soak.py). Write requests therefore begin
IMMEDIATE and queue for the write lock in the process (data/db.py). This test sends reports
from 20 threads to the app under uvicorn, on both backends, and checks the answers and the
stored rows. No timing is asserted.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, select

from api.app import create_app
from data.cases import add_user
from data.db import session_factory
from data.demo import load_demo_city
from data.importer import today
from data.models import Category, Issue
from data.repository import areas, version_in_force
from data.settings import Settings
from tests.browser import live_server

CLIENTS = 20
REPORTS_EACH = 12


def _targets(engine: Engine) -> tuple[list[tuple[float, float]], list[str]]:
    """A point inside each grid of the demo city, and the categories to report under."""
    with session_factory(engine)() as session:
        version = version_in_force(session, "grid", today())
        assert version is not None
        points = [(a.geom.representative_point().x, a.geom.representative_point().y)
                  for a in areas(session, version.id)]
        return points, list(session.scalars(select(Category.code)))


def _report(base: str, number: int, points: list[tuple[float, float]], categories: list[str]) -> list[tuple[int, str]]:
    """One client's reports: (status, body) of each answer."""
    pick = random.Random(number)
    answers = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for index in range(REPORTS_EACH):
            lon, lat = pick.choice(points)
            try:
                response = client.post("/api/v1/issues", json={
                    "lon": lon, "lat": lat, "category": pick.choice(categories),
                    "description": f"concurrent report {number}-{index}",
                })
            except httpx.HTTPError as exc:  # the server dropped the exchange: counted, not raised
                answers.append((0, f"{exc.__class__.__name__}: {exc}"))
                continue
            answers.append((response.status_code, response.text[:300]))
    return answers


def test_reports_from_many_clients_at_once_are_all_taken_in(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    load_demo_city(engine)
    points, categories = _targets(engine)
    with session_factory(engine)() as session:
        before = session.scalar(select(func.count()).select_from(Issue))
    settings = Settings(database_url=database_url, data_dir=tmp_path, escalate_every_seconds=0,
                        report_rate_per_minute=100_000)
    with live_server(create_app(settings)) as server, ThreadPoolExecutor(CLIENTS) as pool:
        answers = [a for batch in pool.map(lambda n: _report(server.url, n, points, categories),
                                          range(CLIENTS)) for a in batch]
    refused = [a for a in answers if a[0] != 201]
    assert refused == [], f"{len(refused)} of {len(answers)} reports not taken in, e.g. {refused[:3]}"
    with session_factory(engine)() as session:
        stored = session.scalar(select(func.count()).select_from(Issue)) - before
        descriptions = set(session.scalars(
            select(Issue.description).where(Issue.description.like("concurrent report %"))
        ))
    # Every report stored once: a 201 is never lost and nothing is stored twice.
    assert stored == CLIENTS * REPORTS_EACH
    assert len(descriptions) == CLIENTS * REPORTS_EACH


def test_concurrent_transitions_on_one_case_one_wins_the_rest_412(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """Accept and reject sent together with the same If-Match: one wins, never a 500.

    A transaction that begins with a read and then writes cannot upgrade its lock on
    SQLite while another writer holds it; write requests take the lock first (data/db.py).
    """
    load_demo_city(engine)
    with session_factory(engine)() as session, session.begin():
        token = add_user(session, "dispatcher-race", "dispatcher")
        case = session.scalars(
            select(Issue).where(Issue.status == "reported").order_by(Issue.id).limit(1)
        ).one()
        case_id, version = case.id, case.version
    settings = Settings(database_url=database_url, data_dir=tmp_path, escalate_every_seconds=0)
    headers = {"Authorization": f"Bearer {token}", "If-Match": f'"{version}"'}

    def act(number: int) -> int:
        action = "accept" if number % 2 else "reject"
        with httpx.Client(base_url=server.url, timeout=60) as client:
            response = client.post(f"/api/v1/issues/{case_id}/transitions",
                                   json={"action": action, "note": f"race {number}"}, headers=headers)
            return response.status_code

    with live_server(create_app(settings)) as server, ThreadPoolExecutor(CLIENTS) as pool:
        statuses = sorted(pool.map(act, range(CLIENTS)))
    assert statuses.count(200) == 1, statuses
    assert statuses.count(412) == CLIENTS - 1, statuses
    with session_factory(engine)() as session:
        assert session.get(Issue, case_id).version == version + 1
