"""Opening hours and timed access (geo/opening.py) on China's official 2026 calendar.

The calendar facts used below are pinned in tests/test_worktime.py
(test_library_2026_calendar); in short, for 2026:

* New Year 01-01 (Thu) to 01-03 (Sat) off; Sunday 01-04 is a make-up working day.
* Spring Festival 02-15 (Sun) to 02-23 (Mon) off; Saturdays 02-14 and 02-28 are worked.
* Qingming 04-04 to 04-06 (Mon); National Day 10-01 (Thu) to 10-07 off, and Sunday 09-20
  is worked for it.

Expected answers are checked against the opening_hours library itself wherever that is
possible: on ordinary days against its state() of the raw value, on holidays against the
value with the holiday dates written out by hand, and on make-up days against the library's
answer for the proxy weekday. The hand-written TABLE rows spell out the intent.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from opening_hours import OpeningHours, State

from geo.opening import (
    Access,
    AccessRule,
    FacilityHours,
    HoursState,
    OpeningHoursInvalid,
    parse_conditional,
    validate_hours,
)
from geo.worktime import CalendarOutOfRange, WorkCalendar

SH = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 12, 2)  # the calendar's range depends on today; tests never read the clock
CAL = WorkCalendar(today=lambda: TODAY)
# Made-up 2031 data (not an official arrangement), as in test_worktime: New Year Wed-Fri
# off, Sunday 01-05 worked. 2032 is then a year nobody knows.
EXTRA_2031 = {"holidays": ["2031-01-01", "2031-01-02", "2031-01-03"], "workdays": ["2031-01-05"]}

HERRENBERG = "Mo-Fr 07:30-22:00; Sa 07:30-18:00; PH off"  # a real value from OSM
SCHOOL = "Mo-Fr 18:00-21:00; Sa,Su 08:00-20:00; PH off"  # a school's sports ground (DOMAIN.md)
STATES = {State.OPEN: "open", State.CLOSED: "closed", State.UNKNOWN: "unknown"}


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """A fixed Asia/Shanghai datetime."""
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def library_state(value: str, when: datetime) -> str:
    """The opening_hours library's own state for ``value`` at ``when`` (no holiday data)."""
    return STATES[OpeningHours(value, timezone=SH).state(when)[0]]


def every_half_hour(start: datetime, end: datetime) -> list[datetime]:
    """Sample instants from ``start`` up to ``end``."""
    out, t = [], start
    while t < end:
        out.append(t)
        t += timedelta(minutes=30)
    return out


# --- why PH needs our calendar --------------------------------------------------------------


def test_library_cn_holidays_lack_the_official_arrangement() -> None:
    """The library's CN data knows 02-17 but not the rest of Spring Festival: hence the rewrite."""
    ph = OpeningHours("PH", timezone=SH, country="CN")
    assert ph.is_open(sh(2026, 2, 17, 12))  # the statutory day
    assert not ph.is_open(sh(2026, 2, 18, 12))  # officially off, unknown to the library
    assert FacilityHours("PH", CAL).is_open(sh(2026, 2, 18, 12))  # ours follows the notice


def test_work_calendar_holidays_and_makeup_days() -> None:
    """WorkCalendar.is_holiday covers whole holiday runs; is_makeup_workday the 调休 weekends."""
    assert CAL.is_holiday(date(2026, 2, 18))  # Wednesday in Spring Festival
    assert CAL.is_holiday(date(2026, 2, 15))  # Sunday that opens it
    assert CAL.is_holiday(date(2026, 2, 21))  # Saturday inside it
    assert CAL.is_holiday(date(2026, 1, 3))  # Saturday of New Year
    assert not CAL.is_holiday(date(2026, 2, 14))  # make-up Saturday before it
    assert not CAL.is_holiday(date(2026, 3, 7))  # an ordinary Saturday
    assert not CAL.is_holiday(date(2026, 3, 4))  # an ordinary Wednesday
    # A weekend joined to a weekday off is part of the holiday even where the package does
    # not name it (Dragon Boat 2024: Monday 06-10 "与周末连休").
    assert CAL.is_holiday(date(2024, 6, 8))
    # A holiday on a Sunday alone is found by its name (Mid-Autumn 2015).
    assert CAL.is_holiday(date(2015, 9, 27))
    assert CAL.is_makeup_workday(date(2026, 9, 20))  # Sunday worked for National Day
    assert not CAL.is_makeup_workday(date(2026, 9, 19))  # ordinary Saturday
    assert not CAL.is_makeup_workday(date(2026, 9, 18))  # a Friday is no make-up day
    # Years known only from the extra data: the Saturday joined to Wed-Fri off is PH.
    extra = WorkCalendar(EXTRA_2031)
    assert extra.is_holiday(date(2031, 1, 2))
    assert extra.is_holiday(date(2031, 1, 4))
    assert not extra.is_holiday(date(2031, 1, 5))
    assert extra.is_makeup_workday(date(2031, 1, 5))


# --- the table ------------------------------------------------------------------------------

# (value, when, state, closes_at, opens_next_at) -- one comment per row says why.
TABLE = [
    # Overnight range: 02:00 on Tuesday is still Monday night's opening.
    ("Mo-Fr 18:00-08:00", sh(2026, 3, 3, 2), "open", sh(2026, 3, 3, 8), None),
    # Overnight range, midday: closed until the evening.
    ("Mo-Fr 18:00-08:00", sh(2026, 3, 3, 12), "closed", None, sh(2026, 3, 3, 18)),
    # Friday night runs into Saturday morning.
    ("Mo-Fr 18:00-08:00", sh(2026, 3, 7, 2), "open", sh(2026, 3, 7, 8), None),
    # Saturday midday: next opening is Monday evening.
    ("Mo-Fr 18:00-08:00", sh(2026, 3, 7, 12), "closed", None, sh(2026, 3, 9, 18)),
    # Herrenberg value on an ordinary Wednesday morning.
    (HERRENBERG, sh(2026, 3, 4, 10), "open", sh(2026, 3, 4, 22), None),
    # Herrenberg, ordinary Saturday: shorter hours.
    (HERRENBERG, sh(2026, 3, 7, 10), "open", sh(2026, 3, 7, 18), None),
    # Herrenberg, Sunday: closed till Monday 07:30.
    (HERRENBERG, sh(2026, 3, 8, 10), "closed", None, sh(2026, 3, 9, 7, 30)),
    # PH off on 2026-02-18, a Wednesday off by the notice but not PH in the library's CN data;
    # Monday 02-23 is still off, so it opens on Tuesday.
    (HERRENBERG, sh(2026, 2, 18, 10), "closed", None, sh(2026, 2, 24, 7, 30)),
    # Friday night before the make-up Saturday 02-14: it opens at 07:30 on weekday hours.
    (HERRENBERG, sh(2026, 2, 13, 23), "closed", None, sh(2026, 2, 14, 7, 30)),
    # Make-up Saturday 02-14 at 19:00: weekday hours (till 22:00), not Saturday's (till 18:00).
    (HERRENBERG, sh(2026, 2, 14, 19), "open", sh(2026, 2, 14, 22), None),
    # A holiday that falls on a weekend (Saturday 01-03, New Year): closed; the make-up
    # Sunday 01-04 then opens at weekday time.
    (HERRENBERG, sh(2026, 1, 3, 10), "closed", None, sh(2026, 1, 4, 7, 30)),
    # School ground on the make-up Sunday 09-20: working-weekday hours 18:00-21:00.
    (SCHOOL, sh(2026, 9, 20, 10), "closed", None, sh(2026, 9, 20, 18)),
    (SCHOOL, sh(2026, 9, 20, 19), "open", sh(2026, 9, 20, 21), None),
    # ... while an ordinary Sunday keeps the weekend hours.
    (SCHOOL, sh(2026, 9, 13, 10), "open", sh(2026, 9, 13, 20), None),
    # National Day on a Saturday (10-03): PH off wins over Sa; next opening Thursday 10-08.
    (SCHOOL, sh(2026, 10, 3, 10), "closed", None, sh(2026, 10, 8, 18)),
    # "Sa,Su,PH" list: a weekday holiday gets the weekend hours.
    ("Sa,Su,PH 08:00-20:00", sh(2026, 2, 18, 9), "open", sh(2026, 2, 18, 20), None),
    # Same list after the holiday: Saturday 02-28 is a make-up working day, so Sunday is next.
    ("Sa,Su,PH 08:00-20:00", sh(2026, 2, 24, 9), "closed", None, sh(2026, 3, 1, 8)),
    # Same list written the other way round and with spaces.
    ("PH, Sa, Su 08:00-20:00", sh(2026, 2, 18, 9), "open", sh(2026, 2, 18, 20), None),
    # Without a PH rule, a holiday follows its weekday (OSM semantics).
    ("Mo-Fr 08:00-18:00", sh(2026, 2, 18, 10), "open", sh(2026, 2, 18, 18), None),
    # 24/7 never closes within the horizon.
    ("24/7", sh(2026, 2, 18, 3), "open", None, None),
    # Lunch break of an office toilet.
    (
        "Mo-Fr 08:00-12:00,14:30-17:30",
        sh(2026, 3, 2, 12, 30),
        "closed",
        None,
        sh(2026, 3, 2, 14, 30),
    ),
    # Additional rule (", ") with PH: holiday Wednesday gets 08-12 and 14-16.
    ("Mo-Fr 08:00-12:00, PH 14:00-16:00", sh(2026, 2, 18, 13), "closed", None, sh(2026, 2, 18, 14)),
    ("Mo-Fr 08:00-12:00, PH 14:00-16:00", sh(2026, 3, 4, 13), "closed", None, sh(2026, 3, 5, 8)),
    # Fallback ("||") with PH: a holiday weekday matches Mo-Fr, so no fallback...
    ("Mo-Fr 08:00-18:00 || PH 10:00-12:00", sh(2026, 2, 18, 9), "open", sh(2026, 2, 18, 18), None),
    # ... a holiday Saturday (02-21) does not, and falls back to the PH hours.
    (
        "Mo-Fr 08:00-18:00 || PH 10:00-12:00",
        sh(2026, 2, 21, 9),
        "closed",
        None,
        sh(2026, 2, 21, 10),
    ),
    # ... an ordinary Saturday matches neither rule.
    ("Mo-Fr 08:00-18:00 || PH 10:00-12:00", sh(2026, 3, 7, 9), "closed", None, sh(2026, 3, 9, 8)),
    # Comment-only fallback: "by appointment" is unknown (the specification), not open.
    (
        'Mo-Fr 08:00-18:00 || "by appointment"',
        sh(2026, 3, 7, 10),
        "unknown",
        None,
        sh(2026, 3, 9, 8),
    ),
    ('Mo-Fr 08:00-18:00 || "by appointment"', sh(2026, 3, 9, 10), "open", sh(2026, 3, 9, 18), None),
    # A quoted comment holding "PH" and ";" is left alone; the real PH rule still applies.
    (
        'Mo-Fr 08:00-18:00 open "PH; ask the guard"; PH off',
        sh(2026, 3, 4, 10),
        "open",
        sh(2026, 3, 4, 18),
        None,
    ),
    (
        'Mo-Fr 08:00-18:00 open "PH; ask the guard"; PH off',
        sh(2026, 2, 18, 10),
        "closed",
        None,
        sh(2026, 2, 24, 8),
    ),
    # A date prefix narrows PH: "Jan-Mar PH off" leaves Qingming Monday (04-06) open.
    ("Mo-Fr 08:00-18:00; Jan-Mar PH off", sh(2026, 4, 6, 10), "open", sh(2026, 4, 6, 18), None),
    ("Mo-Fr 08:00-18:00; Jan-Mar PH off", sh(2026, 2, 18, 10), "closed", None, sh(2026, 2, 24, 8)),
    # A PH offset: the day after each holiday day (here Tuesday 02-24) is closed too.
    ("Mo-Fr 08:00-18:00; PH +1 day off", sh(2026, 2, 24, 10), "closed", None, sh(2026, 2, 25, 8)),
    # An explicit "unknown" rule.
    (
        "Mo-Fr 08:00-18:00; Sa 09:00-12:00 unknown",
        sh(2026, 3, 7, 10),
        "unknown",
        None,
        sh(2026, 3, 9, 8),
    ),
]


@pytest.mark.parametrize(("value", "when", "state", "closes_at", "opens_next_at"), TABLE)
def test_table(
    value: str,
    when: datetime,
    state: str,
    closes_at: datetime | None,
    opens_next_at: datetime | None,
) -> None:
    """Each row: the state at a fixed instant, when it closes and when it next opens."""
    result = FacilityHours(value, CAL).at(when)
    assert (result.state, result.closes_at, result.opens_next_at) == (
        state,
        closes_at,
        opens_next_at,
    )
    assert FacilityHours(value, CAL).is_open(when) is (state == "open")
    if closes_at is not None:
        assert result.next_change == closes_at
    for moment in (result.closes_at, result.opens_next_at, result.next_change):
        assert moment is None or moment.tzinfo == SH  # answers are in the facility's zone


def test_table_comment() -> None:
    """The comment of the period in force is reported."""
    state = FacilityHours('Mo-Fr 08:00-18:00 || "by appointment"', CAL).at(sh(2026, 3, 7, 10))
    assert state.comment == "by appointment"
    assert FacilityHours(HERRENBERG, CAL).at(sh(2026, 3, 4, 10)).comment is None


def test_comment_only_rule_differs_from_library_on_purpose() -> None:
    """The library reads a bare comment as open; the specification (and we) say unknown."""
    value = 'Sa 10:00-12:00 || "by appointment"'
    assert library_state(value, sh(2026, 3, 4, 10)) == "open"
    assert FacilityHours(value, CAL).at(sh(2026, 3, 4, 10)).state == "unknown"
    assert (
        library_state('Sa 10:00-12:00 || unknown "by appointment"', sh(2026, 3, 4, 10)) == "unknown"
    )


# --- checked against the library -------------------------------------------------------------

ORDINARY_VALUES = [
    "Mo-Fr 18:00-08:00",
    "Mo-Fr 18:00-08:00; Sa,Su 00:00-24:00",
    "Mo 00:00-24:00; Tu-Su 20:30-08:30",
    "Mo-Fr 08:00-12:00,14:30-17:30",
    "Mo-Fr 06:00-07:30,18:30-21:30; Sa,Su 07:00-21:00",
    "Mo-Fr 08:00-12:00, We 14:00-16:00",
    "Mo-Fr 08:00-18:00 || Sa 10:00-12:00",
    "Mo-Fr 08:00-18:00; Sa 09:00-12:00 unknown",
    "22:00-02:00",
    HERRENBERG,
    SCHOOL,
    # With PH in every shape we rewrite: the rewrite must leave ordinary days alone (the
    # library without a country never matches PH, so its answer is the reference here).
    "Sa,Su,PH 08:00-20:00",
    "Mo-Fr 18:00-08:00; Sa,Su,PH 00:00-24:00",
    "Mo-Fr 08:00-12:00, PH 14:00-16:00",
    "Mo-Fr 08:00-18:00 || PH 10:00-12:00",
    "PH Mo 10:00-12:00; Tu 09:00-10:00",
    "Mo-Fr 08:00-18:00; Jan-Mar PH off",
    'Mo-Fr 08:00-18:00 open "PH; ask the guard"; PH off',
]


@pytest.mark.parametrize("value", ORDINARY_VALUES)
def test_ordinary_weeks_match_the_library(value: str) -> None:
    """Four March weeks with no holiday or make-up day: our state is the library's state."""
    hours = FacilityHours(value, CAL)
    for when in every_half_hour(sh(2026, 3, 2), sh(2026, 3, 30)):
        assert hours.at(when).state == library_state(value, when), when
    # And the next change agrees with the library's own next_change, where both have one.
    for when in (sh(2026, 3, 3, 2), sh(2026, 3, 4, 12, 15), sh(2026, 3, 7, 9)):
        ours = hours.at(when).next_change
        theirs = OpeningHours(value, timezone=SH).next_change(when)
        assert ours == theirs or (ours is None and theirs > when + timedelta(days=14))


# Spring Festival 2026 written out by hand: what PH must mean in February.
SPRING = "2026 Feb 15-2026 Feb 23"


@pytest.mark.parametrize(
    ("value", "by_hand"),
    [
        (HERRENBERG, f"Mo-Fr 07:30-22:00; Sa 07:30-18:00; {SPRING} off"),
        (SCHOOL, f"Mo-Fr 18:00-21:00; Sa,Su 08:00-20:00; {SPRING} off"),
        ("Sa,Su,PH 08:00-20:00", f"Sa,Su 08:00-20:00; {SPRING} 08:00-20:00"),
        (
            "Mo-Fr 18:00-08:00; Sa,Su,PH 00:00-24:00",
            f"Mo-Fr 18:00-08:00; Sa,Su 00:00-24:00; {SPRING} 00:00-24:00",
        ),
        ("Mo-Fr 08:00-18:00 || PH 10:00-12:00", f"Mo-Fr 08:00-18:00 || {SPRING} 10:00-12:00"),
    ],
)
def test_spring_festival_matches_library_with_dates_by_hand(value: str, by_hand: str) -> None:
    """February 2026 outside the make-up Saturdays: PH means the official dates."""
    hours = FacilityHours(value, CAL)
    for when in every_half_hour(sh(2026, 2, 2), sh(2026, 3, 8)):
        if when.date() in (date(2026, 2, 14), date(2026, 2, 28)):
            continue  # make-up days: next test
        assert hours.at(when).state == library_state(by_hand, when), when


@pytest.mark.parametrize(
    ("makeup", "proxy"),
    [
        (date(2026, 9, 20), date(2026, 9, 18)),  # Sunday for National Day -> Friday before
        (date(2026, 2, 14), date(2026, 2, 13)),  # Saturday before Spring Festival -> Friday
        (date(2026, 1, 4), date(2025, 12, 31)),  # Sunday after New Year -> Wednesday 2025-12-31
    ],
)
@pytest.mark.parametrize(
    "value", [SCHOOL, HERRENBERG, "Mo-Fr 08:00-12:00,14:30-17:30; Sa,Su 09:00-11:00"]
)
def test_makeup_day_follows_the_library_on_its_proxy_weekday(
    value: str, makeup: date, proxy: date
) -> None:
    """Every half hour of a make-up day has the library's state at that time on the proxy."""
    hours = FacilityHours(value, CAL)
    for when in every_half_hour(
        sh(makeup.year, makeup.month, makeup.day),
        sh(makeup.year, makeup.month, makeup.day) + timedelta(days=1),
    ):
        on_proxy = when.replace(year=proxy.year, month=proxy.month, day=proxy.day)
        assert hours.at(when).state == library_state(value, on_proxy), when


# --- invalid, empty, time zones, horizon --------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "Mo-Fr 25:00-26:00",  # no such hour
        "open sometimes",  # prose
        "Mo-Fr 08:00-",  # cut off
        "Mo-Fr 08:00-18:00;;",  # empty rule
        "Mo-Fr,PH,Sa 08:00-18:00",  # holidays between weekdays: not in the grammar
        "周一至周五 8:00-18:00",  # Chinese text belongs in hours_text, not opening_hours
    ],
)
def test_invalid_values_are_reported_never_open(value: str) -> None:
    """A value that does not parse raises at construction and gets a reason at import."""
    reason = validate_hours(value)
    assert reason
    with pytest.raises(OpeningHoursInvalid) as info:
        FacilityHours(value, CAL)
    assert info.value.value == value
    assert info.value.reason == reason
    assert repr(value) in str(info.value) and reason in str(info.value)


def test_invalid_reason_comes_from_the_library() -> None:
    """The reason is the library's: what it expected and where."""
    assert validate_hours("Mo-Fr 25:00-26:00") == (
        "expected EOI, any_rule_separator, rules_modifier, timespan, or holiday (at column 7)"
    )


@pytest.mark.parametrize(
    "value", [HERRENBERG, SCHOOL, "24/7", "Sa,Su,PH 08:00-20:00", "", "  ", None]
)
def test_valid_values_have_no_reason(value: str | None) -> None:
    """validate_hours returns None for good values and for "no value"."""
    assert validate_hours(value) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_hours_are_unknown_not_open(value: str | None) -> None:
    """No value means we do not know: unknown, never open."""
    hours = FacilityHours(value, CAL)
    assert hours.at(sh(2026, 3, 4, 10)) == HoursState("unknown", None, None, None, None)
    assert not hours.is_open(sh(2026, 3, 4, 10))


def test_naive_datetime_rejected() -> None:
    """A naive datetime is ambiguous between hosts: ValueError."""
    with pytest.raises(ValueError, match="timezone-aware"):
        FacilityHours("24/7", CAL).at(datetime(2026, 3, 4, 10))


def test_other_input_zone_answers_in_facility_zone() -> None:
    """UTC input is converted; answers come back in Asia/Shanghai."""
    state = FacilityHours("Mo-Fr 08:00-18:00", CAL).at(
        datetime(2026, 3, 4, 1, tzinfo=UTC)
    )  # 09:00 in Shanghai
    assert state.state == "open"
    assert state.closes_at == sh(2026, 3, 4, 18) and state.closes_at.tzinfo == SH


def test_facility_zone_is_used() -> None:
    """A facility on Xinjiang time reads its hours in that zone (UTC+6)."""
    hours = FacilityHours("Mo-Fr 10:00-20:00", CAL, tz="Asia/Urumqi")
    assert not hours.is_open(sh(2026, 3, 4, 11, 30))  # 09:30 in Urumqi
    assert hours.is_open(sh(2026, 3, 4, 12, 30))  # 10:30 in Urumqi
    assert hours.at(sh(2026, 3, 4, 12, 30)).closes_at == datetime(
        2026, 3, 4, 20, tzinfo=ZoneInfo("Asia/Urumqi")
    )


def test_horizon_limits_the_look_ahead() -> None:
    """Changes beyond the horizon are None rather than searched for forever."""
    tuesday = sh(2026, 3, 3, 10)
    assert FacilityHours("Mo 10:00-12:00", CAL).at(tuesday).opens_next_at == sh(2026, 3, 9, 10)
    short = FacilityHours("Mo 10:00-12:00", CAL, horizon_days=3).at(tuesday)
    assert (short.state, short.opens_next_at, short.next_change) == ("closed", None, None)
    with pytest.raises(ValueError):
        FacilityHours("24/7", CAL, horizon_days=0)


def test_year_out_of_range_fails_loudly_and_look_ahead_stops_at_it() -> None:
    """Like deadlines, a year out of range raises; a look-ahead into one stops at its first day."""
    extra = WorkCalendar(EXTRA_2031, today=lambda: TODAY)
    with pytest.raises(CalendarOutOfRange):
        FacilityHours("Mo-Fr 08:00-18:00; PH off", extra).at(sh(2032, 3, 3, 10))
    # Tuesday 2031-12-30: next Monday is in 2032, beyond the calendar's range.
    late = FacilityHours("Mo 10:00-12:00", extra).at(sh(2031, 12, 30, 10))
    assert (late.state, late.opens_next_at) == ("closed", None)
    # In the extra year, PH and the make-up Sunday come from the extra data.
    hours = FacilityHours("Mo-Fr 08:00-18:00; Sa,Su 10:00-12:00; PH off", extra)
    assert hours.at(sh(2031, 1, 2, 10)).state == "closed"  # listed holiday
    assert hours.at(sh(2031, 1, 4, 11)).state == "closed"  # Saturday joined to it
    assert hours.at(sh(2031, 1, 5, 9)).state == "open"  # make-up Sunday: weekday hours
    assert hours.at(sh(2031, 1, 5, 9)).closes_at == sh(2031, 1, 5, 18)


def test_provisional_year_works_with_holidays_by_rule() -> None:
    """2027 without its notice: PH is the statutory holidays by rule, and nothing raises."""
    hours = FacilityHours("Mo-Fr 08:00-18:00; PH off", CAL)
    assert hours.at(sh(2027, 2, 8, 10)).state == "closed"  # Monday, Spring Festival by rule
    assert hours.at(sh(2027, 2, 11, 10)).state == "open"  # Thursday after the observed days
    # From the last working evening of 2026 the look-ahead runs into the provisional 2027:
    # New Year's Day (Fri) off, so next open on Monday 01-04.
    assert hours.at(sh(2026, 12, 31, 19)).opens_next_at == sh(2027, 1, 4, 8)


# --- conditional access ------------------------------------------------------------------------

ENTRY_BARRED_DAYTIME = {"access:entry:conditional": "no @ (08:00-18:00)"}


def test_entry_only_window() -> None:
    """Residents may leave but not enter 08:00-18:00 (DOMAIN.md's historic quarter)."""
    access = Access.from_tags("yes", ENTRY_BARRED_DAYTIME)
    assert access.rules == (AccessRule("entry", False, "08:00-18:00"),)
    at_ten, at_seven_pm = sh(2026, 3, 4, 10), sh(2026, 3, 4, 19)
    assert (access.can_enter(at_ten), access.can_exit(at_ten)) == (False, True)
    assert access.note(at_ten) == "exit only 08:00–18:00"
    assert (access.can_enter(at_seven_pm), access.can_exit(at_seven_pm)) == (True, True)
    assert access.note(at_seven_pm) is None


def test_search_for_parking_now_excludes_exit_only_car_park() -> None:
    """A place to park now must be open and enterable: an exit-only car park is left out."""
    car_parks = {
        "exit-only": (FacilityHours("24/7", CAL), Access.from_tags("yes", ENTRY_BARRED_DAYTIME)),
        "plain": (FacilityHours("24/7", CAL), Access.from_tags("yes", {})),
        "closed": (FacilityHours("Mo-Fr 18:00-08:00", CAL), Access.from_tags("yes", {})),
    }

    def usable(when: datetime) -> list[str]:
        return sorted(k for k, (h, a) in car_parks.items() if h.is_open(when) and a.can_enter(when))

    assert usable(sh(2026, 3, 4, 10)) == ["plain"]
    assert usable(sh(2026, 3, 4, 19)) == ["closed", "exit-only", "plain"]


@pytest.mark.parametrize(
    ("access", "tags", "when", "enter", "leave", "note"),
    [
        # Both directions closed at night by access:conditional.
        (
            "yes",
            {"access:conditional": "no @ (Mo-Fr 22:00-06:00)"},
            sh(2026, 3, 4, 23),
            False,
            False,
            "no entry or exit Mo-Fr 22:00–06:00",
        ),
        # Exit barred at night only: entry only.
        (
            "yes",
            {"access:exit:conditional": "no @ (22:00-06:00)"},
            sh(2026, 3, 4, 23),
            True,
            False,
            "entry only 22:00–06:00",
        ),
        # A direction's own key beats the general one.
        (
            "yes",
            {
                "access:conditional": "no @ (08:00-18:00)",
                "access:exit:conditional": "yes @ (08:00-18:00)",
            },
            sh(2026, 3, 4, 10),
            False,
            True,
            "exit only 08:00–18:00",
        ),
        # Private car park: no public access at all.
        ("private", {}, sh(2026, 3, 4, 10), False, False, "no public access (access=private)"),
        # A government car park shared at weekends: private, public Sa,Su.
        (
            "private",
            {"access:conditional": "yes @ (Sa,Su 08:00-20:00)"},
            sh(2026, 3, 7, 10),
            True,
            True,
            None,
        ),
        (
            "private",
            {"access:conditional": "yes @ (Sa,Su 08:00-20:00)"},
            sh(2026, 3, 4, 10),
            False,
            False,
            "no public access (access=private)",
        ),
        # The base value may come from the tags; permissive lets the public in.
        (None, {"access": "permissive"}, sh(2026, 3, 4, 10), True, True, None),
        # No access tag at all: public, as OSM assumes for a car park.
        (None, {}, sh(2026, 3, 4, 10), True, True, None),
        # Within one key the last rule that holds wins.
        (
            "yes",
            {"access:entry:conditional": "no @ (08:00-18:00); yes @ (Sa,Su 08:00-18:00)"},
            sh(2026, 3, 7, 10),
            True,
            True,
            None,
        ),
        # Conditions use the official calendar: a weekday restriction holds on a make-up Sunday...
        (
            "yes",
            {"access:entry:conditional": "no @ (Mo-Fr 08:00-18:00)"},
            sh(2026, 9, 20, 10),
            False,
            True,
            "exit only Mo-Fr 08:00–18:00",
        ),
        # ... not on an ordinary Sunday ...
        (
            "yes",
            {"access:entry:conditional": "no @ (Mo-Fr 08:00-18:00)"},
            sh(2026, 9, 13, 10),
            True,
            True,
            None,
        ),
        # ... and "PH off" lifts it on a Spring Festival weekday.
        (
            "yes",
            {"access:entry:conditional": "no @ (Mo-Fr 08:00-18:00; PH off)"},
            sh(2026, 2, 18, 10),
            True,
            True,
            None,
        ),
        # A restriction whose condition is unknown is assumed to hold: do not send anyone.
        (
            "yes",
            {"access:entry:conditional": "no @ (08:00-18:00 unknown)"},
            sh(2026, 3, 4, 10),
            False,
            True,
            "exit only 08:00–18:00 unknown",
        ),
        # A permission whose condition is unknown is not assumed.
        (
            "private",
            {"access:conditional": "yes @ (08:00-18:00 unknown)"},
            sh(2026, 3, 4, 10),
            False,
            False,
            "no public access (access=private)",
        ),
    ],
)
def test_access_table(
    access: str | None,
    tags: dict[str, str],
    when: datetime,
    enter: bool,
    leave: bool,
    note: str | None,
) -> None:
    """Each row: can enter, can exit and the note at a fixed instant."""
    rule = Access.from_tags(access, tags)
    assert (rule.can_enter(when), rule.can_exit(when), rule.note(when)) == (enter, leave, note)


def test_access_with_explicit_calendar() -> None:
    """A deployment's own calendar is used for conditions when given."""
    extra = WorkCalendar(EXTRA_2031)
    access = Access.from_tags(
        "yes", {"access:entry:conditional": "no @ (Mo-Fr 08:00-18:00)"}, calendar=extra
    )
    assert not access.can_enter(sh(2031, 1, 5, 10))  # the extra data's make-up Sunday


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("no @ (Mo-Fr 08:00-18:00)", [("no", "Mo-Fr 08:00-18:00")]),
        ("no @ 08:00-18:00", [("no", "08:00-18:00")]),  # parentheses optional when simple
        (
            "no @ (Mo-Fr 08:00-18:00); yes @ (Sa 10:00-12:00; Su 10:00-11:00)",
            [("no", "Mo-Fr 08:00-18:00"), ("yes", "Sa 10:00-12:00; Su 10:00-11:00")],
        ),
        (
            'No @ (Mo-Fr 08:00-18:00 open "gate (north); staff");',
            [("no", 'Mo-Fr 08:00-18:00 open "gate (north); staff"')],
        ),
    ],
)
def test_parse_conditional(value: str, expected: list[tuple[str, str]]) -> None:
    """OSM conditional syntax split into (value, condition), conditions checked by the library."""
    assert parse_conditional(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "no @ (25:00-26:00)",  # bad time
        "no @ (weight > 7.5)",  # not a time condition: not evaluated, so refused
        "no @ (08:00-18:00 AND wet)",  # combined conditions are not supported
        "no",  # no condition
        "@ (08:00-18:00)",  # no value
        "no @ (08:00-18:00",  # unbalanced
        "",  # empty
    ],
)
def test_bad_conditions_raise(value: str) -> None:
    """A condition we cannot evaluate is an error, never ignored."""
    with pytest.raises(OpeningHoursInvalid):
        parse_conditional(value)


def test_bad_condition_in_tags_names_the_key() -> None:
    """Import reports can say which tag is wrong."""
    with pytest.raises(OpeningHoursInvalid, match="access:entry:conditional"):
        Access.from_tags("yes", {"access:entry:conditional": "no @ (weight > 7.5)"})


def test_access_rule_kind_checked() -> None:
    """Only entry and exit are directions."""
    with pytest.raises(ValueError):
        AccessRule("both", False, "08:00-18:00")
