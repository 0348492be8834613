"""What a hostile client sends in one request: refused with a clear 4xx, never a 500 or bad XML.

Issue 12, items 7 (Open311 XML stays well-formed), 11 (more 500s) and 13 (bodies are read as
the type they declare). Every test runs on both backends through the real app.
"""

from __future__ import annotations

import json
import xml.dom.minidom
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, func, select

from api.app import create_app
from data.cases import add_user
from data.db import session_factory
from data.demo import load_demo_city
from data.models import Issue
from data.settings import Settings

V2 = "/open311/v2"
XML_ILLEGAL = ["\u0001", "\u000b", "\ufffe"]  # characters XML 1.0 cannot carry at all


@dataclass
class City:
    client: TestClient
    api_key: str
    lon: float
    lat: float
    engine: Engine

    def report(self, **fields: object) -> dict[str, object]:
        base = {
            "lon": self.lon,
            "lat": self.lat,
            "category": "exposed_rubbish",
            "description": "垃圾堆积",
        }
        return {**base, **fields}

    def open311(self, **fields: str) -> dict[str, str]:
        base = {
            "api_key": self.api_key,
            "service_code": "exposed_rubbish",
            "lat": repr(self.lat),
            "long": repr(self.lon),
            "description": "垃圾堆积",
        }
        return {**base, **fields}


@pytest.fixture
def city(engine: Engine, database_url: str, tmp_path: Path) -> Iterator[City]:
    load_demo_city(engine)
    with session_factory(engine)() as session, session.begin():
        api_key = add_user(session, "relay", "dispatcher")
        lon, lat = session.execute(
            select(func.ST_X(Issue.geom), func.ST_Y(Issue.geom))
            .where(Issue.grid_code.is_not(None))
            .order_by(Issue.id)
            .limit(1)
        ).one()
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        escalate_every_seconds=0,
        report_rate_per_minute=1000,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield City(client, api_key, float(lon), float(lat), engine)


def well_formed(response: Response) -> None:
    """A strict XML 1.0 parser takes the whole answer (it raises on any ill-formed byte)."""
    xml.dom.minidom.parseString(response.content)


# --- item 7: characters XML 1.0 cannot carry ----------------------------------------------


@pytest.mark.parametrize("char", XML_ILLEGAL)
@pytest.mark.parametrize("field", ["description", "address", "reporter_contact"])
def test_json_intake_refuses_characters_xml_cannot_carry(city: City, field: str, char: str) -> None:
    response = city.client.post("/api/v1/issues", json=city.report(**{field: f"bad{char}text"}))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert field in detail and f"U+{ord(char):04X}" in detail


@pytest.mark.parametrize("char", XML_ILLEGAL)
@pytest.mark.parametrize("field", ["description", "address_string", "first_name", "media_url"])
def test_open311_intake_refuses_characters_xml_cannot_carry(
    city: City, field: str, char: str
) -> None:
    value = f"https://example.cn/a{char}.jpg" if field == "media_url" else f"bad{char}text"
    for fmt in ("json", "xml"):
        response = city.client.post(f"{V2}/requests.{fmt}", data=city.open311(**{field: value}))
        assert response.status_code == 400, response.text
        if fmt == "xml":
            well_formed(response)
        else:
            assert f"U+{ord(char):04X}" in response.json()[0]["description"]


def test_xml_feed_stays_well_formed_with_a_case_stored_before_the_fix(city: City) -> None:
    with session_factory(city.engine)() as session, session.begin():
        issue = session.scalars(select(Issue).order_by(Issue.created_at.desc()).limit(1)).one()
        issue.description = "stored before the fix: \u0001 and \u000b and \u001f"
        issue_id = issue.id
        start = issue.created_at.isoformat()
    listed = city.client.get(f"{V2}/requests.xml", params={"start_date": start})
    assert listed.status_code == 200
    well_formed(listed)
    assert f"<service_request_id>{issue_id}</service_request_id>" in listed.text
    single = city.client.get(f"{V2}/requests/{issue_id}.xml")
    assert single.status_code == 200
    well_formed(single)
    assert "stored before the fix" in single.text
    for path in ("services.xml", "discovery.xml", "requests/nothing.xml", "no/such.xml"):
        well_formed(city.client.get(f"{V2}/{path}"))


# --- item 11: more 500s -------------------------------------------------------------------


HOSTILE_BODIES = {
    "lone surrogate": '{"lon": %(lon)r, "lat": %(lat)r, "category": "exposed_rubbish", '
    '"description": "\\ud800"}',
    "nested 100,000 deep": '{"description": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "lon with 400 digits": '{"lon": 1'
    + "0" * 399
    + ', "lat": %(lat)r, "category": "exposed_rubbish", '
    '"description": "x"}',
    "lon with 5000 digits": '{"lon": 1'
    + "0" * 4999
    + ', "lat": %(lat)r, "category": "exposed_rubbish", '
    '"description": "x"}',
}


@pytest.mark.parametrize("name", HOSTILE_BODIES)
def test_hostile_json_bodies_are_422(city: City, name: str) -> None:
    body = HOSTILE_BODIES[name]
    if "%(" in body:
        body = body % {"lon": city.lon, "lat": city.lat}
    response = city.client.post(
        "/api/v1/issues", content=body.encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_open311_lone_surrogate_is_an_error_list(city: City) -> None:
    # A form cannot carry a lone surrogate as text (it is not UTF-8); its UTF-8-style bytes are.
    body = "&".join(
        f"{k}={v}" for k, v in city.open311(description="x").items() if k != "description"
    )
    response = city.client.post(
        f"{V2}/requests.json",
        content=(body + "&description=%ED%A0%80").encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code in (200, 400), response.text  # taken in as U+FFFD, or refused
    assert isinstance(response.json(), list)


@pytest.mark.parametrize("path", ["/api/v1/issues", "/api/v1/stats", "/api/v1/issues/clusters"])
@pytest.mark.parametrize(
    "query",
    [{"to": "9999-12-31"}, {"from": "0001-01-01"}, {"from": "0001-01-01", "to": "9999-12-31"}],
)
def test_calendar_edges_in_query_are_not_500(city: City, path: str, query: dict[str, str]) -> None:
    params = {**query, "bbox": "-180,-90,180,90"} if path.endswith("clusters") else query
    response = city.client.get(path, params=params)
    assert response.status_code in (200, 422), response.text
    json.loads(response.content)


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize(
    "query",
    [
        {"start_date": "0001-01-01T00:00:00"},
        {"end_date": "0001-01-01T00:00:00"},
        {"start_date": "9999-12-31T23:59:59"},
        {"end_date": "9999-12-31T23:59:59"},
    ],
)
def test_open311_calendar_edges_are_an_error_list_or_an_answer(
    city: City, fmt: str, query: dict[str, str]
) -> None:
    response = city.client.get(f"{V2}/requests.{fmt}", params=query)
    assert response.status_code in (200, 400), response.text
    if fmt == "xml":
        well_formed(response)
    else:
        assert isinstance(response.json(), list)


# --- item 13: bodies are read as the type they declare ------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
def test_json_api_takes_only_json_and_multipart(city: City, content_type: str | None) -> None:
    before = count(city)
    headers = {"Content-Type": content_type} if content_type else {}
    response = city.client.post(
        "/api/v1/issues", content=json.dumps(city.report()).encode(), headers=headers
    )
    assert response.status_code == 415, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "application/json" in problem["detail"] and "multipart/form-data" in problem["detail"]
    assert count(city) == before


def test_json_api_still_takes_json_and_multipart(city: City) -> None:
    as_json = city.client.post(
        "/api/v1/issues",
        json=city.report(description="json"),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert as_json.status_code == 201, as_json.text
    fields = {k: str(v) for k, v in city.report(description="multipart").items()}
    as_multipart = city.client.post("/api/v1/issues", data=fields, files={"unused": ("a.txt", b"")})
    assert as_multipart.status_code == 201, as_multipart.text


def test_open311_keeps_form_posts(city: City) -> None:
    form = city.client.post(f"{V2}/requests.json", data=city.open311(description="form"))
    assert form.status_code == 200, form.text
    multipart = city.client.post(
        f"{V2}/requests.json",
        data=city.open311(description="multipart"),
        files={"unused": ("a.txt", b"")},
    )
    assert multipart.status_code == 200, multipart.text


def count(city: City) -> int:
    with session_factory(city.engine)() as session:
        return session.scalar(select(func.count()).select_from(Issue)) or 0
