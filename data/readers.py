"""Reading the files people actually have into WGS84 GeoDataFrames.

GeoJSON, GeoPackage, Shapefile (zipped or not) and CSV with lon/lat columns, through
geopandas/pyogrio. A file is sniffed before GDAL sees it, so that a file that is not what
its extension says gets a plain message instead of a driver error.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geo.crs import CrsSpec, UnknownCRS, geometry_to_wgs84, parse_crs
from geo.validate import Problem

FORMATS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GeoPackage",
    ".zip": "zipped Shapefile",
    ".shp": "Shapefile",
    ".csv": "CSV",
}
LON_NAMES = ("lon", "lng", "long", "longitude", "x", "经度")
LAT_NAMES = ("lat", "latitude", "y", "纬度")


class FileRejected(ValueError):
    """The whole file cannot be read; the message says why and what to do."""


@dataclass
class ReadResult:
    """Features in WGS84, plus per-feature problems found while reading."""

    frame: gpd.GeoDataFrame
    source_crs: str
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Features whose geometry was unparseable as stored, by index, with the reason; their
    # geometry in ``frame`` is the minimally fixed one.
    broken: dict[int, str] = field(default_factory=dict)


def file_format(path: Path) -> str:
    """The format named by the extension; FileRejected for one we do not read."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise FileRejected(
            f"{path.name}: unsupported file type {path.suffix!r}; use one of "
            + ", ".join(sorted(FORMATS))
        )
    return fmt


def sniff(path: Path, fmt: str) -> None:
    """Refuse a file whose content does not match its extension."""
    if not path.exists():
        raise FileRejected(f"{path}: no such file")
    head = path.read_bytes()[:512]
    if not head.strip():
        raise FileRejected(f"{path.name}: the file is empty")
    mismatch = {
        "GeoPackage": not head.startswith(b"SQLite format 3\x00"),
        "zipped Shapefile": not zipfile.is_zipfile(path),
        "GeoJSON": not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"),
        "CSV": b"\x00" in head or _undecodable(head),
        "Shapefile": len(head) < 4 or head[:4] != b"\x00\x00\x27\x0a",
    }[fmt]
    if mismatch:
        raise FileRejected(
            f"{path.name}: the content is not {fmt} although the extension says so "
            f"(it starts with {head[:16]!r}); check the file or rename it"
        )


def _undecodable(head: bytes) -> bool:
    try:
        head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 4  # a multibyte character cut at the 512-byte mark is fine
    return False


def read_features(
    path: Path,
    crs: str | None = None,
    layer: str | None = None,
    lon_field: str | None = None,
    lat_field: str | None = None,
    require_geometry: bool = True,
) -> ReadResult:
    """Read any supported file and convert it to WGS84 lon/lat."""
    fmt = file_format(path)
    sniff(path, fmt)
    spec = _parse_crs_option(crs)
    if fmt == "CSV":
        return _read_csv(path, spec, lon_field, lat_field, require_geometry)
    frame, broken = _read_vector(path, fmt, layer)
    result = _to_wgs84(frame, spec, path, fmt)
    result.broken = broken
    return result


def _parse_crs_option(crs: str | None) -> CrsSpec | None:
    if crs is None:
        return None
    try:
        return parse_crs(crs)
    except UnknownCRS as exc:
        raise FileRejected(str(exc)) from exc


def _read_vector(path: Path, fmt: str, layer: str | None) -> tuple[gpd.GeoDataFrame, dict[int, str]]:
    """Attributes and geometries, plus the features whose geometry could not be parsed.

    Real files carry rings that are not closed (the Macau parishes); parsing them through
    geopandas would abort the whole file, so the WKB is parsed here. A broken geometry is
    kept in its closed ("fixed") form and listed, so that the importer can refuse it or,
    with --repair, accept the fix.
    """
    source = f"zip://{path}" if fmt == "zipped Shapefile" else str(path)
    try:
        meta, _fids, wkb, field_data = pyogrio.raw.read(source, layer=layer)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise FileRejected(f"{path.name}: cannot read it as {fmt}: {exc}") from exc
    columns = {name: values for name, values in zip(meta["fields"], field_data, strict=True)}
    geoms = shapely.from_wkb(wkb, on_invalid="ignore")
    broken: dict[int, str] = {}
    for i in np.flatnonzero(pd.isna(geoms) & pd.notna(wkb)):
        geoms[i] = shapely.from_wkb(wkb[i], on_invalid="fix")
        broken[int(i)] = "a ring is not closed"
    frame = gpd.GeoDataFrame(pd.DataFrame(columns), geometry=list(geoms), crs=meta["crs"])
    return frame, broken


def _to_wgs84(frame: gpd.GeoDataFrame, spec: CrsSpec | None, path: Path, fmt: str) -> ReadResult:
    notes: list[str] = []
    if spec is None:
        if frame.crs is None:
            if fmt != "GeoJSON":
                raise FileRejected(
                    f"{path.name}: unknown CRS, the file does not say which coordinate system "
                    "it uses; pass --crs (e.g. --crs EPSG:4547, --crs cgcs2000, --crs gcj02)"
                )
            frame = frame.set_crs(4326)  # RFC 7946: GeoJSON is WGS84 lon/lat
        epsg = frame.crs.to_epsg()
        if epsg is None:
            raise FileRejected(
                f"{path.name}: its CRS ({frame.crs.name}) has no EPSG code; pass --crs EPSG:NNNN"
            )
        spec = parse_crs(f"EPSG:{epsg}")
    else:
        notes.append(f"coordinates taken as {spec.name} (--crs)")
    geoms = geometry_to_wgs84(np.asarray(frame.geometry.values, dtype=object), spec)
    out = gpd.GeoDataFrame(frame.drop(columns=frame.geometry.name), geometry=list(geoms), crs=4326)
    return ReadResult(out, spec.name, notes=notes)


def _read_csv(
    path: Path,
    spec: CrsSpec | None,
    lon_field: str | None,
    lat_field: str | None,
    require_geometry: bool,
) -> ReadResult:
    try:
        table = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise FileRejected(f"{path.name}: cannot read it as CSV: {exc}") from exc
    lon_col = _pick_column(table, lon_field, LON_NAMES, "longitude", "--lon-field", path)
    lat_col = _pick_column(table, lat_field, LAT_NAMES, "latitude", "--lat-field", path)
    if lon_col is None or lat_col is None:
        if require_geometry:
            raise FileRejected(
                f"{path.name}: no longitude/latitude columns found among "
                f"{', '.join(table.columns)}; name them with --lon-field and --lat-field"
            )
        return ReadResult(gpd.GeoDataFrame(table, geometry=[None] * len(table), crs=4326), "none")
    lon = pd.to_numeric(table[lon_col].str.strip(), errors="coerce").to_numpy()
    lat = pd.to_numeric(table[lat_col].str.strip(), errors="coerce").to_numpy()
    problems = [
        Problem(int(i), f"{lon_col}/{lat_col} {table[lon_col].iat[i]!r}, {table[lat_col].iat[i]!r} are not numbers")
        for i in np.flatnonzero(np.isnan(lon) | np.isnan(lat))
    ]
    points = shapely.points(lon, lat)
    points[np.isnan(lon) | np.isnan(lat)] = None  # reported above; no geometry to check
    spec = spec or parse_crs("wgs84")
    notes = [] if spec.epsg == 4326 else [f"coordinates taken as {spec.name} (--crs)"]
    geoms = geometry_to_wgs84(points, spec)
    frame = gpd.GeoDataFrame(table.drop(columns=[lon_col, lat_col]), geometry=list(geoms), crs=4326)
    return ReadResult(frame, spec.name, problems, notes)


def _pick_column(
    table: pd.DataFrame, chosen: str | None, candidates: tuple[str, ...], what: str, flag: str, path: Path
) -> str | None:
    if chosen is not None:
        if chosen not in table.columns:
            raise FileRejected(
                f"{path.name}: no column {chosen!r} for the {what} ({flag}); the columns are "
                + ", ".join(table.columns)
            )
        return chosen
    lowered = {str(c).strip().lower(): c for c in table.columns}
    return next((lowered[name] for name in candidates if name in lowered), None)
