"""Open311 GeoReport v2 on both backends, over the demo city.

Every JSON answer is checked against the official GeoReport v2 JSON Schemas, every XML
answer against the element names of real cities' recorded responses, and one round trip
runs through a real Open311 client library against a live server.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jsonschema import Draft4Validator, Draft7Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from sqlalchemy import Engine, func, select

from api.app import create_app
from api.routes import open311
from data.cases import add_user
from data.db import session_factory
from data.demo import load_demo_city
from data.models import Issue, IssueEvent
from data.settings import Settings
from tests.conftest import realdata

V2 = "/open311/v2"
SPEC_DIR = "open311_georeport_v2"
PERSONAL = {"first_name": "Lei", "last_name": "Li", "email": "li.lei@example.cn", "phone": "13800000000"}


# --- fixtures ----------------------------------------------------------------------------


def with_open311(app: FastAPI) -> FastAPI:
    """The app as the lead wires it; until then the test includes the router itself."""
    included = any(
        getattr(r, "original_router", None) is open311.router or getattr(r, "path", "").startswith("/open311")
        for r in app.routes
    )
    if not included:
        app.include_router(open311.router)
    return app


@dataclass
class City:
    client: TestClient
    api_key: str
    lon: float
    lat: float
    engine: Engine
    settings: Settings

    def issue_count(self) -> int:
        with session_factory(self.engine)() as session:
            return session.scalar(select(func.count()).select_from(Issue)) or 0

    def report(self, **fields: str) -> dict[str, str]:
        """A valid GeoReport v2 submission, with ``fields`` replacing or adding fields."""
        base = {"api_key": self.api_key, "service_code": "exposed_rubbish", "lat": repr(self.lat),
                "long": repr(self.lon), "description": "小区门口垃圾堆积"}
        return {k: v for k, v in {**base, **fields}.items() if v is not None}


@pytest.fixture
def city(engine: Engine, database_url: str, tmp_path: Path) -> Iterator[City]:
    load_demo_city(engine)
    with session_factory(engine)() as session, session.begin():
        api_key = add_user(session, "open311client", "dispatcher")
        # A point where the demo city has a grid: a demo issue's place.
        lon, lat = session.execute(
            select(func.ST_X(Issue.geom), func.ST_Y(Issue.geom)).where(Issue.grid_code.is_not(None)).order_by(Issue.id).limit(1)
        ).one()
    settings = Settings(database_url=database_url, data_dir=tmp_path, escalate_every_seconds=0, report_rate_per_minute=1000)
    with TestClient(with_open311(create_app(settings))) as client:
        yield City(client, api_key, float(lon), float(lat), engine, settings)


# --- the official schemas ----------------------------------------------------------------


RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", re.IGNORECASE)
FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    # jsonschema checks date-time only with an optional package; RFC 3339 is this simple.
    return not isinstance(value, str) or (RFC3339.fullmatch(value) is not None and bool(dt.datetime.fromisoformat(value)))


@FORMATS.checks("uri")
def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlsplit(value).scheme and urlsplit(value).netloc)


Check = Callable[[str, Any], None]


@pytest.fixture(scope="module")
def schema() -> Check:
    """``schema(name, body)`` validates against schema/<name> (or a swagger definition)."""
    folder = realdata(f"{SPEC_DIR}/schema")
    documents = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.json")}
    swagger = documents.pop("swagger.json")
    registry = Registry().with_resources(
        (name, Resource.from_contents(doc, default_specification=DRAFT7)) for name, doc in documents.items()
    )

    def check(name: str, body: Any) -> None:
        if name in documents:
            Draft7Validator(documents[name], registry=registry, format_checker=FORMATS).validate(body)
            item_schema = documents[{"services.json": "service.json", "requests.json": "request.json"}.get(name, name)]
        else:  # a response the separate schemas lack (POST, tokens): the swagger's definition
            item_schema = nullable(swagger["definitions"][name])
            Draft4Validator({"type": "array", "items": item_schema}, format_checker=FORMATS).validate(body)
        # The schemas allow extra fields; a client only knows the spec's, so allow none.
        for item in body if isinstance(body, list) else [body]:
            assert set(item) <= set(item_schema["properties"]), set(item) - set(item_schema["properties"])

    return check


def nullable(definition: dict[str, Any]) -> dict[str, Any]:
    """The swagger types every field as a string, yet its own POST example has account_id null."""
    properties = {k: {**v, "type": [v["type"], "null"]} for k, v in definition["properties"].items()}
    return {**definition, "properties": properties}


# --- helpers -----------------------------------------------------------------------------


def xml_of(response: httpx.Response) -> ET.Element:
    assert response.headers["content-type"] == "application/xml; charset=utf-8", response.headers["content-type"]
    return ET.fromstring(response.content)


def recorded(name: str) -> ET.Element:
    return ET.parse(realdata(f"{SPEC_DIR}/real_city_mocks/{name}")).getroot()


def tags(element: ET.Element) -> list[str]:
    return [child.tag for child in element]


def json_of(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def assert_error(response: httpx.Response, status: int, fragment: str = "") -> None:
    """The spec's error list: [{"code": 400, "description": "..."}]."""
    body = json_of(response, status)
    assert isinstance(body, list) and len(body) == 1 and set(body[0]) == {"code", "description"}, body
    assert body[0]["code"] == status and fragment in body[0]["description"], body


def post(city: City, fields: dict[str, str], fmt: str = "json", **kwargs: Any) -> httpx.Response:
    return city.client.post(f"{V2}/requests.{fmt}", data=fields, **kwargs)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- services and discovery --------------------------------------------------------------


def test_discovery_services_and_definitions(city: City, schema: Check) -> None:
    client = city.client
    services = json_of(client.get(f"{V2}/services.json"))
    schema("services.json", services)
    by_code = {s["service_code"]: s for s in services}
    assert {"exposed_rubbish", "manhole_cover_damaged"} <= set(by_code)
    assert by_code["manhole_cover_damaged"]["group"] == "component" and by_code["exposed_rubbish"]["group"] == "event"
    assert by_code["exposed_rubbish"]["service_name"] == "暴露垃圾" and by_code["exposed_rubbish"]["type"] == "realtime"
    assert all(s["metadata"] is False for s in services)

    definition = json_of(client.get(f"{V2}/services/exposed_rubbish.json"))
    schema("service-definition.json", definition)
    assert definition == {"service_code": "exposed_rubbish", "attributes": []}
    assert_error(client.get(f"{V2}/services/alien_landing.json"), 404, "alien_landing")

    # XML: the element names of Washington DC's real service list and definition.
    real = recorded("dc-services.xml")
    ours = xml_of(client.get(f"{V2}/services.xml"))
    assert ours.tag == real.tag == "services" and set(tags(ours)) == {"service"}
    assert set(tags(ours[0])) == set(tags(real[0]))
    assert [s.findtext("service_code") for s in ours] == list(by_code)
    assert ours[0].findtext("metadata") == "false"
    real_definition = recorded("dc-services-S0301.xml")
    ours_definition = xml_of(client.get(f"{V2}/services/exposed_rubbish.xml"))
    assert ours_definition.tag == real_definition.tag and tags(ours_definition) == tags(real_definition)

    # Discovery, as Boston (JSON) and DC (XML) serve it.
    found = json_of(client.get("/open311/discovery.json"))
    boston = json.loads(realdata(f"{SPEC_DIR}/real_city_mocks/discovery-boston.json").read_text())
    assert set(found) == set(boston) and set(found["endpoints"][0]) == set(boston["endpoints"][0])
    assert found["endpoints"][0] == {**found["endpoints"][0], "url": "http://testserver/open311/v2",
                                     "specification": "http://wiki.open311.org/GeoReport_v2", "type": "production",
                                     "formats": ["text/xml", "application/json"]}
    assert json_of(client.get(f"{V2}/discovery.json")) == found
    dc = recorded("discovery-dc.xml")
    ours_discovery = xml_of(client.get(f"{V2}/discovery.xml"))
    assert ours_discovery.tag == dc.tag and tags(ours_discovery) == tags(dc)
    endpoint = ours_discovery.find("endpoints/endpoint")
    assert endpoint is not None and tags(endpoint) == tags(dc.find("endpoints/endpoint"))  # type: ignore[arg-type]
    assert [f.text for f in endpoint.iterfind("formats/format")] == ["text/xml", "application/json"]


# --- reporting ---------------------------------------------------------------------------


def test_report_is_taken_in_like_the_json_api(city: City, schema: Check) -> None:
    client = city.client
    fields = city.report(**PERSONAL, media_url="https://photos.example.cn/p/42.jpg", address_string="文庭街39号")
    created = json_of(post(city, fields))
    schema("RequestResponse", created)
    assert len(created) == 1 and created[0]["account_id"] is None and created[0]["service_notice"]
    request_id = created[0]["service_request_id"]

    # The same report through /api/v1 is assigned, routed and given a deadline the same way.
    twin = client.post("/api/v1/issues", json={"lon": city.lon, "lat": city.lat, "category": "exposed_rubbish",
                                                "description": "同一地点"}).json()
    staff_view = client.get(f"/api/v1/issues/{request_id}", headers=auth(city.api_key)).json()["properties"]
    assert staff_view["grid_code"] == twin["areas"]["grid"] and staff_view["grid_code"]
    assert staff_view["department_code"] == twin["department_code"]
    gap = dt.datetime.fromisoformat(twin["due_at"]) - dt.datetime.fromisoformat(staff_view["due_at"])
    assert abs(gap) < dt.timedelta(minutes=5)
    assert staff_view["reporter_contact"] == "Lei Li <li.lei@example.cn> 13800000000"
    assert [h["action"] for h in staff_view["history"]] == ["report", "client_details"]
    assert staff_view["history"][0]["actor"] == "open311:open311client"

    # Read back: the spec's one-element list, the public view.
    found = json_of(client.get(f"{V2}/requests/{request_id}.json"))
    schema("requests.json", found)
    request = found[0]
    assert request["service_request_id"] == request_id and request["status"] == "open"
    assert request["service_code"] == "exposed_rubbish" and request["service_name"] == "暴露垃圾"
    assert request["agency_responsible"] == staff_view["department_code"]
    assert request["description"] == "小区门口垃圾堆积" and request["address"] == "文庭街39号"
    assert request["lat"] == pytest.approx(city.lat) and request["long"] == pytest.approx(city.lon)
    assert request["expected_datetime"] and request["status_notes"].startswith("reported")
    assert request["media_url"] is None  # not shown before the case is accepted, as in /api/v1

    # Personal fields never appear in any public answer, JSON or XML.
    public = [client.get(f"{V2}/requests/{request_id}.{fmt}").text for fmt in ("json", "xml")]
    public += [client.get(f"{V2}/requests.{fmt}", params={"service_request_id": request_id}).text for fmt in ("json", "xml")]
    public.append(json.dumps(client.get(f"/api/v1/issues/{request_id}").json(), ensure_ascii=False))
    for text in public:
        assert not any(value in text for value in PERSONAL.values()), text

    # Accepted: the linked picture is shown, and /api/v1 still reads the case.
    accepted = client.post(f"/api/v1/issues/{request_id}/transitions", json={"action": "accept", "version": 1, "note": "立案"},
                           headers=auth(city.api_key))
    assert accepted.status_code == 200, accepted.text
    request = json_of(client.get(f"{V2}/requests/{request_id}.json"))[0]
    assert request["media_url"] == "https://photos.example.cn/p/42.jpg" and request["status_notes"] == "accepted: 立案"
    assert client.get(f"/api/v1/issues/{request_id}").status_code == 200

    # XML with the element names (and order) of the spec's recorded request, and the token.
    real = recorded("service-request.xml")
    ours = xml_of(client.get(f"{V2}/requests/{request_id}.xml"))
    assert ours.tag == real.tag == "service_requests" and tags(ours) == ["request"]
    assert tags(ours[0]) == tags(real[0])
    assert ours[0].findtext("media_url") == "https://photos.example.cn/p/42.jpg"
    token = json_of(client.get(f"{V2}/tokens/{request_id}.json"))
    schema("TokenResponse", token)
    assert token == [{"service_request_id": request_id, "token": request_id}]
    real_token = recorded("token.xml")
    ours_token = xml_of(client.get(f"{V2}/tokens/{request_id}.xml"))
    assert ours_token.tag == real_token.tag and tags(ours_token[0]) == tags(real_token[0])


def test_xml_submission_and_multipart(city: City) -> None:
    before = city.issue_count()
    as_xml = xml_of(post(city, city.report(description="XML 客户端"), fmt="xml"))
    real = recorded("boston-submitrequest-token.xml")
    assert as_xml.tag == real.tag and tags(as_xml) == tags(real) == ["request"]
    assert tags(as_xml[0]) == ["service_request_id", "service_notice", "account_id"]
    assert as_xml[0].findtext("service_request_id", "").isdigit()
    # Some clients send multipart forms (they may attach files; the spec's media is a URL).
    multipart = city.client.post(f"{V2}/requests.json", data=city.report(description="multipart"),
                                 files=[("unused", ("note.txt", b"hello", "text/plain"))])
    assert json_of(multipart)[0]["service_request_id"].isdigit()
    assert city.issue_count() == before + 2


def test_idempotency_key(city: City) -> None:
    before = city.issue_count()
    headers = {"Idempotency-Key": "app-7-report-42"}
    fields = city.report(media_url="https://photos.example.cn/p/1.jpg")
    first = post(city, fields, headers=headers)
    again = post(city, fields, headers=headers)
    assert json_of(first)[0]["service_request_id"] == json_of(again)[0]["service_request_id"]
    assert again.headers.get("Idempotent-Replayed") == "true" and "Idempotent-Replayed" not in first.headers
    assert city.issue_count() == before + 1
    with session_factory(city.engine)() as session:
        issue_id = int(first.json()[0]["service_request_id"])
        actions = session.scalars(select(IssueEvent.action).where(IssueEvent.issue_id == issue_id)).all()
    assert sorted(actions) == ["client_details", "report"]


# --- reading and filtering ---------------------------------------------------------------


def test_request_filters(city: City, schema: Check) -> None:
    client = city.client
    fresh = json_of(post(city, city.report()))[0]["service_request_id"]

    def requests(fmt: str = "json", **params: str) -> Any:
        body = json_of(client.get(f"{V2}/requests.{fmt}", params=params))
        schema("requests.json", body)
        return body

    # No dates: the last 90 days, newest first, and the new request among them.
    recent = requests()
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=90, minutes=1)
    assert recent[0]["service_request_id"] == fresh
    assert all(dt.datetime.fromisoformat(r["requested_datetime"]) >= since for r in recent)

    # Ids override every other filter, even the date window (ids 1 and 2 are from May 2026).
    by_id = requests(service_request_id=f"1,2,{fresh},nonsense,²,99999999999", start_date="2020-01-01T00:00:00Z")
    assert sorted(r["service_request_id"] for r in by_id) == sorted(["1", "2", fresh])

    october = {"start_date": "2026-10-01T00:00:00+08:00", "end_date": "2026-10-31T00:00:00+08:00"}
    in_october = requests(**october)
    assert in_october and all("2026-09-30T16:00:00Z" <= r["requested_datetime"] <= "2026-10-30T16:00:00Z" for r in in_october)
    # A client that leaves "+" unencoded sends a space; it still means +08:00.
    raw = client.get(f"{V2}/requests.json?start_date=2026-10-01T00:00:00+08:00&end_date=2026-10-31T00:00:00+08:00")
    assert json_of(raw) == in_october

    codes = requests(service_code="exposed_rubbish,dirty_road", **october)
    assert codes and {r["service_code"] for r in codes} <= {"exposed_rubbish", "dirty_road"}
    closed = requests(status="closed", **october)
    opened = requests(status="open", **october)
    assert closed and opened and len(closed) + len(opened) == len(in_october)
    assert all(r["status"] == "closed" and r["status_notes"].split(":")[0] in ("closed", "rejected") for r in closed)
    assert all(r["status"] == "open" for r in opened)
    assert requests(status="open,closed", **october) == in_october

    xml = xml_of(client.get(f"{V2}/requests.xml", params=october))
    real = recorded("service-requests.xml")
    assert xml.tag == real.tag and set(tags(xml)) == {"request"} and len(xml) == len(in_october)
    assert all(tags(r) == tags(real[0]) for r in xml)

    for params, fragment in [
        ({"start_date": "yesterday"}, "ISO 8601"),
        ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-10-01T00:00:00Z"}, "more than 90 days"),
        ({"start_date": "2026-10-01T00:00:00Z", "end_date": "2026-09-01T00:00:00Z"}, "before start_date"),
        ({"status": "lost"}, "open or closed"),
    ]:
        assert_error(client.get(f"{V2}/requests.json", params=params), 400, fragment)


# --- errors ------------------------------------------------------------------------------


POST_ERRORS: list[tuple[str, dict[str, str | None], int, str]] = [
    ("missing api_key", {"api_key": None}, 403, "api_key is required"),
    ("bad api_key", {"api_key": "not-a-token"}, 403, "api_key is not valid"),
    ("unknown service", {"service_code": "alien_landing"}, 400, "unknown category"),
    ("no service", {"service_code": None}, 400, "service_code is required"),
    ("long description", {"description": "长" * 4001}, 400, "at most 4000"),
    ("empty description", {"description": "  "}, 400, "description is empty"),
    ("no location", {"lat": None, "long": None}, 400, "location required"),
    # An address_string alone is taken in (tests/test_service_area.py); an address_id cannot be looked up.
    ("address_id only", {"lat": None, "long": None, "address_id": "39"}, 400, "address_id cannot be looked up"),
    ("far outside the city", {"lat": "39.909", "long": "116.397"}, 400, "outside the service area"),
    ("swapped", {"lat": "111.3", "long": "23.5"}, 400, "look swapped"),
    ("half a location", {"long": None}, 400, "location required"),
    ("not a number", {"lat": "north"}, 400, "must be numbers"),
    ("out of range", {"lat": "123.5"}, 400, "out of range"),
    ("bad media_url", {"media_url": "javascript:alert(1)"}, 400, "media_url"),
    ("long contact", {"first_name": "名" * 300}, 400, "at most 200"),
]


def test_errors_store_nothing(city: City) -> None:
    client = city.client
    before = city.issue_count()
    for name, changes, status, fragment in POST_ERRORS:
        response = post(city, city.report(**changes))  # type: ignore[arg-type]
        try:
            assert_error(response, status, fragment)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc
    assert_error(post(city, city.report(), fmt="yaml"), 404, "unknown format")
    assert_error(post(city, city.report(), headers={"Idempotency-Key": "k" * 201}), 400, "Idempotency-Key")
    assert city.issue_count() == before

    assert_error(client.get(f"{V2}/requests/999999.json"), 404, "999999")
    assert_error(client.get(f"{V2}/requests/not-a-number.json"), 404)
    assert_error(client.get(f"{V2}/requests/99999999999999999999.json"), 404)  # beyond a 32-bit id
    assert_error(client.get(f"{V2}/requests/1,2.json"), 404)  # one request per path
    assert_error(client.get(f"{V2}/tokens/999999.json"), 404)
    assert_error(client.get(f"{V2}/services.txt"), 404, "unknown format")
    assert_error(client.get(f"{V2}/no-such-endpoint.json"), 404)

    # The same list shape in XML, as Boston's recorded error.
    real = recorded("boston-err-submitrequest-base_is_duplicate.xml")
    for response, status in [(post(city, city.report(api_key=None), fmt="xml"), 403),
                             (post(city, city.report(service_code="alien_landing"), fmt="xml"), 400),
                             (client.get(f"{V2}/requests/999999.xml"), 404)]:
        assert response.status_code == status
        ours = xml_of(response)
        assert ours.tag == real.tag and tags(ours) == tags(real) and tags(ours[0]) == tags(real[0])
        assert ours[0].findtext("code") == str(status) and ours[0].findtext("description")
    assert city.issue_count() == before
    # The rest of the API keeps its own error shape.
    assert client.get("/api/v1/issues/999999").headers["content-type"] == "application/problem+json"


# --- a real client against a live server -------------------------------------------------


@pytest.fixture
def live_server(city: City) -> Iterator[str]:
    """The app under uvicorn on a free 127.0.0.1 port, for clients that open real sockets."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # bound here, so no other process can take the port meanwhile
    port = sock.getsockname()[1]
    app = with_open311(create_app(city.settings))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the live server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}{V2}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def test_round_trip_with_the_georeport_client(city: City, live_server: str, schema: Check) -> None:
    """georeport (PyPI) reads services and requests; it cannot submit, so POST is plain httpx."""
    from georeport import GeoReport

    client = GeoReport(live_server, api_key=city.api_key)
    services = client.get_service_list()
    schema("services.json", services)
    assert "exposed_rubbish" in {s["service_code"] for s in services}
    definition = client.get_service_definition("exposed_rubbish")
    schema("service-definition.json", definition)
    as_xml = GeoReport(live_server, output_format="xml")
    assert [s["service_code"] for s in as_xml.get_service_list()] == [s["service_code"] for s in services]
    assert as_xml.get_service_definition("exposed_rubbish")["service_code"] == "exposed_rubbish"

    # Submitting exactly as a GeoReport v2 client does: a form-encoded POST with the api_key.
    with httpx.Client(base_url=live_server, timeout=30) as http:
        submitted = http.post("/requests.json", data={
            "api_key": client.api_key, "service_code": "exposed_rubbish", "lat": repr(city.lat),
            "long": repr(city.lon), "description": "实时服务器上报", **PERSONAL,
        })
        created = json_of(submitted)
        schema("RequestResponse", created)
        request_id = created[0]["service_request_id"]
        token = json_of(http.get(f"/tokens/{request_id}.json"))
        schema("TokenResponse", token)
        assert token[0]["service_request_id"] == request_id

    one = client.get_service_request(request_id)
    schema("request.json", one)
    assert one["service_code"] == "exposed_rubbish" and one["description"] == "实时服务器上报"
    assert not set(PERSONAL.values()) & {str(v) for v in one.values()}
    listed = client.get_service_requests(service_request_id=request_id)
    schema("requests.json", listed)
    assert listed == [one]
    recent = client.get_service_requests(service_code="exposed_rubbish", status="open")
    schema("requests.json", recent)
    assert request_id in {r["service_request_id"] for r in recent}
    from_xml = as_xml.get_service_request(request_id)  # xmltodict: every value a string
    assert from_xml["service_request_id"] == request_id and float(from_xml["lat"]) == pytest.approx(one["lat"])
