"""``gridmap demo``: load the generated demo city into the configured database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pandas as pd
from geopandas.array import GeometryDtype
from sqlalchemy import Engine, insert, select

from data import repository as repo
from data.db import session_factory
from data.demo_city import DemoCity, DemoScale, generate_city, scale_named
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
from data.stamps import stamp_version
from geo.areas import LEVELS, code_scheme

# The demo's boundaries are in force from the start of 2026, before its issue history.
DEMO_EFFECTIVE = dt.date(2026, 1, 1)


class DatabaseNotEmpty(RuntimeError):
    """The demo is only loaded into an empty database, so that it never mixes with real data."""


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """Rows as plain dicts, with pandas' missing values as None and timestamps as datetimes.

    Converted column by column: cell by cell took most of the load time at city scale
    (over 600,000 issue events).
    """
    values = [_python_values(frame[name]) for name in columns]
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def _python_values(column: pd.Series) -> list[Any]:
    """A column as Python values (int, float, str, datetime, shapely geometry, None)."""
    if isinstance(column.dtype, GeometryDtype):
        return list(column.array)  # shapely geometries, with None for missing ones
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        values = list(column.dt.to_pydatetime())
    else:
        values = column.astype(object).tolist()  # numpy scalars become Python ones
    missing = column.isna().to_numpy()
    if missing.any():
        values = [None if gone else value for value, gone in zip(values, missing, strict=True)]
    return values


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
    scale: str | DemoScale = "demo",
) -> dict[str, int] | None:
    """Generate and load the city in one transaction; None if skipped because not empty.

    ``scale`` names one of ``data.demo_city.SCALES`` ("demo", or "city" with 10,000 grids
    and 100,000 issues); an unknown name raises ``UnknownScale`` before the database is
    touched.
    """
    size = scale_named(scale) if isinstance(scale, str) else scale
    say = progress or (lambda _m: None)
    with session_factory(engine)() as session:
        if not repo.is_empty(session):
            if if_empty:
                return None
            raise DatabaseNotEmpty(
                "the database already holds areas; the demo city loads only into an empty "
                "database (set GRIDMAP_DATA_DIR or GRIDMAP_DATABASE_URL to a new one)"
            )
    say(f"generating the demo city (seed {seed}, scale {size.name})")
    city = generate_city(seed, size, progress=say)
    _check_codes(city)
    note = f"gridmap demo seed {seed}" + ("" if size.name == "demo" else f", {size.name} scale")
    counts: dict[str, int] = {}
    with session_factory(engine)() as session, session.begin():
        for level, frame in zip(LEVELS, (city.districts, city.subdistricts, city.communities, city.grids), strict=True):
            say(f"loading {len(frame):,} {level} areas")
            version = repo.add_version(session, level, DEMO_EFFECTIVE, note)
            rows = _records(frame, ["code", "name", "parent_code", "geometry"])
            for row in rows:
                row.update(geom=row.pop("geometry"), level=level, layer_version_id=version.id)
            repo.insert_many(session, Area.__table__, rows)
            stamp_version(session, version.id)  # caches key on it (data/stamps.py)
            counts[level] = len(rows)
        for label, model, frame, columns in (
            ("compounds", Compound, city.compounds,
             ["code", "name", "community_code", "households", "property_manager", "geometry"]),
            ("departments", Department, city.departments, ["code", "name", "kind", "area_code", "geometry"]),
            ("facilities", Facility, city.facilities,
             ["code", "kind", "name", "operator", "access", "capacity", "shared_spaces", "fee",
              "contact", "opening_hours", "geometry"]),
        ):
            say(f"loading {len(frame):,} {label}")
            rows = _records(frame, columns)
            for row in rows:
                row["geom"] = row.pop("geometry")
            repo.insert_many(session, model.__table__, rows)
            counts[label] = len(rows)
        say("loading categories and routing rules")
        counts["categories"], counts["routing_rules"] = _load_routing(session, city)
        counts["issues"], counts["issue_events"] = _load_issues(session, city, say)
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


def _load_issues(session, city: DemoCity, say: Callable[[str], None]) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    columns = ["ref", "category", "description", "status", "grid_code", "community_code",
               "subdistrict_code", "district_code", "department_code", "reporter_contact",
               "created_at", "updated_at", "due_at", "closed_at", "satisfaction", "geometry"]
    say(f"loading {len(city.issues):,} issues")
    rows = _records(city.issues, columns)
    for row in rows:
        row["geom"] = row.pop("geometry")
    repo.insert_many(session, Issue.__table__, rows,
                     progress=lambda done: say(f"loading issues: {done:,} of {len(rows):,}"))
    ids = dict(session.execute(select(Issue.ref, Issue.id)).all())
    say(f"loading {len(city.issue_events):,} issue history events")
    events = _records(city.issue_events, ["issue_ref", "seq", "at", "action", "from_status",
                                          "to_status", "actor", "note"])
    for event in events:
        event["issue_id"] = ids[event.pop("issue_ref")]
    repo.insert_many(session, IssueEvent.__table__, events, progress=lambda done: say(
        f"loading issue history: {done:,} of {len(events):,} events"))
    return len(rows), len(events)
