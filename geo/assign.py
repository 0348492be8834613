"""Point-to-grid assignment: the rules, written down once and used by every code path.

The rules (issue "Point-to-grid assignment"):

1. A point goes to the grid whose polygon covers it (interior or boundary).
2. A point on a shared edge or vertex is covered by several grids; it goes to the one
   with the **smallest code** (plain string order). Match kind ``boundary``. The same
   tie-break applies to overlapping grids in faulty data and to compounds.
3. A point inside no grid but within ``snap_metres`` of one goes to the nearest grid
   (distance on the WGS84 ellipsoid; equally near grids: smallest code). Match kind
   ``snapped``, with the distance.
4. Anything else is ``outside``: still recorded, with the smallest enclosing
   higher-level area (community, else sub-district, else district) if there is one.
5. A point that lies where grids overlap (faulty data: covered by two or more grids and
   inside at least one) keeps its match kind and is flagged ``overlap``, so that a
   dispatcher knows the answer rests on faulty data.

The result carries the chain grid -> community -> sub-district -> district (codes and
names, following each area's parent code), the compound covering the point if any, the
match kind and the layer version used. The SQL path in data/assignment.py implements the
same rules in the database; tests/test_assign_agreement.py checks they agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
from shapely.geometry.base import BaseGeometry

from geo.area_index import NO_AREA, AreaIndex

INSIDE, BOUNDARY, SNAPPED, OUTSIDE = "inside", "boundary", "snapped", "outside"
MATCH_KINDS = (INSIDE, BOUNDARY, SNAPPED, OUTSIDE)
CHAIN = ("grid", "community", "subdistrict", "district")
COLUMNS: tuple[str, ...] = (
    "match",
    "overlap",
    *(f"{level}_{what}" for level in CHAIN for what in ("code", "name")),
    "compound_code",
    "compound_name",
    "distance_m",
    "layer_version",
)


@dataclass(frozen=True)
class Layer:
    """The areas of one level (or the compounds) that assignment looks in."""

    codes: Sequence[str]
    names: Sequence[str]
    geoms: Sequence[BaseGeometry]
    parents: Sequence[str | None] = ()


@dataclass
class Assigner:
    """Assigns points to grids and their chain of areas by the rules above."""

    layers: dict[str, Layer]  # keyed by level: grid, community, subdistrict, district
    compounds: Layer | None = None
    snap_metres: float = 50.0
    layer_version: str = ""
    _indexes: dict[str, AreaIndex] = field(init=False, repr=False)
    _names: dict[str, dict[str, str]] = field(init=False, repr=False)
    _parents: dict[str, dict[str, str | None]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._indexes = {lvl: AreaIndex(lay.codes, lay.geoms) for lvl, lay in self.layers.items()}
        self._names = {lvl: dict(zip(lay.codes, lay.names, strict=True)) for lvl, lay in self.layers.items()}
        self._parents = {
            lvl: dict(zip(lay.codes, lay.parents or [None] * len(lay.codes), strict=True))
            for lvl, lay in self.layers.items()
        }
        # Each area's whole chain, resolved once, so that a million points cost one
        # array lookup per column instead of a walk up the hierarchy each.
        self._chain_tables = {lvl: self._chain_table(lvl) for lvl in self._indexes}
        self._categories, self._chain_codes = _encode(self._chain_tables)
        self._compounds = (
            AreaIndex(self.compounds.codes, self.compounds.geoms) if self.compounds else None
        )
        self._compound_names = (
            dict(zip(self.compounds.codes, self.compounds.names, strict=True)) if self.compounds else {}
        )

    def _chain_table(self, level: str) -> dict[str, npt.NDArray[np.object_]]:
        codes = self._indexes[level].codes
        table = {f"{lvl}_{w}": np.full(len(codes), None, dtype=object) for lvl in CHAIN for w in ("code", "name")}
        for i, code in enumerate(codes):
            for lvl, chain_code in self._walk_up(level, str(code)):
                table[f"{lvl}_code"][i] = chain_code
                table[f"{lvl}_name"][i] = self._names[lvl][chain_code]
        return table

    def assign(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> pd.DataFrame:
        """One row per point, in input order, with the columns in ``COLUMNS``."""
        match, overlap, chain, distance, compound = self._assign_codes(lon, lat)
        # Categoricals: a million rows of a few thousand distinct codes cost integer
        # arrays, not a million Python strings. Missing values read back as NaN.
        frame = pd.DataFrame({"match": pd.Categorical.from_codes(match, MATCH_KINDS), "overlap": overlap})
        for column, codes in chain.items():
            frame[column] = pd.Categorical.from_codes(codes, self._categories[column])
        frame["compound_code"], frame["compound_name"] = self._compound_columns(compound)
        frame["distance_m"] = distance
        frame["layer_version"] = self.layer_version
        return frame[list(COLUMNS)]

    def assign_one(self, lon: float, lat: float) -> dict[str, object]:
        """The same answer for one point, as a dict (what the API returns), without pandas."""
        match, overlap, chain, distance, compound = self._assign_codes([lon], [lat])
        row: dict[str, object] = {"match": MATCH_KINDS[int(match[0])], "overlap": bool(overlap[0])}
        for column, codes in chain.items():
            row[column] = self._categories[column][codes[0]] if codes[0] >= 0 else None
        found = int(compound[0])
        row["compound_code"] = str(self._compounds.codes[found]) if found >= 0 and self._compounds is not None else None
        row["compound_name"] = self._compound_names.get(row["compound_code"]) if row["compound_code"] else None  # type: ignore[arg-type]
        row["distance_m"] = None if np.isnan(distance[0]) else round(float(distance[0]), 2)
        row["layer_version"] = self.layer_version
        return {column: row[column] for column in COLUMNS}

    def _assign_codes(
        self, lon: npt.ArrayLike, lat: npt.ArrayLike
    ) -> tuple[
        npt.NDArray[np.int8], npt.NDArray[np.bool_], dict[str, npt.NDArray[np.int32]],
        npt.NDArray[np.float64], npt.NDArray[np.int64],
    ]:
        """The rules, as integer codes: match kind, overlap flag, chain columns, distance,
        compound index."""
        lon = np.asarray(lon, dtype=float).ravel()
        lat = np.asarray(lat, dtype=float).ravel()
        n = len(lon)
        match = np.full(n, MATCH_KINDS.index(OUTSIDE), dtype=np.int8)
        overlap = np.zeros(n, dtype=bool)
        distance = np.full(n, np.nan)
        chain = {column: np.full(n, -1, dtype=np.int32) for column in self._categories}
        started = np.zeros(n, dtype=bool)

        def start_chain(level: str, rows: npt.NDArray[np.int64], areas: npt.NDArray[np.int64]) -> None:
            for column, values in self._chain_codes[level].items():
                chain[column][rows] = values[areas]
            started[rows] = True

        grids = self._indexes.get("grid")
        if grids is not None and len(grids):
            found, on_edge, overlap = grids.cover_flagged(lon, lat)
            hit = np.flatnonzero(found != NO_AREA)
            match[hit] = np.where(on_edge[hit], MATCH_KINDS.index(BOUNDARY), MATCH_KINDS.index(INSIDE))
            start_chain("grid", hit, found[hit])
            miss = np.flatnonzero(found == NO_AREA)
            near, dist = grids.nearest_within(lon[miss], lat[miss], self.snap_metres)
            snapped = near != NO_AREA
            match[miss[snapped]], distance[miss[snapped]] = MATCH_KINDS.index(SNAPPED), dist[snapped]
            start_chain("grid", miss[snapped], near[snapped])
        for level in CHAIN[1:]:  # no grid: the smallest enclosing higher area starts the chain
            index, todo = self._indexes.get(level), np.flatnonzero(~started)
            if index is not None and len(index) and len(todo):
                found, _ = index.cover(lon[todo], lat[todo])
                hit = found != NO_AREA
                start_chain(level, todo[hit], found[hit])
        compound = np.full(n, NO_AREA, dtype=np.int64)
        if self._compounds is not None and len(self._compounds):
            compound, _ = self._compounds.cover(lon, lat)
        return match, overlap, chain, distance, compound

    def _walk_up(self, level: str, code: str | None) -> list[tuple[str, str]]:
        chain = []
        for lvl in CHAIN[CHAIN.index(level):]:
            if code is None or code not in self._names.get(lvl, {}):
                break  # a parent code that names no loaded area ends the chain
            chain.append((lvl, code))
            code = self._parents.get(lvl, {}).get(code)
        return chain

    def _compound_columns(self, found: npt.NDArray[np.int64]) -> tuple[pd.Categorical, pd.Categorical]:
        codes = list(self._compounds.codes) if self._compounds is not None else []
        names, name_codes = _unique([self._compound_names[c] for c in codes])
        name_codes = np.append(name_codes, -1)  # NO_AREA (-1) indexes this last entry
        return (
            pd.Categorical.from_codes(found.astype(np.int32), codes),
            pd.Categorical.from_codes(name_codes[found].astype(np.int32), names),
        )


def _unique(values: Sequence[object]) -> tuple[list[object], npt.NDArray[np.int32]]:
    """Distinct non-missing values and each value's position among them (-1 if missing)."""
    categories: dict[object, int] = {}
    codes = np.array([-1 if v is None else categories.setdefault(v, len(categories)) for v in values], dtype=np.int32)
    return list(categories), codes


def _encode(
    tables: dict[str, dict[str, npt.NDArray[np.object_]]],
) -> tuple[dict[str, list[object]], dict[str, dict[str, npt.NDArray[np.int32]]]]:
    """Per-column categories shared by all levels, and each level's table as codes into them."""
    columns = [f"{lvl}_{w}" for lvl in CHAIN for w in ("code", "name")]
    categories: dict[str, list[object]] = {}
    codes: dict[str, dict[str, npt.NDArray[np.int32]]] = {level: {} for level in tables}
    for column in columns:
        seen: dict[object, int] = {}
        for level, table in tables.items():
            codes[level][column] = np.array(
                [-1 if v is None else seen.setdefault(v, len(seen)) for v in table[column]], dtype=np.int32
            )
        categories[column] = list(seen)
    return categories, codes


def records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Rows as plain dicts with None for missing values (what JSON and comparisons want)."""
    out = []
    for row in frame.astype(object).to_dict("records"):
        out.append({k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()})
    return out
