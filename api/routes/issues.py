"""Issues: intake, the loop's transitions, reading and counting."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from api.bodies import (
    REPORT_BODY,
    REPORT_MEDIA_TYPES,
    UnsupportedMediaType,
    refuse_unknown_fields,
)
from api.deps import (
    MAX_ID,
    MAX_OFFSET,
    Action,
    IsoDate,
    IssueStatus,
    SessionDep,
    SettingsDep,
    StatLevel,
    geojson_responses,
    id_path,
)
from api.errors import BadRequest, problem_responses
from api.known import check_area, check_categories, check_departments
from api.media import PUBLIC_MEDIA_FROM, MediaRejected, Upload, read_media, store_media
from api.routes.areas import area_sizes, layer_key, parse_bbox
from api.routes.locate import API_CRS, cached_assigner
from api.security import CurrentStaff, rate_limit_reports
from data import cases
from data.cases import CaseError, Report, Staff
from data.clusters import issue_clusters
from data.importer import today
from data.models import Category, Department, Issue, IssueEvent
from data.repository import dialect_for
from data.settings import Settings
from geo.crs import parse_crs, to_wgs84_xy
from geo.issues import OPEN_STATUSES
from geo.loop import allowed_actions
from geo.stats import issue_stats
from geo.swap import range_problem

router = APIRouter(prefix="/api/v1", tags=["issues"])


def clock(request: Request) -> cases.Clock:
    return request.app.state.clock


ClockDep = Annotated[cases.Clock, Depends(clock)]


# --- views -------------------------------------------------------------------------------


def issue_properties(issue: Issue, staff: Staff | None, now: dt.datetime) -> dict[str, Any]:
    """An issue as JSON properties; the public never sees the reporter or unvetted media."""
    props: dict[str, Any] = {
        "id": issue.id, "ref": issue.ref, "category": issue.category, "description": issue.description,
        "status": issue.status, "grid_code": issue.grid_code, "community_code": issue.community_code,
        "subdistrict_code": issue.subdistrict_code, "district_code": issue.district_code,
        "department_code": issue.department_code,
        "created_at": issue.created_at.isoformat(), "updated_at": issue.updated_at.isoformat(),
        "due_at": issue.due_at.isoformat() if issue.due_at else None,
        "due_provisional": bool(issue.due_provisional),
        "overdue": is_overdue(issue, now), "escalation_level": issue.escalation_level,
        "satisfaction": issue.satisfaction, "version": issue.version, "address": issue.address,
    }
    if staff is not None or issue.status in PUBLIC_MEDIA_FROM:
        props["media"] = [{"url": f"/media/{m['path']}", "content_type": m["content_type"]} for m in issue.media or []]
        if staff is not None:  # the reporter's own file names may name people: staff only
            for item, record in zip(props["media"], issue.media or [], strict=True):
                item["name"] = record.get("filename")
    if staff is not None:
        props["reporter_contact"] = issue.reporter_contact
        props["allowed_actions"] = allowed_actions(issue.status, staff.role)
    return props


SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def reported_window(since: dt.date | None, until: dt.date | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Report dates (inclusive, as people in the city say them) as a half-open UTC-aware window."""
    if since and until and until < since:
        raise BadRequest(f"the period ends ({until}) before it starts ({since}): swap from and to")
    # Midnight of 0001-01-01 in the city is still in year 0 in UTC, which no database holds:
    # "from the first day of the calendar" is then no bound at all.
    start = None
    if since and since > dt.date.min:
        start = dt.datetime.combine(since, dt.time(), SHANGHAI)
    # The last day of the calendar has no next day: "until then" is then no bound at all.
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), SHANGHAI) if until and until < dt.date.max else None
    return start, end


def is_overdue(issue: Issue, now: dt.datetime) -> bool:
    if issue.due_at is None:
        return False
    end = issue.closed_at if issue.status == "closed" and issue.closed_at else now
    return issue.status != "rejected" and end > issue.due_at


def feature(issue: Issue, lon: float | None, lat: float | None, props: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON Feature; an issue reported by address only has a null geometry (RFC 7946 §3.2)."""
    geometry = None if lon is None or lat is None else {"type": "Point", "coordinates": [lon, lat]}
    return {"type": "Feature", "id": issue.id, "geometry": geometry, "properties": props}


def etag(issue: Issue) -> str:
    return f'"{issue.version}"'


# --- intake ------------------------------------------------------------------------------


async def parse_report(request: Request, max_bytes: int) -> tuple[dict[str, Any], list[Any]]:
    """Fields from JSON or a multipart form, refusing bodies that are not UTF-8."""
    if media_type(request) == "multipart/form-data":
        form = await request.form(max_part_size=max_bytes + 1)
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        files = [v for k, v in form.multi_items() if k == "media" and not isinstance(v, str)]
        return fields, files
    body = await request.body()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise CaseError("the request body is not valid UTF-8: send UTF-8 text") from None
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise CaseError(f"the body is not valid JSON: {exc}") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise CaseError(f"the body holds a value too large to read: {exc}") from None
    except RecursionError:  # a report is flat: only a hostile body nests thousands deep
        raise CaseError("the JSON body is nested too deeply: send a flat object") from None
    if not isinstance(data, dict):
        raise CaseError("send a JSON object with lon, lat, category and description")
    return data, []


def media_type(request: Request) -> str:
    """Only JSON and multipart are read, so a body is never taken for JSON whatever it says it is
    (a text/plain "simple request" from another site would otherwise be read as a report)."""
    declared = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if declared not in REPORT_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {declared or '(none)'!r} is not read here: "
            f"send {' or '.join(REPORT_MEDIA_TYPES)}"
        )
    return declared


def report_from(fields: dict[str, Any]) -> Report:
    missing = [k for k in ("category", "description") if fields.get(k) in (None, "")]
    if missing:
        raise CaseError(f"missing field(s): {', '.join(missing)}")
    address = str(fields["address"]).strip() if fields.get("address") else None
    if fields.get("lon") in (None, "") and fields.get("lat") in (None, ""):
        if not address:
            raise CaseError("missing field(s): lon, lat (or an address when the place has no coordinates)")
        return Report(lon=None, lat=None, category=str(fields["category"]), description=str(fields["description"]),
                      reporter_contact=str(fields["reporter_contact"]) if fields.get("reporter_contact") else None,
                      source=str(fields.get("source") or "resident"), address=address)
    half = [k for k in ("lon", "lat") if fields.get(k) in (None, "")]
    if half:  # one coordinate without the other: say which, rather than "not a number"
        raise CaseError(f"missing field {half[0]}: give both lon and lat, or neither with an address")
    crs = str(fields.get("crs") or "wgs84").lower()
    if crs not in API_CRS:
        raise CaseError(f"unknown crs {crs!r}: use one of {', '.join(API_CRS)}")
    try:
        lon, lat = float(fields.get("lon")), float(fields.get("lat"))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer of 400 digits
        raise CaseError(f"lon and lat must both be numbers, got {fields.get('lon')!r}, {fields.get('lat')!r}") from None
    problem = range_problem(lon, lat)  # names a swap, as /locate does
    if problem:
        raise CaseError(f"coordinates out of range: {problem}")
    x, y = to_wgs84_xy(lon, lat, parse_crs(crs))
    return Report(
        lon=float(x), lat=float(y), category=str(fields["category"]), description=str(fields["description"]),
        reporter_contact=(str(fields["reporter_contact"]) if fields.get("reporter_contact") else None),
        source=str(fields.get("source") or "resident"), address=address, crs=crs, given=(lon, lat),
    )


@router.post(
    "/issues", status_code=201, dependencies=[Depends(rate_limit_reports)], openapi_extra=REPORT_BODY,
    responses=problem_responses(415),
)
async def create_issue(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, staff: CurrentStaff,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Report an issue at a place; it is assigned to its grid and routed at once.

    The body and its files are read here, on the event loop; the checks, assignment and
    storage are blocking work (SQL, maybe rebuilding the assigner), so they run in the
    thread pool and never stall other requests.
    """
    max_bytes = int(settings.max_upload_mb * 1024 * 1024)
    fields, files = await parse_report(request, max_bytes)
    refuse_unknown_fields(fields)  # api/bodies.py: a misspelt field is refused, not dropped
    report = report_from(fields)
    if staff is not None:
        report.source = f"{staff.role}:{staff.name}"
    try:
        uploads = [await read_media(f, max_bytes) for f in files]  # checked before anything is stored
    except MediaRejected as exc:
        raise CaseError(str(exc)) from exc
    return await run_in_threadpool(take_in, request, session, settings, clock, report, uploads, idempotency_key)


def take_in(
    request: Request, session: Session, settings: Settings, clock: cases.Clock, report: Report,
    uploads: list[Upload], idempotency_key: str | None,
) -> JSONResponse:
    """The blocking part of intake: check, assign, route, store the files, commit."""
    cases.check_report(session, report, settings)  # refused before the assigner is even loaded
    client = request.client.host if request.client else None
    assigner = cached_assigner(request, session, today(), settings.snap_metres)
    issue, created, duplicates, routing = cases.report_issue(
        session, report, assigner, clock, settings, client_id=client, idempotency_key=idempotency_key
    )
    if created and uploads:
        issue.media = store_media(settings.data_dir / "media", issue.ref, uploads)
    session.commit()
    body = {
        "id": issue.id, "ref": issue.ref, "status": issue.status,
        "areas": {lvl: getattr(issue, f"{lvl}_code") for lvl in ("grid", "community", "subdistrict", "district")},
        "department_code": issue.department_code,
        "routing": routing,
        "due_at": issue.due_at.isoformat() if issue.due_at else None,
        "due_provisional": bool(issue.due_provisional),
        "version": issue.version,
        "possible_duplicates": [{"id": d.id, "ref": d.ref, "status": d.status} for d in duplicates],
    }
    headers = {"ETag": etag(issue), "Location": f"/api/v1/issues/{issue.id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body, status_code=201 if created else 200, headers=headers)


# --- transitions -------------------------------------------------------------------------


class TransitionIn(BaseModel):
    # Unknown fields are refused: a misspelt "department" would otherwise be dropped silently.
    model_config = ConfigDict(extra="forbid")

    action: Action = Field(description="The step to take; a wrong one for the status is a 409 naming the allowed ones")
    note: str | None = Field(None, max_length=4000)
    satisfaction: int | None = Field(None, ge=1, le=5, description="The reporter's score, on close")
    department_code: str | None = Field(None, description="On dispatch: send to this department instead")
    version: int | None = Field(None, ge=1, le=MAX_ID, description="The version you read (or send If-Match)")


@router.post("/issues/{issue_id}/transitions")
def transition(
    issue_id: Annotated[int, id_path("issue")], body: TransitionIn, session: SessionDep, clock: ClockDep, staff: CurrentStaff, response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Move a case one step through the loop (staff only), with a version check."""
    if staff is None:
        raise cases.Forbidden("sign in: send Authorization: Bearer <token>")
    expected = body.version
    if if_match:
        try:
            expected = int(if_match.strip().removeprefix("W/").strip('"'))
        except ValueError:
            raise BadRequest(f"If-Match {if_match!r}: send the ETag you received, e.g. \"3\"") from None
    issue = cases.apply_action(session, issue_id, body.action, staff, clock, expected, body.note,
                               body.satisfaction, body.department_code)
    session.commit()
    response.headers["ETag"] = etag(issue)
    return {"id": issue.id, "status": issue.status, "version": issue.version,
            "due_at": issue.due_at.isoformat() if issue.due_at else None,
            "due_provisional": bool(issue.due_provisional),
            "allowed_actions": allowed_actions(issue.status, staff.role)}


# --- reading -----------------------------------------------------------------------------


@router.get("/issues/clusters", response_class=Response,
            responses=geojson_responses("Clusters as points with counts per status"))
def clusters(
    session: SessionDep,
    bbox: Annotated[str, Query(description="minlon,minlat,maxlon,maxlat")],
    zoom: Annotated[int, Query(ge=0, le=22, description="Web-Mercator zoom of the map")],
    status: Annotated[list[IssueStatus] | None, Query()] = None,
    category: Annotated[list[str] | None, Query(description="Category codes (GET /api/v1/categories)")] = None,
    department: Annotated[str | None, Query(description="A department code (GET /api/v1/departments)")] = None,
    since: Annotated[IsoDate | None, Query(alias="from", description="Reported on or after (Asia/Shanghai date)")] = None,
    until: Annotated[IsoDate | None, Query(alias="to", description="Reported on or before")] = None,
) -> Response:
    """Issues clustered on the server for the maps: GeoJSON points with counts per status.

    Cells are about 60 screen pixels at ``zoom``; each cluster carries its cell's ``bbox``,
    so ``GET /api/v1/issues?bbox=...`` with the same filters lists its issues.
    """
    box = parse_bbox(bbox)
    assert box is not None
    check_categories(session, category)
    check_departments(session, [department] if department else None)
    start, end = reported_window(since, until)
    try:
        found = issue_clusters(session, box, zoom, cases.utcnow(), status, category, department, start, end)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    body = {"type": "FeatureCollection", "numberReturned": len(found), "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [c["lon"], c["lat"]]}, "properties": c}
        for c in found]}
    return Response(json.dumps(body), media_type="application/geo+json")


@router.get("/issues/{issue_id}")
def read_issue(issue_id: Annotated[int, id_path("issue")], session: SessionDep, staff: CurrentStaff, response: Response) -> dict[str, Any]:
    """One issue, with its history."""
    issue = cases.get_issue(session, issue_id)
    if not cases.can_see(issue, staff):
        raise cases.NotFound(f"no issue {issue_id}")
    lon, lat = session.execute(select(func.ST_X(Issue.geom), func.ST_Y(Issue.geom)).where(Issue.id == issue_id)).one()
    props = issue_properties(issue, staff, cases.utcnow())
    props["history"] = [
        {"seq": e.seq, "at": e.at.isoformat(), "action": e.action, "from_status": e.from_status,
         "to_status": e.to_status, "actor": e.actor if staff is not None or e.actor.startswith(("resident", "system")) else e.actor.split(":")[0],
         "note": e.note}
        for e in session.scalars(select(IssueEvent).where(IssueEvent.issue_id == issue_id).order_by(IssueEvent.seq))
    ]
    response.headers["ETag"] = etag(issue)
    return feature(issue, lon, lat, props)


@router.get("/issues", response_class=Response, responses=geojson_responses("Issues, newest first"))
def list_issues(
    request: Request, session: SessionDep, staff: CurrentStaff,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat")] = None,
    status: Annotated[list[IssueStatus] | None, Query(description="Repeatable")] = None,
    category: Annotated[list[str] | None, Query(description="Category codes, repeatable (GET /api/v1/categories)")] = None,
    area: Annotated[str | None, Query(description="Grid, community, sub-district or district code")] = None,
    department: Annotated[str | None, Query(description="A department code (GET /api/v1/departments)")] = None,
    overdue: Annotated[bool | None, Query()] = None,
    since: Annotated[IsoDate | None, Query(alias="from", description="Reported on or after (Asia/Shanghai date)")] = None,
    until: Annotated[IsoDate | None, Query(alias="to", description="Reported on or before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """Issues as a GeoJSON FeatureCollection, filtered and paged."""
    conditions: list[Any] = []
    box = parse_bbox(bbox)
    if box is not None:
        conditions.append(dialect_for(session).bbox_filter(Issue.__table__, box))
    check_categories(session, category)
    check_departments(session, [department] if department else None)
    check_area(session, area)
    if status:
        conditions.append(Issue.status.in_(status))
    if category:
        conditions.append(Issue.category.in_(category))
    if area:
        conditions.append(or_(*(getattr(Issue, f"{lvl}_code") == area for lvl in ("grid", "community", "subdistrict", "district"))))
    if department:
        conditions.append(Issue.department_code == department)
    if staff is not None and staff.role == "handler":
        conditions.append(Issue.department_code == staff.department_code)
    now = cases.utcnow()
    if overdue is not None:
        late = and_(Issue.due_at.is_not(None), Issue.status != "rejected",
                    or_(and_(Issue.status == "closed", Issue.closed_at > Issue.due_at),
                        and_(Issue.status != "closed", Issue.due_at < now)))
        conditions.append(late if overdue else ~late)
    start, end = reported_window(since, until)
    if start:
        conditions.append(Issue.created_at >= start)
    if end:
        conditions.append(Issue.created_at < end)
    where = and_(*conditions) if conditions else and_(True)
    total = session.scalar(select(func.count()).select_from(Issue).where(where)) or 0
    rows = session.execute(
        select(Issue, func.ST_X(Issue.geom), func.ST_Y(Issue.geom)).where(where)
        .order_by(Issue.created_at.desc(), Issue.id.desc()).limit(limit).offset(offset)
    ).all()
    body: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [feature(i, x, y, issue_properties(i, staff, now)) for i, x, y in rows],
        "numberMatched": total, "numberReturned": len(rows),
        "links": [],
    }
    if offset + len(rows) < total:
        next_url = request.url.include_query_params(offset=offset + limit, limit=limit)
        body["links"].append({"rel": "next", "href": str(next_url), "type": "application/geo+json"})
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/geo+json")


@router.get("/stats")
def stats(
    request: Request,
    session: SessionDep, level: Annotated[StatLevel, Query(description="What to count by")],
    since: Annotated[IsoDate | None, Query(alias="from")] = None,
    until: Annotated[IsoDate | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """The evaluation figures per area or department (综合评价).

    For an area level, each item also has the area's ``area_km2`` (the version in force
    today) and ``density_per_km2``, reports received per km² in the period.
    """
    # The figures are cached per period and state of the issues table: a city's 100,000
    # cases take most of a second to aggregate, and the maps ask again on every visit.
    count, last_id, last_change = session.execute(
        select(func.count(), func.max(Issue.id), func.max(Issue.updated_at))).one()
    # The minute too: "overdue" moves with the clock even when no issue changes.
    now = cases.utcnow()
    key = (level, since, until, count, last_id, str(last_change), now.replace(second=0, microsecond=0),
           # the areas' sizes: a re-import (--replace) changes them, not the issues
           layer_key(session, level, today()) if level != "department" else None)
    cache: dict[Any, dict[str, Any]] = request.app.state.__dict__.setdefault("stats_cache", {})
    if key in cache:
        return cache[key]
    if len(cache) > 32:
        cache.clear()
    column = "department_code" if level == "department" else f"{level}_code"
    query = select(getattr(Issue, column), Issue.status, Issue.created_at, Issue.closed_at, Issue.due_at, Issue.satisfaction)
    start, end = reported_window(since, until)
    if start:
        query = query.where(Issue.created_at >= start)
    if end:
        query = query.where(Issue.created_at < end)
    rows = session.execute(query).all()
    items = issue_stats(rows, now)
    if level != "department":
        sizes = area_sizes(request, session, level, today())
        for item in items:
            km2 = sizes.get(item["key"])
            item["area_km2"] = round(km2, 4) if km2 else None
            item["density_per_km2"] = round(item["received"] / km2, 2) if km2 else None
    cache[key] = {"level": level, "open_statuses": sorted(OPEN_STATUSES), "items": items}
    return cache[key]


# --- reference lists (the dispatch map's filters) ------------------------------------------


@router.get("/categories")
def list_categories(session: SessionDep) -> dict[str, Any]:
    """Issue categories with their time limits (the same list as Open311's services)."""
    rows = session.scalars(select(Category).order_by(Category.group, Category.code))
    return {"categories": [
        {"code": c.code, "name": c.name, "group": c.group, "time_limit_hours": c.time_limit_hours,
         "working_hours": c.working_hours, "department_kind": c.department_kind} for c in rows]}


@router.get("/departments")
def list_departments(session: SessionDep) -> dict[str, Any]:
    """The departments cases are routed to, by code."""
    rows = session.scalars(select(Department).order_by(Department.code))
    return {"departments": [
        {"code": d.code, "name": d.name, "kind": d.kind, "area_code": d.area_code} for d in rows]}


# --- routing rules -------------------------------------------------------------------------


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field must not pass as "city-wide"

    category: str
    department_code: str
    area_code: str | None = Field(None, description="Grid, community, sub-district or district code; none: city-wide")


def _rule_editor(staff: Staff | None) -> Staff:
    if staff is None or staff.role not in ("dispatcher", "admin"):
        raise cases.Forbidden("only dispatchers and admins edit routing rules")
    return staff


@router.get("/routing-rules")
def list_rules(session: SessionDep, category: str | None = None) -> list[dict[str, Any]]:
    """The routing rules, most specific first within each category."""
    from data.models import RoutingRuleRow

    check_categories(session, [category] if category else None)
    query = select(RoutingRuleRow).order_by(RoutingRuleRow.category, RoutingRuleRow.area_code.is_(None), RoutingRuleRow.id)
    if category:
        query = query.where(RoutingRuleRow.category == category)
    return [{"id": r.id, "category": r.category, "department_code": r.department_code, "area_code": r.area_code}
            for r in session.scalars(query)]


@router.post("/routing-rules", status_code=201)
def add_rule(body: RuleIn, session: SessionDep, staff: CurrentStaff) -> dict[str, Any]:
    """Add a rule (one per category and area)."""
    from data.models import Department, RoutingRuleRow

    _rule_editor(staff)
    cases.category(session, body.category)
    if session.scalar(select(Department.id).where(Department.code == body.department_code)) is None:
        raise CaseError(f"no department {body.department_code!r}")
    clash = session.scalar(select(RoutingRuleRow.id).where(
        RoutingRuleRow.category == body.category,
        RoutingRuleRow.area_code.is_(None) if body.area_code is None else RoutingRuleRow.area_code == body.area_code))
    if clash is not None:
        raise cases.Conflict(f"rule {clash} already routes {body.category} at {body.area_code or 'city level'}; delete it first")
    rule = RoutingRuleRow(category=body.category, department_code=body.department_code, area_code=body.area_code)
    session.add(rule)
    session.commit()
    return {"id": rule.id, **body.model_dump()}


@router.delete("/routing-rules/{rule_id}", status_code=204)
def delete_rule(rule_id: Annotated[int, id_path("routing_rule")], session: SessionDep, staff: CurrentStaff) -> Response:
    from data.models import RoutingRuleRow

    _rule_editor(staff)
    rule = session.get(RoutingRuleRow, rule_id)
    if rule is None:
        raise cases.NotFound(f"no routing rule {rule_id}")
    session.delete(rule)
    session.commit()
    return Response(status_code=204)
