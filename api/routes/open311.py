"""Open311 GeoReport v2 at ``/open311/v2``: the civic-issue API that existing apps speak.

Categories are offered as services and issues as service requests. Reports go through the
same use case as ``POST /api/v1/issues`` (assignment, routing, deadlines), so a case looks
the same whichever door it came in by. Every endpoint answers in JSON or XML, chosen by the
path's suffix (``services.json``, ``services.xml``), and every failure on these routes comes
back in the spec's error list rather than the problem+json of the rest of the API.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from api.bodies import OPEN311_REQUEST_BODY
from api.deps import SessionDep, SettingsDep
from api.errors import BadRequest
from api.known import check_categories
from api.routes.issues import PUBLIC_MEDIA_FROM
from api.routes.locate import cached_assigner
from data import cases
from data.cases import CaseError, Report, Staff
from data.importer import LOCAL_TZ, today
from data.models import Category, Issue, IssueEvent
from data.settings import Settings

SPEC = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-22T00:00:00Z"  # when this API last changed; clients cache discovery by it
FORMATS = {"json": "application/json", "xml": "application/xml; charset=utf-8"}
CLOSED_STATUSES = ("closed", "rejected")  # everything else is "open" to an Open311 client
MAX_WINDOW = dt.timedelta(days=90)  # the spec's default and largest date range
MAX_RESULTS = 1000  # the spec's "first 1000 requests"
MAX_CONTACT = 200  # Issue.reporter_contact's column size
MAX_URL = 2000
MAX_ADDRESS = 500
MAX_IDEMPOTENCY_KEY = 200  # Issue.idempotency_key's column size
DETAILS_ACTION = "client_details"  # the history event that keeps media_url and address_string
PERSONAL_FIELDS = ("first_name", "last_name", "email", "phone")

# Element names for list items in XML, by the name of the list (as in the spec's examples).
XML_ITEMS = {
    "services": "service", "service_requests": "request", "errors": "error", "endpoints": "endpoint",
    "formats": "format", "attributes": "attribute", "values": "value",
}


class Open311Error(Exception):
    """A failure to report in the spec's error list with this HTTP status (400, 403 or 404)."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def error_status(exc: Exception) -> int | None:
    """The Open311 status for an exception, or None to let it through (a real server error)."""
    if isinstance(exc, Open311Error):
        return exc.status
    if isinstance(exc, CaseError):
        # The spec knows only 400, 403 and 404: conflicts, rate limits and the like are 400.
        return exc.status if exc.status in (403, 404) else 400
    if isinstance(exc, RequestValidationError | BadRequest):
        return 400
    if isinstance(exc, HTTPException):  # e.g. a malformed multipart body
        return exc.status_code if exc.status_code in (400, 403, 404) else 400
    return None


def error_message(exc: Exception) -> str:
    if isinstance(exc, RequestValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
    if isinstance(exc, HTTPException):
        return str(exc.detail)
    return str(exc)


class Open311Route(APIRoute):
    """Catches failures at the route, so the app's global handlers stay as they are."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                status = error_status(exc)
                if status is None:
                    raise
                fmt = str(request.path_params.get("fmt", ""))
                return error_response(fmt if fmt in FORMATS else "json", status, error_message(exc))

        return guarded


router = APIRouter(prefix="/open311", tags=["open311"], route_class=Open311Route)


# --- rendering ---------------------------------------------------------------------------


# Declared as a list in the schema but checked here, so that another suffix stays a 404
# in the spec's error list (it names no resource) rather than a validation error.
Fmt = Annotated[str, Path(description="json or xml", json_schema_extra={"enum": list(FORMATS)})]


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Open311Error(404, f"unknown format {fmt!r}: use .json or .xml")
    return fmt


def render(fmt: str, root: str, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON as is; XML under ``root`` with the spec's element names."""
    if fmt == "xml":
        body = ET.tostring(xml_element(root, payload), encoding="utf-8", xml_declaration=True)
    else:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Response(body, status_code=status, media_type=FORMATS[fmt], headers=headers)


def xml_element(tag: str, value: Any) -> ET.Element:
    element = ET.Element(tag)
    if isinstance(value, dict):
        element.extend(xml_element(key, item) for key, item in value.items())
    elif isinstance(value, list):
        element.extend(xml_element(XML_ITEMS.get(tag, "item"), item) for item in value)
    elif value is not None:  # None is an empty element, as in the spec's examples
        element.text = xml_text(value)
    return element


def xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    # ElementTree writes any character as is, so one stored before intake refused them (a
    # control character, a lone surrogate) would make the whole feed ill-formed: U+FFFD it.
    return cases.NOT_XML_CHAR.sub("\ufffd", str(value))


def error_response(fmt: str, status: int, description: str) -> Response:
    return render(fmt, "errors", [{"code": status, "description": description}], status=status)


def timestamp(value: dt.datetime | None) -> str | None:
    """W3C date-time, to the second, in UTC (as the rest of the API stores them)."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --- services ----------------------------------------------------------------------------


PROVISIONAL_NOTE = "; the deadline is provisional: that year's official holiday calendar is not loaded yet"


def time_limit(category: Category) -> str:
    kind = "working hours" if category.working_hours else "hours"
    return f"to be handled within {category.time_limit_hours:g} {kind}"


def service_view(category: Category) -> dict[str, Any]:
    article = "an" if category.group[:1] in "aeiou" else "a"
    return {
        "service_code": category.code, "service_name": category.name,
        "description": f"{category.name}: {article} {category.group} case, {time_limit(category)}",
        "metadata": False,  # no extra attributes: the report itself says everything we use
        "type": "realtime",  # a report is taken in (and gets its id) at once
        "keywords": ", ".join(word for word in category.code.split("_") if word),
        "group": category.group,
    }


def all_categories(session: Session) -> dict[str, Category]:
    return {c.code: c for c in session.scalars(select(Category).order_by(Category.code))}


@router.get("/discovery.{fmt}")
@router.get("/v2/discovery.{fmt}")
def discovery(fmt: Fmt, request: Request) -> Response:
    """Where the endpoint is and what it speaks (real cities serve this beside /v2)."""
    fmt = check_format(fmt)
    base = str(request.base_url).rstrip("/")
    return render(fmt, "discovery", {
        "changeset": CHANGESET,
        "contact": "Ask the city's grid command centre (the administrators of this gridmap server).",
        "key_service": "An api_key is a staff token: an administrator creates one with `gridmap users add`.",
        "endpoints": [{
            "specification": SPEC, "url": f"{base}/open311/v2", "changeset": CHANGESET,
            "type": "production", "formats": ["text/xml", "application/json"],
        }],
    })


@router.get("/v2/services.{fmt}")
def services(fmt: Fmt, session: SessionDep) -> Response:
    """Every issue category, as a service."""
    fmt = check_format(fmt)
    return render(fmt, "services", [service_view(c) for c in all_categories(session).values()])


@router.get("/v2/services/{service_code}.{fmt}")
def service_definition(service_code: str, fmt: Fmt, session: SessionDep) -> Response:
    """A service's extra attributes: none, since metadata is false for all of ours."""
    fmt = check_format(fmt)
    if session.get(Category, service_code) is None:
        raise Open311Error(404, f"no service {service_code!r}: see services.{fmt}")
    return render(fmt, "service_definition", {"service_code": service_code, "attributes": []})


# --- reading requests --------------------------------------------------------------------


def open311_status(status: str) -> str:
    return "closed" if status in CLOSED_STATUSES else "open"


def histories(session: Session, ids: Sequence[int]) -> dict[int, list[IssueEvent]]:
    """Each issue's history, read in chunks so a long list stays within bind-parameter limits."""
    found: dict[int, list[IssueEvent]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        query = select(IssueEvent).where(IssueEvent.issue_id.in_(chunk))
        for event in session.scalars(query.order_by(IssueEvent.issue_id, IssueEvent.seq)):
            found[event.issue_id].append(event)
    return found


def client_details(events: Iterable[IssueEvent]) -> dict[str, Any]:
    details: dict[str, Any] = {}
    for event in events:
        if event.action == DETAILS_ACTION and event.data:
            details.update(event.data)
    return details


def status_notes(issue: Issue, events: Sequence[IssueEvent]) -> str:
    """Our finer status, and the note of the step that led to it (notes are public history)."""
    steps = (e for e in reversed(events) if e.action != DETAILS_ACTION and e.to_status == issue.status)
    note = next((e.note for e in steps if e.note), None)
    return f"{issue.status}: {note}" if note else issue.status


def media_url(issue: Issue, details: dict[str, Any], base: str) -> str | None:
    """A linked or uploaded picture, once the case is accepted (the same vetting as /api/v1)."""
    if issue.status not in PUBLIC_MEDIA_FROM:
        return None
    if details.get("media_url"):
        return str(details["media_url"])
    uploaded = [m for m in issue.media or [] if m.get("path")]
    return f"{base}/media/{uploaded[0]['path']}" if uploaded else None


def request_view(
    issue: Issue, lon: float | None, lat: float | None, category: Category | None, events: Sequence[IssueEvent],
    base: str,
) -> dict[str, Any]:
    """A case as a service request: the public view, never the reporter's contact.

    lat/long are null for a case without coordinates, which the schema allows."""
    details = client_details(events)
    return {
        "service_request_id": str(issue.id), "status": open311_status(issue.status),
        "status_notes": status_notes(issue, events),
        "service_name": category.name if category else None, "service_code": issue.category,
        "description": issue.description, "agency_responsible": issue.department_code,
        # GeoReport v2 has no field for it, so a provisional deadline is said in the notice.
        "service_notice": (time_limit(category) + PROVISIONAL_NOTE * bool(issue.due_provisional))
        if category else None,
        "requested_datetime": timestamp(issue.created_at), "updated_datetime": timestamp(issue.updated_at),
        "expected_datetime": timestamp(issue.due_at),
        "address": details.get("address_string"), "address_id": None, "zipcode": None,
        "lat": lat, "long": lon, "media_url": media_url(issue, details, base),
    }


def request_views(session: Session, request: Request, conditions: Sequence[Any]) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Issue, func.ST_X(Issue.geom), func.ST_Y(Issue.geom)).where(and_(True, *conditions))
        .order_by(Issue.created_at.desc(), Issue.id.desc()).limit(MAX_RESULTS)
    ).all()
    categories = all_categories(session)
    events = histories(session, [issue.id for issue, _x, _y in rows])
    base = str(request.base_url).rstrip("/")
    return [request_view(i, x, y, categories.get(i.category), events[i.id], base) for i, x, y in rows]


def split_list(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def parse_when(name: str, value: str) -> dt.datetime:
    """An ISO 8601 date-time; one without an offset is in the city's local time, as in /api/v1."""
    text = value.strip()
    if "T" in text:
        text = text.replace(" ", "+")  # an unencoded "+08:00" arrives as " 08:00"
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Open311Error(400, f"{name} {value!r} is not an ISO 8601 date-time, e.g. 2026-10-01T00:00:00Z") from None
    when = when if when.tzinfo else when.replace(tzinfo=LOCAL_TZ)
    try:
        return when.astimezone(dt.UTC)  # as stored; the query would fail on a time outside it
    except OverflowError:
        raise Open311Error(
            400, f"{name} {value!r} is outside the calendar (years 1 to 9999 in UTC)"
        ) from None


def date_window(start_date: str | None, end_date: str | None) -> tuple[dt.datetime, dt.datetime]:
    """The spec's range: 90 days at most, the last 90 days when no date is given."""
    start = parse_when("start_date", start_date) if start_date else None
    end = parse_when("end_date", end_date) if end_date else None
    if start is None and end is None:
        end = cases.utcnow()
    try:
        if start is None:
            start = end - MAX_WINDOW  # type: ignore[operator]
        if end is None:
            end = start + MAX_WINDOW
    except OverflowError:
        raise Open311Error(400, "start_date or end_date is too close to the end of the calendar") from None
    if end < start:
        raise Open311Error(400, f"end_date {end_date} is before start_date {start_date}")
    if end - start > MAX_WINDOW:
        raise Open311Error(400, "start_date to end_date spans more than 90 days: ask for a shorter range")
    return start, end


def status_condition(status: str | None) -> Any | None:
    wanted = {s.lower() for s in split_list(status)}
    if not wanted:
        return None
    unknown = sorted(wanted - {"open", "closed"})
    if unknown:
        raise Open311Error(400, f"unknown status {', '.join(unknown)}: use open or closed")
    if wanted == {"open", "closed"}:
        return None
    return Issue.status.in_(CLOSED_STATUSES) if "closed" in wanted else Issue.status.not_in(CLOSED_STATUSES)


MAX_ID = 2**31 - 1  # Issue.id is a 32-bit integer on PostGIS; a larger one would fail the query


def as_id(text: str) -> int | None:
    """Our ids are numbers: any other id cannot match and is simply not found."""
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_ID:
        return None
    return int(text)


def request_ids(value: str | None) -> list[int]:
    return [found for part in split_list(value) if (found := as_id(part)) is not None]


@router.get("/v2/requests.{fmt}")
def list_requests(
    fmt: Fmt, request: Request, session: SessionDep,
    service_request_id: str | None = None, service_code: str | None = None,
    start_date: str | None = None, end_date: str | None = None, status: str | None = None,
) -> Response:
    """Service requests, filtered as the spec says; ids given override every other filter."""
    fmt = check_format(fmt)
    conditions: list[Any] = []
    if service_request_id:
        conditions.append(Issue.id.in_(request_ids(service_request_id)))
    else:
        start, end = date_window(start_date, end_date)
        conditions += [Issue.created_at >= start, Issue.created_at <= end]
        codes = split_list(service_code)
        check_categories(session, codes)  # an unknown code would list nothing, as if all were well
        if codes:
            conditions.append(Issue.category.in_(codes))
        wanted = status_condition(status)
        if wanted is not None:
            conditions.append(wanted)
    return render(fmt, "service_requests", request_views(session, request, conditions))


@router.get("/v2/requests/{service_request_id}.{fmt}")
def read_request(service_request_id: str, fmt: Fmt, request: Request, session: SessionDep) -> Response:
    """One service request, as a one-element list (the spec's shape)."""
    fmt = check_format(fmt)
    wanted = as_id(service_request_id)
    found = [] if wanted is None else request_views(session, request, [Issue.id == wanted])
    if not found:
        raise Open311Error(404, f"no service request {service_request_id!r}")
    return render(fmt, "service_requests", found)


@router.get("/v2/tokens/{token}.{fmt}")
def read_token(token: str, fmt: Fmt, session: SessionDep) -> Response:
    """Requests are created at once, so a token is just the service_request_id."""
    fmt = check_format(fmt)
    wanted = as_id(token)
    if wanted is None or session.get(Issue, wanted) is None:
        raise Open311Error(404, f"no service request for token {token!r}")
    return render(fmt, "service_requests", [{"service_request_id": str(wanted), "token": token}])


# --- creating requests -------------------------------------------------------------------


async def form_fields(request: Request) -> dict[str, str]:
    """The POST's fields: the query string (the swagger's style) overlaid by the form body."""
    fields = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form()
        fields.update({k: v for k, v in form.multi_items() if isinstance(v, str)})
    return fields


def client_for(session: Session, api_key: str | None) -> Staff:
    """An api_key is a staff token of any role: the app that relays residents' reports."""
    if not api_key:
        raise Open311Error(403, "api_key is required to submit a request")
    staff = cases.staff_for_token(session, api_key)
    if staff is None:
        raise Open311Error(403, "api_key is not valid")
    return staff


def location(fields: dict[str, str]) -> tuple[float | None, float | None]:
    """lat/long in WGS84, or none with an address_string (GeoReport v2 allows either).

    An address alone is not geocoded: the case is routed as one in no grid (the fallback
    department) and a dispatcher places it.
    """
    lat, lon = fields.get("lat", "").strip(), fields.get("long", "").strip()
    if not lat and not lon and fields.get("address_string", "").strip():
        return None, None
    if not lat or not lon:
        if fields.get("address_id"):
            raise Open311Error(400, "location required: address_id cannot be looked up here; "
                                    "send lat and long (WGS84) or address_string")
        raise Open311Error(400, "location required: send lat and long (WGS84), or address_string")
    try:
        x, y = float(lon), float(lat)
    except ValueError:
        raise Open311Error(400, f"lat and long must be numbers, got {lat!r}, {lon!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise Open311Error(400, "lat and long must be finite numbers")
    return x, y


def contact(fields: dict[str, str]) -> str | None:
    """The personal fields in one private line, e.g. 'Li Lei <li@example.cn> 13800000000'."""
    name = " ".join(fields[k].strip() for k in ("first_name", "last_name") if fields.get(k, "").strip())
    email = fields.get("email", "").strip()
    parts = [name, f"<{email}>" if email else "", fields.get("phone", "").strip()]
    text = " ".join(p for p in parts if p)
    if len(text) > MAX_CONTACT:
        raise Open311Error(400, f"the name, email and phone together have {len(text)} characters; at most {MAX_CONTACT}")
    return text or None


def extra_fields(fields: dict[str, str]) -> dict[str, str]:
    """What the report carries beyond our Issue columns, kept in its history."""
    found: dict[str, str] = {}
    url = fields.get("media_url", "").strip()
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > MAX_URL:
            raise Open311Error(400, f"media_url must be an http(s) URL of at most {MAX_URL} characters")
        found["media_url"] = url
    address = fields.get("address_string", "").strip()
    if address:
        if len(address) > MAX_ADDRESS:
            raise Open311Error(400, f"address_string has {len(address)} characters; at most {MAX_ADDRESS}")
        found["address_string"] = address
    return found


# Every field this route reads or keeps; checked for characters XML 1.0 cannot carry.
READ_FIELDS = (
    "api_key", "service_code", "lat", "long", "description", "address_string", "media_url",
    *PERSONAL_FIELDS,
)


def refuse_unstorable(fields: dict[str, str]) -> None:
    """A control character or lone surrogate would break the XML feed for every client."""
    for name in READ_FIELDS:
        problem = cases.xml_char_problem(name, fields.get(name))
        if problem:
            raise Open311Error(400, problem)


def report_for(fields: dict[str, str], staff: Staff) -> Report:
    service_code = fields.get("service_code", "").strip()
    if not service_code:
        raise Open311Error(400, "service_code is required: see services.json")
    lon, lat = location(fields)
    return Report(
        lon=lon, lat=lat, category=service_code, description=fields.get("description", ""),
        reporter_contact=contact(fields), source=f"open311:{staff.name}",
        address=fields.get("address_string", "").strip()[:MAX_ADDRESS] or None,
    )


def client_id(staff: Staff) -> str:
    """Idempotency keys are scoped to the api_key's holder, not the address: one relaying app
    may post from many addresses, and many apps may share one. Hashed to fit the column."""
    return "open311:" + hashlib.sha256(staff.name.encode()).hexdigest()[:32]


def record_details(session: Session, issue: Issue, actor: str, extra: dict[str, str]) -> None:
    """IssueEvent is append-only and Issue.media holds only our uploads (views read their
    path), so a linked media_url or address goes into a history event of its own."""
    seq = (session.scalar(select(func.max(IssueEvent.seq)).where(IssueEvent.issue_id == issue.id)) or 0) + 1
    session.add(IssueEvent(
        issue_id=issue.id, seq=seq, at=issue.created_at, action=DETAILS_ACTION, from_status=issue.status,
        to_status=issue.status, actor=actor, note="details given by the Open311 client", data=extra,
    ))
    session.flush()


def notice(issue: Issue, duplicates: Sequence[Issue], routing: str | None = None) -> str:
    """Where the request went and why, when it is expected, and what it may duplicate."""
    if issue.department_code:
        text = f"routed to {issue.department_code}" + (f" ({routing})" if routing else "")
    else:
        text = routing or "held for a dispatcher to route"
    if issue.due_at:
        text += f", expected by {timestamp(issue.due_at)}"
        text += PROVISIONAL_NOTE * bool(issue.due_provisional)
    if duplicates:
        text += f"; possibly the same as request(s) {', '.join(str(d.id) for d in duplicates)}"
    return text


@router.post("/v2/requests.{fmt}", openapi_extra=OPEN311_REQUEST_BODY)
async def create_request(
    fmt: Fmt, request: Request, session: SessionDep, settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    """Take in a report exactly as POST /api/v1/issues does; the api_key is required.

    Only reading the form happens on the event loop; the rest is blocking SQL, run in the
    thread pool so that other requests go on meanwhile.
    """
    fmt = check_format(fmt)
    fields = await form_fields(request)
    return await run_in_threadpool(take_in, fmt, request, session, settings, fields, idempotency_key)


def take_in(
    fmt: str, request: Request, session: Session, settings: Settings, fields: dict[str, str],
    idempotency_key: str | None,
) -> Response:
    """The blocking part of a POST requests: check, assign, route, record, commit."""
    refuse_unstorable(fields)
    staff = client_for(session, fields.get("api_key"))
    if idempotency_key and len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        raise Open311Error(400, f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY} characters")
    report = report_for(fields, staff)
    extra = extra_fields(fields)
    cases.check_report(session, report, settings)  # refused before the assigner is even loaded
    assigner = cached_assigner(request, session, today(), settings.snap_metres)
    issue, created, duplicates, routing = cases.report_issue(
        session, report, assigner, request.app.state.clock, settings,
        client_id=client_id(staff), idempotency_key=idempotency_key,
    )
    if created and extra:
        record_details(session, issue, report.source, extra)
    session.commit()
    service_notice = notice(issue, duplicates, routing)
    body = [{"service_request_id": str(issue.id), "service_notice": service_notice, "account_id": None}]
    headers = {} if created else {"Idempotent-Replayed": "true"}
    return render(fmt, "service_requests", body, headers=headers)


@router.api_route("/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
def unknown_endpoint(rest: str) -> Response:
    """Anything else under /open311 is a 404 in the spec's shape, not the app's."""
    fmt = rest.rsplit(".", 1)[-1] if "." in rest else "json"
    return error_response(fmt if fmt in FORMATS else "json", 404, f"no Open311 endpoint /open311/{rest}")
