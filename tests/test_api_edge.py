"""The API's edge (issue 11): unknown values, unknown fields, huge numbers, malformed
credentials, the last-resort error handler and the report rate limit.

Every test that reads the database runs on SpatiaLite and PostGIS over the demo city.
"""

from __future__ import annotations

import datetime as dt
import logging
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from api.app import create_app
from api.security import RateLimiter
from data.cases import add_user
from data.db import session_factory
from data.demo import load_demo_city
from data.models import Category, Department, Facility, Issue
from data.settings import Settings

PROBLEM = "application/problem+json"
HUGE = "99999999999999999999"  # beyond 64 bits, let alone PostGIS's 32-bit ids


@dataclass
class City:
    client: TestClient
    token: str  # a dispatcher's
    gate: str  # a gate system's
    issue: Issue
    facility: Facility
    categories: list[str]
    departments: list[str]


def make_settings(database_url: str, data_dir: Path, **extra: Any) -> Settings:
    options: dict[str, Any] = {"escalate_every_seconds": 0, "report_rate_per_minute": 1000, **extra}
    return Settings(database_url=database_url, data_dir=data_dir, **options)


@pytest.fixture
def city(engine: Engine, database_url: str, tmp_path: Path) -> Iterator[City]:
    load_demo_city(engine)
    with session_factory(engine)() as session, session.begin():
        token = add_user(session, "dispatcher1", "dispatcher")
        gate = add_user(session, "gate1", "gate")
        issue = session.scalars(select(Issue).where(Issue.status == "reported").limit(1)).one()
        facility = session.scalars(
            select(Facility)
            .where(Facility.kind == "car_park", Facility.capacity.is_not(None))
            .limit(1)
        ).one()
        categories = list(session.scalars(select(Category.code).order_by(Category.code)))
        departments = list(session.scalars(select(Department.code).order_by(Department.code)))
        session.expunge_all()
    with TestClient(create_app(make_settings(database_url, tmp_path))) as client:
        yield City(client, token, gate, issue, facility, categories, departments)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: Any, status: int, fragment: str = "") -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and fragment in body["detail"], body
    return body


# --- item 6: unknown values get a 422 naming the allowed ones ------------------------------


def test_unknown_values_are_refused_with_the_allowed_ones(city: City) -> None:
    client, c = city.client, city
    box = "-180,-90,180,90"
    cases = [
        # (path, params, the value named, an allowed value listed)
        (
            "/api/v1/facilities/nearby",
            {"lon": 111.3, "lat": 23.5, "kind": "parking"},
            "'parking'",
            "car_park",
        ),
        ("/api/v1/facilities", {"kind": "parking"}, "'parking'", "car_park"),
        ("/api/v1/issues", {"status": "lost"}, "'lost'", "in_progress"),
        ("/api/v1/issues", {"category": "rubbish"}, "'rubbish'", c.categories[0]),
        ("/api/v1/issues", {"department": "NOPE"}, "'NOPE'", "/api/v1/departments"),
        ("/api/v1/issues", {"area": "NOWHERE"}, "'NOWHERE'", "/api/v1/search"),
        (
            "/api/v1/issues/clusters",
            {"bbox": box, "zoom": 10, "category": "rubbish"},
            "'rubbish'",
            c.categories[0],
        ),
        (
            "/api/v1/issues/clusters",
            {"bbox": box, "zoom": 10, "department": "NOPE"},
            "'NOPE'",
            "departments",
        ),
        ("/api/v1/stats", {"level": "street"}, "'street'", "subdistrict"),
        ("/api/v1/areas/parish", {}, "'parish'", "community"),
        ("/api/v1/areas/parish/versions", {}, "'parish'", "community"),
        ("/api/v1/locate", {"lon": 111.3, "lat": 23.5, "crs": "mars"}, "'mars'", "gcj02"),
        ("/tiles/grids/0/0/0.mvt", {"crs": "bd09"}, "'bd09'", "gcj02"),
        ("/api/v1/routing-rules", {"category": "rubbish"}, "'rubbish'", c.categories[0]),
    ]
    for path, params, named, listed in cases:
        body = assert_problem(client.get(path, params=params), 422, named)
        assert listed in body["detail"], (path, body)
    # The allowed values come as a list too, for a client to offer.
    assert (
        "car_park" in client.get("/api/v1/facilities", params={"kind": "parking"}).json()["allowed"]
    )
    # Known values still filter as before; a case-insensitive crs is still read.
    assert (
        client.get("/api/v1/facilities", params={"kind": "car_park"}).json()["numberReturned"] > 0
    )
    assert client.get("/api/v1/issues", params={"category": c.categories}).status_code == 200
    assert (
        client.get("/api/v1/locate", params={"lon": 111.3, "lat": 23.5, "crs": "WGS84"}).status_code
        == 200
    )
    # A transition with an action the loop does not have.
    moved = client.post(
        f"/api/v1/issues/{c.issue.id}/transitions",
        json={"action": "approve"},
        headers={**auth(c.token), "If-Match": f'"{c.issue.version}"'},
    )
    assert "accept" in assert_problem(moved, 422, "'approve'")["allowed"]
    # Open311 keeps its own error list: an unknown service code is a 400 naming the known ones.
    listed = client.get("/open311/v2/requests.json", params={"service_code": "rubbish"})
    assert listed.status_code == 400 and c.categories[0] in listed.json()[0]["description"]


# --- item 6: request bodies refuse unknown fields -------------------------------------------


def test_unknown_body_fields_are_refused(city: City) -> None:
    client, c = city.client, city
    version = {"If-Match": f'"{c.issue.version}"'}
    # The dispatcher's mistake from the issue: "department" instead of "department_code".
    sent = client.post(
        f"/api/v1/issues/{c.issue.id}/transitions",
        headers={**auth(c.token), **version},
        json={"action": "accept", "department": c.departments[0]},
    )
    assert_problem(sent, 422, "department")
    rule = client.post(
        "/api/v1/routing-rules",
        headers=auth(c.token),
        json={"category": c.categories[0], "department": c.departments[0]},
    )
    assert_problem(rule, 422, "department")
    report = client.post(
        "/api/v1/issues",
        json={
            "longitude": 111.3,
            "latitude": 23.5,
            "category": c.categories[0],
            "description": "垃圾",
            "address": "某路",
        },
    )
    assert_problem(report, 422, "'latitude', 'longitude'")
    gate = client.put(
        f"/api/v1/facilities/{c.facility.id}/occupancy",
        headers=auth(c.gate),
        json={"occupied": 1, "free": 3},
    )
    assert_problem(gate, 422, "free")
    # Nothing was changed by the refused transition.
    assert (
        client.get(f"/api/v1/issues/{c.issue.id}").json()["properties"]["version"]
        == c.issue.version
    )


# --- huge numbers: 404 for an id that cannot exist, 422 for a range, never a 500 ------------


def test_huge_numbers_are_client_errors(city: City) -> None:
    client, c = city.client, city
    for path in (
        f"/api/v1/issues/{HUGE}",
        f"/api/v1/issues/{2**31}",
        "/api/v1/issues/0",
        "/api/v1/issues/-1",
    ):
        assert_problem(client.get(path), 404, "no issue")
    moved = client.post(
        f"/api/v1/issues/{HUGE}/transitions", json={"action": "accept"}, headers=auth(c.token)
    )
    assert_problem(moved, 404, "no issue")
    assert_problem(client.delete(f"/api/v1/routing-rules/{HUGE}", headers=auth(c.token)), 404)
    assert_problem(
        client.put(
            f"/api/v1/facilities/{HUGE}/occupancy", json={"occupied": 1}, headers=auth(c.gate)
        ),
        404,
        "no facility",
    )
    assert_problem(
        client.put(
            f"/api/v1/facilities/{c.facility.id}/occupancy",
            json={"occupied": int(HUGE)},
            headers=auth(c.gate),
        ),
        422,
        "occupied",
    )
    for params in ({"offset": HUGE}, {"offset": 2**63}, {"limit": HUGE}, {"offset": -1}):
        assert_problem(client.get("/api/v1/issues", params=params), 422, next(iter(params)))
    # The last day of the calendar is a valid end of a period, not an overflow.
    assert client.get("/api/v1/issues", params={"to": "9999-12-31"}).status_code == 200
    assert (
        client.get("/api/v1/stats", params={"level": "grid", "to": "9999-12-31"}).status_code == 200
    )
    assert (
        client.get(
            "/open311/v2/requests.json", params={"start_date": "9999-12-31T00:00:00Z"}
        ).status_code
        == 400
    )
    # An id in range that names nothing is the same 404.
    assert_problem(client.get(f"/api/v1/issues/{2**31 - 1}"), 404, "no issue")


def test_dates_are_iso_only(city: City) -> None:
    """A number is not read as a Unix timestamp: ``at=0`` would quietly mean 1970."""
    client = city.client
    lon, lat = 111.28, 23.48  # in the demo city (Wuzhou)
    for path, params in (
        ("/api/v1/locate", {"lon": lon, "lat": lat, "at": "0"}),
        ("/api/v1/areas/grid", {"at": "1700000000"}),
        ("/api/v1/issues", {"from": "0"}),
        ("/api/v1/stats", {"level": "grid", "to": "20261202"}),
        ("/tiles/grids/0/0/0.mvt", {"at": "0"}),
        ("/api/v1/facilities/nearby", {"lon": lon, "lat": lat, "open_at": "1700000000"}),
    ):
        assert_problem(client.get(path, params=params), 422, "write it as YYYY-MM-DD")
    assert client.get("/api/v1/locate", params={"lon": lon, "lat": lat, "at": "2026-06-01"}).status_code == 200
    nearby = client.get("/api/v1/facilities/nearby",
                        params={"lon": lon, "lat": lat, "open_at": "2026-06-01T20:00:00+08:00"})
    assert nearby.status_code == 200


# --- malformed credentials: always a 401 problem --------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        b"Bearer",  # no token at all
        b"Bearer ",  # an empty one
        b"Bearer    ",  # only spaces
        b"Bearer two words",  # spaces inside
        b"Basic ZGlzcGF0Y2hlcjE6c2VjcmV0",  # another scheme
        b"Token abc",  # another scheme
        b"",  # an empty header
        "Bearer 令牌".encode(),  # not ASCII
        b"Bearer \xff\xfe",  # not even UTF-8
        b"Bearer abc\tdef",  # a control character
    ],
)
def test_malformed_credentials_are_a_401_problem(city: City, header: bytes) -> None:
    response = city.client.get(f"/api/v1/issues/{city.issue.id}", headers={"Authorization": header})
    assert_problem(response, 401, "Authorization: Bearer")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_well_formed_credentials_still_work(city: City) -> None:
    path = f"/api/v1/issues/{city.issue.id}"
    for header in (f"Bearer {city.token}", f"bearer {city.token}", f"Bearer   {city.token}"):
        seen = city.client.get(path, headers={"Authorization": header})
        assert seen.status_code == 200 and "allowed_actions" in seen.json()["properties"], header
    assert_problem(city.client.get(path, headers=auth("not-a-token")), 401, "not valid")
    assert (
        "allowed_actions" not in city.client.get(path).json()["properties"]
    )  # no header: the public


# --- the last resort: problem+json with a reference, and the traceback logged ---------------


def failing_app(database_url: str, data_dir: Path) -> FastAPI:
    """The real app plus routes that fail the ways a bug and the calendar do."""
    from geo.worktime import CalendarOutOfRange, CalendarYearMissing  # the range is new in issue 11

    app = create_app(make_settings(database_url, data_dir))

    @app.get("/test-only/boom")
    def boom() -> None:
        raise RuntimeError("a bug nobody expected")

    @app.get("/test-only/calendar")
    def calendar() -> None:
        raise CalendarYearMissing(
            "no working-day calendar for 2031: load it with gridmap calendar import"
        )

    @app.get("/test-only/far-ahead")
    def far_ahead() -> None:
        raise CalendarOutOfRange(dt.date(2099, 1, 1), dt.date(2004, 1, 1), dt.date(2028, 12, 31))

    return app


def test_unexpected_errors_become_a_problem_with_a_reference(
    engine: Engine, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(failing_app(database_url, tmp_path), raise_server_exceptions=False) as client:
        with caplog.at_level(logging.ERROR, logger="gridmap"):
            response = client.get("/test-only/boom")
        body = assert_problem(response, 500, "quote reference")
        reference = body["reference"]
        assert (
            reference in body["detail"] and "a bug nobody expected" not in response.text
        )  # no internals
        logged = [r for r in caplog.records if reference in r.getMessage()]
        assert (
            logged and logged[0].exc_info and "a bug nobody expected" in str(logged[0].exc_info[1])
        )
        # Each failure has its own reference.
        assert client.get("/test-only/boom").json()["reference"] != reference

        # A calendar gap is the operator's (503); a date outside its range the client's (422).
        assert_problem(client.get("/test-only/calendar"), 503, "no working-day calendar for 2031")
        far = assert_problem(client.get("/test-only/far-ahead"), 422, "2099-01-01")
        assert (far["first"], far["last"]) == ("2004-01-01", "2028-12-31")


# --- the report rate limit -----------------------------------------------------------------


def post_report(client: TestClient, forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post(
        "/api/v1/issues", json={}, headers=headers
    ).status_code  # counted before it is read


def test_rate_limit_holds_and_ignores_forged_forwarding(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    app = create_app(make_settings(database_url, tmp_path, report_rate_per_minute=3))
    with TestClient(app, client=("203.0.113.9", 5000)) as client:
        assert [post_report(client) for _ in range(3)] == [422] * 3
        refused = client.post("/api/v1/issues", json={})
        assert_problem(refused, 429, "203.0.113.9")
        # A client cannot become someone else by writing the header itself.
        assert {post_report(client, f"198.51.100.{i}") for i in range(5)} == {429}


def test_forwarded_for_is_read_only_from_trusted_proxies(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        database_url, tmp_path, report_rate_per_minute=2, trusted_proxies=["10.0.0.0/8"]
    )
    with TestClient(create_app(settings), client=("10.1.2.3", 5000)) as proxy:
        # Two residents behind the proxy each have their own limit ...
        assert [post_report(proxy, "198.51.100.1") for _ in range(3)] == [422, 422, 429]
        assert [post_report(proxy, "198.51.100.2") for _ in range(2)] == [422, 422]
        # ... read from the right: a hop the resident wrote before the proxy's own is not believed.
        assert post_report(proxy, "1.2.3.4, 198.51.100.1") == 429
        # A chain of trusted proxies is walked to the first address that is not one.
        assert post_report(proxy, "198.51.100.1, 10.9.9.9") == 429


def test_limiter_forgets_clients_after_the_window() -> None:
    """Memory holds the clients of the last two windows only, whatever the traffic."""
    limiter = RateLimiter(per_minute=2)
    for i in range(2000):
        assert limiter.allow(f"198.51.{i // 250}.{i % 250}")[0]
    assert limiter.allow("198.51.0.0")[0] and not limiter.allow("198.51.0.0")[0]  # the limit holds
    import time as real_time

    limiter.storage.timer.join()  # any expiry run of the storage's in flight is over
    later = types.SimpleNamespace(time=lambda: real_time.time() + 180)  # three minutes on
    with (
        mock.patch("limits.storage.memory.time", later),
        mock.patch("limits.strategies.time", later),
    ):
        assert limiter.allow("198.51.0.0")[0]  # the window has moved on
        limiter.storage.timer.join()  # the storage's own expiry run, scheduled by that hit
        held = limiter.storage.reset()  # how many keys the storage held
    assert held <= 2, held  # the one client seen since (its counter), not 2,000
