"""Reading the files people actually have into WGS84 GeoDataFrames.

GeoJSON, GeoPackage, Shapefile (zipped or not) and CSV with lon/lat columns, through
geopandas/pyogrio. A file is sniffed before GDAL sees it, so that a file that is not what
its extension says gets a plain message instead of a driver error.
"""

from __future__ import annotations

import codecs
import io
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import charset_normalizer
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


# Besides UTF-8, the encodings the files people have here come in: GB18030 (a superset of
# GBK and GB2312, what Excel and ArcGIS write on Chinese Windows), Big5 (Hong Kong, Taiwan)
# and Windows-1252 (Latin text). Detection only chooses among these, so that a short
# Chinese text is not "detected" as Korean or UTF-16.
CANDIDATE_ENCODINGS = ("gb18030", "big5", "cp1252")
# GBK and GB2312 files are read as GB18030, their superset: the same bytes give the same
# text, and the rare characters only GB18030 has (e.g. 𠀀) do not turn into garbage.
GB_FAMILY = {"gbk", "gb2312", "cp936", "gb18030", "hz"}
# Enough text to tell the encoding; more only makes detection slower.
SAMPLE_BYTES = 1 << 20
ENCODING_HINT = "pass --encoding (e.g. --encoding gbk, --encoding big5 or --encoding utf-8)"


class FileRejected(ValueError):
    """The whole file cannot be read; the message says why and what to do."""


class CrsUnknown(FileRejected):
    """The file does not say which coordinate system it uses, and none was given."""


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
    # With keep_source: the geometries as the file gives them, in ``source_crs`` (to tell
    # whether longitude and latitude were swapped, see geo/swap.py).
    source: np.ndarray | None = None


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
        # Not a decoding test: a GBK CSV from Excel is still a CSV (its encoding is found later).
        "CSV": b"\x00" in head,
        "Shapefile": len(head) < 4 or head[:4] != b"\x00\x00\x27\x0a",
    }[fmt]
    if mismatch:
        raise FileRejected(
            f"{path.name}: the content is not {fmt} although the extension says so "
            f"(it starts with {head[:16]!r}); check the file or rename it"
        )


def normal_encoding(name: str, path: Path) -> str:
    """The codec for an encoding name from --encoding or a .cpg file; FileRejected if unknown."""
    try:
        codec = codecs.lookup(name.strip()).name
    except LookupError as exc:
        raise FileRejected(f"{path.name}: unknown encoding {name!r}; {ENCODING_HINT}") from exc
    return "gb18030" if codec in GB_FAMILY else codec


def detect_encoding(sample: bytes, path: Path) -> str:
    """The encoding of a text sample: UTF-8 if it decodes so, else the one clear candidate.

    When the candidates read the sample equally well, guessing could store mojibake, so the
    file is refused with what each reading gives, and the user chooses with --encoding.
    """
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    ranked = sorted(
        charset_normalizer.from_bytes(sample, cp_isolation=list(CANDIDATE_ENCODINGS)),
        key=lambda match: match.chaos,
    )
    if ranked and (len(ranked) == 1 or ranked[0].chaos < ranked[1].chaos):
        return normal_encoding(ranked[0].encoding, path)
    readings = "; ".join(f"as {m.encoding}: {_first_text(str(m))!r}" for m in ranked[:3])
    raise FileRejected(
        f"{path.name}: cannot tell which encoding its text is in (it is not UTF-8"
        + (f"; it reads {readings}" if readings else "; nor GBK/GB18030, Big5 or Windows-1252")
        + f"); {ENCODING_HINT}"
    )


def _first_text(text: str) -> str:
    """The first line that holds non-ASCII text, shortened: enough to recognise a reading."""
    line = next((line for line in text.splitlines() if not line.isascii()), text)
    return line.strip()[:40]


def check_decodes(sample: bytes, encoding: str, path: Path) -> None:
    """Refuse text that is not valid in the encoding chosen or declared, rather than mangle it."""
    try:
        sample.decode(encoding)
    except UnicodeDecodeError as exc:
        raise FileRejected(
            f"{path.name}: its text is not valid {encoding} (byte {exc.object[exc.start]:#04x} "
            f"at offset {exc.start}); {ENCODING_HINT}"
        ) from exc


def _text_sample(data: bytes) -> bytes:
    """The first SAMPLE_BYTES of a text file, cut after a line end (no split character)."""
    if len(data) <= SAMPLE_BYTES:
        return data
    head = data[:SAMPLE_BYTES]
    return head[: head.rfind(b"\n") + 1] or head


def read_features(
    path: Path,
    crs: str | None = None,
    layer: str | None = None,
    lon_field: str | None = None,
    lat_field: str | None = None,
    require_geometry: bool = True,
    encoding: str | None = None,
    fallback_crs: str | None = None,
    keep_source: bool = False,
) -> ReadResult:
    """Read any supported file and convert it to WGS84 lon/lat.

    ``crs`` overrides the file's own CRS; ``fallback_crs`` applies only when the file carries
    none (a CSV, a shapefile without .prj). ``encoding`` overrides the detected text encoding.
    """
    fmt = file_format(path)
    sniff(path, fmt)
    spec = _parse_crs_option(crs)
    fallback = _parse_crs_option(fallback_crs)
    if fmt == "CSV":
        return _read_csv(
            path, spec or fallback, lon_field, lat_field, require_geometry, encoding, keep_source
        )
    frame, broken, notes = _read_vector(path, fmt, layer, encoding)
    result = _to_wgs84(frame, spec, path, fmt, fallback, keep_source)
    result.broken = broken
    result.notes[:0] = notes
    return result


def _parse_crs_option(crs: str | None) -> CrsSpec | None:
    if crs is None:
        return None
    try:
        return parse_crs(crs)
    except UnknownCRS as exc:
        raise FileRejected(str(exc)) from exc


def _read_vector(
    path: Path, fmt: str, layer: str | None, encoding: str | None
) -> tuple[gpd.GeoDataFrame, dict[int, str], list[str]]:
    """Attributes and geometries, the features whose geometry could not be parsed, and notes.

    Real files carry rings that are not closed (the Macau parishes); parsing them through
    geopandas would abort the whole file, so the WKB is parsed here. A broken geometry is
    kept in its closed ("fixed") form and listed, so that the importer can refuse it or,
    with --repair, accept the fix.
    """
    source = f"zip://{path}" if fmt == "zipped Shapefile" else str(path)
    encoding, notes = _vector_encoding(path, fmt, encoding)
    try:
        # GDAL reports text it could not convert, and geometry types it simplified, as
        # Python warnings; they become a refusal or a note here instead of raw output.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            meta, _fids, wkb, field_data = pyogrio.raw.read(source, layer=layer, encoding=encoding)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise FileRejected(f"{path.name}: cannot read it as {fmt}: {exc}") from exc
    notes += _gdal_notes(path, caught, encoding)
    columns = {name: values for name, values in zip(meta["fields"], field_data, strict=True)}
    geoms = shapely.from_wkb(wkb, on_invalid="ignore")
    broken: dict[int, str] = {}
    for i in np.flatnonzero(pd.isna(geoms) & pd.notna(wkb)):
        geoms[i] = shapely.from_wkb(wkb[i], on_invalid="fix")
        broken[int(i)] = "a ring is not closed"
    frame = gpd.GeoDataFrame(pd.DataFrame(columns), geometry=list(geoms), crs=meta["crs"])
    return frame, broken, notes


def _vector_encoding(path: Path, fmt: str, chosen: str | None) -> tuple[str | None, list[str]]:
    """The encoding to read a file's text with (None: the file's own), and a note on it.

    GDAL reads a shapefile with neither a .cpg file nor a code page in its .dbf header as
    ISO-8859-1, which turns GBK names into mojibake (名称 -> Ãû³Æ) without a word; so here
    the .dbf text itself is examined. A declared GBK is read as GB18030 (see GB_FAMILY).
    """
    if fmt not in ("Shapefile", "zipped Shapefile"):
        return (normal_encoding(chosen, path) if chosen else None), []
    dbf, cpg = _dbf_and_cpg(path, fmt)
    if dbf is None:
        return None, []  # no attributes: no text to decode
    sample = _dbf_text(dbf)
    if chosen:
        encoding = normal_encoding(chosen, path)
        check_decodes(sample, encoding, path)
        return encoding, [f"text read as {encoding} (--encoding)"]
    declared = cpg.strip() if cpg else None
    if declared and not declared.isdigit():
        encoding = normal_encoding(declared, path)
        check_decodes(sample, encoding, path)
        return encoding, []
    if declared or dbf[29] != 0:
        return None, []  # a code page number: GDAL maps it to the right encoding itself
    encoding = detect_encoding(sample, path)
    if encoding == "utf-8":
        return encoding, []
    note = (
        f"text read as {encoding}: the shapefile does not say its encoding (no .cpg file); "
        "pass --encoding if the names look wrong"
    )
    return encoding, [note]


def _dbf_and_cpg(path: Path, fmt: str) -> tuple[bytes | None, str | None]:
    """The bytes of a shapefile's .dbf and the text of its .cpg, if they exist."""
    if fmt == "zipped Shapefile":
        with zipfile.ZipFile(path) as archive:
            names = {Path(n).suffix.lower(): n for n in archive.namelist()}
            dbf = archive.read(names[".dbf"]) if ".dbf" in names else None
            cpg = (
                archive.read(names[".cpg"]).decode("ascii", "replace") if ".cpg" in names else None
            )
        return dbf, cpg
    found = {p.suffix.lower(): p for p in path.parent.glob(f"{path.stem}.*")}
    dbf = found[".dbf"].read_bytes() if ".dbf" in found else None
    cpg = found[".cpg"].read_text("ascii", "replace") if ".cpg" in found else None
    return dbf, cpg


def _dbf_text(dbf: bytes) -> bytes:
    """Field names and records of a .dbf, cut at a record boundary (no split character)."""
    header_length = int.from_bytes(dbf[8:10], "little")
    record_length = max(1, int.from_bytes(dbf[10:12], "little"))
    names = b"\n".join(dbf[i : i + 11].split(b"\x00")[0] for i in range(32, header_length - 32, 32))
    records = dbf[header_length : header_length + SAMPLE_BYTES // record_length * record_length]
    return names + b"\n" + records


def _gdal_notes(
    path: Path, caught: list[warnings.WarningMessage], encoding: str | None
) -> list[str]:
    """GDAL's warnings as our words: text it could not convert stops the import."""
    notes = []
    for warning in caught:
        message = str(warning.message)
        if "couldn't be converted" in message:
            raise FileRejected(
                f"{path.name}: some text is not valid {encoding or 'in the encoding the file declares'} "
                f"and would be stored garbled; {ENCODING_HINT}"
            )
        notes.append(f"reading {path.name}: {message.split('. This warning')[0]}")
    return notes


def _to_wgs84(
    frame: gpd.GeoDataFrame,
    spec: CrsSpec | None,
    path: Path,
    fmt: str,
    fallback: CrsSpec | None = None,
    keep_source: bool = False,
) -> ReadResult:
    notes: list[str] = []
    if spec is None and frame.crs is None and fallback is not None and fmt != "GeoJSON":
        spec = fallback
        notes.append(f"coordinates taken as {spec.name}: the file does not say its CRS")
    elif spec is not None:
        notes.append(f"coordinates taken as {spec.name} (--crs)")
    if spec is None:
        if frame.crs is None:
            if fmt != "GeoJSON":
                raise CrsUnknown(
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
    source = np.asarray(frame.geometry.values, dtype=object)
    geoms = geometry_to_wgs84(source, spec)
    out = gpd.GeoDataFrame(frame.drop(columns=frame.geometry.name), geometry=list(geoms), crs=4326)
    return ReadResult(out, spec.name, notes=notes, source=source if keep_source else None)


def _read_csv(
    path: Path,
    spec: CrsSpec | None,
    lon_field: str | None,
    lat_field: str | None,
    require_geometry: bool,
    encoding: str | None = None,
    keep_source: bool = False,
) -> ReadResult:
    table, notes = read_csv_text(path, encoding)
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
        Problem(
            int(i),
            f"{lon_col}/{lat_col} {table[lon_col].iat[i]!r}, {table[lat_col].iat[i]!r} are not numbers",
        )
        for i in np.flatnonzero(np.isnan(lon) | np.isnan(lat))
    ]
    points = shapely.points(lon, lat)
    points[np.isnan(lon) | np.isnan(lat)] = None  # reported above; no geometry to check
    if spec is None:
        # A CSV never says its coordinate system, and AMap/Tencent (gcj02) or Baidu (bd09)
        # coordinates read as WGS84 land a few hundred metres off, in another grid, silently.
        raise CrsUnknown(
            f"{path.name}: a CSV file does not say which coordinate system its longitudes and "
            "latitudes are in; pass --crs (wgs84, cgcs2000, gcj02 for AMap/Gaode and Tencent, "
            "bd09 for Baidu, or EPSG:NNNN)"
        )
    if spec.epsg != 4326:
        notes.append(f"coordinates taken as {spec.name} (--crs)")
    geoms = geometry_to_wgs84(points, spec)
    frame = gpd.GeoDataFrame(table.drop(columns=[lon_col, lat_col]), geometry=list(geoms), crs=4326)
    return ReadResult(frame, spec.name, problems, notes, source=points if keep_source else None)


def read_csv_text(path: Path, encoding: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """A CSV file's rows as strings, in its encoding (chosen, or detected), and a note on it."""
    data = path.read_bytes()
    if encoding:
        chosen = normal_encoding(encoding, path)
        notes = [f"text read as {chosen} (--encoding)"]
    else:
        chosen = detect_encoding(_text_sample(data.removeprefix(codecs.BOM_UTF8)), path)
        notes = [] if chosen == "utf-8" else [f"text read as {chosen} (detected)"]
    if chosen == "utf-8":
        chosen = "utf-8-sig"  # Excel's "CSV UTF-8" starts with a byte-order mark
    try:
        text = data.decode(chosen)
    except UnicodeDecodeError as exc:
        raise FileRejected(
            f"{path.name}: its text is not valid {chosen.removesuffix('-sig')} (byte "
            f"{exc.object[exc.start]:#04x} at offset {exc.start}); {ENCODING_HINT}"
        ) from exc
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise FileRejected(f"{path.name}: cannot read it as CSV: {exc}") from exc
    return table, notes


def _pick_column(
    table: pd.DataFrame,
    chosen: str | None,
    candidates: tuple[str, ...],
    what: str,
    flag: str,
    path: Path,
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
