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
        self._compounds = (
            AreaIndex(self.compounds.codes, self.compounds.geoms) if self.compounds else None
        )
        self._compound_names = (
            dict(zip(self.compounds.codes, self.compounds.names, strict=True)) if self.compounds else {}
        )

    def assign(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> pd.DataFrame:
        """One row per point, in input order, with the columns in ``COLUMNS``."""
        lon = np.asarray(lon, dtype=float).ravel()
        lat = np.asarray(lat, dtype=float).ravel()
        n = len(lon)
        match = np.full(n, OUTSIDE, dtype=object)
        distance = np.full(n, np.nan)
        start_level = np.full(n, None, dtype=object)  # level whose area starts the chain
        start_code = np.full(n, None, dtype=object)
        grids = self._indexes.get("grid")
        if grids is not None and len(grids):
            found, on_edge = grids.cover(lon, lat)
            hit = found != NO_AREA
            match[hit] = np.where(on_edge[hit], BOUNDARY, INSIDE)
            start_level[hit], start_code[hit] = "grid", grids.codes[found[hit]]
            miss = np.flatnonzero(~hit)
            near, dist = grids.nearest_within(lon[miss], lat[miss], self.snap_metres)
            snapped = near != NO_AREA
            rows = miss[snapped]
            match[rows], distance[rows] = SNAPPED, dist[snapped]
            start_level[rows], start_code[rows] = "grid", grids.codes[near[snapped]]
        self._fall_back(lon, lat, start_level, start_code)
        frame = self._chains(start_level, start_code)
        frame.insert(0, "match", pd.Series(match, dtype=object))
        codes, names = self._compound(lon, lat)
        frame["compound_code"] = pd.Series(codes, dtype=object)
        frame["compound_name"] = pd.Series(names, dtype=object)
        frame["distance_m"] = distance
        frame["layer_version"] = self.layer_version
        return frame[list(COLUMNS)]

    def assign_one(self, lon: float, lat: float) -> dict[str, object]:
        """The same answer for one point, as a dict (what the API returns)."""
        row = self.assign([lon], [lat]).iloc[0].to_dict()
        row["distance_m"] = None if pd.isna(row["distance_m"]) else round(float(row["distance_m"]), 2)
        return row

    def _fall_back(
        self, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64],
        start_level: npt.NDArray[np.object_], start_code: npt.NDArray[np.object_],
    ) -> None:
        """Points with no grid start their chain at the smallest enclosing higher area."""
        for level in CHAIN[1:]:
            index = self._indexes.get(level)
            todo = np.flatnonzero(start_level == None)
            if index is None or not len(index) or not len(todo):
                continue
            found, _ = index.cover(lon[todo], lat[todo])
            hit = found != NO_AREA
            start_level[todo[hit]], start_code[todo[hit]] = level, index.codes[found[hit]]

    def _chains(
        self, start_level: npt.NDArray[np.object_], start_code: npt.NDArray[np.object_]
    ) -> pd.DataFrame:
        """Codes and names up the hierarchy, resolved once per distinct starting area."""
        columns = {f"{lvl}_{w}": np.full(len(start_level), None, dtype=object) for lvl in CHAIN for w in ("code", "name")}
        keys = pd.Series(list(zip(start_level, start_code, strict=True)), dtype=object)
        for (level, code), rows in keys.groupby(keys, sort=False).indices.items():
            if level is None:
                continue
            for lvl, chain_code in self._walk_up(level, code):
                columns[f"{lvl}_code"][rows] = chain_code
                columns[f"{lvl}_name"][rows] = self._names.get(lvl, {}).get(chain_code)
        return pd.DataFrame(columns, dtype=object)  # object: missing stays None, not NaN

    def _walk_up(self, level: str, code: str | None) -> list[tuple[str, str]]:
        chain = []
        for lvl in CHAIN[CHAIN.index(level):]:
            if code is None or code not in self._names.get(lvl, {}):
                break  # a parent code that names no loaded area ends the chain
            chain.append((lvl, code))
            code = self._parents.get(lvl, {}).get(code)
        return chain

    def _compound(self, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.object_]]:
        codes = np.full(len(lon), None, dtype=object)
        names = np.full(len(lon), None, dtype=object)
        if self._compounds is not None and len(self._compounds):
            found, _ = self._compounds.cover(lon, lat)
            hit = found != NO_AREA
            codes[hit] = self._compounds.codes[found[hit]]
            names[hit] = [self._compound_names[c] for c in codes[hit]]
        return codes, names
