"""Importing the non-spatial tables of the loop from CSV or JSON: categories and routing rules.

Like the layer importer, every row is checked first and nothing is written unless all
pass; a new file replaces the table's contents in one transaction.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from data.models import Category, Department, RoutingRuleRow
from data.readers import FileRejected, read_csv_text
from geo.validate import Problem

GROUPS = ("component", "event")
TRUE = {"true", "yes", "1", "y", "t"}
FALSE = {"false", "no", "0", "n", "f"}


class TableRejected(ValueError):
    """Nothing was imported; ``problems`` names every bad row."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


def read_table(path: Path, required: tuple[str, ...], encoding: str | None = None) -> pd.DataFrame:
    """Rows of a CSV file or a JSON list of objects, all values as stripped strings.

    A CSV may be in GBK (Excel on Chinese Windows) or another encoding: it is detected, or
    given with ``encoding``, as for layer files (data/readers.py). JSON is UTF-8 by spec.
    """
    if not path.exists():
        raise TableRejected(f"{path}: no such file")
    try:
        if path.suffix.lower() == ".json":
            frame = pd.DataFrame(json.loads(path.read_text(encoding="utf-8-sig")))
        elif path.suffix.lower() == ".csv":
            frame, _notes = read_csv_text(path, encoding)
        else:
            raise TableRejected(f"{path.name}: use a .csv or .json file")
    except FileRejected as exc:
        raise TableRejected(str(exc)) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise TableRejected(f"{path.name}: cannot read it: {exc}") from exc
    if frame.empty:
        raise TableRejected(f"{path.name}: the file has no rows")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise TableRejected(
            f"{path.name}: missing column(s) {', '.join(missing)}; the columns are {', '.join(frame.columns)}"
        )
    return frame.fillna("").astype(str).apply(lambda col: col.str.strip())


def import_categories(session: Session, path: Path, encoding: str | None = None) -> int:
    frame = read_table(
        path, ("code", "name", "group", "time_limit_hours", "working_hours"), encoding
    )
    problems: list[Problem] = []
    rows = []
    for i, row in enumerate(frame.to_dict("records")):
        label = row["code"]
        if not row["code"]:
            problems.append(Problem(i, "has no code"))
        if row["group"] not in GROUPS:
            problems.append(
                Problem(i, f"group {row['group']!r}: use component (部件) or event (事件)", label)
            )
        try:
            hours = float(row["time_limit_hours"])
            if hours <= 0:
                raise ValueError
        except ValueError:
            problems.append(
                Problem(
                    i,
                    f"time_limit_hours {row['time_limit_hours']!r} is not a positive number",
                    label,
                )
            )
            hours = 0.0
        working = row["working_hours"].lower()
        if working not in TRUE | FALSE:
            problems.append(
                Problem(i, f"working_hours {row['working_hours']!r}: use true or false", label)
            )
        rows.append(
            {
                "code": row["code"],
                "name": row["name"] or row["code"],
                "group": row["group"],
                "time_limit_hours": hours,
                "working_hours": working in TRUE,
                "department_kind": row.get("department_kind") or None,
            }
        )
    codes = [r["code"] for r in rows]
    problems += [
        Problem(i, f"duplicate code {c!r}", c)
        for i, c in enumerate(codes)
        if c and codes.index(c) != i
    ]
    _finish(path, problems)
    in_use = set(session.scalars(select(RoutingRuleRow.category)))
    gone = sorted(in_use - set(codes))
    if gone:
        raise TableRejected(
            f"{path.name}: routing rules still use categories missing from the file: {', '.join(gone)}"
        )
    for row in rows:  # upsert: categories referenced by issues must stay
        session.merge(Category(**row))
    return len(rows)


def import_routing(session: Session, path: Path, encoding: str | None = None) -> int:
    frame = read_table(path, ("category", "department_code"), encoding)
    categories = set(session.scalars(select(Category.code)))
    departments = set(session.scalars(select(Department.code)))
    problems: list[Problem] = []
    rows = []
    seen: dict[tuple[str, str], int] = {}
    for i, row in enumerate(frame.to_dict("records")):
        area = row.get("area_code") or None
        label = f"{row['category']} @ {area or 'city'}"
        if row["category"] not in categories:
            problems.append(
                Problem(i, f"unknown category {row['category']!r} (import categories first)", label)
            )
        if row["department_code"] not in departments:
            problems.append(Problem(i, f"unknown department {row['department_code']!r}", label))
        key = (row["category"], area or "")
        if key in seen:
            problems.append(
                Problem(
                    i,
                    f"a second rule for the same category and area (first: row {seen[key] + 1})",
                    label,
                )
            )
        seen.setdefault(key, i)
        rows.append(
            {
                "category": row["category"],
                "department_code": row["department_code"],
                "area_code": area,
            }
        )
    _finish(path, problems)
    session.execute(delete(RoutingRuleRow))
    session.execute(insert(RoutingRuleRow.__table__), rows)
    return len(rows)


def _finish(path: Path, problems: list[Problem]) -> None:
    if problems:
        raise TableRejected(f"{path.name}: nothing imported, {len(problems)} problem(s)", problems)
