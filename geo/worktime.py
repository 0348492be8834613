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
off. We therefore use ``chinese_calendar``, which encodes both from the notices, and an
extra data file for years it does not know yet (and for local corrections). For a year
neither knows we fail loudly: guessing "weekends only" would silently produce wrong
deadlines around every holiday of that year.

All arithmetic is in integer microseconds so that a deadline computed by ``due_at`` and
measured back by ``working_seconds_between`` agree exactly.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar

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
    """No official working-day data for a year: neither chinese_calendar nor the extra data has it."""

    def __init__(self, year: int, source: str, library_message: str) -> None:
        """Build the message that tells an operator exactly what to add and where."""
        self.year = year
        super().__init__(
            f"no working-day calendar for {year}: chinese-calendar does not cover it "
            f"({library_message}) and the extra calendar data ({source}) has no entries for "
            f"{year}. Add {year}'s official arrangement (the State Council holiday notice) to "
            f'{source} as {{"holidays": ["{year}-01-01", ...], "workdays": [...]}}, listing '
            f"every weekday off and every make-up working Saturday/Sunday (调休) of {year}, "
            f"or upgrade the chinese-calendar package. Weekends alone are not a safe guess."
        )


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
    """Decides whether a date is a working day under China's official calendar."""

    def __init__(self, extra: Path | str | Mapping[str, Any] | None = None) -> None:
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
        # due_at asks about the same few hundred dates over and over in a batch.
        self._cache: dict[date, bool] = {}
        self._holiday_cache: dict[date, bool] = {}

    def is_workday(self, day: date) -> bool:
        """True when ``day`` is a working day (make-up weekends included, holidays excluded)."""
        cached = self._cache.get(day)
        if cached is not None:
            return cached
        if day in self.workdays:
            result = True
        elif day in self.holidays:
            result = False
        else:
            try:
                result = chinese_calendar.is_workday(day)
            except NotImplementedError as exc:
                if day.year not in self.extra_years:
                    raise CalendarYearMissing(day.year, self.source, str(exc)) from None
                result = day.weekday() < 5
        self._cache[day] = result
        return result

    def is_makeup_workday(self, day: date) -> bool:
        """True when ``day`` is a Saturday or Sunday worked in lieu of a holiday (调休)."""
        return day.weekday() >= 5 and self.is_workday(day)

    def is_holiday(self, day: date) -> bool:
        """True when ``day`` is a day off of an official holiday, weekends inside it included."""
        # Opening hours ask this for PH. "The holiday" in China is the whole run of days off
        # in the notice (Spring Festival 2026 is 02-15 to 02-23), not only the statutory days.
        # A weekday off is always part of one; a Saturday or Sunday off is when the package
        # names it, or when it joins a weekday off without a working day between (the notices'
        # "与周末连休"), which also covers years known only from the extra data.
        cached = self._holiday_cache.get(day)
        if cached is not None:
            return cached
        if self.is_workday(day):
            result = False
        elif day in self.holidays or day.weekday() < 5:
            result = True
        else:
            result = self._named_by_package(day) or self._joins_weekday_off(day)
        self._holiday_cache[day] = result
        return result

    def _named_by_package(self, day: date) -> bool:
        """True when chinese_calendar lists ``day`` under a named holiday."""
        try:
            return chinese_calendar.get_holiday_detail(day)[1] is not None
        except NotImplementedError:
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
                    break  # the next year is not known yet: judge from the known side
                if current.weekday() < 5:
                    return True
                current += step
        return False


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
