"""``gridmap assign``: assign every point of a file, in process or on a Dask cluster.

Both engines run the same ``geo.assign.Assigner`` (the Dask workers get a pickled copy),
so they give the same answers row for row.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from data.readers import CrsUnknown, file_format, read_features
from geo.assign import CHAIN, COLUMNS, Assigner
from geo.swap import SWAPPED, swapped_rows

ID_CANDIDATES = ("id", "ref", "code", "srnumber", "service_request_id", "unique key", "编号")
CRS_CHOICES = "wgs84, cgcs2000, gcj02 (AMap/Gaode, Tencent), bd09 (Baidu) or EPSG:NNNN"
# The rows of a file that must look swapped before assign stops instead of flagging them.
MOSTLY = 0.5


class CrsRequired(CrsUnknown):
    """The points file does not say its coordinate system and none was given."""


def read_points(
    path: Path,
    crs: str | None = None,
    lon_field: str | None = None,
    lat_field: str | None = None,
    id_field: str | None = None,
    encoding: str | None = None,
    fallback_crs: str | None = None,
    require_crs: bool = False,
) -> pd.DataFrame:
    """id, lon, lat (WGS84) for every input row, in input order; unusable points get NaN.

    Also ``given_lon``/``given_lat``, the coordinates as the file gives them, in the CRS
    named by ``attrs["crs"]`` (for the swap check). With ``require_crs``, a file that does
    not carry its CRS (a CSV; a shapefile without .prj) needs ``crs`` or ``fallback_crs``:
    nothing is taken as WGS84 unasked.
    """
    if require_crs and crs is None and fallback_crs is None and file_format(path) == "CSV":
        raise CrsRequired(
            f"{path.name}: a CSV file does not say which coordinate system its longitudes and "
            f"latitudes are in; pass --crs ({CRS_CHOICES}) or set GRIDMAP_ASSIGN_CRS. Phone "
            "apps and AMap give gcj02, Baidu gives bd09, GPS receivers give wgs84"
        )
    try:
        read = read_features(
            path,
            crs=crs,
            lon_field=lon_field,
            lat_field=lat_field,
            encoding=encoding,
            fallback_crs=fallback_crs,
            keep_source=True,
        )
    except CrsUnknown as exc:
        raise CrsRequired(f"{exc}, or set GRIDMAP_ASSIGN_CRS") from exc
    frame = read.frame
    geoms = np.asarray(frame.geometry.values, dtype=object)
    kinds = shapely.get_type_id(geoms)
    usable = kinds == shapely.GeometryType.POINT
    lon, lat = np.full(len(frame), np.nan), np.full(len(frame), np.nan)
    lon[usable], lat[usable] = shapely.get_x(geoms[usable]), shapely.get_y(geoms[usable])
    given_lon, given_lat = np.full(len(frame), np.nan), np.full(len(frame), np.nan)
    assert read.source is not None  # keep_source
    source = np.asarray(read.source, dtype=object)
    given = shapely.get_type_id(source) == shapely.GeometryType.POINT
    given_lon[given], given_lat[given] = shapely.get_x(source[given]), shapely.get_y(source[given])
    column = id_field or next((c for c in frame.columns if str(c).lower() in ID_CANDIDATES), None)
    if id_field is not None and id_field not in frame.columns:
        raise ValueError(
            f"{path.name}: no column {id_field!r} for --id-field; the columns are {', '.join(map(str, frame.columns))}"
        )
    ids = (
        frame[column].astype(str).to_numpy() if column else np.arange(1, len(frame) + 1).astype(str)
    )
    points = pd.DataFrame(
        {"id": ids, "lon": lon, "lat": lat, "given_lon": given_lon, "given_lat": given_lat}
    )
    points.attrs["crs"] = read.source_crs
    points.attrs["crs_origin"] = _crs_origin(path, crs, fallback_crs, read.notes)
    points.attrs["notes"] = read.notes
    return points


def _crs_origin(path: Path, crs: str | None, fallback: str | None, notes: list[str]) -> str:
    """Where the CRS of the points came from, for the summary line."""
    if crs is not None:
        return "--crs"
    if file_format(path) == "CSV":
        return "GRIDMAP_ASSIGN_CRS" if fallback is not None else "the default, WGS84"
    if any("does not say its CRS" in note for note in notes):
        return "GRIDMAP_ASSIGN_CRS"
    return "the file"


def looks_swapped(
    assigner: Assigner, points: pd.DataFrame, result: pd.DataFrame
) -> npt.NDArray[np.bool_]:
    """The rows in no area as given whose swapped point falls in one (geo/swap.py's rule)."""
    codes = [f"{level}_code" for level in CHAIN]
    in_nothing = result[codes].isna().all(axis=1).to_numpy()

    def falls_in(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        return assigner.assign(x, y)[codes].notna().any(axis=1).to_numpy()

    return swapped_rows(
        points["given_lon"], points["given_lat"], points.attrs["crs"], in_nothing, falls_in
    )


def mostly_swapped(points: pd.DataFrame, swapped: npt.NDArray[np.bool_]) -> bool:
    """More than half of the rows with coordinates look swapped: the whole file is."""
    with_coordinates = int(points["given_lon"].notna().sum())
    return with_coordinates > 0 and swapped.sum() > MOSTLY * with_coordinates


def assign_local(
    assigner: Assigner,
    points: pd.DataFrame,
    chunk: int = 250_000,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Assign in this process, chunk by chunk (bounded memory, visible progress)."""
    parts = []
    for start in range(0, len(points), chunk):
        part = points.iloc[start : start + chunk]
        parts.append(_assign_part(part, assigner))
        if progress:
            progress(len(part))
    return pd.concat(parts, ignore_index=True) if parts else _assign_part(points, assigner)


def _assign_part(part: pd.DataFrame, assigner: Assigner) -> pd.DataFrame:
    result = assigner.assign(part["lon"].to_numpy(), part["lat"].to_numpy())
    result.index = part.index
    return pd.concat([part[["id", "lon", "lat"]], result], axis=1)


def assign_dask(
    assigner: Assigner,
    points: pd.DataFrame,
    scheduler: str | None = None,
    partitions: int | None = None,
) -> pd.DataFrame:
    """Assign on Dask: a cluster at ``scheduler`` (tcp://host:8786), or a local one."""
    import dask_geopandas
    import geopandas as gpd
    from distributed import Client, LocalCluster

    cluster = (
        None
        if scheduler
        else LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    )
    client = Client(scheduler or cluster)
    try:
        geo = gpd.GeoDataFrame(
            points, geometry=gpd.points_from_xy(points["lon"], points["lat"]), crs=4326
        )
        frame = dask_geopandas.from_geopandas(
            geo, npartitions=partitions or max(2, len(points) // 250_000)
        )
        shared = client.scatter(assigner, broadcast=True)  # ship the index once per worker
        meta = _assign_part(points.iloc[:0], assigner)
        # Partitions keep the input order (no spatial shuffle), so rows come back in order.
        return (
            frame.map_partitions(_assign_part, shared, meta=meta).compute().reset_index(drop=True)
        )
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def write_assignments(
    result: pd.DataFrame, out: Path, swapped: npt.NDArray[np.bool_] | None = None
) -> None:
    """The output CSV; ``note`` flags the rows whose lon and lat look swapped."""
    out.parent.mkdir(parents=True, exist_ok=True)
    table = result[["id", "lon", "lat", *COLUMNS]].copy()
    table["note"] = np.where(swapped, SWAPPED, "") if swapped is not None else ""
    table.to_csv(out, index=False, float_format="%.7f")
