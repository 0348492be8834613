"""Codes that come from the data (categories, departments, areas, facility kinds).

A filter on a value nobody has would answer an empty list, which reads as "nothing there";
these checks answer 422 naming the known values (or where to list them) instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import UnknownValue
from data.models import Area, Category, Department, Facility

# The kinds the importers give; a city may add its own, which are then known from the data.
FACILITY_KINDS = ("car_park", "sports_ground", "toilet")
# Above this many, a message points to the list instead of quoting it.
QUOTE_AT_MOST = 30


def _refuse_unknown(name: str, given: Iterable[str], known: list[str], listed_at: str) -> None:
    unknown = sorted(set(given) - set(known))
    if not unknown:
        return
    values = ", ".join(repr(v) for v in unknown)
    if len(known) <= QUOTE_AT_MOST:
        choices = ", ".join(known) if known else "none are loaded yet"
        raise UnknownValue(
            f"unknown {name} {values}: use one of {choices} (listed at {listed_at})", allowed=known
        )
    raise UnknownValue(f"unknown {name} {values}: {listed_at} lists the {len(known)} known ones")


def check_categories(session: Session, codes: Iterable[str] | None) -> None:
    if codes:
        known = list(session.scalars(select(Category.code).order_by(Category.code)))
        _refuse_unknown("category", codes, known, "GET /api/v1/categories")


def check_departments(session: Session, codes: Iterable[str] | None) -> None:
    codes = [c for c in codes or () if c]
    if codes and len(
        session.scalars(select(Department.code).where(Department.code.in_(codes))).all()
    ) < len(set(codes)):
        known = list(session.scalars(select(Department.code).order_by(Department.code)))
        _refuse_unknown("department", codes, known, "GET /api/v1/departments")


def check_area(session: Session, code: str | None) -> None:
    """Any version's area counts: old issues keep the codes of the layers they were filed under."""
    if code and session.scalar(select(Area.id).where(Area.code == code).limit(1)) is None:
        raise UnknownValue(f"unknown area {code!r}: find a code with GET /api/v1/search?q=NAME")


def check_facility_kinds(session: Session, kinds: Iterable[str] | None) -> None:
    if kinds:
        loaded = session.scalars(select(Facility.kind).distinct()).all()
        known = sorted({*FACILITY_KINDS, *loaded})
        _refuse_unknown("facility kind", kinds, known, "GET /api/v1/facilities")
