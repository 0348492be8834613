"""The closed loop through HTTP with real tokens, on both backends, over the demo city."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from api.app import create_app
from data.cases import add_user
from data.db import session_factory
from data.demo import load_demo_city
from data.models import Department, Issue
from data.settings import Settings
from geo.crs import wgs84_to_gcj02

# A point in the demo city: the centroid of a known grid is found at fixture time.
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def city(engine: Engine, database_url: str, tmp_path) -> Iterator[tuple[TestClient, dict[str, str], dict]]:  # type: ignore[no-untyped-def]
    load_demo_city(engine)
    with session_factory(engine)() as session, session.begin():
        grid = session.execute(select(Issue.grid_code, Issue.subdistrict_code).where(Issue.grid_code.is_not(None)).limit(1)).one()
        sanitation = session.scalar(select(Department.code).where(Department.kind == "sanitation", Department.area_code == grid[1]))
        tokens = {
            "dispatcher": add_user(session, "dispatcher1", "dispatcher"),
            "handler": add_user(session, "handler1", "handler", sanitation),
            "grid_worker": add_user(session, "worker1", "grid_worker"),
            "other_handler": add_user(session, "handler2", "handler",
                                      session.scalar(select(Department.code).where(Department.kind == "police").limit(1))),
        }
    settings = Settings(database_url=database_url, data_dir=tmp_path, escalate_every_seconds=0, report_rate_per_minute=1000)
    with TestClient(create_app(settings)) as client:
        features = client.get("/api/v1/areas/grid", params={"at": "2026-06-01"}).json()["features"]
        grid_feature = next(f for f in features if f["properties"]["code"] == grid[0])  # the handler's sub-district
        yield client, tokens, grid_feature


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def centre(feature: dict) -> tuple[float, float]:
    import shapely.geometry

    point = shapely.geometry.shape(feature["geometry"]).representative_point()
    return point.x, point.y


def act(client: TestClient, token: str, issue_id: int, action: str, version: int, **extra: object):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/issues/{issue_id}/transitions", json={"action": action, **extra},
                       headers={**auth(token), "If-Match": f'"{version}"'})


def test_whole_loop_with_gcj02_report(city) -> None:  # type: ignore[no-untyped-def]
    client, tokens, grid = city
    lon, lat = centre(grid)
    glon, glat = wgs84_to_gcj02(lon, lat)  # the phone app reports in GCJ-02
    created = client.post("/api/v1/issues", data={
        "lon": repr(float(glon)), "lat": repr(float(glat)), "crs": "gcj02", "category": "exposed_rubbish",
        "description": "小区门口垃圾堆积", "reporter_contact": "13800000000",
    }, files=[("media", ("photo.png", io.BytesIO(PNG), "image/png"))])
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["areas"]["grid"] == grid["properties"]["code"]
    assert body["department_code"] and body["due_at"] and body["status"] == "reported"
    issue_id, version = body["id"], body["version"]

    # Public view: no contact, no media before acceptance.
    public = client.get(f"/api/v1/issues/{issue_id}").json()["properties"]
    assert "reporter_contact" not in public and "media" not in public

    steps = [("dispatcher", "accept"), ("dispatcher", "dispatch"), ("handler", "start"), ("handler", "respond"),
             ("grid_worker", "fail_verification"), ("handler", "respond"), ("grid_worker", "verify")]
    for role, action in steps:
        response = act(client, tokens[role], issue_id, action, version, note=f"{action} by {role}")
        assert response.status_code == 200, (action, response.text)
        version = response.json()["version"]
    closed = act(client, tokens["dispatcher"], issue_id, "close", version, satisfaction=4)
    assert closed.json()["status"] == "closed"

    detail = client.get(f"/api/v1/issues/{issue_id}", headers=auth(tokens["dispatcher"])).json()["properties"]
    assert [h["action"] for h in detail["history"]] == ["report", "accept", "dispatch", "start", "respond",
                                                        "fail_verification", "respond", "verify", "close"]
    assert detail["reporter_contact"] == "13800000000" and detail["satisfaction"] == 4
    assert len(client.get(f"/api/v1/issues/{issue_id}").json()["properties"]["media"]) == 1  # public after acceptance

    stats = client.get("/api/v1/stats", params={"level": "grid"}).json()["items"]
    mine = next(s for s in stats if s["key"] == grid["properties"]["code"])
    assert mine["received"] >= 1 and mine["mean_satisfaction"] is not None


def test_conflicts_roles_and_versions(city) -> None:  # type: ignore[no-untyped-def]
    client, tokens, grid = city
    lon, lat = centre(grid)
    body = client.post("/api/v1/issues", json={"lon": lon, "lat": lat, "category": "dirty_road", "description": "路面油污"}).json()
    issue_id = body["id"]
    illegal = act(client, tokens["dispatcher"], issue_id, "close", 1)
    assert illegal.status_code == 409 and illegal.json()["allowed"] == ["accept", "reject"]
    assert act(client, tokens["handler"], issue_id, "accept", 1).status_code == 403
    assert act(client, tokens["dispatcher"], issue_id, "accept", 1).status_code == 200
    stale = act(client, tokens["dispatcher"], issue_id, "dispatch", 1)  # a second dispatcher with the old version
    assert stale.status_code == 412 and "version" in stale.json()["detail"]
    assert client.post(f"/api/v1/issues/{issue_id}/transitions", json={"action": "dispatch", "version": 2}).status_code == 403
    assert client.get("/api/v1/issues", headers=auth("not-a-token")).status_code == 401
    # A handler of another department does not see the case.
    assert client.get(f"/api/v1/issues/{issue_id}", headers=auth(tokens["other_handler"])).status_code == 404


def test_idempotency_key_and_duplicates(city) -> None:  # type: ignore[no-untyped-def]
    client, _tokens, grid = city
    lon, lat = centre(grid)
    report = {"lon": lon, "lat": lat, "category": "illegal_parking", "description": "车辆堵塞消防通道"}
    first = client.post("/api/v1/issues", json=report, headers={"Idempotency-Key": "phone-42"})
    again = client.post("/api/v1/issues", json=report, headers={"Idempotency-Key": "phone-42"})
    assert first.status_code == 201 and again.status_code == 200 and again.json()["id"] == first.json()["id"]
    second = client.post("/api/v1/issues", json={**report, "lon": lon + 0.0002}).json()  # ~20 m away
    assert first.json()["id"] in [d["id"] for d in second["possible_duplicates"]]


@pytest.mark.parametrize(
    ("request_kwargs", "status", "fragment"),
    [
        ({"json": {"lon": 111.3, "lat": 23.5, "category": "alien_landing", "description": "x"}}, 422, "unknown category"),
        ({"json": {"lon": 111.3, "lat": 23.5, "category": "dirty_road", "description": "长" * 4001}}, 422, "at most 4000"),
        ({"content": "描述".encode("gb18030"), "headers": {"content-type": "application/json"}}, 422, "not valid UTF-8"),
        ({"data": {"lon": "111.3", "lat": "23.5", "category": "dirty_road", "description": "x"},
          "files": [("media", ("a.exe", io.BytesIO(b"MZ"), "application/x-msdownload"))]}, 422, "not accepted"),
        ({"data": {"lon": "111.3", "lat": "23.5", "category": "dirty_road", "description": "x"},
          "files": [("media", ("fake.png", io.BytesIO(b"not a png at all"), "image/png"))]}, 422, "content is not image/png"),
        ({"json": {"lon": 211.3, "lat": 23.5, "category": "dirty_road", "description": "x"}}, 422, "out of range"),
        # A latitude without its longitude was a KeyError 500 once; now the answer names it.
        ({"json": {"lat": 23.5, "category": "dirty_road", "description": "x"}}, 422, "missing field lon"),
        # A multipart form (the crs part makes httpx send one: a plain form is a 415 now).
        ({"data": {"lon": "111.3", "category": "dirty_road", "description": "x"}, "files": {"crs": (None, "wgs84")}},
         422, "missing field lat"),
        ({"content": b'{"lon": 111.3, "lat": 23.5, "category": "dirty_road", "description": "x"}',
          "headers": {"content-type": "text/plain"}}, 415, "application/json or multipart/form-data"),
    ],
)
def test_bad_reports_store_nothing(city, request_kwargs: dict, status: int, fragment: str) -> None:  # type: ignore[no-untyped-def]
    client, tokens, _grid = city
    before = client.get("/api/v1/issues", params={"limit": 1}, headers=auth(tokens["dispatcher"])).json()["numberMatched"]
    response = client.post("/api/v1/issues", **request_kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert fragment in response.json()["detail"]
    after = client.get("/api/v1/issues", params={"limit": 1}, headers=auth(tokens["dispatcher"])).json()["numberMatched"]
    assert after == before


def test_oversize_media_is_refused(engine: Engine, database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    load_demo_city(engine)
    settings = Settings(database_url=database_url, data_dir=tmp_path, escalate_every_seconds=0, max_upload_mb=0.001)
    with TestClient(create_app(settings)) as client:
        big = PNG + b"\x00" * 5000
        response = client.post("/api/v1/issues", data={"lon": "111.3", "lat": "23.5", "category": "dirty_road", "description": "x"},
                               files=[("media", ("big.png", io.BytesIO(big), "image/png"))])
    assert response.status_code == 422 and "larger than" in response.json()["detail"]
    assert not (tmp_path / "media").exists() or not any((tmp_path / "media").iterdir())


def test_listing_filters_and_paging(city) -> None:  # type: ignore[no-untyped-def]
    client, tokens, _grid = city
    page = client.get("/api/v1/issues", params={"status": "closed", "limit": 50}).json()
    assert page["type"] == "FeatureCollection" and page["numberReturned"] == 50
    assert all(f["properties"]["status"] == "closed" for f in page["features"])
    assert page["links"][0]["rel"] == "next"
    assert all("reporter_contact" not in f["properties"] for f in page["features"])
    overdue = client.get("/api/v1/issues", params={"overdue": "true", "limit": 1000}).json()
    assert all(f["properties"]["overdue"] for f in overdue["features"])
    assert client.get("/api/v1/issues", params={"status": "lost"}).status_code == 422
    since = client.get("/api/v1/issues", params={"from": "2026-10-01", "to": "2026-10-31", "limit": 1000}).json()
    assert all(f["properties"]["created_at"] >= "2026-09-30T16:00" for f in since["features"])
    handler = client.get("/api/v1/issues", headers=auth(tokens["handler"]), params={"limit": 1000}).json()
    assert len({f["properties"]["department_code"] for f in handler["features"]}) <= 1


def test_escalation_raises_overdue_cases(city, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    """Past due: up to the district; a full time limit later: up to the city; each step recorded."""
    from data.cases import escalate

    client, tokens, grid = city
    lon, lat = centre(grid)
    issue_id = client.post("/api/v1/issues", json={"lon": lon, "lat": lat, "category": "dirty_road", "description": "x"}).json()["id"]
    version = 1
    for action in ("accept", "dispatch"):
        version = act(client, tokens["dispatcher"], issue_id, action, version).json()["version"]
    with session_factory(engine)() as session:
        due = session.get(Issue, issue_id).due_at
    hour = dt.timedelta(hours=1)
    with session_factory(engine)() as session, session.begin():
        escalate(session, due - hour)  # not yet due
        assert session.get(Issue, issue_id).escalation_level is None
        escalate(session, due + hour)  # dirty road: 2 working hours, now overdue
        assert session.get(Issue, issue_id).escalation_level == "district"
        escalate(session, due + 1.5 * hour)  # the 2 h limit has not passed a second time
        assert session.get(Issue, issue_id).escalation_level == "district"
        escalate(session, due + 2.5 * hour)
        assert session.get(Issue, issue_id).escalation_level == "city"
    history = client.get(f"/api/v1/issues/{issue_id}", headers=auth(tokens["dispatcher"])).json()["properties"]["history"]
    assert [h["action"] for h in history][-2:] == ["escalate", "escalate"]
    assert act(client, tokens["dispatcher"], issue_id, "dispatch", version).status_code in (409, 412)  # the version moved


def test_stats_match_an_independent_count(city, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    client, _tokens, _grid = city
    items = {i["key"]: i for i in client.get("/api/v1/stats", params={"level": "community"}).json()["items"]}
    with session_factory(engine)() as session:
        rows = session.execute(select(Issue.community_code, Issue.status, Issue.created_at, Issue.closed_at,
                                      Issue.due_at, Issue.satisfaction)).all()
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["key", "status", "created", "closed", "due", "score"])
    for key, group in frame.groupby("key"):
        mine = items[key]
        assert mine["received"] == len(group)
        assert mine["open"] == int((~group["status"].isin(["closed", "rejected"])).sum())
        scores = group["score"].dropna()
        assert mine["mean_satisfaction"] == (round(float(scores.mean()), 2) if len(scores) else None)


def test_routing_rules_are_edited_through_the_api(city) -> None:  # type: ignore[no-untyped-def]
    client, tokens, grid = city
    lon, lat = centre(grid)
    code = grid["properties"]["code"]
    rule = {"category": "dirty_road", "department_code": "D450403-WAT", "area_code": code}
    assert client.post("/api/v1/routing-rules", json=rule).status_code == 403  # the public may not
    departments = {r["department_code"] for r in client.get("/api/v1/routing-rules", params={"category": "dirty_road"}).json()}
    target = next(d for d in client.get("/api/v1/routing-rules").json() if d["department_code"] not in departments)["department_code"]
    created = client.post("/api/v1/routing-rules", json={**rule, "department_code": target}, headers=auth(tokens["dispatcher"]))
    assert created.status_code == 201, created.text
    assert client.post("/api/v1/routing-rules", json={**rule, "department_code": target}, headers=auth(tokens["dispatcher"])).status_code == 409
    routed = client.post("/api/v1/issues", json={"lon": lon, "lat": lat, "category": "dirty_road", "description": "x"}).json()
    assert routed["department_code"] == target  # the grid's own rule wins
    assert client.delete(f"/api/v1/routing-rules/{created.json()['id']}", headers=auth(tokens["dispatcher"])).status_code == 204
    again = client.post("/api/v1/issues", json={"lon": lon, "lat": lat, "category": "dirty_road", "description": "y"}).json()
    assert again["department_code"] != target


def test_reports_are_rate_limited_per_address(engine: Engine, database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    load_demo_city(engine)
    settings = Settings(database_url=database_url, data_dir=tmp_path, escalate_every_seconds=0, report_rate_per_minute=3)
    with TestClient(create_app(settings)) as client:
        codes = [client.post("/api/v1/issues", json={"lon": 111.3, "lat": 23.47, "category": "dirty_road",
                                                      "description": "x"}).status_code for _ in range(5)]
    assert codes == [201, 201, 201, 429, 429]


def test_clusters_endpoint(city) -> None:  # type: ignore[no-untyped-def]
    client, _tokens, _grid = city
    body = client.get("/api/v1/issues/clusters", params={"bbox": "111.1,23.3,111.5,23.7", "zoom": 12}).json()
    listed = client.get("/api/v1/issues", params={"limit": 1}).json()["numberMatched"]
    assert body["type"] == "FeatureCollection" and sum(f["properties"]["count"] for f in body["features"]) == listed
    assert client.get("/api/v1/issues/clusters", params={"bbox": "1,2,3", "zoom": 12}).status_code == 422
    assert client.get("/api/v1/issues/clusters", params={"bbox": "111.1,23.3,111.5,23.7", "zoom": 40}).status_code == 422
