"""Time limits counted in working hours (DOMAIN.md: "The closed loop of an issue").

Categories set their time limits in working hours (exposed rubbish 4, a dirty road 2).
Such a clock runs only inside the working periods of working days in local time, and
working days follow China's official calendar. That calendar is not "Monday to Friday
minus public holidays": the State Council moves days around every year, so some
weekdays are days off and some Saturdays and Sundays are make-up working days (调休).
A deadline that ignores a make-up Sunday is a day late; one that ignores a weekday
holiday is a day early. Both decide whether a case counts as overdue and escalates.

The official arrangement is published once a year (usually in November for the next
year), so any library lags behind. Generic, multi-country holiday data tends to list
the public holidays but not the make-up working weekends, or not every bridged weekday
off. The official sources, in order: ``chinese_calendar``, which encodes both from the
notices; years loaded into the database with ``gridmap calendar import`` (passed in as
``official``); and an extra data file for local corrections and years typed in by hand.

For a year none of them covers, the calendar is provisional: weekends plus the statutory
holidays by rule from the maintained ``holidays`` package, which computes the lunar dates
for any year but cannot know the make-up working days before the notice is out. We used
to refuse such a year, and that was worse: from late December every report with a
multi-day deadline failed, and on 1 January intake, dispatch, escalation and the
finder's "open now" all stopped. A resident's report refused for want of a holiday table
is lost; a deadline a day off around a holiday is not, because it is marked provisional
(``deadline`` returns the flag, the database stores it) and recomputed when the official
year is loaded. Only dates outside a bounded range are refused (CalendarOutOfRange): before
the first year of official data, or beyond ``PROVISIONAL_YEARS_AHEAD`` years after this
one, where a date is a client's mistake rather than a year waiting for its notice.

All arithmetic is in integer microseconds so that a deadline computed by ``due_at`` and
measured back by ``working_seconds_between`` agree exactly.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import chinese_calendar
import holidays

LOCAL_TZ = "Asia/Shanghai"
# The extra calendar data shipped with the code; edit it when a new year's notice is out.
DEFAULT_EXTRA_PATH = Path(__file__).with_name("calendar_extra.json")
DEFAULT_PERIODS: tuple[tuple[time, time], ...] = (
    (time(8, 30), time(12, 0)),
    (time(14, 0), time(17, 30)),
)

_US_PER_SECOND = 1_000_000
_US_PER_DAY = 86_400 * _US_PER_SECOND
_ONE_DAY = timedelta(days=1)
_PERIOD_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _us_of_day(value: time) -> int:
    """Microseconds since midnight of a wall-clock time."""
    return (
        (value.hour * 60 + value.minute) * 60 + value.second
    ) * _US_PER_SECOND + value.microsecond


@dataclass(frozen=True)
class WorkingDay:
    """The working periods of a working day, as ordered, non-overlapping wall-clock spans."""

    periods: tuple[tuple[time, time], ...] = DEFAULT_PERIODS
    # The same periods in microseconds since midnight, computed once: due_at runs in loops.
    _spans: tuple[tuple[int, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Normalise the periods to a tuple and reject empty, reversed or overlapping ones."""
        # Accept lists from settings or JSON, but store a tuple so the object stays hashable.
        periods = tuple((start, end) for start, end in self.periods)
        if not periods:
            raise ValueError("a working day needs at least one working period")
        spans: list[tuple[int, int]] = []
        for start, end in periods:
            if not isinstance(start, time) or not isinstance(end, time):
                raise TypeError(
                    f"working period {start!r}-{end!r}: start and end must be datetime.time"
                )
            if start.tzinfo is not None or end.tzinfo is not None:
                # Periods are local wall-clock times; the time zone is given to due_at.
                raise ValueError(f"working period {start}-{end}: times must not carry a time zone")
            if start >= end:
                raise ValueError(
                    f"working period {start:%H:%M}-{end:%H:%M}: the start must be before the end"
                )
            if spans and _us_of_day(start) < spans[-1][1]:
                previous = periods[len(spans) - 1]
                raise ValueError(
                    f"working periods must be in order and must not overlap: "
                    f"{start:%H:%M}-{end:%H:%M} starts before {previous[1]:%H:%M}, "
                    f"the end of {previous[0]:%H:%M}-{previous[1]:%H:%M}"
                )
            spans.append((_us_of_day(start), _us_of_day(end)))
        object.__setattr__(self, "periods", periods)
        object.__setattr__(self, "_spans", tuple(spans))

    @property
    def seconds(self) -> float:
        """Working seconds in one full working day."""
        return sum(end - start for start, end in self._spans) / _US_PER_SECOND


def parse_working_day(text: str) -> WorkingDay:
    """A WorkingDay from a setting string such as ``"08:30-12:00,14:00-17:30"``."""
    if not text or not text.strip():
        raise ValueError('working day setting is empty; expected e.g. "08:30-12:00,14:00-17:30"')
    periods: list[tuple[time, time]] = []
    for part in text.split(","):
        match = _PERIOD_RE.match(part)
        if match is None:
            raise ValueError(
                f'working period {part.strip()!r} in {text!r} is not "HH:MM-HH:MM" '
                f'(expected e.g. "08:30-12:00,14:00-17:30")'
            )
        h1, m1, h2, m2 = (int(group) for group in match.groups())
        try:
            periods.append((time(h1, m1), time(h2, m2)))
        except ValueError as exc:
            raise ValueError(f"working period {part.strip()!r} in {text!r}: {exc}") from None
    return WorkingDay(tuple(periods))


class CalendarDataError(ValueError):
    """The extra calendar data is malformed; the message names the file and the entry."""


class CalendarYearMissing(LookupError):
    """The calendar cannot answer for a date's year; raised as CalendarOutOfRange.

    Kept as the base class so that code that stops a look-ahead at an unknown year catches
    both; since provisional calendars, only dates outside the range raise.
    """

    year: int


class CalendarOutOfRange(CalendarYearMissing):
    """A date before the official data begins or too far ahead: the caller's mistake (422)."""

    def __init__(self, day: date, first: date, last: date) -> None:
        """Name the date and the range, so a client knows what it may ask."""
        self.year = day.year
        self.day = day
        self.first = first
        self.last = last
        super().__init__(
            f"{day.isoformat()} is outside the working-day calendar, which covers "
            f"{first.isoformat()} to {last.isoformat()}: the official data starts in {first.year}, "
            f"and a year without its official arrangement is computed provisionally up to "
            f"{PROVISIONAL_YEARS_AHEAD} years ahead of this one. Give a date in that range."
        )


# Where a year's working days come from (WorkCalendar.source_of).
PACKAGE = "chinese-calendar"
DATABASE = "database"
EXTRA = "extra file"
PROVISIONAL = "provisional"
# A provisional year further ahead than this is a client's mistake, not a year waiting for
# its notice (which comes out about six weeks before it starts).
PROVISIONAL_YEARS_AHEAD = 2
# From this day of the year, a missing official calendar for next year is worth a warning:
# the notice usually comes out in November.
WARN_FROM = (10, 1)


def local_today() -> date:
    """Today's date in China."""
    return datetime.now(ZoneInfo(LOCAL_TZ)).date()


@lru_cache(maxsize=1)
def _package_years() -> tuple[int, int]:
    """The first and last year chinese_calendar knows (2004-2026 for 1.11)."""
    # Probed rather than read from the package's private tables; runs once per process.
    known = []
    for year in range(1990, 2100):
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
        except NotImplementedError:
            continue
        known.append(year)
    return min(known), max(known)


@lru_cache(maxsize=16)
def _statutory_days_off(year: int) -> frozenset[date]:
    """Days off by rule for a year without its notice: statutory days and their observed days."""
    return frozenset(holidays.China(years=year))


@lru_cache(maxsize=64)
def statutory_holidays(year: int) -> dict[date, str]:
    """The statutory holidays of a year (never working days), without observed or moved days."""
    named = holidays.China(years=year, observed=False)
    return {day: name for day, name in named.items() if "substitut" not in name.lower()}


def _load_extra(extra: Path | str | Mapping[str, Any] | None) -> tuple[Mapping[str, Any], str]:
    """The extra calendar data and a description of where it came from, for messages."""
    if extra is None:
        # The shipped file; a deployment without it simply has no extra data.
        if not DEFAULT_EXTRA_PATH.exists():
            return {}, f"{DEFAULT_EXTRA_PATH} (create it)"
        extra = DEFAULT_EXTRA_PATH
    if isinstance(extra, str):
        # A path straight from a setting.
        extra = Path(extra)
    if isinstance(extra, Path):
        try:
            data = json.loads(extra.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CalendarDataError(f"extra calendar data {extra}: not valid JSON: {exc}") from None
        return data, str(extra)
    return extra, "the mapping passed as WorkCalendar(extra=...)"


def _parse_dates(data: Mapping[str, Any], key: str, source: str) -> frozenset[date]:
    """One list of ISO dates from the extra data, with a message naming the bad entry."""
    values = data.get(key, [])
    if not isinstance(values, list):
        raise CalendarDataError(
            f"extra calendar data {source}: {key!r} must be a list of YYYY-MM-DD strings"
        )
    dates: set[date] = set()
    for value in values:
        try:
            dates.add(date.fromisoformat(value))
        except (TypeError, ValueError):
            raise CalendarDataError(
                f"extra calendar data {source}: {key!r} entry {value!r} is not a YYYY-MM-DD date"
            ) from None
    return frozenset(dates)


class WorkCalendar:
    """Decides whether a date is a working day under China's official calendar.

    ``official`` holds years loaded into the database: per year, its exceptions to the
    weekend rule (date -> True for a make-up working day, False for a day off). ``today``
    bounds the provisional range; injectable so that tests do not depend on the clock.
    """

    def __init__(
        self,
        extra: Path | str | Mapping[str, Any] | None = None,
        official: Mapping[int, Mapping[date, bool]] | None = None,
        today: Callable[[], date] | None = None,
    ) -> None:
        """Load extra data: a JSON file, a mapping, or None for geo/calendar_extra.json."""
        data, self.source = _load_extra(extra)
        if not isinstance(data, Mapping):
            raise CalendarDataError(f"extra calendar data {self.source}: expected a JSON object")
        # Keys starting with "_" are comments (JSON has none); anything else is likely a typo
        # such as "holiday", which would otherwise be ignored without a word.
        unknown = sorted(
            k for k in data if k not in ("holidays", "workdays") and not str(k).startswith("_")
        )
        if unknown:
            raise CalendarDataError(
                f"extra calendar data {self.source}: unknown keys {unknown}; "
                f'expected "holidays" and "workdays"'
            )
        self.holidays = _parse_dates(data, "holidays", self.source)
        self.workdays = _parse_dates(data, "workdays", self.source)
        both = sorted(self.holidays & self.workdays)
        if both:
            raise CalendarDataError(
                f"extra calendar data {self.source}: listed as both holiday and workday: "
                + ", ".join(d.isoformat() for d in both)
            )
        # A year with any extra entry counts as covered: the file must then hold that year's
        # whole arrangement, and the remaining days follow the weekend rule.
        self.extra_years = frozenset(d.year for d in self.holidays | self.workdays)
        self.official: dict[int, dict[date, bool]] = {
            year: dict(days) for year, days in (official or {}).items()
        }
        # Looked up at call time, so that a test may replace geo.worktime.local_today.
        self._today = today if today is not None else (lambda: local_today())
        # due_at asks about the same few hundred dates over and over in a batch.
        self._cache: dict[date, bool] = {}
        self._holiday_cache: dict[date, bool] = {}

    def today(self) -> date:
        """Today as this calendar sees it (the injected date in tests)."""
        return self._today()

    def official_years(self) -> frozenset[int]:
        """Years from an official source: the package, the database or the extra file."""
        first, last = _package_years()
        return frozenset(range(first, last + 1)) | self.extra_years | frozenset(self.official)

    def bounds(self) -> tuple[date, date]:
        """The first and last day the calendar answers for (official or provisional)."""
        years = self.official_years()
        last = max(max(years), self.today().year + PROVISIONAL_YEARS_AHEAD)
        return date(min(years), 1, 1), date(last, 12, 31)

    def source_of(self, year: int) -> str | None:
        """Where ``year``'s working days come from; None when the year is out of range."""
        if year in self.official:
            return DATABASE
        first, last = _package_years()
        if first <= year <= last:
            return PACKAGE
        if year in self.extra_years:
            return EXTRA
        low, high = self.bounds()
        return PROVISIONAL if low.year <= year <= high.year else None

    def is_provisional(self, day: date) -> bool:
        """True when ``day`` is judged by rule without its year's notice; raises out of range."""
        source = self.source_of(day.year)
        if source is None:
            raise CalendarOutOfRange(day, *self.bounds())
        return source == PROVISIONAL

    def provisional_between(self, first: date, last: date) -> bool:
        """True when any day from ``first`` to ``last`` is judged on a provisional calendar."""
        return any(
            self.is_provisional(max(first, date(year, 1, 1)))
            for year in range(first.year, last.year + 1)
        )

    def is_workday(self, day: date) -> bool:
        """True when ``day`` is a working day (make-up weekends included, holidays excluded)."""
        cached = self._cache.get(day)
        if cached is not None:
            return cached
        result = self._decide(day)
        self._cache[day] = result
        return result

    def _decide(self, day: date) -> bool:
        """The working-day answer from the first source that knows the day."""
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        source = self.source_of(day.year)
        if source == DATABASE:
            return self.official[day.year].get(day, day.weekday() < 5)
        if source == PACKAGE:
            return bool(chinese_calendar.is_workday(day))
        if source == EXTRA:
            return day.weekday() < 5
        if source == PROVISIONAL:
            # By rule: no make-up working days, as they are unknown until the notice.
            return day.weekday() < 5 and day not in _statutory_days_off(day.year)
        raise CalendarOutOfRange(day, *self.bounds())

    def is_makeup_workday(self, day: date) -> bool:
        """True when ``day`` is a Saturday or Sunday worked in lieu of a holiday (调休)."""
        return day.weekday() >= 5 and self.is_workday(day)

    def is_holiday(self, day: date) -> bool:
        """True when ``day`` is a day off of an official holiday, weekends inside it included."""
        # Opening hours ask this for PH. "The holiday" in China is the whole run of days off
        # in the notice (Spring Festival 2026 is 02-15 to 02-23), not only the statutory days.
        # A weekday off is always part of one; a Saturday or Sunday off is when a source
        # names it, or when it joins a weekday off without a working day between (the
        # notices' "与周末连休"), which also covers years known only from the extra data.
        cached = self._holiday_cache.get(day)
        if cached is not None:
            return cached
        if self.is_workday(day):
            result = False
        elif day in self.holidays or day.weekday() < 5:
            result = True
        else:
            result = self._named_as_holiday(day) or self._joins_weekday_off(day)
        self._holiday_cache[day] = result
        return result

    def _named_as_holiday(self, day: date) -> bool:
        """True when the year's source lists the Saturday or Sunday ``day`` as a holiday."""
        source = self.source_of(day.year)
        if source == DATABASE:
            return self.official[day.year].get(day) is False
        if source == PROVISIONAL:
            return day in _statutory_days_off(day.year)
        if source == PACKAGE:
            return chinese_calendar.get_holiday_detail(day)[1] is not None
        return False

    def _joins_weekday_off(self, day: date) -> bool:
        """True when the run of days off around ``day`` contains a weekday off."""
        for step in (_ONE_DAY, -_ONE_DAY):
            current = day + step
            # A run of days off is never longer than a few weeks; the bound only guards loops.
            for _ in range(31):
                try:
                    if self.is_workday(current):
                        break
                except CalendarYearMissing:
                    break  # beyond the calendar's range: judge from the known side
                if current.weekday() < 5:
                    return True
                current += step
        return False


def calendar_warnings(calendar: WorkCalendar, today: date | None = None) -> list[str]:
    """What an operator must do about missing official years, said ahead of time.

    This year without its official arrangement always; next year from 1 October, when the
    notice is due soon and deadlines start to reach into the new year.
    """
    today = today or calendar.today()
    years = [today.year]
    if (today.month, today.day) >= WARN_FROM:
        years.append(today.year + 1)
    return [
        f"The official holiday calendar for {year} is not loaded: deadlines in {year} are "
        f"provisional (weekends and statutory holidays by rule, without the make-up working "
        f"days). When the State Council's notice for {year} is out, load it with "
        f"`gridmap calendar import FILE` (README: 'Provisional deadlines and loading the "
        f"official calendar')."
        for year in years
        if calendar.source_of(year) == PROVISIONAL
    ]


def _zone(tz: str | tzinfo) -> tzinfo:
    """A tzinfo from a name or a tzinfo."""
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def _require_aware(value: datetime, name: str) -> None:
    """Reject naive datetimes: a wall time without a zone is ambiguous between servers."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


def _at(day: date, us: int, zone: tzinfo) -> datetime:
    """The local datetime ``us`` microseconds after midnight of ``day``."""
    # Wall-clock arithmetic on purpose: working periods are wall-clock times.
    return datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(microseconds=us)


def _split(value: datetime) -> tuple[date, int]:
    """A local datetime as (date, microseconds since midnight)."""
    return value.date(), _us_of_day(value.time())


def due_at(
    start: datetime,
    hours: float,
    working: bool,
    calendar: WorkCalendar,
    day: WorkingDay,
    tz: str | tzinfo = LOCAL_TZ,
) -> datetime:
    """The deadline ``hours`` after ``start``, in working hours or calendar hours, in ``tz``."""
    _require_aware(start, "start")
    if not math.isfinite(hours) or hours < 0:
        raise ValueError(f"hours must be a finite number >= 0, got {hours!r}")
    zone = _zone(tz)
    budget = round(hours * 3600 * _US_PER_SECOND)
    if not working:
        # Calendar hours: elapsed time, added in UTC so a DST zone could not shift it.
        return (start.astimezone(UTC) + timedelta(microseconds=budget)).astimezone(zone)
    local = start.astimezone(zone)
    if budget == 0:
        # Defined: no time allowed means due at the moment it starts, even out of hours.
        return local
    current, now = _split(local)
    while True:
        # One dictionary lookup per non-working day; whole holidays are skipped quickly.
        if calendar.is_workday(current):
            for begin, end in day._spans:
                if now >= end:
                    continue
                begin = max(begin, now)
                available = end - begin
                # "<=": a budget used up exactly at a period end is due at that end (12:00),
                # not at the start of the next period.
                if budget <= available:
                    return _at(current, begin + budget, zone)
                budget -= available
        current += _ONE_DAY
        now = 0


class Deadline(NamedTuple):
    """A deadline and whether it rests on a provisional calendar (its year's notice not loaded)."""

    at: datetime
    provisional: bool


def deadline(
    start: datetime,
    hours: float,
    working: bool,
    calendar: WorkCalendar,
    day: WorkingDay,
    tz: str | tzinfo = LOCAL_TZ,
) -> Deadline:
    """``due_at`` with the provisional flag the database stores beside the deadline."""
    at = due_at(start, hours, working, calendar, day, tz)
    # Calendar hours and a zero budget do not consult the calendar; working hours consult
    # every day from the start to the deadline.
    zone = _zone(tz)
    provisional = (
        working
        and at > start
        and calendar.provisional_between(start.astimezone(zone).date(), at.astimezone(zone).date())
    )
    return Deadline(at, provisional)


def working_seconds_between(
    a: datetime,
    b: datetime,
    calendar: WorkCalendar,
    day: WorkingDay,
    tz: str | tzinfo = LOCAL_TZ,
) -> float:
    """Working seconds from ``a`` to ``b`` (negative when ``b`` is before ``a``)."""
    _require_aware(a, "a")
    _require_aware(b, "b")
    if b < a:
        # Antisymmetric, so "deadline minus closing time" reads as working time to spare.
        return -working_seconds_between(b, a, calendar, day, tz)
    zone = _zone(tz)
    first, first_us = _split(a.astimezone(zone))
    last, last_us = _split(b.astimezone(zone))
    total = 0
    current = first
    while current <= last:
        if calendar.is_workday(current):
            low = first_us if current == first else 0
            high = last_us if current == last else _US_PER_DAY
            for begin, end in day._spans:
                overlap = min(end, high) - max(begin, low)
                if overlap > 0:
                    total += overlap
        current += _ONE_DAY
    return total / _US_PER_SECOND
