"""Facility files people already have, turned into one standard GeoDataFrame.

Shared car parks, school sports grounds and public toilets (docs/DOMAIN.md, "Shared
parking and open facilities") come from several kinds of files. Each reader here returns
the same frame, in WGS84 (EPSG:4326), one row per facility, with the columns ``COLUMNS``:

=============== =========== ==========================================================
column          dtype       meaning
=============== =========== ==========================================================
code            str         unique, prefixed by the source: ``osm:w/123``,
                            ``parkapi:herrenbergbronntor``, ``db_bahnpark:100001``,
                            ``hk_td:tdc1p3``, or the institution list's own code; at most
                            32 ASCII characters, as the importer's free code scheme wants
kind            str         ``car_park`` | ``sports_ground`` | ``toilet`` | ...
name            str | None  None when the source has none (many OSM car parks)
operator        str | None
access          str | None  OSM values: yes, permissive, private, customers, ...
capacity        Int64       number of spaces
shared_spaces   Int64       spaces opened to the public (institution lists)
fee             str | None  OSM values: yes, no, ...
contact         str | None  a phone number
opening_hours   str | None  OSM ``opening_hours`` syntax, carried as given, *not* validated
hours_text      str | None  the source's own free-text hours when they are not OSM syntax
tags            dict        other OSM-style tags kept as they came (``access:conditional``,
                            ``parking:condition:*``, ``name:en``, ``capacity:disabled``...)
geometry        Point | Polygon | MultiPolygon (OSM multipolygon relations)
=============== =========== ==========================================================

Alongside, ``frame.attrs`` holds ``source_crs`` (str), ``notes`` (list of str: what was
skipped or approximated) and ``problems`` (list of :class:`geo.validate.Problem`: rows the
importer must refuse, e.g. a capacity that is not a number in an institution list). A
whole file that cannot be read raises :class:`data.readers.FileRejected` (a ValueError).

Readers
-------
* :func:`read_osm_pbf` -- OpenStreetMap ``.osm.pbf`` extracts, read with pyosmium.
  ``amenity=parking`` -> car_park, ``amenity=toilets`` -> toilet, ``leisure=pitch`` /
  ``sports_centre`` / ``stadium`` -> sports_ground (the importer's ``OSM_KINDS``). Nodes
  become Points; closed ways and multipolygon relations become (Multi)Polygons.
* :func:`read_parkapi` -- German ParkAPI feeds: ParkAPI v1 city JSON (``{"lots": [...]}``,
  e.g. Herrenberg), ParkAPI v1 city GeoJSON (a FeatureCollection whose first feature is
  the city, e.g. Köln), and Deutsche Bahn's BahnPark API v2 (``{"_embedded": [...]}``).
* :func:`read_hk_carparks` -- Hong Kong Transport Department ``basic_info_all.json``.
* :func:`read_institution_list` -- a CSV list of institutions (government units, schools)
  that open their car parks, grounds or toilets, mapped through an options file.
* :func:`detect_and_read` -- picks one of the above, or returns None for files the
  generic importer path handles.
* :func:`read_facility_file` -- :func:`detect_and_read` wrapped as the importer's
  :class:`data.readers.ReadResult`.

Institution-list options
------------------------
An options file (TOML, read with the standard library's ``tomllib``; or the same keys in
JSON) says which CSV column holds what. Every key is checked: an unknown key, or a column
that is not in the CSV, is a ValueError (FileRejected) naming it. Full example::

    # wuzhou_shared_facilities.toml
    crs = "gcj02"               # required: wgs84 | cgcs2000 | gcj02 | bd09 | EPSG:NNNN.
                                # Coordinates picked in AMap/Tencent are gcj02, Baidu bd09.
    encoding = "utf-8"          # optional; default: UTF-8 (with or without BOM), then GB18030
    code_prefix = "wz:"         # put before each code; required when [fields] has no code
                                # (rows are then numbered: wz:1, wz:2, ...). Codes must fit
                                # the importer's free scheme: ASCII, at most 32 characters.

    # The kind, either one for every row ...
    # kind = "car_park"
    # ... or from a column, through a map of its values (values that are already a kind,
    # such as "toilet", need no entry):
    kind_field = "类型"

    [kinds]
    "停车场" = "car_park"
    "运动场" = "sports_ground"
    "厕所" = "toilet"

    [fields]                    # our field = the CSV column; name, lon and lat are required
    code = "编号"               # optional: without it rows are numbered 1, 2, ...
    name = "单位名称"
    operator = "产权单位"
    access = "开放对象"
    capacity = "总车位"          # whole numbers
    shared_spaces = "共享车位数"
    fee = "收费"
    contact = "联系电话"
    opening_hours = "开放时间"   # OSM syntax only, e.g. "Mo-Fr 18:00-21:00; Sa,Su 08:00-20:00"
    hours_text = "开放说明"      # free text such as "工作日晚上开放" goes here instead
    lon = "经度"
    lat = "纬度"

    [defaults]                  # optional: a value for every row whose cell is empty
    access = "permissive"
    fee = "no"

    [tags]                      # optional: more columns, kept in ``tags`` under these keys
    "addr:full" = "地址"
    "note" = "备注"

Allowed keys: top level ``crs``, ``encoding``, ``code_prefix``, ``kind``, ``kind_field``,
``kinds``, ``fields``, ``defaults``, ``tags``; in ``[fields]`` the names of ``FIELD_KEYS``;
in ``[defaults]`` the text fields of ``DEFAULT_KEYS``. Cells are stripped; an empty cell
is "not given". A cell that is not a number (coordinates, capacity, shared_spaces) is a
problem on that row, reported in ``frame.attrs["problems"]`` with the other rows' problems.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, NoReturn

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from data.readers import FileRejected, ReadResult
from geo.crs import UnknownCRS, geometry_to_wgs84, parse_crs
from geo.validate import Problem

__all__ = [
    "COLUMNS",
    "DEFAULT_KEYS",
    "FIELD_KEYS",
    "MAX_CODE_LEN",
    "OSM_FACILITY_TAGS",
    "detect_and_read",
    "load_options",
    "osm_kind",
    "parkapi_slug",
    "read_facility_file",
    "read_hk_carparks",
    "read_institution_list",
    "read_osm_pbf",
    "read_parkapi",
]

COLUMNS: Final = (
    "code",
    "kind",
    "name",
    "operator",
    "access",
    "capacity",
    "shared_spaces",
    "fee",
    "contact",
    "opening_hours",
    "hours_text",
    "tags",
    "geometry",
)
TEXT_COLUMNS: Final = (
    "code",
    "kind",
    "name",
    "operator",
    "access",
    "fee",
    "contact",
    "opening_hours",
    "hours_text",
)
INT_COLUMNS: Final = ("capacity", "shared_spaces")

# OSM tags that say what a facility is (DOMAIN.md, "Shared parking and open facilities");
# the importer uses this mapping too. Checked in this order.
OSM_FACILITY_TAGS: Final[dict[tuple[str, str], str]] = {
    ("amenity", "parking"): "car_park",
    ("amenity", "toilets"): "toilet",
    ("leisure", "pitch"): "sports_ground",
    ("leisure", "sports_centre"): "sports_ground",
    ("leisure", "stadium"): "sports_ground",
}
# OSM keys that become columns; every other tag goes to ``tags`` unchanged.
_OSM_TEXT_KEYS: Final = ("name", "operator", "access", "fee", "opening_hours")
_OSM_CONTACT_KEYS: Final = ("phone", "contact:phone")  # first present wins

# German car-park types (ParkAPI ``lot_type``, DB ``type.name``) -> OSM ``parking=*``.
_GERMAN_PARKING: Final = {
    "Parkplatz": "surface",
    "Parkhaus": "multi-storey",
    "Tiefgarage": "underground",
    "Parkdeck": "multi-storey",
    "Straße": "street_side",
}

FIELD_KEYS: Final = (
    "code",
    "name",
    "operator",
    "access",
    "capacity",
    "shared_spaces",
    "fee",
    "contact",
    "opening_hours",
    "hours_text",
    "lon",
    "lat",
)
DEFAULT_KEYS: Final = ("operator", "access", "fee", "contact", "opening_hours", "hours_text")
_OPTION_KEYS: Final = (
    "crs",
    "encoding",
    "code_prefix",
    "kind",
    "kind_field",
    "kinds",
    "fields",
    "defaults",
    "tags",
)
_KIND_RE: Final = re.compile(r"[a-z][a-z0-9_]*")
# The importer's "free" code scheme (geo.areas) takes at most 32 ASCII characters.
MAX_CODE_LEN: Final = 32


# --- the standard frame ------------------------------------------------------------


def _frame(
    records: list[dict[str, Any]],
    source_crs: str = "wgs84",
    notes: Iterable[str] = (),
    problems: Iterable[Problem] = (),
) -> gpd.GeoDataFrame:
    """The standard frame from records holding COLUMNS (missing keys are None)."""
    data: dict[str, Any] = {}
    for column in TEXT_COLUMNS:
        data[column] = pd.Series([r.get(column) for r in records], dtype=object)
    for column in INT_COLUMNS:
        data[column] = pd.array([r.get(column) for r in records], dtype="Int64")
    data["tags"] = pd.Series([dict(r.get("tags") or {}) for r in records], dtype=object)
    geoms = [r.get("geometry") for r in records]
    frame = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=4326), crs=4326)
    frame = frame[list(COLUMNS)]
    frame.attrs["source_crs"] = source_crs
    frame.attrs["notes"] = list(notes)
    frame.attrs["problems"] = list(problems)
    return frame


def _text(value: Any) -> str | None:
    """A stripped string, or None for missing/empty values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


class _NotWhole(ValueError):
    pass


def _whole(value: Any) -> int | None:
    """A whole number >= 0 from an int, an integral float or a string of digits; None if empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        raise _NotWhole(repr(value))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        if value < 0:
            raise _NotWhole(repr(value))
        return value
    text = unicodedata.normalize("NFKC", str(value)).strip()  # full-width digits too
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return int(text)
    raise _NotWhole(repr(value))


def _load_json(path: Path) -> Any:
    """JSON with or without a UTF-8 byte-order mark."""
    try:
        return json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise FileRejected(f"{path.name}: not UTF-8 text ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise FileRejected(f"{path.name}: not valid JSON ({exc})") from exc


def _point(lon: Any, lat: Any) -> BaseGeometry | None:
    try:
        x, y = float(lon), float(lat)
    except (TypeError, ValueError):
        return None
    if math.isnan(x) or math.isnan(y):
        return None
    return shapely.Point(x, y)


def _drop_none(tags: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in tags.items():
        text = _text(value)
        if text is not None:
            out[key] = text
    return out


# --- OpenStreetMap ----------------------------------------------------------------------


def osm_kind(tags: Mapping[str, str]) -> str | None:
    """The facility kind of an OSM object's tags, or None if it is not a facility."""
    for (key, value), kind in OSM_FACILITY_TAGS.items():
        if tags.get(key) == value:
            return kind
    return None


def _osm_record(code: str, kind: str, tags: dict[str, str], notes: list[str]) -> dict[str, Any]:
    rest = dict(tags)
    record: dict[str, Any] = {"code": code, "kind": kind}
    for key in _OSM_TEXT_KEYS:
        record[key] = _text(rest.pop(key, None))
    contact_key = next((k for k in _OSM_CONTACT_KEYS if _text(rest.get(k))), None)
    record["contact"] = _text(rest.pop(contact_key)) if contact_key else None
    raw_capacity = rest.pop("capacity", None)
    try:
        record["capacity"] = _whole(raw_capacity)
    except _NotWhole:
        rest["capacity"] = raw_capacity  # kept as it came; the column stays empty
        notes.append(f"{code}: capacity {raw_capacity!r} is not a whole number; kept in tags")
    record["tags"] = rest
    return record


def _single(geom: BaseGeometry) -> BaseGeometry:
    """A MultiPolygon of one part as a Polygon."""
    if geom.geom_type == "MultiPolygon" and len(geom.geoms) == 1:
        return geom.geoms[0]
    return geom


def _way_fallback(
    code: str, coords: list[tuple[float, float] | None], notes: list[str]
) -> BaseGeometry | None:
    """A geometry for a way libosmium could not make an area of."""
    known = [c for c in coords if c is not None]
    closed = len(coords) >= 4 and coords[0] is not None and coords[0] == coords[-1]
    if closed and len(known) == len(coords):
        notes.append(
            f"{code}: polygon built from its nodes (libosmium could not assemble it; it may be invalid)"
        )
        return shapely.Polygon(known)
    if known:
        why = (
            f"{len(coords) - len(known)} of its {len(coords)} nodes are outside the extract"
            if len(known) < len(coords)
            else "it is not a closed way"
        )
        notes.append(f"{code}: {why}; kept as the centroid of its {len(known)} known nodes")
        return shapely.MultiPoint(known).centroid
    notes.append(f"{code}: none of its nodes are in the extract; skipped")
    return None


def read_osm_pbf(path: str | Path) -> gpd.GeoDataFrame:
    """Car parks, sports grounds and toilets of an OSM .osm.pbf extract (pyosmium)."""
    path = Path(path)
    if not path.exists():
        raise FileRejected(f"{path}: no such file")
    head = path.read_bytes()[:64]
    if b"OSMHeader" not in head:
        raise FileRejected(f"{path.name}: not an OSM PBF file (it starts with {head[:16]!r})")
    try:
        import osmium
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise FileRejected("reading .osm.pbf needs the osmium package (pyosmium)") from exc

    wkb = osmium.geom.WKBFactory()
    records: dict[tuple[str, int], dict[str, Any]] = {}
    geoms: dict[tuple[str, int], BaseGeometry] = {}
    way_coords: dict[int, list[tuple[float, float] | None]] = {}
    notes: list[str] = []
    relevant = osmium.filter.KeyFilter("amenity", "leisure")
    processor = osmium.FileProcessor(str(path)).with_areas(relevant).with_filter(relevant)
    try:
        for obj in processor:
            tags = {t.k: t.v for t in obj.tags}
            kind = osm_kind(tags)
            if kind is None:
                continue
            if obj.is_area():
                key = ("w" if obj.from_way() else "r", obj.orig_id())
                try:
                    geoms[key] = _single(shapely.from_wkb(wkb.create_multipolygon(obj)))
                except RuntimeError:
                    continue  # no usable rings: the fallbacks below say what happened
                records.setdefault(key, {"kind": kind, "tags": tags})
            elif obj.is_node():
                key = ("n", obj.id)
                records[key] = {"kind": kind, "tags": tags}
                if obj.location.valid():
                    geoms[key] = shapely.Point(obj.location.lon, obj.location.lat)
            elif obj.is_way():
                records[("w", obj.id)] = {"kind": kind, "tags": tags}
                way_coords[obj.id] = [
                    (n.location.lon, n.location.lat) if n.location.valid() else None
                    for n in obj.nodes
                ]
            elif obj.is_relation():
                records[("r", obj.id)] = {"kind": kind, "tags": tags}
    except RuntimeError as exc:
        raise FileRejected(f"{path.name}: cannot read it as OSM PBF: {exc}") from exc

    order = {"n": 0, "w": 1, "r": 2}
    out = []
    for key in sorted(records, key=lambda k: (order[k[0]], k[1])):
        code = f"osm:{key[0]}/{key[1]}"
        geom = geoms.get(key)
        if geom is None and key[0] == "w":
            geom = _way_fallback(code, way_coords.get(key[1], []), notes)
        if geom is None:
            if key[0] == "r":
                kind_of = records[key]["tags"].get("type", "?")
                notes.append(f"{code}: relation (type={kind_of}) has no assembled polygon; skipped")
            elif key[0] == "n":
                notes.append(f"{code}: node without a location; skipped")
            continue
        record = _osm_record(code, records[key]["kind"], records[key]["tags"], notes)
        record["geometry"] = geom
        out.append(record)
    return _frame(out, "wgs84", notes)


# --- ParkAPI (Germany) ---------------------------------------------------------------------


def _fit_code(prefix: str, source_id: str) -> str:
    """prefix + source_id, shortened with a hash of the id when longer than MAX_CODE_LEN.

    ParkAPI ids run to 55 characters ("herrenbergmarktplatzparkplatzfuermenschenmitbehinderung");
    the full id stays in the ``ref:parkapi`` tag.
    """
    code = prefix + source_id
    if len(code) <= MAX_CODE_LEN:
        return code
    digest = hashlib.sha1(source_id.encode()).hexdigest()[:6]
    return f"{code[: MAX_CODE_LEN - 7]}-{digest}"


def parkapi_slug(text: str) -> str:
    """ParkAPI-style id text: lower case, German umlauts spelt out, only a-z and 0-9."""
    text = text.lower()
    for umlaut, spelt in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.replace(umlaut, spelt)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", text)


def _parkapi_format(data: Any) -> str | None:
    """'lots' (v1 city JSON), 'bahn' (DB BahnPark v2), 'v1_geojson', or None."""
    if not isinstance(data, dict):
        return None
    lots = data.get("lots")
    if isinstance(lots, list) and all(isinstance(x, dict) and "coords" in x for x in lots):
        return "lots"
    embedded = data.get("_embedded")
    if isinstance(embedded, list) and all(
        isinstance(x, dict) and isinstance(x.get("address"), dict) and "capacity" in x
        for x in embedded
    ):
        return "bahn"
    features = data.get("features")
    if data.get("type") == "FeatureCollection" and isinstance(features, list):
        types = [(f.get("properties") or {}).get("type") for f in features if isinstance(f, dict)]
        if types.count("city") == 1:
            return "v1_geojson"
    return None


def read_parkapi(path: str | Path) -> gpd.GeoDataFrame:
    """A ParkAPI v1 city JSON, ParkAPI v1 city GeoJSON, or DB BahnPark v2 file."""
    path = Path(path)
    data = _load_json(path)
    fmt = _parkapi_format(data)
    if fmt == "lots":
        return _parkapi_lots(data)
    if fmt == "bahn":
        return _bahn_v2(data)
    if fmt == "v1_geojson":
        return _parkapi_v1_geojson(data)
    raise FileRejected(
        f'{path.name}: not a ParkAPI file (expected {{"lots": [...]}}, DB BahnPark '
        '{"_embedded": [...]}, or a ParkAPI city GeoJSON)'
    )


def _parkapi_lots(data: dict[str, Any]) -> gpd.GeoDataFrame:
    """ParkAPI v1 city JSON: {"lots": [{id, name, coords, total, opening_hours, ...}]}."""
    out, problems = [], []
    source = _text(data.get("data_source"))
    for i, lot in enumerate(data["lots"]):
        lot_id = _text(lot.get("id")) or parkapi_slug(str(lot.get("name", "")))
        code = _fit_code("parkapi:", lot_id)
        coords = lot.get("coords") or {}
        geom = _point(coords.get("lng"), coords.get("lat"))
        if geom is None:
            problems.append(Problem(i, f"coords {coords!r} are not a longitude/latitude", code))
        notes = lot.get("notes") or {}
        lot_type = _text(lot.get("lot_type"))
        tags = _drop_none(
            {
                "parking": _GERMAN_PARKING.get(lot_type or ""),
                "parkapi:lot_type": lot_type,
                "ref:parkapi": lot_id,
                "capacity:disabled": lot.get("total:disabled"),
                "fee_hours": lot.get("fee_hours"),  # ParkAPI's hours during which a fee is due
                "addr:full": lot.get("address"),
                "website": lot.get("url"),
                **{f"description:{lang}": text for lang, text in notes.items()},
                "source": source,
            }
        )
        record = {
            "code": code,
            "kind": "car_park",
            "name": _text(lot.get("name")),
            "opening_hours": _text(lot.get("opening_hours")),  # ParkAPI uses OSM syntax
            "tags": tags,
            "geometry": geom,
        }
        _set_capacity(record, lot.get("total"), i, code, problems)
        out.append(record)
    return _frame(out, "wgs84", problems=problems)


def _set_capacity(
    record: dict[str, Any], value: Any, i: int, code: str, problems: list[Problem]
) -> None:
    try:
        record["capacity"] = _whole(value)
    except _NotWhole:
        problems.append(Problem(i, f"capacity {value!r} is not a whole number ≥ 0", code))


def _bahn_v2(data: dict[str, Any]) -> gpd.GeoDataFrame:
    """DB BahnPark API v2: {"_embedded": [{id, name[], address.location, capacity[], access}]}."""
    out, problems = [], []
    for i, lot in enumerate(data["_embedded"]):
        code = f"db_bahnpark:{_text(lot.get('id'))}"
        names = {
            n.get("context"): _text(n.get("name"))
            for n in lot.get("name") or []
            if isinstance(n, dict)
        }
        address = lot.get("address") or {}
        location = address.get("location") or {}
        geom = _point(location.get("longitude"), location.get("latitude"))
        if geom is None:
            problems.append(
                Problem(i, f"address.location {location!r} is not a longitude/latitude", code)
            )
        capacities = {
            c.get("type"): c.get("total") for c in lot.get("capacity") or [] if isinstance(c, dict)
        }
        access = lot.get("access") or {}
        hours = access.get("openingHours") or {}
        if hours.get("is24h") is True:
            opening_hours, hours_text = "24/7", None
        else:
            # DB's own wording ("Mo-Fr: 06:00 - 20:00 Uhr, So+F: geschlossen"), not OSM syntax.
            opening_hours, hours_text = None, _text(hours.get("text")) or _text(hours.get("textEn"))
        prices = ((lot.get("tariff") or {}).get("prices")) or []
        charged = any(isinstance(p, dict) and (p.get("price") or 0) > 0 for p in prices)
        out_of_service = ((access.get("outOfService") or {}).get("isOutOfService")) is True
        type_name = _text((lot.get("type") or {}).get("name"))
        tags = _drop_none(
            {
                "parking": _GERMAN_PARKING.get(type_name or ""),
                "db:type": type_name,
                "ref": names.get("LABEL"),
                "capacity:disabled": capacities.get("HANDICAPPED_PARKING"),
                "hours_text:en": hours.get("textEn") if hours_text else None,
                "addr:street": address.get("streetAndNumber"),
                "addr:postcode": address.get("zip"),
                "addr:city": address.get("city"),
                "db:station": (lot.get("station") or {}).get("name"),
                "db:out_of_service": "yes" if out_of_service else None,
                "website": lot.get("url"),
            }
        )
        record = {
            "code": code,
            "kind": "car_park",
            "name": names.get("NAME") or names.get("DISPLAY"),
            "operator": _text((lot.get("operator") or {}).get("name")),
            "contact": _text(address.get("phone")),
            "fee": "yes" if charged else None,
            "opening_hours": opening_hours,
            "hours_text": hours_text,
            "tags": tags,
            "geometry": geom,
        }
        _set_capacity(record, capacities.get("PARKING"), i, code, problems)
        out.append(record)
    return _frame(out, "wgs84", problems=problems)


def _parkapi_v1_geojson(data: dict[str, Any]) -> gpd.GeoDataFrame:
    """ParkAPI v1 city GeoJSON: a "city" feature, then one Point feature per lot."""
    features = [f for f in data["features"] if isinstance(f, dict)]
    city = next(f for f in features if (f.get("properties") or {}).get("type") == "city")
    city_name = str((city.get("properties") or {}).get("name", ""))
    out: list[dict[str, Any]] = []
    problems: list[Problem] = []
    notes: list[str] = []
    seen: dict[str, dict[str, Any]] = {}
    for feature in features:
        props = feature.get("properties") or {}
        if props.get("type") == "city":
            continue
        name = _text(props.get("name"))
        lot_id = parkapi_slug(city_name + (name or ""))
        code = _fit_code("parkapi:", lot_id)
        if lot_id in seen:
            # ParkAPI keys lots by this id, so a second feature with it is the same lot
            # (Dresden lists "Centrum Galerie" and "Centrum - Galerie" at one place).
            first = seen[lot_id]
            if name and name != first["name"]:
                alt = first["tags"].get("alt_name")
                first["tags"]["alt_name"] = f"{alt};{name}" if alt else name
            notes.append(
                f"{code}: {name!r} has the same ParkAPI id as {first['name']!r}; kept once"
            )
            continue
        index = len(out)
        geom = shape(feature["geometry"]) if feature.get("geometry") else None
        if geom is None or geom.geom_type != "Point":
            problems.append(Problem(index, "has no Point geometry", code))
        lot_type = _text(props.get("type"))
        tags = _drop_none(
            {
                "parking": _GERMAN_PARKING.get(lot_type or ""),
                "parkapi:lot_type": lot_type,
                "ref:parkapi": lot_id,
                "addr:full": props.get("address"),
                "addr:city": city_name,
            }
        )
        record = {"code": code, "kind": "car_park", "name": name, "tags": tags, "geometry": geom}
        _set_capacity(record, props.get("total"), index, code, problems)
        out.append(record)
        seen[lot_id] = record
    notes.append(f"the city feature {city_name!r} is not a car park; skipped")
    return _frame(out, "wgs84", notes, problems)


# --- Hong Kong Transport Department ----------------------------------------------------

_HK_LANGS: Final = (("sc", "zh-Hans"), ("tc", "zh-Hant"), ("en", "en"))


def _hk_is_carparks(data: Any) -> bool:
    items = data.get("car_park") if isinstance(data, dict) else None
    return isinstance(items, list) and all(
        isinstance(x, dict) and "park_id" in x and "latitude" in x for x in items
    )


def read_hk_carparks(path: str | Path) -> gpd.GeoDataFrame:
    """HK Transport Department car parks ``{"car_park": [...]}`` (UTF-8 with BOM)."""
    path = Path(path)
    data = _load_json(path)
    if not _hk_is_carparks(data):
        raise FileRejected(
            f'{path.name}: not a Hong Kong car-park list (expected {{"car_park": [{{"park_id": ...}}]}})'
        )
    out, problems = [], []
    for i, park in enumerate(data["car_park"]):
        code = f"hk_td:{_text(park.get('park_id'))}"
        geom = _point(park.get("longitude"), park.get("latitude"))
        if geom is None:
            problems.append(Problem(i, "latitude/longitude are not numbers", code))
        tags: dict[str, Any] = {}
        for suffix, lang in _HK_LANGS:
            tags[f"name:{lang}"] = park.get(f"name_{suffix}")
            tags[f"addr:full:{lang}"] = park.get(f"displayAddress_{suffix}")
            tags[f"addr:district:{lang}"] = park.get(f"district_{suffix}")
            tags[f"website:{lang}"] = park.get(f"website_{suffix}")
            remark = _text(park.get(f"remark_{suffix}"))
            # Every remark starts with a "Height Limit:" label, often with nothing after it.
            if remark and not (remark.endswith(":") and "\n" not in remark):
                tags[f"description:{lang}"] = remark
        height = park.get("height")
        if isinstance(height, (int, float)) and height > 0:  # 0 means not given
            tags["maxheight"] = f"{height:g}"
        tags["opening_status"] = park.get("opening_status")  # OPEN / open / null, not hours
        tags["image"] = park.get("carpark_photo")
        out.append(
            {
                "code": code,
                "kind": "car_park",
                "name": _text(park.get("name_sc"))
                or _text(park.get("name_tc"))
                or _text(park.get("name_en")),
                "contact": _text(park.get("contactNo")),
                "tags": _drop_none(tags),
                "geometry": geom,
            }
        )
    return _frame(out, "wgs84", problems=problems)


# --- institution lists (CSV + options) ---------------------------------------------------


def load_options(path: str | Path) -> dict[str, Any]:
    """An options file (TOML, or JSON by extension), checked; FileRejected says what is wrong."""
    path = Path(path)
    if not path.exists():
        raise FileRejected(f"{path}: no such options file")
    text = path.read_bytes().decode("utf-8-sig")
    try:
        if path.suffix.lower() == ".json":
            options = json.loads(text)
        else:
            options = tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise FileRejected(f"options {path.name}: cannot parse it: {exc}") from exc
    if not isinstance(options, dict):
        raise FileRejected(
            f"options {path.name}: expected a table of keys, got {type(options).__name__}"
        )
    _check_options(options, path.name)
    return options


def _check_options(options: dict[str, Any], where: str) -> None:
    def fail(message: str) -> NoReturn:
        raise FileRejected(f"options {where}: {message}")

    unknown = [k for k in options if k not in _OPTION_KEYS]
    if unknown:
        fail(f"unknown key {', '.join(map(repr, unknown))}; allowed: {', '.join(_OPTION_KEYS)}")
    for table in ("fields", "kinds", "defaults", "tags"):
        if table in options and not isinstance(options[table], dict):
            fail(f'[{table}] must be a table of "key" = "value"')
        for key, value in (options.get(table) or {}).items():
            if not isinstance(value, str) or not value.strip():
                fail(f"[{table}] {key!r} must be a non-empty string, got {value!r}")
    fields = options.get("fields") or {}
    bad = [k for k in fields if k not in FIELD_KEYS]
    if bad:
        fail(
            f"unknown field {', '.join(map(repr, bad))} in [fields]; allowed: {', '.join(FIELD_KEYS)}"
        )
    missing = [k for k in ("name", "lon", "lat") if k not in fields]
    if missing:
        fail(f"[fields] needs {', '.join(missing)} (the CSV column of each)")
    bad = [k for k in options.get("defaults") or {} if k not in DEFAULT_KEYS]
    if bad:
        fail(
            f"unknown field {', '.join(map(repr, bad))} in [defaults]; allowed: {', '.join(DEFAULT_KEYS)}"
        )
    if "crs" not in options:
        fail("crs is required: wgs84, cgcs2000, gcj02 (AMap/Tencent), bd09 (Baidu) or EPSG:NNNN")
    try:
        parse_crs(options["crs"])
    except UnknownCRS as exc:
        fail(str(exc))
    has_kind, has_field = "kind" in options, "kind_field" in options
    if has_kind == has_field:
        fail(
            'give exactly one of kind = "car_park" (every row) or kind_field = "COLUMN" with [kinds]'
        )
    if has_kind and not (isinstance(options["kind"], str) and _KIND_RE.fullmatch(options["kind"])):
        fail(
            f"kind {options['kind']!r} must be a lower-case identifier such as car_park, sports_ground, toilet"
        )
    if "kinds" in options and not has_field:
        fail("[kinds] maps values of kind_field, but kind_field is not given")
    for raw, kind in (options.get("kinds") or {}).items():
        if not _KIND_RE.fullmatch(kind):
            fail(
                f"[kinds] {raw!r} = {kind!r}: a kind must be a lower-case identifier such as car_park"
            )
    if "code" not in fields and not options.get("code_prefix"):
        fail(
            "without [fields] code the rows are numbered, so code_prefix is required "
            '(e.g. code_prefix = "wz-school-" numbers them wz-school-1, wz-school-2, ...)'
        )
    for key in ("encoding", "code_prefix", "kind_field"):
        if key in options and not isinstance(options[key], str):
            fail(f"{key} must be a string, got {options[key]!r}")


def _read_csv_table(path: Path, encoding: str | None) -> tuple[pd.DataFrame, str | None]:
    """The CSV as strings, and a note if it was not UTF-8."""
    tries = [encoding] if encoding else ["utf-8-sig", "gb18030"]
    for i, enc in enumerate(tries):
        try:
            table = pd.read_csv(path, dtype=str, encoding=enc, keep_default_na=False)
        except UnicodeDecodeError as exc:
            if i + 1 < len(tries):
                continue
            raise FileRejected(
                f"{path.name}: cannot decode it as {enc} ({exc}); set encoding in the options"
            ) from exc
        except LookupError as exc:
            raise FileRejected(f"{path.name}: unknown encoding {enc!r} in the options") from exc
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise FileRejected(f"{path.name}: cannot read it as CSV: {exc}") from exc
        table.columns = [str(c).strip() for c in table.columns]
        note = (
            None
            if enc in ("utf-8-sig", "utf-8") or encoding
            else f"{path.name} read as {enc} (not UTF-8)"
        )
        return table, note
    raise AssertionError("unreachable")


def read_institution_list(
    path: str | Path, options: str | Path | Mapping[str, Any]
) -> gpd.GeoDataFrame:
    """A CSV of institutions' facilities, mapped through options (see the module docstring)."""
    path = Path(path)
    if isinstance(options, Mapping):
        opts = dict(options)
        where = "(given)"
        _check_options(opts, where)
    else:
        where = Path(options).name
        opts = load_options(options)
    if not path.exists():
        raise FileRejected(f"{path}: no such file")
    table, encoding_note = _read_csv_table(path, opts.get("encoding"))
    fields: dict[str, str] = {k: v.strip() for k, v in opts["fields"].items()}
    extra_tags: dict[str, str] = {k: v.strip() for k, v in (opts.get("tags") or {}).items()}
    kind_field = opts.get("kind_field")
    wanted = [(f"[fields] {k}", c) for k, c in fields.items()] + [
        (f"[tags] {k!r}", c) for k, c in extra_tags.items()
    ]
    if kind_field:
        wanted.append(("kind_field", kind_field.strip()))
    absent = [f"{c!r} ({what})" for what, c in wanted if c not in table.columns]
    if absent:
        raise FileRejected(
            f"options {where}: no column {', '.join(absent)} in {path.name}; its columns are "
            + ", ".join(map(repr, table.columns))
        )

    def column(key: str) -> list[str | None]:
        if key not in fields:
            return [None] * len(table)
        return [_text(v) for v in table[fields[key]]]

    kinds = _institution_kinds(table, opts, path, where)
    problems: list[Problem] = []
    codes_raw = column("code")
    prefix = opts.get("code_prefix", "")
    width = len(str(len(table)))
    codes = [
        f"{prefix}{c}"
        if c is not None
        else (f"{prefix}{i + 1:0{width}d}" if "code" not in fields else None)
        for i, c in enumerate(codes_raw)
    ]
    labels = [c or "" for c in codes]

    lon = pd.to_numeric(pd.Series(column("lon"), dtype=object), errors="coerce").to_numpy(
        dtype=float
    )
    lat = pd.to_numeric(pd.Series(column("lat"), dtype=object), errors="coerce").to_numpy(
        dtype=float
    )
    bad_xy = np.isnan(lon) | np.isnan(lat)
    for i in np.flatnonzero(bad_xy):
        problems.append(
            Problem(
                int(i),
                f"{fields['lon']}/{fields['lat']} {table[fields['lon']].iat[i]!r}, {table[fields['lat']].iat[i]!r} are not numbers",
                labels[i],
            )
        )
    points = shapely.points(np.where(bad_xy, 0.0, lon), np.where(bad_xy, 0.0, lat))
    spec = parse_crs(opts["crs"])
    geoms = geometry_to_wgs84(points, spec)
    geoms[bad_xy] = None

    texts = {
        k: column(k)
        for k in ("name", "operator", "access", "fee", "contact", "opening_hours", "hours_text")
    }
    defaults = opts.get("defaults") or {}
    ints: dict[str, list[int | None]] = {}
    for key in INT_COLUMNS:
        values: list[int | None] = []
        for i, raw in enumerate(column(key)):
            try:
                values.append(_whole(raw))
            except _NotWhole:
                problems.append(
                    Problem(
                        i, f"{key} ({fields[key]}) {raw!r} is not a whole number ≥ 0", labels[i]
                    )
                )
                values.append(None)
        ints[key] = values
    tag_values = {key: [_text(v) for v in table[col]] for key, col in extra_tags.items()}

    records = []
    for i in range(len(table)):
        record: dict[str, Any] = {"code": codes[i], "kind": kinds[i], "geometry": geoms[i]}
        for key, values in texts.items():
            record[key] = values[i] if values[i] is not None else _text(defaults.get(key))
        for key, values in ints.items():
            record[key] = values[i]
        record["tags"] = {k: v[i] for k, v in tag_values.items() if v[i] is not None}
        records.append(record)
    notes = [f"coordinates taken as {spec.name} (options {where})"] if spec.epsg != 4326 else []
    if encoding_note:
        notes.append(encoding_note)
    problems.sort(key=lambda p: p.index)
    return _frame(records, spec.name, notes, problems)


def _institution_kinds(
    table: pd.DataFrame, opts: dict[str, Any], path: Path, where: str
) -> list[str | None]:
    if "kind" in opts:
        return [opts["kind"]] * len(table)
    column = opts["kind_field"].strip()
    mapping = opts.get("kinds") or {}
    kinds: list[str | None] = []
    unmapped: dict[str, list[int]] = {}
    for i, raw in enumerate(table[column]):
        value = _text(raw)
        if value is None:
            kinds.append(None)  # the importer reports a row without a kind
        elif value in mapping:
            kinds.append(mapping[value])
        elif _KIND_RE.fullmatch(value):
            kinds.append(value)
        else:
            unmapped.setdefault(value, []).append(i + 1)
            kinds.append(None)
    if unmapped:
        listed = "; ".join(
            f"{v!r} (row{'s' * (len(r) > 1)} {', '.join(map(str, r))})" for v, r in unmapped.items()
        )
        raise FileRejected(
            f"options {where}: values of {column!r} in {path.name} not in [kinds]: {listed}; "
            'add them to [kinds], e.g. "停车场" = "car_park"'
        )
    return kinds


# --- detection -----------------------------------------------------------------------------

_JSON_SNIFF_BYTES: Final = 1 << 16


def detect_and_read(
    path: str | Path, options_path: str | Path | None = None
) -> gpd.GeoDataFrame | None:
    """The standard frame from a facility file we know, or None for the generic importer.

    ``.pbf`` -> OSM; JSON that is ParkAPI / DB BahnPark / HK car parks -> those readers;
    ``.csv`` with an options file -> an institution list. Anything else (a plain GeoJSON
    layer, a GeoPackage, a CSV without options) gives None.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if options_path is not None:
        if suffix != ".csv":
            raise FileRejected(
                f"{path.name}: an options file is for CSV institution lists; this file is {suffix or 'without extension'}"
            )
        return read_institution_list(path, options_path)
    if suffix == ".pbf":
        return read_osm_pbf(path)
    if suffix in (".json", ".geojson") and path.exists():
        with path.open("rb") as handle:
            head = handle.read(_JSON_SNIFF_BYTES).decode("utf-8-sig", errors="ignore")
        markers = ('"lots"', '"_embedded"', '"park_id"', '"active_support"')
        if not any(m in head for m in markers):
            return None  # cheap exit for ordinary (possibly large) GeoJSON layers
        data = _load_json(path)
        if _hk_is_carparks(data):
            return read_hk_carparks(path)
        if _parkapi_format(data) is not None:
            return read_parkapi(path)
    return None


def read_facility_file(
    path: str | Path, options_path: str | Path | None = None
) -> ReadResult | None:
    """detect_and_read as the importer's ReadResult, or None for the generic path.

    Capacity and shared_spaces come as plain ints/None (not Int64) so that the importer's
    per-field checks read them; ``tags`` and ``hours_text`` are kept as columns.
    """
    frame = detect_and_read(path, options_path)
    if frame is None:
        return None
    attrs = dict(frame.attrs)
    plain = frame.copy()
    for column in INT_COLUMNS:
        plain[column] = pd.Series(
            [None if pd.isna(v) else int(v) for v in frame[column]], index=frame.index, dtype=object
        )
    plain.attrs = {}
    return ReadResult(
        plain,
        attrs.get("source_crs", "wgs84"),
        list(attrs.get("problems", [])),
        list(attrs.get("notes", [])),
    )
