"""Working-hour deadlines (geo/worktime.py) against China's official 2026 calendar.

The 2026 rows follow what chinese-calendar 1.11 reports, which matches the State Council
notice for 2026 (国办发明电〔2025〕7号 as we know it):

* New Year: 01-01 to 01-03 off; Sunday 01-04 is a make-up working day.
* Spring Festival: 02-15 (Sun) to 02-23 (Mon) off; Saturdays 02-14 and 02-28 are
  make-up working days.
* Qingming 04-04 to 04-06; Labour Day 05-01 to 05-05, Saturday 05-09 worked;
  Dragon Boat 06-19 to 06-21; Mid-Autumn 09-25 to 09-27.
* National Day: 10-01 to 10-07 off; Sunday 09-20 and Saturday 10-10 are make-up days.

test_library_2026_calendar pins those facts, so a library update that changes them fails
there first instead of as a puzzling deadline row.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from geo.worktime import (
    DEFAULT_EXTRA_PATH,
    CalendarDataError,
    CalendarOutOfRange,
    CalendarYearMissing,
    Deadline,
    WorkCalendar,
    WorkingDay,
    calendar_warnings,
    deadline,
    due_at,
    parse_working_day,
    working_seconds_between,
)

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar(today=lambda: date(2026, 12, 2))  # tests never read the clock
DAY = WorkingDay()
# A different office day, to check nothing assumes the default periods.
CUSTOM = parse_working_day("09:00-12:00,13:30-18:00")
# Made-up 2031 data (not an official arrangement): New Year Wed-Fri off, Sunday 01-05 worked.
EXTRA_2031 = {"holidays": ["2031-01-01", "2031-01-02", "2031-01-03"], "workdays": ["2031-01-05"]}


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """A fixed Asia/Shanghai datetime."""
    return datetime(y, mo, d, h, mi, tzinfo=SH)


# --- what the library says about 2026 -------------------------------------------------


def test_library_2026_calendar() -> None:
    """Holidays on weekdays and make-up weekends of 2026, as chinese-calendar reports them."""
    year = (date(2026, 1, 1), date(2026, 12, 31))
    weekdays_off = [d.isoformat() for d in chinese_calendar.get_holidays(*year) if d.weekday() < 5]
    weekends_worked = [
        d.isoformat() for d in chinese_calendar.get_workdays(*year) if d.weekday() >= 5
    ]
    assert weekdays_off == [
        "2026-01-01", "2026-01-02",  # New Year (Thu, Fri)
        "2026-02-16", "2026-02-17", "2026-02-18", "2026-02-19", "2026-02-20", "2026-02-23",  # Spring Festival
        "2026-04-06",  # Qingming (Mon)
        "2026-05-01", "2026-05-04", "2026-05-05",  # Labour Day
        "2026-06-19",  # Dragon Boat (Fri)
        "2026-09-25",  # Mid-Autumn (Fri)
        "2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07",  # National Day
    ]  # fmt: skip
    assert weekends_worked == [
        "2026-01-04",  # Sunday, for New Year
        "2026-02-14",  # Saturday, for Spring Festival
        "2026-02-28",  # Saturday, for Spring Festival
        "2026-05-09",  # Saturday, for Labour Day
        "2026-09-20",  # Sunday, for National Day
        "2026-10-10",  # Saturday, for National Day
    ]
    # The whole Spring Festival span, weekends included: 02-15 (Sun) to 02-23 (Mon).
    span = chinese_calendar.get_holidays(
        date(2026, 2, 14), date(2026, 2, 24), include_weekends=True
    )
    assert [d.day for d in span] == [15, 16, 17, 18, 19, 20, 21, 22, 23]


# --- due_at: working hours ------------------------------------------------------------

# (start, hours, expected deadline), all Asia/Shanghai, default day 08:30-12:00, 14:00-17:30.
DUE_ROWS = [
    # Friday 16:00 + 4 h before a normal weekend: 1.5 h Friday, 2.5 h Monday from 08:30.
    pytest.param(sh(2026, 3, 6, 16), 4, sh(2026, 3, 9, 11), id="friday-weekend"),
    # Friday before Spring Festival + 4 h: the next working day is make-up Saturday 02-14.
    pytest.param(sh(2026, 2, 13, 16), 4, sh(2026, 2, 14, 11), id="into-makeup-saturday"),
    # Last working day before Spring Festival (make-up Sat 02-14): nine days off, then Tue 02-24.
    pytest.param(sh(2026, 2, 14, 16), 4, sh(2026, 2, 24, 11), id="spans-spring-festival"),
    # The same start, dirty road (2 h): 1.5 h on 02-14, 0.5 h on 02-24.
    pytest.param(sh(2026, 2, 14, 16), 2, sh(2026, 2, 24, 9), id="spring-festival-2h"),
    # Reported during the holiday: the clock starts on Tue 02-24 08:30.
    pytest.param(sh(2026, 2, 18, 10), 4, sh(2026, 2, 24, 14, 30), id="start-in-holiday"),
    # Start on make-up Saturday 02-28: that day counts; Sunday 03-01 does not.
    pytest.param(sh(2026, 2, 28, 16), 2, sh(2026, 3, 2, 9), id="makeup-saturday-0228"),
    # Start on make-up Sunday 09-20 (National Day): counted like any working day.
    pytest.param(sh(2026, 9, 20, 9), 2, sh(2026, 9, 20, 11), id="makeup-sunday-0920"),
    # Make-up Sunday 01-04 after New Year: Wed 2025-12-31 16:00 + 4 h lands on it.
    pytest.param(sh(2025, 12, 31, 16), 4, sh(2026, 1, 4, 11), id="new-year-makeup-sunday"),
    # Friday 10-09 + 4 h: the next working day is make-up Saturday 10-10.
    pytest.param(sh(2026, 10, 9, 16), 4, sh(2026, 10, 10, 11), id="makeup-saturday-1010"),
    # Wed 09-30 + 4 h: National Day 10-01..10-07 off, due Thu 10-08.
    pytest.param(sh(2026, 9, 30, 16), 4, sh(2026, 10, 8, 11), id="national-day"),
    # Thu 09-24 + 4 h: Mid-Autumn Fri 09-25 and the weekend off, due Mon 09-28.
    pytest.param(sh(2026, 9, 24, 16), 4, sh(2026, 9, 28, 11), id="mid-autumn"),
    # Inside the lunch break: counting starts at 14:00.
    pytest.param(sh(2026, 3, 9, 12, 30), 2, sh(2026, 3, 9, 16), id="lunch-break"),
    # Exactly at 12:00 (a period end): nothing left in the morning, counting starts 14:00.
    pytest.param(sh(2026, 3, 9, 12), 1, sh(2026, 3, 9, 15), id="at-noon"),
    # Exactly at 17:30: counting starts at the next working day's 08:30.
    pytest.param(sh(2026, 3, 9, 17, 30), 1, sh(2026, 3, 10, 9, 30), id="at-1730"),
    # Before opening: counting starts at 08:30.
    pytest.param(sh(2026, 3, 9, 7), 2, sh(2026, 3, 9, 10, 30), id="before-opening"),
    # Exactly 3.5 h from 08:30: due at 12:00 itself, not at 14:00.
    pytest.param(sh(2026, 3, 10, 8, 30), 3.5, sh(2026, 3, 10, 12), id="exactly-to-noon"),
    # A whole day from 08:30: due at 17:30 the same day, not 08:30 the next.
    pytest.param(sh(2026, 3, 10, 8, 30), 7, sh(2026, 3, 10, 17, 30), id="exactly-to-close"),
    # Dirty road, 2 working hours from 10:15: 1.75 h to noon, 0.25 h after lunch.
    pytest.param(sh(2026, 3, 11, 10, 15), 2, sh(2026, 3, 11, 14, 15), id="dirty-road-2h"),
    # Exposed rubbish, 4 working hours from 10:15: 1.75 h to noon, 2.25 h after lunch.
    pytest.param(sh(2026, 3, 11, 10, 15), 4, sh(2026, 3, 11, 16, 15), id="exposed-rubbish-4h"),
    # Half an hour.
    pytest.param(sh(2026, 3, 11, 11, 45), 0.5, sh(2026, 3, 11, 14, 15), id="half-hour"),
    # A 48-working-hour limit from Monday: six full days (Mon 03-09..Mon 03-16) and 6 h on Tue.
    pytest.param(sh(2026, 3, 9, 8, 30), 48, sh(2026, 3, 17, 16, 30), id="48h"),
    # Zero hours: due at the start itself, even outside working time (defined behaviour).
    pytest.param(sh(2026, 3, 8, 20), 0, sh(2026, 3, 8, 20), id="zero-hours"),
]


@pytest.mark.parametrize(("start", "hours", "expected"), DUE_ROWS)
@pytest.mark.parametrize("given_in", ["Asia/Shanghai", "UTC", "America/New_York"])
def test_due_at_working_hours(
    start: datetime, hours: float, expected: datetime, given_in: str
) -> None:
    """The same instant given in any zone gives the same Shanghai deadline."""
    result = due_at(start.astimezone(ZoneInfo(given_in)), hours, True, CAL, DAY)
    assert result == expected
    assert result.utcoffset() == timedelta(hours=8)
    assert result.replace(tzinfo=None) == expected.replace(tzinfo=None)


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        # Custom day 09:00-12:00, 13:30-18:00: Friday 17:00 + 2 h -> 1 h Fri, 1 h Mon from 09:00.
        (sh(2026, 3, 6, 17), 2, sh(2026, 3, 9, 10)),
        # 12:30 is in its lunch break: counting starts at 13:30.
        (sh(2026, 3, 9, 12, 30), 1, sh(2026, 3, 9, 14, 30)),
        # 3 h from 09:00 ends exactly at its 12:00.
        (sh(2026, 3, 9, 9), 3, sh(2026, 3, 9, 12)),
    ],
)
def test_due_at_custom_day(start: datetime, hours: float, expected: datetime) -> None:
    """Working periods come from the configured day, not from the defaults."""
    assert due_at(start, hours, True, CAL, CUSTOM) == expected


# --- due_at: calendar hours -----------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        # 4 calendar hours on make-up Saturday 02-14: 20:00 the same evening.
        (sh(2026, 2, 14, 16), 4, sh(2026, 2, 14, 20)),
        # 48 calendar hours run straight through the Spring Festival holiday.
        (sh(2026, 2, 14, 16), 48, sh(2026, 2, 16, 16)),
        # 24 hours from a holiday evening.
        (sh(2026, 10, 1, 22, 15), 24, sh(2026, 10, 2, 22, 15)),
        # A year with no calendar data at all: calendar hours never ask the calendar.
        (sh(2031, 6, 1, 23), 2.5, sh(2031, 6, 2, 1, 30)),
    ],
)
@pytest.mark.parametrize(
    "calendar", [CAL, WorkCalendar({"holidays": ["2026-02-14"]})], ids=["cal", "extra"]
)
def test_due_at_calendar_hours(
    start: datetime, hours: float, expected: datetime, calendar: WorkCalendar
) -> None:
    """working=False is plain elapsed time, whatever the calendar says."""
    result = due_at(start.astimezone(ZoneInfo("UTC")), hours, False, calendar, DAY)
    assert result == expected
    assert result.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize("hours", [-0.5, -1, float("nan"), float("inf")])
@pytest.mark.parametrize("working", [True, False])
def test_due_at_rejects_bad_hours(hours: float, working: bool) -> None:
    """Negative or non-finite time limits are errors, not deadlines in the past."""
    with pytest.raises(ValueError, match="hours must be"):
        due_at(sh(2026, 3, 9, 9), hours, working, CAL, DAY)


def test_due_at_rejects_naive_start() -> None:
    """A naive start is ambiguous between servers in different zones."""
    with pytest.raises(ValueError, match="timezone-aware"):
        due_at(datetime(2026, 3, 9, 9), 2, True, CAL, DAY)


# --- working_seconds_between ----------------------------------------------------------

H = 3600.0

# (a, b, working seconds from a to b)
BETWEEN_ROWS = [
    # Friday 16:00 to Monday 11:00: 1.5 h + 2.5 h (the due_at "friday-weekend" row).
    pytest.param(sh(2026, 3, 6, 16), sh(2026, 3, 9, 11), 4 * H, id="weekend"),
    # Both inside the same lunch break.
    pytest.param(sh(2026, 3, 9, 12, 10), sh(2026, 3, 9, 13, 50), 0.0, id="lunch"),
    # The same instant.
    pytest.param(sh(2026, 3, 9, 10), sh(2026, 3, 9, 10), 0.0, id="same"),
    # Reversed: negative.
    pytest.param(sh(2026, 3, 9, 11), sh(2026, 3, 6, 16), -4 * H, id="reversed"),
    # All of make-up Saturday 02-14.
    pytest.param(sh(2026, 2, 14), sh(2026, 2, 15), 7 * H, id="makeup-saturday"),
    # The Spring Festival holiday 02-15..02-23: nothing.
    pytest.param(sh(2026, 2, 15), sh(2026, 2, 24), 0.0, id="spring-festival"),
    # 02-13 to 02-24 midnight: Fri 02-13 and Sat 02-14 only.
    pytest.param(sh(2026, 2, 13), sh(2026, 2, 24), 14 * H, id="around-festival"),
    # February 2026: 20 weekdays - 6 holiday weekdays + 2 make-up Saturdays = 16 days.
    pytest.param(sh(2026, 2, 1), sh(2026, 3, 1), 16 * 7 * H, id="february"),
    # A normal week, Monday to Monday.
    pytest.param(sh(2026, 3, 9), sh(2026, 3, 16), 5 * 7 * H, id="week"),
    # Across make-up Sunday 09-20: Fri 09-18 17:00 to Mon 09-21 09:00 = 0.5 + 7 + 0.5.
    pytest.param(sh(2026, 9, 18, 17), sh(2026, 9, 21, 9), 8 * H, id="makeup-sunday"),
]


@pytest.mark.parametrize(("a", "b", "expected"), BETWEEN_ROWS)
@pytest.mark.parametrize("given_in", ["Asia/Shanghai", "UTC"])
def test_working_seconds_between(a: datetime, b: datetime, expected: float, given_in: str) -> None:
    """Working time between two instants, whatever zone they are given in."""
    zone = ZoneInfo(given_in)
    assert working_seconds_between(a.astimezone(zone), b.astimezone(zone), CAL, DAY) == expected


def _random_start(rng: random.Random) -> datetime:
    """A start in 2025-2026, often exactly on a period boundary or midnight."""
    day = date(2025, 1, 1) + timedelta(days=rng.randrange(0, 690))  # ends 2026-11-21
    if rng.random() < 0.3:
        clock = rng.choice(
            [
                time(0),
                time(8, 30),
                time(12),
                time(14),
                time(17, 30),
                time(9),
                time(13, 30),
                time(18),
            ]
        )
        return datetime.combine(day, clock, tzinfo=SH)
    return datetime.combine(day, time(0), tzinfo=SH) + timedelta(seconds=rng.randrange(86_400))


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("day", [DAY, CUSTOM], ids=["default-day", "custom-day"])
def test_round_trip(seed: int, day: WorkingDay) -> None:
    """working_seconds_between(start, due_at(start, h)) is exactly h hours, over many starts."""
    rng = random.Random(seed)
    for _ in range(1500):
        start = _random_start(rng)
        hours = (
            rng.choice([0.25, 0.5, 1, 2, 3.5, 4, 7, 8, 24, 40])
            if rng.random() < 0.5
            else rng.uniform(0, 40)
        )
        due = due_at(start, hours, True, CAL, day)
        assert due >= start
        assert working_seconds_between(start, due, CAL, day) == pytest.approx(hours * H, abs=1e-6)
        # A deadline lies in a working period of a working day, or at its end.
        clock = due.time()
        assert CAL.is_workday(due.date())
        assert any(begin < clock <= end for begin, end in day.periods), (start, hours, due)
        # The other way: the working time to an instant inside working time leads back to it.
        target = due - timedelta(seconds=rng.randrange(0, 600))
        inside = any(begin < target.time() <= end for begin, end in day.periods)
        if target > start and inside and CAL.is_workday(target.date()):
            back = due_at(
                start, working_seconds_between(start, target, CAL, day) / H, True, CAL, day
            )
            assert abs(back - target) <= timedelta(microseconds=1)


def test_ten_thousand_issues() -> None:
    """A batch of 10,000 deadlines runs without stepping minute by minute (see -durations)."""
    rng = random.Random(7)
    starts = [_random_start(rng) for _ in range(10_000)]
    dues = [due_at(s, 4, True, CAL, DAY) for s in starts]
    assert all(d > s for s, d in zip(starts, dues, strict=True))


# --- the calendar: extra data and missing years ---------------------------------------


def test_shipped_extra_file_is_valid() -> None:
    """geo/calendar_extra.json loads (it starts empty) and keeps 2026 on the library."""
    assert json.loads(DEFAULT_EXTRA_PATH.read_text(encoding="utf-8"))["holidays"] == []
    assert WorkCalendar(DEFAULT_EXTRA_PATH).is_workday(date(2026, 2, 14))


# --- years without their official notice: the provisional calendar ----------------------

# The day the tests take as today: chinese-calendar 1.11 ends with 2026, 2027's notice is not out.
TODAY = date(2026, 12, 2)
# A made-up official arrangement for 2027 (NOT the State Council's notice, which is not out):
# Spring Festival 02-05 (Fri) to 02-13 (Sat) with Saturday 02-20 worked; Labour Day 05-01 to
# 05-05 with Saturday 05-08 worked; National Day 10-01 to 10-07 with Saturday 10-09 worked.
OFFICIAL_2027: dict[date, bool] = {
    **{date.fromisoformat(d): False for d in (
        "2027-01-01", "2027-02-05", "2027-02-08", "2027-02-09", "2027-02-10", "2027-02-11",
        "2027-02-12", "2027-04-05", "2027-05-03", "2027-05-04", "2027-05-05", "2027-06-09",
        "2027-09-15", "2027-10-01", "2027-10-04", "2027-10-05", "2027-10-06", "2027-10-07",
    )},
    **{date.fromisoformat(d): True for d in ("2027-02-20", "2027-05-08", "2027-10-09")},
}  # fmt: skip
PROVISIONAL_CAL = WorkCalendar(today=lambda: TODAY)
OFFICIAL_CAL = WorkCalendar(official={2027: OFFICIAL_2027}, today=lambda: TODAY)


def test_holidays_package_2027_by_rule() -> None:
    """What the provisional 2027 is made of: the holidays package's days off, no make-up days."""
    year = [date(2027, 1, 1) + timedelta(days=n) for n in range(365)]
    off = [d for d in year if d.weekday() < 5 and not PROVISIONAL_CAL.is_workday(d)]
    weekdays_off = [d.isoformat() for d in off]
    assert weekdays_off == [
        "2027-01-01",  # New Year (Fri)
        "2027-02-05", "2027-02-08", "2027-02-09", "2027-02-10",  # Eve (Fri), Mon, and 2 observed
        "2027-04-05",  # Qingming (Mon)
        "2027-05-03", "2027-05-04",  # Labour Day 05-01/02 fall on the weekend: observed
        "2027-06-09",  # Dragon Boat (Wed)
        "2027-09-15",  # Mid-Autumn (Wed)
        "2027-10-01", "2027-10-04", "2027-10-05",  # National Day (Fri) and 2 observed
    ]  # fmt: skip
    assert not any(PROVISIONAL_CAL.is_makeup_workday(d) for d in year)  # unknown until the notice
    assert all(PROVISIONAL_CAL.is_provisional(d) for d in year)


# (start, hours, provisional answer, answer with OFFICIAL_2027); derived by hand.
ACROSS_2027 = [
    # Thu 12-31 16:00: 1.5 h that day; Fri 01-01 is New Year's Day in both; Mon 01-04 + 2.5 h.
    pytest.param(sh(2026, 12, 31, 16), 4, sh(2027, 1, 4, 11), sh(2027, 1, 4, 11), id="new-year"),
    # Thu 02-04 16:00: 1.5 h; by rule 02-05 to 02-10 off, Thu 02-11 08:30 + 6.5 h = 17:00.
    # Officially (made up) 02-05 to 02-14 off: Mon 02-15 17:00.
    pytest.param(sh(2027, 2, 4, 16), 8, sh(2027, 2, 11, 17), sh(2027, 2, 15, 17), id="spring"),
    # Fri 02-19 17:00: 0.5 h; by rule the weekend is off (Mon 02-22 10:00); officially (made
    # up) Saturday 02-20 is a make-up working day (02-20 10:00).
    pytest.param(sh(2027, 2, 19, 17), 2, sh(2027, 2, 22, 10), sh(2027, 2, 20, 10), id="makeup-sat"),
]


@pytest.mark.parametrize(("start", "hours", "by_rule", "official"), ACROSS_2027)
def test_deadline_in_2027_with_and_without_its_calendar(
    start: datetime, hours: float, by_rule: datetime, official: datetime
) -> None:
    """Without 2027's notice the deadline is computed by rule and marked provisional."""
    assert deadline(start, hours, True, PROVISIONAL_CAL, DAY) == Deadline(by_rule, True)
    assert deadline(start, hours, True, OFFICIAL_CAL, DAY) == Deadline(official, False)
    # due_at and working_seconds_between stay exact on a provisional calendar too.
    assert working_seconds_between(start, by_rule, PROVISIONAL_CAL, DAY) == hours * H


@pytest.mark.parametrize(
    ("start", "hours", "working", "provisional"),
    [
        (sh(2026, 12, 30, 9), 4, True, False),  # inside 2026: chinese-calendar
        (sh(2026, 12, 31, 16), 1.5, True, False),  # due 17:30 on 12-31: 2027 is never asked
        (sh(2026, 12, 31, 16), 2, True, True),  # half an hour more runs into 2027
        (sh(2027, 3, 1, 9), 48, False, False),  # calendar hours do not ask the calendar
        (sh(2027, 3, 1, 9), 0, True, False),  # no time allowed: due at the start
    ],
)
def test_provisional_flag_follows_the_days_counted(
    start: datetime, hours: float, working: bool, provisional: bool
) -> None:
    """A deadline is provisional exactly when a day it counted is judged by rule."""
    assert deadline(start, hours, working, PROVISIONAL_CAL, DAY).provisional is provisional


def test_provisional_holidays_for_opening_hours() -> None:
    """PH in a provisional year: the package's named days and weekends joined to a weekday off."""
    assert PROVISIONAL_CAL.is_holiday(date(2027, 2, 6))  # Saturday, Spring Festival by rule
    assert PROVISIONAL_CAL.is_holiday(date(2027, 1, 2))  # Saturday joined to New Year's Day
    assert not PROVISIONAL_CAL.is_holiday(date(2027, 2, 13))  # Saturday after 02-12 (a workday)
    assert OFFICIAL_CAL.is_holiday(date(2027, 2, 13))  # joined to the official 02-12 off
    assert OFFICIAL_CAL.is_makeup_workday(date(2027, 2, 20))


@pytest.mark.parametrize(
    ("today", "day", "in_range"),
    [
        (TODAY, date(2003, 12, 31), False),  # before chinese-calendar's first year
        (TODAY, date(2004, 1, 1), True),
        (TODAY, date(2028, 12, 31), True),  # two years after 2026, provisional
        (TODAY, date(2029, 1, 1), False),
        (date(2027, 1, 1), date(2029, 12, 31), True),  # the range moves with today
        (TODAY, date(1970, 1, 1), False),  # open_at=-1
    ],
)
def test_calendar_range(today: date, day: date, in_range: bool) -> None:
    """Out of range is a clear error naming the range; in range is never an error."""
    calendar = WorkCalendar(today=lambda: today)
    if in_range:
        calendar.is_workday(day)
        return
    with pytest.raises(CalendarOutOfRange) as info:
        calendar.is_workday(day)
    first, last = calendar.bounds()
    assert (info.value.first, info.value.last) == (date(2004, 1, 1), last)
    assert f"which covers {first.isoformat()} to {last.isoformat()}" in str(info.value)
    # Still a CalendarYearMissing: a look-ahead that stops at an unknown year stops here too.
    assert isinstance(info.value, CalendarYearMissing)


def test_official_years_extend_the_range_and_name_their_source() -> None:
    """Years from the database and the extra file are official; years between are provisional."""
    calendar = WorkCalendar(EXTRA_2031, official={2027: OFFICIAL_2027}, today=lambda: TODAY)
    years = (2003, 2026, 2027, 2028, 2030, 2031, 2032)
    sources = {year: calendar.source_of(year) for year in years}
    assert sources == {
        2003: None, 2026: "chinese-calendar", 2027: "database", 2028: "provisional",
        2030: "provisional", 2031: "extra file", 2032: None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("today", "official", "warned"),
    [
        (date(2026, 9, 30), {}, []),  # too early to worry
        (date(2026, 10, 1), {}, [2027]),  # from 1 October
        (date(2026, 12, 2), {2027: OFFICIAL_2027}, []),  # loaded
        (date(2027, 1, 5), {}, [2027]),  # this year itself is provisional
        (date(2027, 10, 1), {2027: OFFICIAL_2027}, [2028]),
    ],
)
def test_warning_ahead_of_a_missing_year(
    today: date, official: dict[int, dict[date, bool]], warned: list[int]
) -> None:
    """From 1 October, a missing official calendar for next year is said, with what to do."""
    calendar = WorkCalendar(official=official, today=lambda: today)
    warnings = calendar_warnings(calendar)
    assert len(warnings) == len(warned)
    for year, text in zip(warned, warnings, strict=True):
        assert f"calendar for {year} is not loaded" in text
        assert "gridmap calendar import" in text


# (start, hours, expected) in 2031 with the made-up EXTRA_2031 data.
ROWS_2031 = [
    # Wed 01-01 (holiday) + 4 h: 01-02, 01-03 off, Sat 01-04 off, make-up Sun 01-05 08:30..14:30.
    pytest.param(sh(2031, 1, 1, 9), 4, sh(2031, 1, 5, 14, 30), id="extra-holidays-and-makeup"),
    # A plain March week: the weekend rule for days the file does not list.
    pytest.param(sh(2031, 3, 7, 16), 4, sh(2031, 3, 10, 11), id="weekend-rule"),
]


@pytest.mark.parametrize(("start", "hours", "expected"), ROWS_2031)
@pytest.mark.parametrize("form", ["dict", "path", "str"])
def test_extra_data_supplies_2031(
    start: datetime, hours: float, expected: datetime, form: str, tmp_path: Path
) -> None:
    """Extra data for 2031 makes that year work, as a dict, a Path or a path string."""
    path = tmp_path / "extra.json"
    path.write_text(json.dumps(EXTRA_2031), encoding="utf-8")
    extra = {"dict": EXTRA_2031, "path": path, "str": str(path)}[form]
    assert due_at(start, hours, True, WorkCalendar(extra), DAY) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 3, 9), False),  # a plain Monday, made a local day off by the extra data
        (date(2026, 3, 8), True),  # a plain Sunday, made a working day by the extra data
        (date(2026, 2, 16), True),  # a Spring Festival day, overridden to working
        (date(2026, 3, 10), True),  # not listed: the library decides
    ],
)
def test_extra_overrides_library(day: date, expected: bool) -> None:
    """Extra entries take precedence over chinese-calendar for the years it covers."""
    calendar = WorkCalendar({"holidays": ["2026-03-09"], "workdays": ["2026-03-08", "2026-02-16"]})
    assert calendar.is_workday(day) is expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"holidays": ["2031-01-01"], "workdays": ["2031-01-01"]}', "both holiday and workday"),
        ('{"holiday": ["2031-01-01"]}', "unknown keys"),  # a typo must not be ignored
        ('{"holidays": ["2031-13-01"]}', "not a YYYY-MM-DD date"),
        ('{"holidays": "2031-01-01"}', "must be a list"),
        ('["2031-01-01"]', "expected a JSON object"),
        ('{"holidays": [', "not valid JSON"),
    ],
)
def test_bad_extra_data(content: str, message: str, tmp_path: Path) -> None:
    """Broken extra data fails when loaded, naming the file."""
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CalendarDataError, match=message) as info:
        WorkCalendar(path)
    assert "bad.json" in str(info.value)


def test_comment_keys_are_ignored() -> None:
    """Keys starting with "_" are comments in the JSON file."""
    assert WorkCalendar({"_comment": "x", "holidays": []}).is_workday(date(2026, 3, 9))


# --- the working day setting ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "periods"),
    [
        ("08:30-12:00,14:00-17:30", DAY.periods),  # the default
        (
            " 09:00 - 12:00 , 13:30-18:00 ",
            ((time(9), time(12)), (time(13, 30), time(18))),
        ),  # spaces
        ("8:00-12:00", ((time(8), time(12)),)),  # one period, one-digit hour
        (
            "08:00-12:00,12:00-13:00",
            ((time(8), time(12)), (time(12), time(13))),
        ),  # touching is fine
    ],
)
def test_parse_working_day(text: str, periods: tuple[tuple[time, time], ...]) -> None:
    """The setting string becomes ordered periods."""
    assert parse_working_day(text).periods == periods


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("08:30-12:00;14:00-17:30", "is not"),  # wrong separator
        ("08:30-12", "is not"),
        ("08:30", "is not"),
        ("25:00-26:00", "hour must be in"),
        ("08:30-08:30", "start must be before the end"),
        ("12:00-08:30", "start must be before the end"),
        ("08:30-12:00,11:00-17:30", "must not overlap"),
        ("14:00-17:30,08:30-12:00", "must be in order"),
    ],
)
def test_parse_working_day_errors(text: str, message: str) -> None:
    """Bad settings fail with a message saying what is wrong."""
    with pytest.raises(ValueError, match=message):
        parse_working_day(text)


@pytest.mark.parametrize(
    ("periods", "message"),
    [
        ((), "at least one"),
        (((time(8, 30, tzinfo=SH), time(12)),), "time zone"),
        ((("08:30", "12:00"),), "datetime.time"),  # a TypeError
    ],
)
def test_working_day_errors(periods: tuple, message: str) -> None:
    """The dataclass validates periods given directly too."""
    with pytest.raises((ValueError, TypeError), match=message):
        WorkingDay(periods)


def test_working_day_accepts_lists_and_stays_hashable() -> None:
    """Periods from JSON or settings may be lists; the day is still frozen and hashable."""
    day = WorkingDay([[time(8, 30), time(12)], [time(14), time(17, 30)]])  # type: ignore[arg-type]
    assert day == DAY and hash(day) == hash(DAY)
    assert day.seconds == 7 * H
