"""``gridmap import LAYER FILE``: validate every feature, then load all or nothing.

Every problem in the file is collected before anything is written, so one run tells the
user all that is wrong. Nothing is written unless every feature passes; the write itself
is one transaction.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import delete
from sqlalchemy.orm import Session

from data import repository as repo
from data.facility_sources import OSM_FACILITY_TAGS as OSM_KINDS
from data.facility_sources import read_facility_file
from data.models import Area, Compound, Department, Facility
from data.readers import FileRejected, ReadResult, read_features
from data.stamps import stamp_version
from geo.areas import LAYER_ALIASES, LEVELS, CodeScheme, code_scheme, parent_level
from geo.coverage import Cell, Coverage, Fault, check_coverage_report
from geo.opening import Access, OpeningHoursInvalid, validate_hours
from geo.validate import (
    Problem,
    Repair,
    coordinate_problem,
    point_or_polygon_problem,
    polygon_problem,
    repair_polygon,
    to_multipolygon,
)

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
ROW_NUMBER = ":row"  # --code-field :row numbers the features in file order
SPATIAL = ":spatial"  # --parent-field :spatial takes the parent that contains each feature

# Field names tried, in order, when the user names none.
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "code": ("code", "adcode", "id", "ref", "osm_id"),
    "name": ("name", "name_zh", "name_sc", "名称"),
    "parent": ("parent_code", "parent", "community_code"),
    "households": ("households", "户数"),
    "property_manager": ("property_manager", "物业"),
    "kind": ("kind",),
    "area_code": ("area_code",),
    "operator": ("operator", "owner", "owner_unit"),
    "access": ("access",),
    "capacity": ("capacity",),
    "shared_spaces": ("shared_spaces",),
    "fee": ("fee",),
    "contact": ("contact", "phone", "contact:phone"),
    "opening_hours": ("opening_hours",),
    "hours_text": ("hours_text",),
}


NON_AREA_LAYERS = ("compounds", "departments", "facilities")
LAYERS: tuple[str, ...] = (*LAYER_ALIASES, *NON_AREA_LAYERS)


@dataclass(frozen=True)
class FieldMap:
    """Which column of the file holds each of our fields; None means try the defaults."""

    code: str | None = None
    name: str | None = None
    parent: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportOptions:
    layer: str
    path: Path
    fields: FieldMap = FieldMap()
    crs: str | None = None
    effective: dt.date | None = None
    repair: bool = False
    replace: bool = False
    code_scheme: str = "free"
    code_prefix: str = ""
    source_layer: str | None = None
    lon_field: str | None = None
    lat_field: str | None = None
    min_fault_m2: float = 1.0
    # Facilities from an institutional CSV: the options file mapping its columns.
    options_path: Path | None = None
    # Text encoding of the file (--encoding); None: detected (see data/readers.py).
    encoding: str | None = None


@dataclass
class ImportReport:
    """What an import found and did; printed by the CLI and kept as JSON on request."""

    layer: str
    path: Path
    features: int = 0
    imported: int = 0
    problems: list[Problem] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    coverage: Coverage | None = None  # grids: the whole check, with what it could not do
    effective: dt.date | None = None
    source_crs: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "file": str(self.path),
            "features": self.features,
            "imported": self.imported,
            "effective": self.effective.isoformat() if self.effective else None,
            "source_crs": self.source_crs,
            "seconds": round(self.seconds, 3),
            "problems": [
                {"feature": p.index + 1, "label": p.label, "message": p.message} for p in self.problems
            ],
            "repairs": [
                {"feature": r.index + 1, "label": r.label, "reason": r.reason, "result": r.result}
                for r in self.repairs
            ],
            "notes": self.notes,
            "faults": [
                {"kind": f.kind, "community": f.community_code, "grids": list(f.grid_codes),
                 "area_m2": round(f.area_m2, 1)}
                for f in self.faults
            ],
            **({"coverage": self.coverage.as_dict()} if self.coverage is not None else {}),
        }


class ImportRejected(Exception):
    """Nothing was imported; ``report`` lists every problem found."""

    def __init__(self, report: ImportReport, message: str | None = None) -> None:
        self.report = report
        count = len(report.problems)
        super().__init__(
            message
            or f"{report.path.name}: nothing imported, {count} problem{'s' * (count != 1)} found"
        )


def canonical_layer(layer: str) -> str:
    """The plural layer name; ValueError lists the layers."""
    name = layer.strip().lower()
    singular = {level: plural for plural, level in LAYER_ALIASES.items()}
    name = singular.get(name, name)
    if name not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}: use one of {', '.join(LAYERS)}")
    return name


def today() -> dt.date:
    return dt.datetime.now(LOCAL_TZ).date()


# --- entry point ----------------------------------------------------------------------


def import_layer(
    session: Session, options: ImportOptions, progress: Callable[[str], None] | None = None
) -> ImportReport:
    """Validate the file and load it in one transaction; ImportRejected if anything is wrong."""
    started = time.perf_counter()
    say = progress or (lambda _msg: None)
    layer = canonical_layer(options.layer)
    report = ImportReport(layer, options.path)
    try:
        scheme = code_scheme(options.code_scheme)
    except ValueError as exc:
        raise ImportRejected(report, str(exc)) from exc
    say(f"reading {options.path.name}")
    try:
        read = (
            read_facility_file(options.path, options.options_path) if layer == "facilities" else None
        ) or read_features(
            options.path,
            crs=options.crs,
            layer=options.source_layer,
            lon_field=options.lon_field,
            lat_field=options.lat_field,
            require_geometry=layer != "departments",
            encoding=options.encoding,
        )
    except FileRejected as exc:
        raise ImportRejected(report, str(exc)) from exc
    report.source_crs = read.source_crs
    report.notes.extend(read.notes)
    report.problems.extend(read.problems)
    frame = read.frame
    report.features = len(frame)
    if frame.empty:
        raise ImportRejected(report, f"{options.path.name}: the file contains no features")
    say(f"checking {len(frame)} features")
    with session.begin():
        if layer in LAYER_ALIASES:
            _import_areas(session, LAYER_ALIASES[layer], read, options, scheme, report, say)
        else:
            _import_other(session, layer, read, options, report, say)
    report.seconds = time.perf_counter() - started
    return report


# --- shared per-feature checks ----------------------------------------------------------


def _column(
    frame: pd.DataFrame, target: str, chosen: str | None, path: Path, required: bool
) -> str | None:
    """The file's column for ``target``: the user's choice or the first default present."""
    if chosen is not None:
        if chosen in (ROW_NUMBER, SPATIAL) or chosen in frame.columns:
            return chosen
        raise FileRejected(
            f"{path.name}: no field {chosen!r} for the {target}; the fields are "
            + ", ".join(c for c in frame.columns if c != "geometry")
        )
    lowered = {str(c).lower(): c for c in frame.columns}
    found = next((lowered[n] for n in DEFAULT_FIELDS.get(target, ()) if n in lowered), None)
    if found is None and required:
        flag = {"code": "--code-field", "name": "--name-field", "parent": "--parent-field"}.get(
            target, f"--field {target}=COLUMN"
        )
        raise FileRejected(
            f"{path.name}: no field for the {target}; name one with {flag} (the fields are "
            + ", ".join(c for c in frame.columns if c != "geometry")
            + ")"
        )
    return found


def _text_values(frame: pd.DataFrame, column: str | None) -> list[str | None]:
    if column is None:
        return [None] * len(frame)
    values = []
    for value in frame[column].tolist():
        if value is None or (isinstance(value, float) and np.isnan(value)):
            values.append(None)
        elif isinstance(value, float) and value.is_integer():
            values.append(str(int(value)))  # codes read as numbers must not gain ".0"
        else:
            text = str(value).strip()
            values.append(text or None)
    return values


def _codes(frame: pd.DataFrame, options: ImportOptions) -> list[str | None]:
    column = _column(frame, "code", options.fields.code, options.path, required=True)
    if column == ROW_NUMBER:
        width = len(str(len(frame)))
        return [f"{options.code_prefix}{i + 1:0{width}d}" for i in range(len(frame))]
    return [None if c is None else f"{options.code_prefix}{c}" for c in _text_values(frame, column)]


def _check_codes(
    codes: list[str | None],
    level: str,
    parents: list[str | None],
    scheme: CodeScheme,
    report: ImportReport,
) -> None:
    first_seen: dict[str, int] = {}
    for i, code in enumerate(codes):
        if code is None:
            report.problems.append(Problem(i, "has no code"))
            continue
        problem = scheme.problem(level, code, parents[i])
        if problem:
            report.problems.append(Problem(i, problem, code))
        if code in first_seen:
            report.problems.append(
                Problem(i, f"duplicate code {code!r}, also used by feature #{first_seen[code] + 1}", code)
            )
        else:
            first_seen[code] = i


def _check_geometries(
    geoms: list[BaseGeometry | None],
    labels: list[str],
    check: Callable[[BaseGeometry | None], str | None],
    options: ImportOptions,
    report: ImportReport,
    polygonal: bool,
    broken: dict[int, str],
) -> list[BaseGeometry | None]:
    """Each geometry checked, repaired when allowed; MultiPolygons for polygonal layers."""
    out: list[BaseGeometry | None] = []
    repair = options.repair
    already = {p.index for p in report.problems}  # e.g. CSV cells that are not numbers
    for i, geom in enumerate(geoms):
        if i in already and geom is None:
            out.append(None)
            continue
        coords = coordinate_problem(geom) if geom is not None else None
        if coords:
            report.problems.append(Problem(i, coords, labels[i]))
            out.append(None)
            continue
        problem = f"invalid polygon: {broken[i]}" if i in broken else check(geom)
        if problem and problem.startswith("invalid polygon") and repair:
            fixed = repair_polygon(geom)  # type: ignore[arg-type]
            if fixed.is_empty:
                report.problems.append(Problem(i, problem + " (nothing left after repair)", labels[i]))
                out.append(None)
                continue
            reason = problem.removeprefix("invalid polygon: ")
            if i in broken and not shapely.is_valid(geom):
                reason += "; " + str(shapely.is_valid_reason(geom))
            result = f"valid MultiPolygon of {len(fixed.geoms)} part(s)"
            report.repairs.append(Repair(i, reason, result, labels[i]))
            geom, problem = fixed, None
        if problem:
            hint = " (use --repair to fix it with make_valid)" if problem.startswith("invalid") else ""
            report.problems.append(Problem(i, problem + hint, labels[i]))
            out.append(None)
            continue
        if polygonal and geom is not None and geom.geom_type == "Polygon":
            geom = to_multipolygon(geom)
        out.append(geom)
    return out


# --- area layers ----------------------------------------------------------------------


def _import_areas(
    session: Session,
    level: str,
    read: ReadResult,
    options: ImportOptions,
    scheme: CodeScheme,
    report: ImportReport,
    say: Callable[[str], None],
) -> None:
    frame = read.frame
    effective = options.effective or today()
    report.effective = effective
    codes = _codes(frame, options)
    labels = [c or "" for c in codes]
    name_col = _column(frame, "name", options.fields.name, options.path, required=False)
    names = _text_values(frame, name_col) if name_col else list(codes)
    if name_col is None:
        report.notes.append("no name field: each area is named by its code (--name-field to choose one)")
    geoms = _check_geometries(
        list(frame.geometry), labels, polygon_problem, options, report, True, read.broken
    )
    parents = _parents(session, level, frame, geoms, options, effective, labels, report)
    _check_codes(codes, level, parents, scheme, report)
    for i, name in enumerate(names):
        if name is None:
            report.problems.append(Problem(i, f"has no name (field {name_col!r} is empty)", labels[i]))

    existing = repo.version_on(session, level, effective)
    if existing is not None and not options.replace:
        report.problems.append(
            Problem(
                -1,
                f"a {level} layer effective {effective} already exists; use --replace to "
                "replace it, or --effective DATE to load a new version beside it",
            )
        )
    if not report.ok:
        report.problems.sort(key=lambda p: p.index)
        raise ImportRejected(report)

    say(f"writing {len(codes)} {level} areas")
    if existing is not None:
        repo.clear_version(session, existing)
        version = existing
        report.notes.append(f"replaced the {level} layer effective {effective}")
    else:
        version = repo.add_version(session, level, effective, str(options.path))
    rows = [
        {"layer_version_id": version.id, "level": level, "code": code, "name": name,
         "parent_code": parent, "geom": geom}
        for code, name, parent, geom in zip(codes, names, parents, geoms, strict=True)
    ]
    repo.insert_rows(session, Area.__table__, rows)
    # In the same transaction: no cache can see the new rows under the old stamp.
    stamp_version(session, version.id)
    report.imported = len(rows)
    if level == "grid":
        say("checking grid coverage")
        report.coverage = coverage_check(session, effective, options.min_fault_m2)
        report.faults = report.coverage.faults


def _parents(
    session: Session,
    level: str,
    frame: gpd.GeoDataFrame,
    geoms: list[BaseGeometry | None],
    options: ImportOptions,
    effective: dt.date,
    labels: list[str],
    report: ImportReport,
) -> list[str | None]:
    """Each feature's parent code, checked against the parent layer in force."""
    above = parent_level(level)
    if above is None:
        return [None] * len(frame)
    column = _column(frame, "parent", options.fields.parent, options.path, required=False)
    if column is None:
        report.notes.append(f"no parent field: the {level} areas are loaded without a parent {above}")
        return [None] * len(frame)
    version = repo.version_in_force(session, above, effective)
    known = repo.area_geoms(session, version.id) if version else {}
    if column == SPATIAL:
        values = _containing(known, geoms)
    else:
        values = _text_values(frame, column)
    for i, parent in enumerate(values):
        if column == SPATIAL and geoms[i] is not None and parent is None:
            report.problems.append(Problem(i, f"lies in no {above} of the layer in force on {effective}", labels[i]))
        elif column != SPATIAL and parent is None:
            report.problems.append(Problem(i, f"has no parent {above} code", labels[i]))
        elif parent is not None and parent not in known:
            where = f"the {above} layer in force on {effective}" if version else f"any {above} layer (none is loaded)"
            report.problems.append(Problem(i, f"parent {above} {parent!r} does not exist in {where}", labels[i]))
    return values


def _containing(parents: dict[str, BaseGeometry], geoms: list[BaseGeometry | None]) -> list[str | None]:
    """The parent that contains each geometry's representative point (smallest code on ties)."""
    if not parents:
        return [None] * len(geoms)
    codes = sorted(parents)
    tree = shapely.STRtree([parents[c] for c in codes])
    result: list[str | None] = []
    for geom in geoms:
        if geom is None:
            result.append(None)
            continue
        hits = tree.query(shapely.point_on_surface(geom), predicate="intersects")
        result.append(codes[min(hits)] if len(hits) else None)
    return result


def coverage_check(session: Session, on: dt.date, min_area_m2: float = 1.0) -> Coverage:
    """The coverage check of the grid layer in force on ``on``: overlaps across the layer,
    gaps and grids outside against the communities in force, and what could not be checked."""
    grids = repo.version_in_force(session, "grid", on)
    communities = repo.version_in_force(session, "community", on)
    cells = [Cell(a.code, a.parent_code, a.geom) for a in repo.areas(session, grids.id)] if grids else []
    known = repo.area_geoms(session, communities.id) if communities is not None else None
    return check_coverage_report(known, cells, min_area_m2)


def coverage_faults(session: Session, on: dt.date, min_area_m2: float = 1.0) -> list[Fault]:
    """Coverage faults of the grid layer in force on ``on`` (see ``coverage_check``)."""
    return coverage_check(session, on, min_area_m2).faults


# --- compounds, departments, facilities ---------------------------------------------------


def _import_other(
    session: Session,
    layer: str,
    read: ReadResult,
    options: ImportOptions,
    report: ImportReport,
    say: Callable[[str], None],
) -> None:
    frame = read.frame
    table = {"compounds": Compound, "departments": Department, "facilities": Facility}[layer].__table__
    codes = _codes(frame, options)
    labels = [c or "" for c in codes]
    # Most OSM facilities carry no name; a car park is still a car park. Facilities get a
    # descriptive stand-in, other layers must name things.
    name_col = _column(frame, "name", options.fields.name, options.path, required=layer != "facilities")
    names = _text_values(frame, name_col) if name_col else [None] * len(frame)
    check = {"compounds": polygon_problem, "facilities": point_or_polygon_problem}.get(
        layer, lambda g: None if g is None else polygon_problem(g)
    )
    geoms = _check_geometries(
        list(frame.geometry), labels, check, options, report, layer != "facilities", read.broken
    )
    _check_codes(codes, layer, [None] * len(codes), code_scheme("free"), report)
    if layer != "facilities":
        for i, name in enumerate(names):
            if name is None:
                report.problems.append(Problem(i, "has no name", labels[i]))
    rows = [{"code": c, "name": n, "geom": g} for c, n, g in zip(codes, names, geoms, strict=True)]
    extra = {"compounds": _compound_fields, "departments": _department_fields, "facilities": _facility_fields}[layer]
    extra(session, frame, options, rows, labels, report)
    if not options.replace:
        taken = repo.codes_in(session, table, [c for c in codes if c])
        for i, code in enumerate(codes):
            if code in taken:
                report.problems.append(
                    Problem(i, f"code {code!r} already exists in {layer}; use --replace to reload the layer", code)
                )
    if not report.ok:
        report.problems.sort(key=lambda p: p.index)
        raise ImportRejected(report)
    say(f"writing {len(rows)} {layer}")
    if options.replace:
        session.execute(delete(table))
        report.notes.append(f"replaced all {layer}")
    repo.insert_rows(session, table, rows)
    report.imported = len(rows)


def _extra_text(frame: pd.DataFrame, target: str, options: ImportOptions) -> list[str | None]:
    chosen = options.fields.extra.get(target)
    return _text_values(frame, _column(frame, target, chosen, options.path, required=False))


def _extra_int(
    frame: pd.DataFrame, target: str, options: ImportOptions, labels: list[str], report: ImportReport
) -> list[int | None]:
    values: list[int | None] = []
    for i, text in enumerate(_extra_text(frame, target, options)):
        if text is None:
            values.append(None)
        elif text.isdigit():
            values.append(int(text))
        else:
            report.problems.append(Problem(i, f"{target} {text!r} is not a whole number ≥ 0", labels[i]))
            values.append(None)
    return values


def _compound_fields(session, frame, options, rows, labels, report) -> None:  # type: ignore[no-untyped-def]
    chosen = options.fields.parent or options.fields.extra.get("community_code")
    communities = _text_values(frame, _column(frame, "parent", chosen, options.path, required=False))
    version = repo.version_in_force(session, "community", options.effective or today())
    known = repo.area_codes(session, version.id) if version else set()
    households = _extra_int(frame, "households", options, labels, report)
    managers = _extra_text(frame, "property_manager", options)
    for i, row in enumerate(rows):
        if communities[i] is not None and communities[i] not in known:
            report.problems.append(Problem(i, f"community {communities[i]!r} does not exist", labels[i]))
        row.update(community_code=communities[i], households=households[i], property_manager=managers[i])


def _department_fields(session, frame, options, rows, labels, report) -> None:  # type: ignore[no-untyped-def]
    kinds = _extra_text(frame, "kind", options)
    area_codes = _extra_text(frame, "area_code", options)
    known: set[str] = set()
    for level in LEVELS:
        version = repo.version_in_force(session, level, options.effective or today())
        known |= repo.area_codes(session, version.id) if version else set()
    for i, row in enumerate(rows):
        if kinds[i] is None:
            report.problems.append(Problem(i, "has no kind (police, fire, city_management, ...)", labels[i]))
        if area_codes[i] is not None and area_codes[i] not in known:
            report.problems.append(Problem(i, f"area {area_codes[i]!r} does not exist", labels[i]))
        row.update(kind=kinds[i], area_code=area_codes[i])


def _facility_fields(session, frame, options, rows, labels, report) -> None:  # type: ignore[no-untyped-def]
    kinds = _facility_kinds(frame, options)
    capacity = _extra_int(frame, "capacity", options, labels, report)
    shared = _extra_int(frame, "shared_spaces", options, labels, report)
    texts = {t: _extra_text(frame, t, options) for t in ("operator", "access", "fee", "contact", "opening_hours", "hours_text")}
    tags = list(frame["tags"]) if "tags" in frame.columns else [None] * len(frame)
    for i, hours in enumerate(texts["opening_hours"]):
        # Reported, never stored as-is: an unreadable value must not read as always open.
        # With --repair it is kept as plain text, and the facility shows as "unknown".
        reason = validate_hours(hours) if hours else None
        if reason and options.repair:
            texts["opening_hours"][i] = None
            texts["hours_text"][i] = texts["hours_text"][i] or hours
            report.repairs.append(Repair(i, f"unreadable opening_hours {hours!r} ({reason})",
                                         "kept as hours_text; its state shows as unknown", labels[i]))
        elif reason:
            report.problems.append(Problem(
                i, f"opening_hours {hours!r} cannot be read: {reason} (--repair keeps it as text)", labels[i]))
    for i, row in enumerate(rows):
        row["tags"] = tags[i] if isinstance(tags[i], dict) and tags[i] else None
        if row["name"] is None:
            row["name"] = f"{texts['operator'][i] or ''} {FACILITY_LABELS.get(kinds[i] or '', kinds[i] or 'facility')}".strip()
        if kinds[i] is None:
            report.problems.append(
                Problem(i, "has no kind: give a kind field, OSM amenity/leisure tags, or --field kind=COLUMN", labels[i])
            )
        if capacity[i] is not None and shared[i] is not None and shared[i] > capacity[i]:
            report.problems.append(
                Problem(i, f"shared_spaces {shared[i]} exceeds capacity {capacity[i]}", labels[i])
            )
        row.update(kind=kinds[i], capacity=capacity[i], shared_spaces=shared[i],
                   **{t: texts[t][i] for t in texts})
    _check_access_rules(rows, labels, report)


FACILITY_LABELS = {"car_park": "停车场", "sports_ground": "运动场", "toilet": "公厕"}


def _check_access_rules(rows: list[dict], labels: list[str], report: ImportReport) -> None:
    """Timed entry/exit rules must read, or a search could send people to a shut gate."""
    for i, row in enumerate(rows):
        try:
            Access.from_tags(row.get("access"), row.get("tags"))
        except OpeningHoursInvalid as exc:
            report.problems.append(Problem(i, f"access rule cannot be read: {exc}", labels[i]))


def _facility_kinds(frame: pd.DataFrame, options: ImportOptions) -> list[str | None]:
    explicit = _extra_text(frame, "kind", options)
    tagged: list[str | None] = [None] * len(frame)
    for key in ("amenity", "leisure"):
        if key in frame.columns:
            for i, value in enumerate(_text_values(frame, key)):
                tagged[i] = tagged[i] or OSM_KINDS.get((key, value or ""))
    return [e or t for e, t in zip(explicit, tagged, strict=True)]
