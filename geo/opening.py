"""Opening hours and timed access of shared facilities.

DOMAIN.md: "Shared parking and open facilities".

Values follow the OSM ``opening_hours`` grammar. We do not parse that grammar ourselves:
opening-hours-py (bindings to the Rust ``opening-hours`` crate) parses and evaluates it.
What we add is China's official calendar, in two places.

Public holidays (``PH``). The library's holiday data for CN has the statutory days only
(2026-01-01, 2026-02-17, ...), not the State Council's arrangement (Spring Festival 2026 is
02-15 to 02-23 off), and its Python API takes a country code, not a holiday list. So we
rewrite each ``PH`` into explicit dates from ``WorkCalendar.is_holiday`` before handing the
value to the library: ``PH off`` becomes ``2026 Jan 01-2026 Jan 03,2026 Feb 15-2026 Feb 23,...
off``. The grammar cannot OR weekdays with dates inside one selector, so a rule whose weekday
selector mixes them is split into two rules in the same place, joined by the separator that
introduced the original rule: ``Sa,Su,PH 08:00-20:00`` becomes ``Sa,Su 08:00-20:00;
<dates> 08:00-20:00``. Both halves carry the same times, modifier and comment, so for ``;``
(override), ``,`` (add) and ``||`` (fallback) alike the pair means what the single rule did.
This is string surgery at the rule level, not a parser: quoted comments are masked first (a
``PH`` or ``;`` inside a comment is left alone), the original value must parse on its own,
and the rewritten value is parsed again by the library. A rule's year/month/week prefix
(``Jan-Mar PH off``) cannot be combined with a date list, so the library itself decides which
holiday dates the prefix admits, and the prefix is dropped from the date half. ``PH +1 day``
shifts the dates. ``SH`` (school holidays) is left to the library, which has no Chinese
school calendar, so an ``SH`` rule never applies. We considered handing the library a custom
holiday list instead; the Python API (2.1.4) has no such parameter.

Make-up working days (调休). Institutions work on the official calendar, so on a Saturday or
Sunday worked in lieu of a holiday a facility keeps its working-weekday hours: with
``Mo-Fr 18:00-21:00; Sa,Su 08:00-20:00`` the make-up Sunday 2026-09-20 is open 18:00-21:00.
We evaluate such a day's time of day on a proxy date, the nearest earlier ordinary working
weekday (Monday to Friday, a working day; the nearest later one if the year before is not
covered), and map the times back. Limitations: a rule
naming the make-up day's own date (``2026 Sep 20 off``) is not seen, as the proxy's date is
evaluated instead; an overnight range of the make-up day does not spill into the next
morning (the next day is read by the library as it is); and if the proxy is a Friday with
its own hours, those are the ones used.

Time zone: values are wall-clock times of the facility, Asia/Shanghai unless told otherwise.
Any aware datetime is accepted and converted; naive ones are rejected, as in worktime.

Where we part from the library on purpose, each checked in the tests: a rule whose only
modifier is a comment (``Sa 08:00-12:00 || "by appointment"``) is unknown, as the
specification and opening_hours.js have it, not open as the library reads it, so we write
``unknown`` before such a comment; and we ask the library one local day at a time, because
over several days its intervals() (2.1.4) loses days after such a fallback rule, disagreeing
with its own state().

A value that does not parse raises OpeningHoursInvalid (``validate_hours`` returns the reason
for import reports); it is never read as "always open". A missing or empty value means "we
do not know": the state is ``unknown``, never ``open``.

Answers look ahead ``horizon_days`` (14 by default): ``closes_at``, ``opens_next_at`` and
``next_change`` are None when the change is further away, and the look-ahead also stops at
the end of the calendar's range. A year without its official arrangement is read on the
provisional calendar (statutory holidays by rule, see geo/worktime.py), so the finder keeps
working on 1 January; a date outside the range (before the official data, or more than two
years ahead) raises CalendarOutOfRange, as working-hour deadlines do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from opening_hours import OpeningHours, ParserError, State

from geo.worktime import LOCAL_TZ, CalendarYearMissing, WorkCalendar

_ONE_DAY = timedelta(days=1)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_STATES = {State.OPEN: "open", State.CLOSED: "closed", State.UNKNOWN: "unknown"}
# Stands in for "no holiday in the window": a date selector that never matches again.
_NEVER = "1900 Jan 01"
# Enough to reach back from a make-up day to its proxy weekday (one or two days in practice).
_PROXY_LOOKBACK_DAYS = 16
# Dates only exercise the rewrite's syntax when validating without a calendar.
_SAMPLE_HOLIDAYS = (date(2000, 1, 3), date(2000, 1, 4), date(2000, 1, 5))

# --- the PH rewrite --------------------------------------------------------------------------
# These patterns find tokens, not structure: a weekday selector is a run of weekday ranges and
# holidays joined by commas (or the space of "PH Mo", which the library reads as "PH,Mo").
_WEEKDAY = r"(?:Mo|Tu|We|Th|Fr|Sa|Su)"
_OFFSET = r"(?:\s*[+-]\s*\d+\s*days?(?![A-Za-z]))"
_ITEM = rf"(?:PH|SH|{_WEEKDAY}(?:\s*-\s*{_WEEKDAY})?(?:\[[^\]]*\])?){_OFFSET}?"
_ITEM_RE = re.compile(_ITEM)
_RUN_RE = re.compile(rf"(?<![A-Za-z]){_ITEM}(?:(?:\s*,\s*|\s+){_ITEM})*")
_PH_ITEM_RE = re.compile(r"PH(?:\s*([+-])\s*(\d+)\s*days?)?")
# Text that can only occur from a rule's time selector on: after it, a comma separates rules.
_RULE_TAIL_RE = re.compile(
    r"\d{1,2}:\d{2}|24/7|\"|\)|(?<![A-Za-z])(?:open|closed|off|unknown|sunrise|sunset|dawn|dusk)"
    r"(?![A-Za-z])"
)
# After a comma in a time selector, the list goes on with another time.
_TIME_NEXT_RE = re.compile(r"\s*(?:\d{1,2}:\d{2}|\(|sunrise|sunset|dawn|dusk)")
_LIBRARY_ERROR_RE = re.compile(r"-->\s*(\d+):(\d+).*?=\s*(.+)$", re.DOTALL)
_TIME_RANGE_RE = re.compile(r"(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})")


class OpeningHoursInvalid(ValueError):
    """An opening_hours (or conditional) value that cannot be evaluated; names value and reason."""

    def __init__(self, value: str, reason: str, what: str = "opening_hours") -> None:
        """Keep the value and the reason apart for import reports."""
        self.value = value
        self.reason = reason
        super().__init__(f"{what} value {value!r} is not valid: {reason}")


class _Unsupported(Exception):
    """The PH rewrite met a shape it does not handle; becomes OpeningHoursInvalid."""


def _library_reason(exc: Exception) -> str:
    """The library's parse error in one line: position and what it expected."""
    text = str(exc)
    match = _LIBRARY_ERROR_RE.search(text)
    if match is None:
        return " ".join(text.split())
    line, column, expected = match.groups()
    where = f"column {column}" if line == "1" else f"line {line}, column {column}"
    return f"{' '.join(expected.split())} (at {where})"


def _mask_comments(value: str) -> str:
    """``value`` with the inside of quoted comments blanked, so positions still line up."""
    out = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
            out.append(char)
        else:
            out.append("_" if quoted else char)
    return "".join(out)


def _rule_bounds(masked: str, start: int, end: int) -> tuple[int, int, str]:
    """Where the rule holding the selector at [start, end) begins and ends, and its separator."""
    # Backwards: the last ";" or "||" before the selector, then possibly a later comma that
    # follows another rule's times ("Mo 08:00-12:00, PH off" is two rules).
    begin, separator = 0, ";"
    for match in re.finditer(r";|\|\|", masked[:start]):
        begin, separator = match.end(), match.group()
    head = masked[begin:start]
    tails = list(_RULE_TAIL_RE.finditer(head))
    if tails:
        comma = head.find(",", tails[-1].end())
        if comma < 0:
            raise _Unsupported("a holiday selector follows another rule without a separator")
        begin, separator = begin + comma + 1, ","
    # Forwards: the next ";" or "||", or a comma that does not continue the list of times.
    stop = len(masked)
    for match in re.finditer(r";|\|\||,", masked[end:]):
        if match.group() == "," and _TIME_NEXT_RE.match(masked, end + match.end()):
            continue
        stop = end + match.start()
        break
    return begin, stop, separator


def _format_dates(days: Iterable[date]) -> str:
    """Dates as an OSM list of year-qualified monthday ranges, consecutive days merged."""
    ordered = sorted(set(days))
    ranges: list[tuple[date, date]] = []
    for day in ordered:
        if ranges and day - ranges[-1][1] == _ONE_DAY:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))

    def one(day: date) -> str:
        return f"{day.year} {_MONTHS[day.month - 1]} {day.day:02d}"

    return ",".join(one(a) if a == b else f"{one(a)}-{one(b)}" for a, b in ranges)


def _has_ph(run: str) -> bool:
    """True when one of a weekday-selector run's items is a PH holiday."""
    return any(_PH_ITEM_RE.fullmatch(item.strip()) for item in _ITEM_RE.findall(run))


def _rewrite_ph(value: str, holidays: Callable[[str, Sequence[int]], list[date]]) -> str:
    """``value`` with each PH turned into dates; ``holidays(prefix, offsets)`` supplies them."""
    masked = _mask_comments(value)
    runs = [match for match in _RUN_RE.finditer(masked) if _has_ph(match.group())]
    result = value
    limit = len(value)
    # Right to left, so the positions of earlier rules stay valid while we splice.
    for run in reversed(runs):
        begin, stop, separator = _rule_bounds(masked, run.start(), run.end())
        if stop > limit:
            raise _Unsupported("two holiday selectors in one rule")
        limit = begin
        prefix = value[begin : run.start()].strip()
        suffix = value[run.end() : stop].strip()
        keep: list[str] = []
        offsets: list[int] = []
        for item in _ITEM_RE.findall(run.group()):
            ph = _PH_ITEM_RE.fullmatch(item.strip())
            if ph is None:
                keep.append(item.strip())
            else:
                sign, amount = ph.groups()
                offsets.append(0 if amount is None else int(amount) * (-1 if sign == "-" else 1))
        # The year/month/week prefix narrows the weekday half as it did the whole rule; for
        # the date half it is applied by the callback (it cannot precede a date list).
        dates = holidays(prefix.rstrip(":").strip(), offsets)
        tail = f" {suffix}" if suffix else ""
        pieces = []
        if keep:
            pieces.append(f"{prefix} {','.join(keep)}{tail}".strip())
        if dates or not keep:
            # No holiday in reach: keep the rule in place but let it match nothing, so the
            # separators around it keep their meaning.
            pieces.append(f"{_format_dates(dates) if dates else _NEVER}{tail}")
        joiner = {";": "; ", ",": ", ", "||": " || "}[separator]
        lead = " " if begin > 0 else ""
        trail = " " if stop < len(value) and value[stop] != "," else ""
        result = result[:begin] + lead + joiner.join(pieces) + trail + result[stop:]
    return result


def _parse_library(value: str, zone: ZoneInfo, what: str = "opening_hours") -> OpeningHours:
    """The library's parse of ``value``, or OpeningHoursInvalid with its reason."""
    try:
        return OpeningHours(value, timezone=zone)
    except ParserError as exc:
        raise OpeningHoursInvalid(value, _library_reason(exc), what) from None


@lru_cache(maxsize=256)
def _prefix_hours(prefix: str, tz: str) -> OpeningHours:
    """A rule's year/month/week prefix alone, as the library reads it (open on its days)."""
    try:
        return OpeningHours(prefix, timezone=ZoneInfo(tz))
    except ParserError as exc:
        raise _Unsupported(
            f"the selector {prefix!r} before PH cannot be read alone ({_library_reason(exc)})"
        ) from None


def _holiday_source(base: Sequence[date], tz: str) -> Callable[[str, Sequence[int]], list[date]]:
    """The callback for _rewrite_ph: ``base`` holidays, shifted and narrowed by the prefix."""
    zone = ZoneInfo(tz)

    def holidays(prefix: str, offsets: Sequence[int]) -> list[date]:
        days = {day + timedelta(days=offset) for day in base for offset in offsets}
        if prefix:
            # The library decides which days "Jan-Mar" or "2026" or "week 01-10" admit.
            admits = _prefix_hours(prefix, tz)
            days = {d for d in days if admits.is_open(datetime.combine(d, time(12), zone))}
        return sorted(days)

    return holidays


def _comments_unknown(value: str) -> str:
    """``value`` with ``unknown`` before every comment that has no state keyword before it."""
    # The specification makes a rule whose modifier is only a comment ("Sa 08:00-12:00 ||
    # "by appointment"") evaluate to unknown, as opening_hours.js does; the Rust library
    # reads it as open. We must not send a driver to a gate "open by appointment", so the
    # state is written out for the library. Comments are only ever rule modifiers there.
    out, last = [], 0
    for match in re.finditer(r'"[^"]*"', value):
        before = value[: match.start()]
        out.append(value[last : match.start()])
        if not re.search(r"(?<![A-Za-z])(?:open|closed|off|unknown)\s*$", before):
            out.append("unknown " if not before or before[-1].isspace() else " unknown ")
        out.append(match.group())
        last = match.end()
    out.append(value[last:])
    return "".join(out)


def _check(value: str, tz: str) -> tuple[str, OpeningHours | None]:
    """Validate ``value``: the text we evaluate, and the library's object if it has no PH."""
    zone = ZoneInfo(tz)
    # The value as given must parse: errors name what the mapper wrote, not our rewrite.
    _parse_library(value, zone)
    text = _comments_unknown(value)
    masked = _mask_comments(text)
    if not any(_has_ph(match.group()) for match in _RUN_RE.finditer(masked)):
        return text, _parse_library(text, zone)
    # Exercise the rewrite with sample dates: a shape it cannot handle is reported now,
    # at import, not on the first search that reaches this facility.
    try:
        rewritten = _rewrite_ph(text, _holiday_source(_SAMPLE_HOLIDAYS, tz))
    except _Unsupported as exc:
        raise OpeningHoursInvalid(
            value, f"cannot apply the official holiday calendar: {exc}"
        ) from None
    try:
        OpeningHours(rewritten, timezone=zone)
    except ParserError as exc:
        raise OpeningHoursInvalid(
            value,
            f"cannot apply the official holiday calendar (rewritten as {rewritten!r}: "
            f"{_library_reason(exc)})",
        ) from None
    return text, None


def validate_hours(expression: str) -> str | None:
    """None when ``expression`` can be evaluated (or is empty), else the reason (import reports)."""
    if expression is None or not expression.strip():
        return None  # no value is "unknown hours", not an error
    try:
        _check(expression.strip(), LOCAL_TZ)
    except OpeningHoursInvalid as exc:
        return exc.reason
    return None


@lru_cache(maxsize=64)
def _holidays_of_year(calendar: WorkCalendar, year: int) -> tuple[date, ...]:
    """Every official holiday day off of ``year`` (the calendar must cover the year)."""
    day, out = date(year, 1, 1), []
    while day.year == year:
        if calendar.is_holiday(day):
            out.append(day)
        day += _ONE_DAY
    return tuple(out)


def _require_aware(value: datetime, name: str) -> None:
    """Reject naive datetimes: a wall time without a zone is a different instant on each host."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


# --- facility hours ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HoursState:
    """A facility's state at one instant, and the next changes (times in the facility's zone)."""

    state: str  # "open", "closed" or "unknown"
    closes_at: datetime | None  # end of the current open period, when open
    opens_next_at: datetime | None  # start of the next open period, when not open
    next_change: datetime | None  # the next change of state, whatever it is
    comment: str | None  # the value's comment for this period, e.g. "by appointment"


_NOT_KNOWN = HoursState("unknown", None, None, None, None)


class FacilityHours:
    """An opening_hours value evaluated on China's official calendar in the facility's zone."""

    def __init__(
        self,
        expression: str | None,
        calendar: WorkCalendar,
        tz: str = LOCAL_TZ,
        horizon_days: int = 14,
    ) -> None:
        """Parse and check ``expression`` now; OpeningHoursInvalid if it cannot be evaluated."""
        if isinstance(horizon_days, bool) or not isinstance(horizon_days, int):
            raise TypeError(f"horizon_days must be an int, got {horizon_days!r}")
        if not 1 <= horizon_days <= 366:
            # Holidays are compiled for the years around the window; a year is plenty.
            raise ValueError(f"horizon_days must be between 1 and 366, got {horizon_days}")
        self.expression = expression  # as given, for display
        self.calendar = calendar
        self.tz = tz
        self.horizon_days = horizon_days
        self._zone = ZoneInfo(tz)
        text = expression.strip() if expression else ""
        # Without PH one library object serves every date; with PH one per span of years.
        self._static: OpeningHours | None = None
        if text:
            text, self._static = _check(text, tz)
        self._text = text or None
        self._compiled: dict[tuple[int, int], OpeningHours] = {}
        self._proxies: dict[date, date | None] = {}
        self._covered: dict[int, bool] = {}
        # A search asks many facilities sharing this value about the same instant.
        self._memo: tuple[datetime, HoursState] | None = None

    def __repr__(self) -> str:
        """The value and zone, for logs."""
        return f"FacilityHours({self.expression!r}, tz={self.tz!r})"

    def is_open(self, when: datetime) -> bool:
        """True when the facility is open at ``when`` (unknown counts as not open)."""
        return self.at(when).state == "open"

    def at(self, when: datetime) -> HoursState:
        """The state at ``when`` and the next changes within the horizon."""
        _require_aware(when, "when")
        if self._text is None:
            return _NOT_KNOWN
        memo = self._memo
        if memo is not None and memo[0] == when:
            return memo[1]
        local = when.astimezone(self._zone)
        # A date outside the calendar's range fails loudly (CalendarOutOfRange), as deadlines
        # do; a look-ahead beyond the range merely stops at the first day outside it.
        self.calendar.is_workday(local.date())
        end = local + timedelta(days=self.horizon_days)
        for year in range(local.year + 1, end.year + 1):
            if not self._covers(year):
                end = datetime(year, 1, 1, tzinfo=self._zone)
                break
        library = self._library((local - timedelta(days=_PROXY_LOOKBACK_DAYS)).year, end.year)
        result = self._summarise(self._timeline(library, local, end))
        self._memo = (when, result)
        return result

    def _covers(self, year: int) -> bool:
        """True when the calendar answers for ``year`` (officially or provisionally)."""
        known = self._covered.get(year)
        if known is None:
            try:
                self.calendar.is_workday(date(year, 1, 1))
                known = True
            except CalendarYearMissing:
                known = False
            self._covered[year] = known
        return known

    def _library(self, first_year: int, last_year: int) -> OpeningHours:
        """The library object for dates in these years, PH rewritten to official holidays."""
        if self._static is not None:
            return self._static
        key = (first_year, last_year)
        library = self._compiled.get(key)
        if library is None:
            # One year either side, for PH offsets and proxies reaching across New Year.
            base = [
                day
                for year in range(first_year - 1, last_year + 2)
                if self._covers(year)
                for day in _holidays_of_year(self.calendar, year)
            ]
            assert self._text is not None
            try:
                text = _rewrite_ph(self._text, _holiday_source(base, self.tz))
            except _Unsupported as exc:  # pragma: no cover - _check ran the same rewrite
                raise OpeningHoursInvalid(self._text, str(exc)) from None
            library = _parse_library(text, self._zone)
            self._compiled[key] = library
        return library

    def _proxy(self, day: date) -> date | None:
        """For a make-up working Saturday/Sunday, the weekday whose hours it keeps; else None."""
        if day in self._proxies:
            return self._proxies[day]
        proxy = None
        if self.calendar.is_makeup_workday(day):
            # The nearest earlier ordinary working weekday: institutions work that day's hours.
            # If the year before is not covered (January of the first known year), the
            # nearest later one rather than reading a working day as a Sunday.
            proxy = self._ordinary_weekday(day, -_ONE_DAY) or self._ordinary_weekday(day, _ONE_DAY)
        self._proxies[day] = proxy
        return proxy

    def _ordinary_weekday(self, day: date, step: timedelta) -> date | None:
        """The first Monday-Friday working day from ``day`` in direction ``step``, if known."""
        candidate = day + step
        try:
            for _ in range(_PROXY_LOOKBACK_DAYS):
                if candidate.weekday() < 5 and self.calendar.is_workday(candidate):
                    return candidate
                candidate += step
        except CalendarYearMissing:
            pass
        return None

    def _timeline(
        self, library: OpeningHours, start: datetime, end: datetime
    ) -> Iterator[tuple[datetime, datetime, str, str | None]]:
        """Intervals of constant state from ``start`` to ``end``, make-up days read on proxies."""
        # One library call per local day. Besides making the proxy mapping simple, this is
        # needed for correctness: over several days the library's intervals() (2.1.4) loses
        # the days after a fallback rule such as 'Mo-Fr 08:00-18:00 || "by appointment"'
        # (it disagrees with its own state()); within one day it agrees.
        cursor = start
        while cursor < end:
            day = cursor.date()
            slice_end = min(end, datetime.combine(day + _ONE_DAY, time(), self._zone))
            proxy = self._proxy(day)
            # Aware arithmetic with one ZoneInfo is wall-clock: 18:00 on the proxy Friday
            # maps to 18:00 on the make-up Sunday.
            shift = day - proxy if proxy is not None else timedelta(0)
            for a, b, state, comment in library.intervals(cursor - shift, slice_end - shift):
                yield a + shift, b + shift, _STATES[state], comment or None
            cursor = slice_end

    @staticmethod
    def _summarise(timeline: Iterator[tuple[datetime, datetime, str, str | None]]) -> HoursState:
        """HoursState from a timeline that starts at the instant asked about."""
        _, _, state, comment = next(timeline)
        next_change = opens_next_at = None
        # Lazily, day by day: most answers are settled within a day or two of the horizon.
        for start, _, current, _ in timeline:
            # The library may split a period at rule or day boundaries; only changes count.
            if next_change is None and current != state:
                next_change = start
            if state != "open" and opens_next_at is None and current == "open":
                opens_next_at = start
            if next_change is not None and (state == "open" or opens_next_at is not None):
                break
        closes_at = next_change if state == "open" else None
        return HoursState(state, closes_at, opens_next_at, next_change, comment)


# --- conditional access ------------------------------------------------------------------------

# Values that let the public in; anything else (no, private, permit, delivery, ...) does not.
_PUBLIC = frozenset({"yes", "permissive", "designated", "customers", "destination", "public"})
_DIRECTIONS = (
    # A general rule first and a direction's own rule after it: the more specific key wins.
    ("access:conditional", ("entry", "exit")),
    ("access:entry:conditional", ("entry",)),
    ("access:exit:conditional", ("exit",)),
)


def _split_top_level(value: str) -> list[str]:
    """``value`` split on semicolons outside parentheses and quoted comments."""
    parts, depth, quoted, current = [], 0, False, []
    for char in value:
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == ";":
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _closing_paren(text: str) -> int:
    """Index of the parenthesis closing the one at ``text[0]``, or -1; quoted comments skipped."""
    depth, quoted = 0, False
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
            if depth == 0:
                return index
    return -1


def parse_conditional(value: str, key: str = "conditional") -> list[tuple[str, str]]:
    """``'no @ (Mo-Fr 08:00-18:00); yes @ (...)'`` as [(value, condition)], conditions checked."""
    what = key
    if value is None or not value.strip():
        raise OpeningHoursInvalid(value or "", "empty", what)
    out: list[tuple[str, str]] = []
    for part in _split_top_level(value):
        if not part.strip():
            continue  # a trailing ";"
        restriction, at, condition = part.partition("@")
        restriction, condition = restriction.strip(), condition.strip()
        if not at or not restriction or not condition:
            raise OpeningHoursInvalid(value, f"{part.strip()!r} is not 'value @ condition'", what)
        if condition.startswith("("):
            # Parentheses are required around a condition with ";" and optional otherwise.
            if _closing_paren(condition) != len(condition) - 1:
                raise OpeningHoursInvalid(value, f"unbalanced parentheses in {condition!r}", what)
            condition = condition[1:-1].strip()
        try:
            # Only time conditions are evaluated; "weight > 7.5" or "AND" fail here, loudly.
            _check(condition, LOCAL_TZ)
        except OpeningHoursInvalid as exc:
            raise OpeningHoursInvalid(
                value, f"condition {condition!r} is not an opening_hours time: {exc.reason}", what
            ) from None
        out.append((restriction.lower(), condition))
    if not out:
        raise OpeningHoursInvalid(value, "no 'value @ condition' in it", what)
    return out


@dataclass(frozen=True)
class AccessRule:
    """A timed access restriction in one direction: while ``hours`` is open, ``allowed`` holds."""

    kind: str  # "entry" or "exit"
    allowed: bool
    hours: str  # opening_hours expression for when the rule applies

    def __post_init__(self) -> None:
        """Reject a direction other than entry or exit."""
        if self.kind not in ("entry", "exit"):
            raise ValueError(f"access rule kind must be 'entry' or 'exit', got {self.kind!r}")


@lru_cache(maxsize=1)
def _default_calendar() -> WorkCalendar:
    """The shipped official calendar, for callers that do not pass one."""
    return WorkCalendar()


@lru_cache(maxsize=1024)
def _condition_hours(hours: str, calendar: WorkCalendar, tz: str) -> FacilityHours:
    """A rule's condition as FacilityHours; only the state matters, so a short horizon."""
    return FacilityHours(hours, calendar, tz, horizon_days=1)


def _pretty(hours: str) -> str:
    """Hours for a sentence: time ranges with an en dash (08:00–18:00)."""
    return _TIME_RANGE_RE.sub(lambda m: f"{m.group(1)}–{m.group(2)}", hours)


class Access:
    """Who may drive in or out when: the access tag plus timed entry/exit rules.

    Tags read (OSM conditional-restriction syntax ``value @ (opening_hours)``):

    * ``access`` - the base value (yes, permissive, customers, private, no, ...); missing
      means public, as OSM assumes for a car park without the tag;
    * ``access:conditional`` - applies to entering and leaving alike;
    * ``access:entry:conditional`` and ``access:exit:conditional`` - one direction only. They
      are our keys (OSM has no established one for a car park's gate): "residents may leave
      but not enter between 08:00 and 18:00" is ``access:entry:conditional=no @ (08:00-18:00)``.

    Within a key the last rule whose condition holds wins, and a direction's own key wins
    over ``access:conditional``. A condition whose state is unknown is taken to hold for a
    restriction and not for a permission: we do not send anyone to a gate that may be shut.
    """

    def __init__(
        self,
        access: str | None = None,
        rules: Sequence[AccessRule] = (),
        calendar: WorkCalendar | None = None,
        tz: str = LOCAL_TZ,
    ) -> None:
        """Compile every rule's condition now, so a bad one fails here, not mid-search."""
        self.access = access.strip().lower() if access and access.strip() else None
        self.rules = tuple(rules)
        self.calendar = calendar if calendar is not None else _default_calendar()
        self.tz = tz
        self._hours = {r.hours: _condition_hours(r.hours, self.calendar, tz) for r in self.rules}

    @classmethod
    def from_tags(
        cls,
        access: str | None,
        tags: Mapping[str, str] | None,
        calendar: WorkCalendar | None = None,
        tz: str = LOCAL_TZ,
    ) -> Access:
        """Access from a facility's access column and its other tags; bad rules raise."""
        tags = tags or {}
        base = access if access is not None else tags.get("access")
        rules = []
        for key, kinds in _DIRECTIONS:
            raw = tags.get(key)
            if raw is None or not str(raw).strip():
                continue
            for value, condition in parse_conditional(str(raw), key):
                for kind in kinds:
                    rules.append(AccessRule(kind, value in _PUBLIC, condition))
        return cls(base, rules, calendar, tz)

    def _decide(self, kind: str, when: datetime) -> tuple[bool, AccessRule | None]:
        """Whether ``kind`` is allowed at ``when``, and the rule that decided (None: the base)."""
        _require_aware(when, "when")
        allowed = self.access is None or self.access in _PUBLIC
        decided_by = None
        for rule in self.rules:
            if rule.kind != kind:
                continue
            state = self._hours[rule.hours].at(when).state
            if state == "open" or (state == "unknown" and not rule.allowed):
                allowed, decided_by = rule.allowed, rule
        return allowed, decided_by

    def can_enter(self, when: datetime) -> bool:
        """True when a member of the public may drive in at ``when``."""
        return self._decide("entry", when)[0]

    def can_exit(self, when: datetime) -> bool:
        """True when a car inside may drive out at ``when``."""
        return self._decide("exit", when)[0]

    def note(self, when: datetime) -> str | None:
        """A short explanation when entry or exit is refused at ``when``, else None."""
        enter, entry_rule = self._decide("entry", when)
        leave, exit_rule = self._decide("exit", when)
        if enter and leave:
            return None
        if not enter and not leave:
            rule = entry_rule or exit_rule
            if rule is None:
                return f"no public access (access={self.access})"
            return f"no entry or exit {_pretty(rule.hours)}"
        refused, allowed = (entry_rule, exit_rule) if leave else (exit_rule, entry_rule)
        rule = refused or allowed
        when_text = f" {_pretty(rule.hours)}" if rule else f" (access={self.access})"
        return ("exit only" if leave else "entry only") + when_text
