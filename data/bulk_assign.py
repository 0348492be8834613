"""``gridmap assign``: assign every point of a file, in process or on a Dask cluster.

Both engines run the same ``geo.assign.Assigner`` (the Dask workers get a pickled copy),
so they give the same answers row for row.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from data.readers import read_features
from geo.assign import COLUMNS, Assigner

ID_CANDIDATES = ("id", "ref", "code", "srnumber", "service_request_id", "unique key")


def read_points(
    path: Path, crs: str | None = None, lon_field: str | None = None, lat_field: str | None = None,
    id_field: str | None = None,
) -> pd.DataFrame:
    """id, lon, lat (WGS84) for every input row, in input order; unusable points get NaN."""
    read = read_features(path, crs=crs, lon_field=lon_field, lat_field=lat_field)
    frame = read.frame
    geoms = np.asarray(frame.geometry.values, dtype=object)
    kinds = shapely.get_type_id(geoms)
    usable = kinds == shapely.GeometryType.POINT
    lon, lat = np.full(len(frame), np.nan), np.full(len(frame), np.nan)
    lon[usable], lat[usable] = shapely.get_x(geoms[usable]), shapely.get_y(geoms[usable])
    column = id_field or next((c for c in frame.columns if str(c).lower() in ID_CANDIDATES), None)
    if id_field is not None and id_field not in frame.columns:
        raise ValueError(f"{path.name}: no column {id_field!r} for --id-field; the columns are {', '.join(map(str, frame.columns))}")
    ids = frame[column].astype(str).to_numpy() if column else np.arange(1, len(frame) + 1).astype(str)
    return pd.DataFrame({"id": ids, "lon": lon, "lat": lat})


def assign_local(
    assigner: Assigner, points: pd.DataFrame, chunk: int = 250_000,
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
    assigner: Assigner, points: pd.DataFrame, scheduler: str | None = None, partitions: int | None = None
) -> pd.DataFrame:
    """Assign on Dask: a cluster at ``scheduler`` (tcp://host:8786), or a local one."""
    import dask_geopandas
    import geopandas as gpd
    from distributed import Client, LocalCluster

    cluster = None if scheduler else LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(scheduler or cluster)
    try:
        geo = gpd.GeoDataFrame(points, geometry=gpd.points_from_xy(points["lon"], points["lat"]), crs=4326)
        frame = dask_geopandas.from_geopandas(geo, npartitions=partitions or max(2, len(points) // 250_000))
        shared = client.scatter(assigner, broadcast=True)  # ship the index once per worker
        meta = _assign_part(points.iloc[:0], assigner)
        # Partitions keep the input order (no spatial shuffle), so rows come back in order.
        return frame.map_partitions(_assign_part, shared, meta=meta).compute().reset_index(drop=True)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def write_assignments(result: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    result[["id", "lon", "lat", *COLUMNS]].to_csv(out, index=False, float_format="%.7f")
