"""China's official calendar in the database: load a year, read it back, recompute deadlines.

The State Council publishes next year's holidays and make-up working days (调休) about six
weeks before the year starts; chinese-calendar learns them only at its next release. An
operator types the notice into a file and runs ``gridmap calendar import FILE``: the year
is stored in ``calendar_years``/``calendar_days``, so every worker of every process sees
it, and the open cases whose deadlines were computed on the provisional calendar are
recomputed on the official one in the same transaction, each with an event.

Accepted files (``docs``: README, "Loading the official calendar"):

- JSON ``{"year": 2027, "holidays": ["2027-01-01", ...], "workdays": ["2027-02-20", ...]}``,
  or the shape of geo/calendar_extra.json (no ``year``; the years are those of the dates).
- CSV with a header ``date,kind`` (kind ``holiday`` or ``workday``; an optional ``name``
  or ``note`` column is kept out of the way).

``holidays`` are the days off (weekdays off at least; the weekend days of a holiday may be
listed too), ``workdays`` the Saturdays and Sundays worked in lieu. A year is loaded whole:
the rows of a year already loaded are replaced.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from data.models import CalendarDay, CalendarYear, Category, Issue, IssueEvent, utcnow
from geo.issues import OPEN_STATUSES
from geo.worktime import (
    PROVISIONAL,
    WorkCalendar,
    WorkingDay,
    deadline,
    statutory_holidays,
)

# date -> True for a make-up working day, False for a day off; per year.
OfficialDays = dict[int, dict[dt.date, bool]]
KINDS = {"holiday": False, "workday": True}
RECOMPUTED = "deadline_recomputed"


class CalendarFileError(ValueError):
    """A calendar file that cannot be loaded; ``problems`` lists every fault found."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__(
            f"{path}: nothing loaded; fix these and import again:\n  " + "\n  ".join(problems)
        )


# --- reading the database ------------------------------------------------------------------


def load_official(session: Session) -> OfficialDays:
    """Every loaded year with its exceptions to the weekend rule."""
    years: OfficialDays = {year: {} for year in session.scalars(select(CalendarYear.year))}
    for day, workday, year in session.execute(
        select(CalendarDay.day, CalendarDay.workday, CalendarDay.year)
    ):
        years.setdefault(year, {})[day] = bool(workday)
    return years


def calendar_stamp(session: Session) -> tuple[Any, ...]:
    """What changes whenever a year is loaded, replaced or removed: one read of a tiny table."""
    # calendar_years holds one row per loaded year (a handful), and every import rewrites
    # its year's row with a new imported_at; so the count and the latest time say enough.
    return tuple(
        session.execute(
            select(func.count(CalendarYear.year), func.max(CalendarYear.imported_at))
        ).one()
    )


class CalendarSource:
    """The working calendar of a process: files and package, plus the years in the database.

    Every process (each API worker, each CLI command) sees a year another process loaded:
    ``calendar(session)`` compares the database's stamp with the one it built from, and
    rebuilds only when it changed.
    """

    def __init__(
        self,
        extra: Path | str | Mapping[str, Any] | None = None,
        today: Callable[[], dt.date] | None = None,
    ) -> None:
        self.extra = extra
        self.today = today
        self._lock = threading.Lock()
        self._stamp: tuple[Any, ...] | None = None
        # Built now, so that a broken extra file stops the app at start-up, not at a report.
        self._calendar = WorkCalendar(extra, today=today)

    @property
    def current(self) -> WorkCalendar:
        """The calendar as last built (without looking at the database again)."""
        return self._calendar

    def calendar(self, session: Session) -> WorkCalendar:
        """The calendar including the database's years, rebuilt when they changed."""
        stamp = calendar_stamp(session)
        with self._lock:
            if stamp != self._stamp:
                self._calendar = self.build(load_official(session))
                self._stamp = stamp
            return self._calendar

    def build(self, official: OfficialDays) -> WorkCalendar:
        """A fresh calendar with these database years."""
        return WorkCalendar(self.extra, official, self.today)


# --- reading a file ------------------------------------------------------------------------


def read_calendar_file(path: Path) -> OfficialDays:
    """The years of a JSON or CSV calendar file, validated; CalendarFileError lists every fault."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalendarFileError(path, [f"cannot read it as UTF-8 text: {exc}"]) from None
    problems: list[str] = []
    if path.suffix.lower() == ".csv":
        entries, declared = _csv_entries(text, problems), None
    else:
        entries, declared = _json_entries(text, problems)
    years = _collect(entries, declared, problems)
    for year, days in sorted(years.items()):
        problems.extend(check_year(year, days))
    if problems:
        raise CalendarFileError(path, problems)
    return years


def _json_entries(text: str, problems: list[str]) -> tuple[list[tuple[str, Any, str]], int | None]:
    """(kind, value, where) entries of a JSON file, and its "year" if it declares one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(f"not valid JSON: {exc}")
        return [], None
    if not isinstance(data, dict):
        problems.append(
            'expected a JSON object: {"year": 2027, "holidays": [...], "workdays": [...]}'
        )
        return [], None
    unknown = sorted(
        k for k in data if k not in ("year", "holidays", "workdays") and not k.startswith("_")
    )
    if unknown:
        problems.append(f'unknown keys {unknown}: expected "year", "holidays" and "workdays"')
    declared = data.get("year")
    if declared is not None and (isinstance(declared, bool) or not isinstance(declared, int)):
        problems.append(f'"year" must be a number such as 2027, not {declared!r}')
        declared = None
    entries: list[tuple[str, Any, str]] = []
    for kind, key in (("holiday", "holidays"), ("workday", "workdays")):
        values = data.get(key, [])
        if not isinstance(values, list):
            problems.append(f"{key!r} must be a list of YYYY-MM-DD strings")
            continue
        entries.extend((kind, value, f"{key!r} entry {value!r}") for value in values)
    return entries, declared


def _csv_entries(text: str, problems: list[str]) -> list[tuple[str, Any, str]]:
    """(kind, value, where) entries of a ``date,kind`` CSV file."""
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    if (
        "date" not in header
        or "kind" not in header
        or set(header) - {"date", "kind", "name", "note"}
    ):
        problems.append(
            f"the header must be date,kind (optionally name or note), not {','.join(header)!r}"
        )
        return []
    reader.fieldnames = header
    entries: list[tuple[str, Any, str]] = []
    for line, row in enumerate(reader, start=2):
        kind = (row.get("kind") or "").strip().lower()
        if kind not in KINDS:
            problems.append(f"line {line}: kind {row.get('kind')!r} is not holiday or workday")
            continue
        entries.append(
            (kind, (row.get("date") or "").strip(), f"line {line} ({row.get('date')!r})")
        )
    return entries


def _collect(
    entries: Iterable[tuple[str, Any, str]], declared: int | None, problems: list[str]
) -> OfficialDays:
    """Entries as days per year, with bad dates, duplicates, both kinds and stray years named."""
    seen: dict[dt.date, str] = {}
    years: OfficialDays = {}
    for kind, value, where in entries:
        try:
            day = dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            problems.append(f"{where}: not a YYYY-MM-DD date")
            continue
        if day in seen:
            problems.append(
                f"{where}: {day} is listed twice"
                if seen[day] == kind
                else f"{where}: {day} is listed as both holiday and workday"
            )
            continue
        seen[day] = kind
        if declared is not None and day.year != declared:
            problems.append(f"{where}: {day} is not in {declared}, the file's year")
            continue
        years.setdefault(day.year, {})[day] = KINDS[kind]
    if not years and not problems:
        problems.append("no dates: list the year's holidays and make-up working days")
    return years


def check_year(year: int, days: Mapping[dt.date, bool]) -> list[str]:
    """What is wrong with a year's arrangement as typed: the checks a notice always passes."""
    problems = [
        f"{day} ({day:%A}) is listed as a make-up working day, but it is a weekday: "
        f"make-up working days are the Saturdays and Sundays worked in lieu"
        for day, workday in sorted(days.items())
        if workday and day.weekday() < 5
    ]
    # A statutory holiday is never a working day, and one on a weekday is always a day off;
    # a file that lacks one is incomplete (e.g. only the Spring Festival typed in).
    for day, name in sorted(statutory_holidays(year).items()):
        if days.get(day) is True:
            problems.append(
                f"{day} is {name}, a statutory holiday: it cannot be a make-up working day"
            )
        elif day.weekday() < 5 and day not in days:
            problems.append(
                f"{day} ({day:%A}) is {name}, a statutory holiday, but it is not listed "
                f"as a holiday: list the year's arrangement completely"
            )
    return problems


# --- loading a year ------------------------------------------------------------------------


@dataclass
class CalendarImport:
    """What an import did."""

    years: list[int]
    days: int
    recomputed: int = 0
    moved: int = 0
    moves: list[tuple[str, dt.datetime, dt.datetime]] = field(default_factory=list)


def import_calendar(
    session: Session,
    path: Path,
    source: CalendarSource,
    working_day: WorkingDay,
    now: dt.datetime | None = None,
) -> CalendarImport:
    """Store the file's years (replacing them) and recompute the provisional deadlines they settle.

    Runs in the caller's transaction: the years and the moved deadlines commit together.
    """
    years = read_calendar_file(path)
    now = now or utcnow()
    for year, days in sorted(years.items()):
        store_year(session, year, days, path.name, now)
    calendar = source.build(load_official(session))
    result = CalendarImport(sorted(years), sum(len(days) for days in years.values()))
    recompute_provisional(session, calendar, working_day, set(years), now, result)
    return result


def store_year(
    session: Session, year: int, days: Mapping[dt.date, bool], source: str, now: dt.datetime
) -> None:
    """Replace a year's rows with these days."""
    session.execute(delete(CalendarDay).where(CalendarDay.year == year))
    session.execute(delete(CalendarYear).where(CalendarYear.year == year))
    session.add(CalendarYear(year=year, source=source[:500], imported_at=now))
    session.flush()
    session.add_all(
        CalendarDay(day=day, workday=workday, year=year) for day, workday in sorted(days.items())
    )
    session.flush()


def recompute_provisional(
    session: Session,
    calendar: WorkCalendar,
    working_day: WorkingDay,
    years: set[int],
    now: dt.datetime,
    result: CalendarImport,
) -> None:
    """New deadlines for open cases whose provisional deadline or its start falls in ``years``."""
    issues = session.scalars(
        select(Issue)
        .where(
            Issue.due_provisional.is_(True),
            Issue.due_at.is_not(None),
            Issue.status.in_(sorted(OPEN_STATUSES)),
        )
        .order_by(Issue.id)
    ).all()
    starts = deadline_starts(session, [issue.id for issue in issues])
    limits = {c.code: c for c in session.scalars(select(Category))}
    for issue in issues:
        start = starts.get(issue.id, issue.created_at)
        kind = limits.get(issue.category)
        assert issue.due_at is not None
        if kind is None or not years & set(
            range(_local_year(start), _local_year(issue.due_at) + 1)
        ):
            continue
        new = deadline(start, kind.time_limit_hours, kind.working_hours, calendar, working_day)
        old = issue.due_at
        if new.at == old and new.provisional:
            continue  # another year it spans is still provisional: nothing to say yet
        result.recomputed += 1
        if new.at != old:
            result.moved += 1
            result.moves.append((issue.ref, old, new.at))
        _record_recomputed(session, issue, old, new.at, new.provisional, now)


def deadline_starts(session: Session, issue_ids: list[int]) -> dict[int, dt.datetime]:
    """When each case's deadline started counting: its last dispatch (else its report)."""
    if not issue_ids:
        return {}
    rows = session.execute(
        select(IssueEvent.issue_id, func.max(IssueEvent.at))
        .where(IssueEvent.issue_id.in_(issue_ids), IssueEvent.action == "dispatch")
        .group_by(IssueEvent.issue_id)
    ).all()
    return {issue_id: at for issue_id, at in rows}


def _local_year(value: dt.datetime) -> int:
    """The year in China of an instant (a deadline at 2027-01-01 00:30 local is in 2027)."""
    return value.astimezone(dt.timezone(dt.timedelta(hours=8))).year


def _record_recomputed(
    session: Session,
    issue: Issue,
    old: dt.datetime,
    new: dt.datetime,
    provisional: bool,
    now: dt.datetime,
) -> None:
    """Set the new deadline and append the event that says why it changed."""
    issue.due_at = new
    issue.due_provisional = provisional
    issue.version += 1
    issue.updated_at = now
    # Events are append-only and numbered per case: the next seq is the largest plus one.
    seq = (
        session.scalar(select(func.max(IssueEvent.seq)).where(IssueEvent.issue_id == issue.id)) or 0
    ) + 1
    moved = "moved" if new != old else "confirmed"
    session.add(
        IssueEvent(
            issue_id=issue.id,
            seq=seq,
            at=now,
            action=RECOMPUTED,
            from_status=issue.status,
            to_status=issue.status,
            actor="system:calendar",
            note=f"official calendar loaded: deadline {moved}, "
            f"{old:%Y-%m-%d %H:%M} -> {new:%Y-%m-%d %H:%M} UTC"
            + (" (still provisional)" if provisional else ""),
            data={
                "old_due_at": old.isoformat(),
                "new_due_at": new.isoformat(),
                "provisional": provisional,
            },
        )
    )
    session.flush()


# --- status ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class YearStatus:
    year: int
    source: str | None  # chinese-calendar, database, extra file, provisional; None: out of range
    loaded_from: str | None = None
    imported_at: dt.datetime | None = None

    @property
    def official(self) -> bool:
        return self.source not in (None, PROVISIONAL)


def calendar_status(session: Session, calendar: WorkCalendar) -> list[YearStatus]:
    """Last year to the end of the provisional range, and every year loaded into the database."""
    loaded = {row.year: row for row in session.scalars(select(CalendarYear))}
    this = calendar.today().year
    _, last = calendar.bounds()
    years = sorted(set(range(this - 1, last.year + 1)) | set(loaded))
    return [
        YearStatus(
            year,
            calendar.source_of(year),
            loaded[year].source if year in loaded else None,
            loaded[year].imported_at if year in loaded else None,
        )
        for year in years
    ]
