"""The calendar that runs out on 1 January: provisional deadlines, loading the official year.

Issue 11: chinese-calendar 1.11 covers 2004-2026. A report whose deadline fell in 2027 was
a 500; now it is taken in with a provisional deadline, which `gridmap calendar import`
recomputes once the State Council's notice is typed in. Storage tests run on both
backends; the app and the CLI are the real ones (TestClient, CliRunner). No test reads the
wall clock for what it asserts: "today" is injected.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

import geo.worktime
from api.app import create_app
from api.cli import app as cli_app
from data import cases
from data.calendar import CalendarFileError, load_official, read_calendar_file
from data.db import session_factory
from data.models import CalendarYear, Category, Facility, Issue, IssueEvent
from data.repository import insert_rows
from data.settings import Settings, get_settings

SH = ZoneInfo("Asia/Shanghai")
TODAY = dt.date(2026, 12, 2)  # the day issue 11 was filed: 2027's notice is not out
DISPATCHER = cases.Staff("d1", "dispatcher")
# A made-up official arrangement for 2027 (NOT the State Council's notice): Spring Festival
# 02-05 (Fri) to 02-13 (Sat) with Saturday 02-20 worked; Labour Day 05-01 to 05-05 with
# Saturday 05-08 worked; National Day 10-01 to 10-07 with Saturday 10-09 worked.
HOLIDAYS_2027 = [
    "2027-01-01", "2027-02-05", "2027-02-08", "2027-02-09", "2027-02-10", "2027-02-11",
    "2027-02-12", "2027-04-05", "2027-05-03", "2027-05-04", "2027-05-05", "2027-06-09",
    "2027-09-15", "2027-10-01", "2027-10-04", "2027-10-05", "2027-10-06", "2027-10-07",
]  # fmt: skip
WORKDAYS_2027 = ["2027-02-20", "2027-05-08", "2027-10-09"]


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=SH)


def write_2027(path: Path, **changes: Any) -> Path:
    """The made-up 2027 as a JSON file, with some keys changed for the refusal tests."""
    body = {"year": 2027, "holidays": HOLIDAYS_2027, "workdays": WORKDAYS_2027, **changes}
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


@pytest.fixture
def cli(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[..., Any]]:
    """The gridmap command on the test's database, with today injected."""
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", database_url)
    monkeypatch.setenv("GRIDMAP_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(geo.worktime, "local_today", lambda: TODAY)
    get_settings.cache_clear()
    yield lambda *args: CliRunner().invoke(cli_app, [str(a) for a in args])
    get_settings.cache_clear()


def settings_for(database_url: str, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        escalate_every_seconds=0,
        report_rate_per_minute=1000,
        **extra,
    )


def add_categories(engine: Engine, *rows: tuple[str, float]) -> None:
    """Categories with working-hour limits (code, hours)."""
    with session_factory(engine)() as session, session.begin():
        session.add_all(
            Category(
                code=code, name=code, group="event", time_limit_hours=hours, working_hours=True
            )
            for code, hours in rows
        )


# --- intake and dispatch over HTTP ------------------------------------------------------------


def test_report_with_deadline_in_2027_is_taken_in_as_provisional(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """A report due in a year without its notice: 201 and due_provisional, never a 500."""
    # One working minute a day: 4 working hours reach about a year ahead, into a year
    # chinese-calendar does not know (the issue reproduced its 500 the same way).
    add_categories(engine, ("slow_repair", 4))
    settings = settings_for(database_url, tmp_path, working_day="08:30-08:31")
    with session_factory(engine)() as session, session.begin():
        token = cases.add_user(session, "d1", "dispatcher")
    with TestClient(create_app(settings)) as client:
        created = client.post(
            "/api/v1/issues",
            json={
                "address": "长洲区 新兴二路 12号",
                "category": "slow_repair",
                "description": "路灯不亮",
            },
        )
        assert created.status_code == 201, created.text
        body = created.json()
        due = dt.datetime.fromisoformat(body["due_at"])
        with pytest.raises(NotImplementedError):  # the year really is unknown to the package
            chinese_calendar.is_workday(due.date())
        assert body["due_provisional"] is True
        issue_id = body["id"]
        view = client.get(f"/api/v1/issues/{issue_id}").json()["properties"]
        assert view["due_provisional"] is True and dt.datetime.fromisoformat(view["due_at"]) == due
        open311 = client.get(f"/open311/v2/requests/{issue_id}.json").json()
        # GeoReport v2 has no field for it: the notice says so.
        assert "the deadline is provisional" in open311[0]["service_notice"]
        # Dispatch sets the deadline again, and its flag with it.
        headers = {"Authorization": f"Bearer {token}"}
        for version, action in enumerate(("accept", "dispatch"), start=1):
            moved = client.post(
                f"/api/v1/issues/{issue_id}/transitions",
                json={"action": action},
                headers={**headers, "If-Match": f'"{version}"'},
            )
            assert moved.status_code == 200, moved.text
        assert moved.json()["due_provisional"] is True
    with session_factory(engine)() as session:
        assert session.get(Issue, issue_id).due_provisional is True  # type: ignore[union-attr]


# --- loading the official year -----------------------------------------------------------------


def report_at(
    session: Any, clock: cases.Clock, settings: Settings, category: str, when: dt.datetime
) -> Issue:
    """A report taken in at ``when`` by the intake use case (address only: needs no layers)."""
    report = cases.Report(None, None, category, "test case", address="长洲区 新兴二路 12号")
    no_layers: Any = None  # an address-only report never asks the assigner
    return cases.report_issue(session, report, no_layers, clock, settings, now=when)[0]


def test_import_moves_provisional_deadlines_with_an_event(
    engine: Engine, database_url: str, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    """`gridmap calendar import` recomputes the open provisional cases it settles, with events."""
    add_categories(engine, ("road", 8), ("rubbish", 4), ("parking", 2))
    settings = settings_for(database_url, tmp_path)
    clock = cases.Clock.from_settings(settings, today=lambda: TODAY)
    with session_factory(engine)() as session, session.begin():
        spring = report_at(session, clock, settings, "road", sh(2027, 2, 4, 16))
        new_year = report_at(session, clock, settings, "rubbish", sh(2026, 12, 31, 16))
        dispatched = report_at(session, clock, settings, "parking", sh(2027, 2, 1, 9))
        cases.apply_action(
            session, dispatched.id, "accept", DISPATCHER, clock, 1, now=sh(2027, 2, 1, 10)
        )
        cases.apply_action(
            session, dispatched.id, "dispatch", DISPATCHER, clock, 2, now=sh(2027, 2, 19, 17)
        )
        rejected = report_at(session, clock, settings, "road", sh(2027, 2, 4, 16))
        cases.apply_action(
            session, rejected.id, "reject", DISPATCHER, clock, 1, now=sh(2027, 2, 4, 17)
        )
        later = report_at(session, clock, settings, "rubbish", sh(2028, 3, 1, 9))
        ids = {
            name: issue.id
            for name, issue in [
                ("spring", spring),
                ("new_year", new_year),
                ("dispatched", dispatched),
                ("rejected", rejected),
                ("later", later),
            ]
        }
    # Provisional deadlines by rule (derived by hand, see tests/test_worktime.py ACROSS_2027).
    before = {
        "spring": sh(2027, 2, 11, 17),  # 02-05..02-10 off by rule
        "new_year": sh(2027, 1, 4, 11),
        "dispatched": sh(2027, 2, 22, 10),  # from the dispatch on Fri 02-19 17:00, not the report
        "rejected": sh(2027, 2, 11, 17),
        "later": sh(2028, 3, 1, 15),  # Wed 09:00 + 3 h to noon + 1 h after 14:00
    }
    with session_factory(engine)() as session:
        for name, issue_id in ids.items():
            issue = session.get(Issue, issue_id)
            assert (issue.due_at, issue.due_provisional) == (before[name], True), name

    result = cli("calendar", "import", write_2027(tmp_path / "2027.json"))
    assert result.exit_code == 0, result.output
    assert "2 open cases moved" in result.output
    assert "1 provisional deadlines confirmed" in result.output

    after = {
        "spring": (sh(2027, 2, 15, 17), False),  # officially (made up) off until Sun 02-14
        "new_year": (sh(2027, 1, 4, 11), False),  # the same, now official
        "dispatched": (sh(2027, 2, 20, 10), False),  # Saturday 02-20 is a make-up working day
        "rejected": (before["rejected"], True),  # finished cases keep their history
        "later": (before["later"], True),  # 2028 is still provisional
    }
    with session_factory(engine)() as session:
        for name, issue_id in ids.items():
            issue = session.get(Issue, issue_id)
            assert (issue.due_at, issue.due_provisional) == after[name], name
            events = session.scalars(
                select(IssueEvent).where(IssueEvent.issue_id == issue_id).order_by(IssueEvent.seq)
            ).all()
            recomputed = [e for e in events if e.action == "deadline_recomputed"]
            if name in ("rejected", "later"):
                assert not recomputed, name
                continue
            assert len(recomputed) == 1 and recomputed[0] is events[-1], name
            assert recomputed[0].seq == events[-2].seq + 1
            assert dt.datetime.fromisoformat(recomputed[0].data["old_due_at"]) == before[name]
            assert dt.datetime.fromisoformat(recomputed[0].data["new_due_at"]) == after[name][0]
        assert (
            session.scalar(select(CalendarYear.source).where(CalendarYear.year == 2027))
            == "2027.json"
        )

    # Importing the same year again replaces it and finds nothing left to move.
    again = cli("calendar", "import", write_2027(tmp_path / "2027.json"))
    assert again.exit_code == 0 and "0 open cases moved" in again.output


def test_a_running_app_sees_a_year_loaded_by_another_process(
    engine: Engine, database_url: str, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    """The API's clock picks up the database's calendar without a restart; health says so."""
    add_categories(engine, ("road", 8))
    settings = settings_for(database_url, tmp_path)
    app = create_app(settings)
    app.state.clock = cases.Clock.from_settings(settings, today=lambda: dt.date(2026, 10, 1))
    with TestClient(app) as client:
        before = client.get("/api/v1/health").json()
        assert before["calendar"] == {"2026": "chinese-calendar", "2027": "provisional"}
        assert any("2027 is not loaded" in w for w in before["warnings"])
        assert cli("calendar", "import", write_2027(tmp_path / "2027.json")).exit_code == 0
        after = client.get("/api/v1/health").json()
        assert after["calendar"] == {"2026": "chinese-calendar", "2027": "database"}
        assert after["warnings"] == []
        # The finder, on the same app, now reads the official 2027.
        found = client.get(
            "/api/v1/facilities/nearby",
            params={"lon": 111.3, "lat": 23.5, "open_at": "2027-02-12T10:00"},
        ).json()
        assert found["calendar_provisional"] is False


@pytest.mark.parametrize(
    ("today", "warned"),
    [
        (dt.date(2026, 9, 30), False),  # too early to worry
        (dt.date(2026, 10, 1), True),  # from 1 October, next year's notice is awaited
    ],
)
def test_health_and_info_warn_from_1_october(
    today: dt.date,
    warned: bool,
    engine: Engine,
    database_url: str,
    tmp_path: Path,
    cli: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`gridmap info` and /api/v1/health (and /health) warn when next year is not loaded."""
    monkeypatch.setattr(geo.worktime, "local_today", lambda: today)
    settings = settings_for(database_url, tmp_path)
    app = create_app(settings)
    app.state.clock = cases.Clock.from_settings(settings, today=lambda: today)
    with TestClient(app) as client:
        for path in ("/api/v1/health", "/health"):
            body = client.get(path).json()
            assert body["status"] == "ok"
            assert bool(body["warnings"]) is warned, path
            if warned:
                assert "calendar for 2027 is not loaded" in body["warnings"][0]
                assert "gridmap calendar import" in body["warnings"][0]
    info = cli("info")
    assert info.exit_code == 0, info.output
    assert ("calendar for 2027 is not loaded" in info.output) is warned


def test_calendar_list_shows_official_and_provisional_years(
    engine: Engine, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    """`gridmap calendar list` names each year's source; an imported year becomes official."""
    listed = cli("calendar", "list")
    assert listed.exit_code == 0, listed.output
    rows = {
        line.split("│")[1].strip(): line
        for line in listed.output.splitlines()
        if line.count("│") >= 4 and line.split("│")[1].strip().isdigit()
    }
    assert "chinese-calendar" in rows["2026"] and "provisional" in rows["2027"]
    assert "provisional" in rows["2028"] and "2029" not in rows  # two years ahead at most
    assert cli("calendar", "import", write_2027(tmp_path / "2027.json")).exit_code == 0
    listed = cli("calendar", "list")
    line = next(line for line in listed.output.splitlines() if "│ 2027" in line)
    assert "official" in line and "2027.json" in line


def test_csv_import_is_the_same_year(
    engine: Engine, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    """The CSV form (date,kind) loads the same days as the JSON form."""
    path = tmp_path / "2027.csv"
    lines = (
        ["date,kind,name"]
        + [f"{d},holiday,假" for d in HOLIDAYS_2027]
        + [f"{d},workday,班" for d in WORKDAYS_2027]
    )
    path.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")  # Excel's BOM
    result = cli("calendar", "import", path)
    assert result.exit_code == 0, result.output
    with session_factory(engine)() as session:
        official = load_official(session)
    expected = {dt.date.fromisoformat(d): False for d in HOLIDAYS_2027}
    expected.update({dt.date.fromisoformat(d): True for d in WORKDAYS_2027})
    assert official == {2027: expected}


def test_a_refused_file_stores_nothing(
    engine: Engine, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    """All or nothing: a file with one fault leaves the database as it was."""
    bad = write_2027(tmp_path / "bad.json", workdays=["2027-02-20", "2027-02-22"])  # a Monday
    result = cli("calendar", "import", bad)
    assert result.exit_code == 1
    assert "2027-02-22 (Monday) is listed as a make-up working day" in result.output
    with session_factory(engine)() as session:
        assert load_official(session) == {}


# The faults a typed-in notice may have; (changes to the made-up 2027, what the message says).
def _minus(days: list[str], day: str) -> list[str]:
    return [d for d in days if d != day]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"holidays": [*HOLIDAYS_2027, "2027-02-30"]}, "'2027-02-30': not a YYYY-MM-DD date"),
        ({"holidays": [*HOLIDAYS_2027, "2027-01-01"]}, "2027-01-01 is listed twice"),
        (
            {"workdays": [*WORKDAYS_2027, "2027-02-12"]},
            "2027-02-12 is listed as both holiday and workday",
        ),
        (
            {"holidays": [*HOLIDAYS_2027, "2028-01-03"]},
            "2028-01-03 is not in 2027, the file's year",
        ),
        ({"workdays": ["2027-02-22"]}, "(Monday) is listed as a make-up working day"),
        ({"holidays": _minus(HOLIDAYS_2027, "2027-10-01")}, "2027-10-01 (Friday) is National Day"),
        (
            {"workdays": [*WORKDAYS_2027, "2027-05-01"]},
            "2027-05-01 is Labor Day, a statutory holiday",
        ),
        ({"holiday": []}, "unknown keys ['holiday']"),  # a typo is never ignored
        ({"year": "2027"}, '"year" must be a number'),
        ({"holidays": [], "workdays": [], "year": None}, "no dates"),
    ],
)
def test_calendar_file_faults_are_named(
    changes: dict[str, Any], message: str, tmp_path: Path
) -> None:
    """Bad dates, duplicates, both kinds, stray years, incomplete years: each named."""
    with pytest.raises(CalendarFileError) as info:
        read_calendar_file(write_2027(tmp_path / "f.json", **changes))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("day,kind\n2027-01-01,holiday\n", "the header must be date,kind"),
        ("date,kind\n2027-01-01,off\n", "line 2: kind 'off' is not holiday or workday"),
    ],
)
def test_csv_faults_are_named(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CalendarFileError, match=message):
        read_calendar_file(path)


# --- the finder ---------------------------------------------------------------------------------


def test_finder_in_a_provisional_year_and_out_of_range(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """open_at in 2027 works on the calendar by rule and says so; 1970 or 3 years ahead is a 422."""
    with session_factory(engine)() as session, session.begin():
        insert_rows(
            session,
            Facility.__table__,
            [
                {
                    "code": "S1",
                    "kind": "sports_ground",
                    "name": "S1",
                    "opening_hours": "Mo-Fr 08:00-18:00; PH off",
                    "capacity": 10,
                    "access": "yes",
                    "tags": None,
                    "geom": shapely.Point(111.3, 23.5),
                }
            ],
        )
    app = create_app(settings_for(database_url, tmp_path))
    app.state.clock = cases.Clock.from_settings(app.state.settings, today=lambda: TODAY)
    where = {"lon": 111.3, "lat": 23.5, "include_closed": "true"}
    with TestClient(app) as client:

        def at(when: str) -> Any:
            return client.get("/api/v1/facilities/nearby", params={**where, "open_at": when})

        # (open_at, state, provisional): Monday 02-08 is Spring Festival by rule.
        for when, state, provisional in [
            ("2027-02-08T10:00", "closed", True),
            ("2027-02-11T10:00", "open", True),
            ("2026-11-18T10:00", "open", False),  # chinese-calendar's 2026, far from New Year
        ]:
            found = at(when)
            assert found.status_code == 200, found.text
            body = found.json()
            assert body["calendar_provisional"] is provisional, when
            assert body["features"][0]["properties"]["state"] == state, when
        # A number is not read as a Unix time (api/deps.py): -1 is refused as not ISO.
        assert at("-1").status_code == 422 and "YYYY-MM-DD" in at("-1").json()["detail"]
        for when in ("1970-01-01T00:00", "2029-12-02T10:00", "1999-06-01T10:00"):
            refused = at(when)
            assert refused.status_code == 422, (when, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
            problem = refused.json()
            assert (problem["first"], problem["last"]) == ("2004-01-01", "2028-12-31")
            assert "which covers 2004-01-01 to 2028-12-31" in problem["detail"]
