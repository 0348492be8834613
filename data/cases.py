"""The closed loop in the database: intake, routing, transitions, deadlines, escalation.

Each function is one use case. It takes a session inside the caller's transaction (the
API request or the CLI command owns the transaction) and uses geo/ for the rules.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from data import repository as repo
from data.calendar import CalendarSource
from data.models import Category, Department, Issue, IssueEvent, RoutingRuleRow, User, utcnow
from data.service_area import ServiceAreaSettingInvalid, service_area
from data.settings import Settings
from geo.area_index import metres_per_degree
from geo.assign import Assigner
from geo.issues import OPEN_STATUSES
from geo.loop import ROLES, next_status
from geo.routing import RoutingRule, route
from geo.swap import range_problem, swap_hint
from geo.worktime import Deadline, WorkCalendar, WorkingDay, deadline, due_at, parse_working_day

MAX_DESCRIPTION = 4000  # Open311's limit, used everywhere
STAFF_ROLES = (*ROLES, "gate")


class CaseError(ValueError):
    """A request about a case that cannot be done; ``status`` is the HTTP status to use."""

    status = 422

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


class NotFound(CaseError):
    status = 404


class Conflict(CaseError):
    status = 409


class Forbidden(CaseError):
    status = 403


class PreconditionFailed(CaseError):
    status = 412


class Unavailable(CaseError):
    """The deployment is misconfigured: nothing the caller can fix."""

    status = 503


@dataclass(frozen=True)
class Staff:
    """Who is acting: a staff user, or None for a member of the public."""

    name: str
    role: str
    department_code: str | None = None


@dataclass
class Report:
    lon: float | None  # WGS84; None with an address only
    lat: float | None
    category: str
    description: str
    reporter_contact: str | None = None
    media: list[dict[str, Any]] = field(default_factory=list)
    source: str = "resident"
    address: str | None = None
    crs: str = "wgs84"  # what the reporter used; lon/lat above are already WGS84
    given: tuple[float, float] | None = None  # lon, lat as given in crs, for the swap hint


# --- staff and tokens --------------------------------------------------------------------


def hash_token(token: str) -> str:
    """Tokens are stored as SHA-256: a stolen database does not give working tokens."""
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(session: Session, name: str, role: str, department_code: str | None = None) -> str:
    """Create a staff user and return their new bearer token (shown once, never stored)."""
    if role not in STAFF_ROLES:
        raise CaseError(f"unknown role {role!r}: use one of {', '.join(STAFF_ROLES)}")
    if role == "handler" and not department_code:
        raise CaseError("a handler belongs to a department: give --department CODE")
    if department_code and _department_id(session, department_code) is None:
        raise CaseError(f"no department {department_code!r}")
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise Conflict(f"a user named {name!r} already exists")
    token = secrets.token_urlsafe(32)
    session.add(User(name=name, role=role, department_code=department_code, token_hash=hash_token(token)))
    session.flush()
    return token


def _department_id(session: Session, code: str) -> int | None:
    return session.scalar(select(Department.id).where(Department.code == code))


def staff_for_token(session: Session, token: str) -> Staff | None:
    user = session.scalar(select(User).where(User.token_hash == hash_token(token)))
    return None if user is None else Staff(user.name, user.role, user.department_code)


# --- deadlines ---------------------------------------------------------------------------


class Clock:
    """Working time as configured: the official calendar and the working day.

    The calendar is chinese-calendar, the extra file, and the years loaded into the
    database (``gridmap calendar import``), re-read when another process loads one; a year
    none of them covers is provisional, and so is any deadline that reaches into it.
    """

    def __init__(self, calendar: WorkCalendar, working_day: WorkingDay,
                 source: CalendarSource | None = None) -> None:
        self.calendar = calendar
        self.working_day = working_day
        self.source = source

    @classmethod
    def from_settings(cls, settings: Settings, today: Callable[[], dt.date] | None = None) -> Clock:
        source = CalendarSource(settings.calendar_extra, today)
        return cls(source.current, parse_working_day(settings.working_day), source)

    def calendar_for(self, session: Session) -> WorkCalendar:
        """The calendar including the years in the database (one small read to check them)."""
        if self.source is not None:
            self.calendar = self.source.calendar(session)
        return self.calendar

    def due(self, start: dt.datetime, category: Category) -> dt.datetime:
        """The deadline on the calendar as last read (no database)."""
        return due_at(start, category.time_limit_hours, category.working_hours, self.calendar, self.working_day)

    def deadline(self, session: Session, start: dt.datetime, category: Category) -> Deadline:
        """The deadline and whether it is provisional, on the calendar the database has now."""
        return deadline(start, category.time_limit_hours, category.working_hours,
                        self.calendar_for(session), self.working_day)

    def deadline_fields(self, session: Session, start: dt.datetime, category: Category) -> dict[str, Any]:
        """``due_at`` and ``due_provisional`` for an issue: every place that sets one sets both."""
        found = self.deadline(session, start, category)
        return {"due_at": found.at, "due_provisional": found.provisional}


# --- routing -----------------------------------------------------------------------------


def rules(session: Session, category: str | None = None) -> list[RoutingRule]:
    """Routing rules, all or one category's (intake needs only its own)."""
    query = select(RoutingRuleRow.category, RoutingRuleRow.department_code, RoutingRuleRow.area_code)
    if category is not None:
        query = query.where(RoutingRuleRow.category == category)
    return [RoutingRule(*row) for row in session.execute(query.order_by(RoutingRuleRow.id))]


UNROUTED = "held unrouted for a dispatcher to route (set GRIDMAP_FALLBACK_DEPARTMENT to name a department)"


def route_issue(
    session: Session, category: str, chain: dict[str, str | None], fallback: str | None = None,
    located: bool = True,
) -> tuple[str | None, str]:
    """The department for a case and why, never an arbitrary one.

    A case in no grid (or with an address only) goes to the ``fallback`` department when
    one is configured: nobody owns its place, so a command centre places it. Otherwise the
    most specific rule, then the sub-district's or district's command centre, then the
    fallback; with none of these the case is held unrouted, and the reason says so.
    """
    if chain.get("grid") is None and fallback:
        return fallback_route(session, fallback, "in no grid" if located else "an address only")
    found = route(category, chain, rules(session, category))
    if found is not None:
        return found.department_code, f"rule for {found.level}"
    for level in ("subdistrict", "district"):
        code = chain.get(level)
        if code:
            centre = session.scalar(
                select(Department.code).where(Department.kind == "command_centre", Department.area_code == code)
            )
            if centre:
                return centre, f"no rule: {level} command centre"
    if fallback:
        return fallback_route(session, fallback, "no rule and no local command centre")
    return None, f"no rule and no local command centre: {UNROUTED}"


def fallback_route(session: Session, code: str, why: str) -> tuple[str | None, str]:
    """The configured fallback department, checked: a mistyped code must not swallow cases."""
    if _department_id(session, code) is None:
        logging.getLogger("gridmap").error("GRIDMAP_FALLBACK_DEPARTMENT %r is not a department", code)
        return None, f"{why}; GRIDMAP_FALLBACK_DEPARTMENT {code!r} is not a department, so the case is {UNROUTED}"
    return code, f"{why}: fallback department (GRIDMAP_FALLBACK_DEPARTMENT)"


# --- intake ------------------------------------------------------------------------------


def category(session: Session, code: str) -> Category:
    found = session.get(Category, code)
    if found is None:
        known = session.scalars(select(Category.code).order_by(Category.code)).all()
        raise CaseError(f"unknown category {code!r}", known=list(known))
    return found


def check_report(
    session: Session, report: Report, settings: Settings | None = None, on: dt.date | None = None,
) -> Category:
    """Everything about a report that can be refused before anything is stored.

    With ``settings``, the place is also checked against the service area in force on
    ``on`` (default: today in the city).
    """
    if not report.description or not report.description.strip():
        raise CaseError("description is empty: say what is wrong")
    check_text(report)
    if len(report.description) > MAX_DESCRIPTION:
        raise CaseError(f"description has {len(report.description)} characters; at most {MAX_DESCRIPTION}")
    if report.lon is None or report.lat is None:
        if not report.address or not report.address.strip():
            raise CaseError("give the place: lon and lat, or at least an address")
    else:
        problem = range_problem(*(report.given or (report.lon, report.lat)))
        if problem:
            raise CaseError(f"coordinates out of range: {problem}")
    kind = category(session, report.category)
    if settings is not None:
        check_place(session, report, settings, on or local_today())
    return kind


# What XML 1.0 can carry (its Char production): the Open311 feed is XML, and one stored
# control character or lone surrogate would make it ill-formed for every client.
NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_char_problem(name: str, text: str | None) -> str | None:
    """Names the first character of ``text`` that XML 1.0 cannot carry, and where it is."""
    found = NOT_XML_CHAR.search(text or "")
    if found is None:
        return None
    return (f"{name} has a character that cannot be stored or shown (U+{ord(found.group()):04X} "
            f"at position {found.start() + 1}): remove control characters and send UTF-8 text")


def check_text(report: Report) -> None:
    """Refuse text fields with control characters or lone surrogates before anything is stored."""
    for name in ("category", "description", "address", "reporter_contact", "source"):
        problem = xml_char_problem(name, getattr(report, name))
        if problem:
            raise CaseError(problem)


def local_today() -> dt.date:
    """Today in the city (Asia/Shanghai), the date whose layers are in force for a report."""
    return utcnow().astimezone(dt.timezone(dt.timedelta(hours=8))).date()


def check_place(session: Session, report: Report, settings: Settings, on: dt.date) -> None:
    """Refuse a point farther outside the service area than the margin, naming a likely swap."""
    if report.lon is None or report.lat is None:
        return  # an address only: nothing to measure; routed like a point in no grid
    try:
        area = service_area(session, settings, on)
    except ServiceAreaSettingInvalid as exc:
        raise Unavailable(f"{exc}: an administrator must fix the setting") from None
    if area is None:
        return  # no layer loaded: nothing defines the city yet
    margin = settings.service_area_margin_m
    distance = area.distance_m(report.lon, report.lat)
    if distance <= margin:
        return
    lon, lat = report.given or (report.lon, report.lat)
    lead = f"lon={lon}, lat={lat} is {distance / 1000:,.1f} km outside the service area ({area.source})"
    hint = swap_hint(lon, lat, report.crs, lambda x, y: "the service area" if area.distance_m(x, y) <= margin else None,
                     lead=lead)
    raise CaseError(
        hint or f"{lead}; reports are taken up to {margin:g} m outside it: check the coordinates and their crs",
        service_area=area.source, distance_m=round(distance),
    )


def new_ref(now: dt.datetime) -> str:
    """A reference people can read out on the phone: the local date and 8 random hex digits.

    Random rather than a per-day counter, which would need a scan or a lock per report.
    """
    local = now.astimezone(dt.timezone(dt.timedelta(hours=8)))
    return f"GM{local:%Y%m%d}{secrets.token_hex(4).upper()}"


class Intake(NamedTuple):
    """What taking in a report gave: the case, whether it is new, and where it went and why."""

    issue: Issue
    created: bool
    duplicates: list[Issue]
    routing: str | None  # the reason for its department, as recorded in its history


def report_issue(
    session: Session, report: Report, assigner: Assigner, clock: Clock, settings: Settings,
    client_id: str | None = None, idempotency_key: str | None = None, now: dt.datetime | None = None,
) -> Intake:
    """Take in a report: check, assign, route, deadline, history.

    A repeated Idempotency-Key from the same client returns the first issue unchanged.
    """
    if idempotency_key:
        earlier = _by_idempotency(session, client_id, idempotency_key)
        if earlier is not None:
            return Intake(earlier, False, [], routing_reason(session, earlier))
    kind = check_report(session, report, settings)
    now = now or utcnow()
    located = report.lon is not None and report.lat is not None
    place: dict[str, Any] = (
        assigner.assign_one(report.lon, report.lat) if located else {"match": "unlocated"}  # type: ignore[arg-type]
    )
    chain: dict[str, str | None] = {lvl: place.get(f"{lvl}_code") for lvl in ("grid", "community", "subdistrict", "district")}
    department, why = route_issue(session, kind.code, chain, settings.fallback_department, located)
    duplicates = possible_duplicates(session, report, settings, now) if located else []
    issue = Issue(
        ref=new_ref(now), category=kind.code, description=report.description.strip(),
        status="reported", **{f"{lvl}_code": code for lvl, code in chain.items()},
        department_code=department, reporter_contact=report.reporter_contact,
        created_at=now, updated_at=now, address=report.address,
        geom=f"SRID=4326;POINT({report.lon!r} {report.lat!r})" if located else None,
        **clock.deadline_fields(session, now, kind), version=1, idempotency_key=idempotency_key,
        client_id=client_id if idempotency_key else None, media=report.media or None,
    )
    try:
        with session.begin_nested():  # a concurrent retry with the same key loses here
            session.add(issue)
            session.flush()
    except IntegrityError:
        earlier = _by_idempotency(session, client_id, idempotency_key) if idempotency_key else None
        if earlier is None:
            raise
        return Intake(earlier, False, [], routing_reason(session, earlier))
    routed = f"routed to {department} ({why})" if department else why
    session.add(IssueEvent(
        issue_id=issue.id, seq=1, at=now, action="report", from_status=None, to_status="reported",
        actor=report.source, note=f"{routed}; match {place['match']}",
        data={"assignment": place, "routing": why},
    ))
    session.flush()
    return Intake(issue, True, duplicates, why)


def routing_reason(session: Session, issue: Issue) -> str | None:
    """Why the case went where it did at intake, from its first event (for a replayed report)."""
    data = session.scalar(select(IssueEvent.data).where(IssueEvent.issue_id == issue.id, IssueEvent.seq == 1))
    return data.get("routing") if isinstance(data, dict) else None


def _by_idempotency(session: Session, client_id: str | None, key: str) -> Issue | None:
    return session.scalar(select(Issue).where(Issue.idempotency_key == key, Issue.client_id == client_id))


MAX_DUPLICATES = 10


def possible_duplicates(session: Session, report: Report, settings: Settings, now: dt.datetime) -> list[Issue]:
    """Open issues of the same category within the radius, reported in the last days.

    At most MAX_DUPLICATES, nearest first: a reporter needs a few to look at, not all.
    """
    assert report.lon is not None and report.lat is not None
    kx, ky = (float(v[0]) for v in metres_per_degree([report.lat]))
    radius = settings.duplicate_radius_m
    box = (report.lon - radius / kx, report.lat - radius / ky, report.lon + radius / kx, report.lat + radius / ky)
    table = Issue.__table__
    candidates = session.execute(
        select(table.c.id, func.ST_X(table.c.geom), func.ST_Y(table.c.geom)).where(and_(
            repo.dialect_for(session).bbox_filter(table, box),
            table.c.category == report.category,
            table.c.status.in_(sorted(OPEN_STATUSES)),
            table.c.created_at >= now - dt.timedelta(days=settings.duplicate_days),
        ))
    ).all()
    distances = sorted(
        (np.hypot((x - report.lon) * kx, (y - report.lat) * ky), i) for i, x, y in candidates
    )
    near = [i for d, i in distances if d <= radius][:MAX_DUPLICATES]
    if not near:
        return []
    found = {issue.id: issue for issue in session.scalars(select(Issue).where(Issue.id.in_(near)))}
    return [found[i] for i in near]


# --- transitions -------------------------------------------------------------------------


def get_issue(session: Session, issue_id: int) -> Issue:
    issue = session.get(Issue, issue_id)
    if issue is None:
        raise NotFound(f"no issue {issue_id}")
    return issue


def can_see(issue: Issue, staff: Staff | None) -> bool:
    """Handlers see only their department's cases; other staff see all."""
    return staff is None or staff.role != "handler" or issue.department_code == staff.department_code


def apply_action(
    session: Session, issue_id: int, action: str, staff: Staff, clock: Clock, expected_version: int | None,
    note: str | None = None, satisfaction: int | None = None, department_code: str | None = None,
    now: dt.datetime | None = None,
) -> Issue:
    """Move a case one step through the loop, recording who, when and a note."""
    issue = get_issue(session, issue_id)
    if not can_see(issue, staff):
        raise NotFound(f"no issue {issue_id}")  # do not reveal other departments' cases
    if expected_version is None:
        raise PreconditionFailed("send the issue's version (If-Match header or 'version') to change it")
    if expected_version != issue.version:
        raise PreconditionFailed(
            f"issue {issue_id} has changed (version {issue.version}, you sent {expected_version}); reload it",
            current_version=issue.version,
        )
    try:
        target = next_status(issue.status, action, staff.role)
    except PermissionError as exc:
        raise Forbidden(str(exc)) from exc
    except ValueError as exc:
        raise Conflict(str(exc), allowed=getattr(exc, "allowed", [])) from exc
    now = now or utcnow()
    source = issue.status
    changes: dict[str, Any] = {"status": target, "version": expected_version + 1, "updated_at": now}
    if action == "dispatch":
        if department_code:
            if _department_id(session, department_code) is None:
                raise CaseError(f"no department {department_code!r}")
            changes["department_code"] = department_code
        changes.update(clock.deadline_fields(session, now, category(session, issue.category)))  # from dispatch
    if action == "close":
        if satisfaction is not None and not 1 <= satisfaction <= 5:
            raise CaseError("satisfaction is a score from 1 to 5")
        changes.update(satisfaction=satisfaction, closed_at=now)
    if action == "reopen":
        changes.update(satisfaction=None, closed_at=None)
    # Compare-and-set on the version: of two dispatchers acting at once, one update
    # matches no row and fails, even if both passed the check above.
    table = Issue.__table__
    updated = session.execute(
        table.update().where(table.c.id == issue.id, table.c.version == expected_version).values(**changes)
    ).rowcount
    if updated != 1:
        raise PreconditionFailed(f"issue {issue_id} was changed by someone else; reload it")
    seq = (session.scalar(select(func.max(IssueEvent.seq)).where(IssueEvent.issue_id == issue.id)) or 0) + 1
    session.add(IssueEvent(issue_id=issue.id, seq=seq, at=now, action=action, from_status=source,
                           to_status=target, actor=f"{staff.role}:{staff.name}", note=note,
                           data={"satisfaction": satisfaction} if satisfaction is not None else None))
    session.flush()
    session.refresh(issue)
    return issue


# --- escalation --------------------------------------------------------------------------


def escalate(session: Session, now: dt.datetime | None = None) -> dict[str, int]:
    """Raise overdue open cases: past due to the district, a full time limit later to the city."""
    now = now or utcnow()
    raised = {"district": 0, "city": 0}
    overdue = session.scalars(select(Issue).where(
        Issue.status.in_(sorted(OPEN_STATUSES - {"reported"})), Issue.due_at.is_not(None), Issue.due_at < now,
        (Issue.escalation_level.is_(None)) | (Issue.escalation_level == "district"),
    ))
    for issue in overdue:
        target = "district" if issue.escalation_level is None else "city"
        if target == "city":
            limit = session.get(Category, issue.category)
            if limit is None or now < issue.due_at + dt.timedelta(hours=limit.time_limit_hours):
                continue
        issue.escalation_level = target
        issue.version += 1
        seq = (session.scalar(select(func.max(IssueEvent.seq)).where(IssueEvent.issue_id == issue.id)) or 0) + 1
        session.add(IssueEvent(issue_id=issue.id, seq=seq, at=now, action="escalate", from_status=issue.status,
                               to_status=issue.status, actor="system:escalation",
                               note=f"overdue since {issue.due_at:%Y-%m-%d %H:%M} UTC: raised to the {target}"))
        raised[target] += 1
    session.flush()
    return raised
