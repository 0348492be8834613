"""``gridmap demo``: load the generated demo city into the configured database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pandas as pd
from sqlalchemy import Engine, insert, select

from data import repository as repo
from data.db import session_factory
from data.demo_city import DemoCity, generate_city
from data.models import (
    Area,
    Category,
    Compound,
    Department,
    Facility,
    Issue,
    IssueEvent,
    RoutingRuleRow,
)
from geo.areas import LEVELS, code_scheme

# The demo's boundaries are in force from the start of 2026, before its issue history.
DEMO_EFFECTIVE = dt.date(2026, 1, 1)


class DatabaseNotEmpty(RuntimeError):
    """The demo is only loaded into an empty database, so that it never mixes with real data."""


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """Rows as plain dicts, with pandas' missing values as None and timestamps as datetimes."""
    out = []
    for row in frame[columns].itertuples(index=False):
        record = {}
        for name, value in zip(columns, row, strict=True):
            if isinstance(value, pd.Timestamp):
                value = value.to_pydatetime()
            elif value is not None and not isinstance(value, (list, dict)) and pd.isna(value):
                value = None
            elif hasattr(value, "item"):
                value = value.item()  # numpy scalar -> Python
            record[name] = value
        out.append(record)
    return out


def _check_codes(city: DemoCity) -> None:
    """The generator promises the 15-digit scheme; hold it to that before loading."""
    scheme = code_scheme("cn15")
    frames = (city.districts, city.subdistricts, city.communities, city.grids)
    for level, frame in zip(LEVELS, frames, strict=True):
        for code, parent in zip(frame["code"], frame["parent_code"], strict=True):
            problem = scheme.problem(level, code, parent)
            if problem:
                raise AssertionError(f"demo city generator broke the code scheme: {problem}")


def load_demo_city(
    engine: Engine,
    seed: int = 2026,
    if_empty: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int] | None:
    """Generate and load the city in one transaction; None if skipped because not empty."""
    say = progress or (lambda _m: None)
    with session_factory(engine)() as session:
        if not repo.is_empty(session):
            if if_empty:
                return None
            raise DatabaseNotEmpty(
                "the database already holds areas; the demo city loads only into an empty "
                "database (set GRIDMAP_DATA_DIR or GRIDMAP_DATABASE_URL to a new one)"
            )
    say(f"generating the demo city (seed {seed})")
    city = generate_city(seed)
    _check_codes(city)
    counts: dict[str, int] = {}
    with session_factory(engine)() as session, session.begin():
        for level, frame in zip(LEVELS, (city.districts, city.subdistricts, city.communities, city.grids), strict=True):
            say(f"loading {len(frame)} {level} areas")
            version = repo.add_version(session, level, DEMO_EFFECTIVE, f"gridmap demo seed {seed}")
            rows = _records(frame, ["code", "name", "parent_code", "geometry"])
            for row in rows:
                row.update(geom=row.pop("geometry"), level=level, layer_version_id=version.id)
            repo.insert_rows(session, Area.__table__, rows)
            counts[level] = len(rows)
        for label, model, frame, columns in (
            ("compounds", Compound, city.compounds,
             ["code", "name", "community_code", "households", "property_manager", "geometry"]),
            ("departments", Department, city.departments, ["code", "name", "kind", "area_code", "geometry"]),
            ("facilities", Facility, city.facilities,
             ["code", "kind", "name", "operator", "access", "capacity", "shared_spaces", "fee",
              "contact", "opening_hours", "geometry"]),
        ):
            say(f"loading {len(frame)} {label}")
            rows = _records(frame, columns)
            for row in rows:
                row["geom"] = row.pop("geometry")
            repo.insert_rows(session, model.__table__, rows)
            counts[label] = len(rows)
        say("loading categories and routing rules")
        counts["categories"], counts["routing_rules"] = _load_routing(session, city)
        say(f"loading {len(city.issues)} issues and their history")
        counts["issues"], counts["issue_events"] = _load_issues(session, city)
    return counts


def _load_routing(session, city: DemoCity) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Categories, and one rule per category and area: the unit of its kind that serves it.

    Units stationed in a sub-district (police, city management, ...) get sub-district
    rules; district bureaus (housing, water, greening) get district rules, as in a
    street-chief scheme.
    """
    categories = _records(city.categories, ["code", "name", "group", "time_limit_hours", "working_hours", "department_kind"])
    session.execute(insert(Category.__table__), categories)
    serving = {(d["kind"], d["area_code"]): d["code"] for d in _records(city.departments, ["code", "kind", "area_code"])}
    areas = [(code, "subdistrict") for code in city.subdistricts["code"]] + [(code, "district") for code in city.districts["code"]]
    rules = [
        {"category": c["code"], "department_code": serving[(c["department_kind"], code)], "area_code": code}
        for c in categories
        for code, _level in areas
        if (c["department_kind"], code) in serving
    ]
    session.execute(insert(RoutingRuleRow.__table__), rules)
    return len(categories), len(rules)


def _load_issues(session, city: DemoCity) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    columns = ["ref", "category", "description", "status", "grid_code", "community_code",
               "subdistrict_code", "district_code", "department_code", "reporter_contact",
               "created_at", "updated_at", "geometry"]
    rows = _records(city.issues, columns)
    for row in rows:
        row["geom"] = row.pop("geometry")
    repo.insert_rows(session, Issue.__table__, rows)
    ids = dict(session.execute(select(Issue.ref, Issue.id)).all())
    events = _records(city.issue_events, ["issue_ref", "seq", "at", "action", "from_status",
                                          "to_status", "actor", "note"])
    for event in events:
        event["issue_id"] = ids[event.pop("issue_ref")]
    session.execute(insert(IssueEvent.__table__), events)
    return len(rows), len(events)
