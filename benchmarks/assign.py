"""Bulk point-to-grid assignment against geopandas.sjoin and PostGIS, in one run.

    .venv/bin/python benchmarks/assign.py [--grids 10000] [--points 1000000] [--no-postgis]

Generates irregular grid cells (Voronoi cells over a 20 km city near Wuzhou, edges
segmentized to about 23 vertices each) and uniformly random points, then times:

- the peer: ``geopandas.sjoin(points, grids, predicate="within")``
- the project's bulk assignment (``geo.assign.Assigner``, index build included)
- a PostGIS ``ST_Contains`` join with a GiST index (the data is loaded first, untimed)

It checks that the answers agree point for point and prints the ratios. The project's
path runs in a child process so that its peak memory (max RSS) is measured on its own.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time

import geopandas as gpd
import numpy as np
import shapely

ORIGIN = (111.2, 23.4)
SPAN_DEG = 0.2  # about 20 km x 22 km


def make_grids(count: int, seed: int = 1) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    x0, y0 = ORIGIN
    frame = shapely.box(x0, y0, x0 + SPAN_DEG, y0 + SPAN_DEG)
    seeds = shapely.multipoints(np.column_stack([rng.uniform(x0, x0 + SPAN_DEG, count), rng.uniform(y0, y0 + SPAN_DEG, count)]))
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame)), frame)
    # Voronoi cells have ~6 vertices; real grid boundaries follow streets and walls.
    mean_edge = float(np.mean(shapely.length(cells) / (shapely.get_num_coordinates(cells) - 1)))
    cells = shapely.segmentize(cells, mean_edge / 3.7)
    return gpd.GeoDataFrame({"code": [f"G{i:05d}" for i in range(len(cells))]}, geometry=cells, crs=4326)


def make_points(count: int, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x0, y0 = ORIGIN
    return rng.uniform(x0, x0 + SPAN_DEG, count), rng.uniform(y0, y0 + SPAN_DEG, count)


def run_sjoin(grids: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray) -> tuple[float, np.ndarray]:
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=4326)
    start = time.perf_counter()
    joined = gpd.sjoin(points, grids, predicate="within", how="left")
    seconds = time.perf_counter() - start
    codes = joined.groupby(level=0)["code"].min().reindex(range(len(lon))).to_numpy()
    return seconds, codes


def child_main(grid_count: int, point_count: int, index_file: str) -> None:
    """Runs in a child process: the project's path, timed, with its own peak memory.

    Cold: build the index from the polygons (and persist it to ``index_file``). Warm:
    load the persisted index, as ``gridmap assign`` does for a layer version it has seen.
    """
    import pickle
    from pathlib import Path

    from geo.assign import Assigner, Layer

    lon, lat = make_points(point_count)
    cached = Path(index_file)
    if cached.exists():
        start = time.perf_counter()
        assigner = pickle.loads(cached.read_bytes())
    else:
        grids = make_grids(grid_count)
        start = time.perf_counter()
        assigner = Assigner({"grid": Layer(list(grids.code), list(grids.code), list(grids.geometry))}, snap_metres=0)
    built = time.perf_counter() - start
    result = assigner.assign(lon, lat)
    seconds = time.perf_counter() - start
    if not cached.exists():  # persist for the warm run, outside the timing
        cached.write_bytes(pickle.dumps(assigner, protocol=pickle.HIGHEST_PROTOCOL))
    peak_mb = _peak_rss_mb()
    sys.stdout.write(json.dumps({"seconds": seconds, "build": built, "peak_mb": peak_mb,
                                 "codes": result["grid_code"].tolist()}))


def _peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: on Linux ru_maxrss survives
    exec, so a child would report its parent's peak."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_project(grid_count: int, point_count: int, index_file: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--grids", str(grid_count), "--points", str(point_count),
         "--index-file", index_file],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def run_postgis(url: str, grids: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray) -> tuple[float, np.ndarray]:
    import psycopg

    from data.db import create_database

    create_database(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        conn.execute("DROP TABLE IF EXISTS bench_grids, bench_points")
        conn.execute("CREATE TABLE bench_grids (code text, geom geometry(MultiPolygon, 4326))")
        conn.execute("CREATE TABLE bench_points (id int, x float8, y float8)")
        with conn.cursor().copy("COPY bench_grids (code, geom) FROM STDIN") as copy:
            for code, geom in zip(grids.code, grids.geometry, strict=True):
                copy.write_row((code, f"SRID=4326;{shapely.MultiPolygon([geom]).wkt}"))
        buffer = io.StringIO()
        np.savetxt(buffer, np.column_stack([np.arange(len(lon)), lon, lat]), fmt=["%d", "%.10f", "%.10f"], delimiter=",")
        with conn.cursor().copy("COPY bench_points (id, x, y) FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(buffer.getvalue())
        conn.execute("ALTER TABLE bench_points ADD COLUMN geom geometry(Point, 4326)")
        conn.execute("UPDATE bench_points SET geom = ST_SetSRID(ST_MakePoint(x, y), 4326)")
        conn.execute("CREATE INDEX ON bench_grids USING gist (geom)")
        conn.execute("CREATE INDEX ON bench_points USING gist (geom)")
        conn.execute("ANALYZE bench_grids")
        conn.execute("ANALYZE bench_points")
        start = time.perf_counter()
        rows = conn.execute(
            "SELECT p.id, min(g.code) FROM bench_points p JOIN bench_grids g "
            "ON ST_Contains(g.geom, p.geom) GROUP BY p.id"
        ).fetchall()
        seconds = time.perf_counter() - start
        conn.execute("DROP TABLE bench_grids, bench_points")
    codes = np.full(len(lon), None, dtype=object)
    for point_id, code in rows:
        codes[point_id] = code
    return seconds, codes


def agreement(a: np.ndarray, b: np.ndarray) -> str:
    a = np.array([x if isinstance(x, str) else None for x in a], dtype=object)
    b = np.array([x if isinstance(x, str) else None for x in b], dtype=object)
    differ = int((a != b).sum())
    return "identical" if differ == 0 else f"{differ} differ"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--postgis-url", default="postgresql://postgres@127.0.0.1:5432/gridmap_bench")
    parser.add_argument("--no-postgis", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--index-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.grids, args.points, args.index_file)
        return
    grids = make_grids(args.grids)
    lon, lat = make_points(args.points)
    vertices = shapely.get_num_coordinates(grids.geometry.values) - 1
    print(f"{len(grids):,} grids ({vertices.mean():.1f} vertices on average), {len(lon):,} points")
    sjoin_s, sjoin_codes = run_sjoin(grids, lon, lat)
    print(f"geopandas.sjoin(within)           {sjoin_s:7.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        index_file = f"{tmp}/index.pickle"
        cold = run_project(args.grids, args.points, index_file)
        warm = run_project(args.grids, args.points, index_file)
    ours, ours_codes = warm, np.array(warm["codes"], dtype=object)
    for label, run, what in (("cold", cold, "index build"), ("warm", warm, "index load")):
        codes = np.array(run["codes"], dtype=object)
        print(f"gridmap bulk assignment {label} {run['seconds']:7.2f} s ({what} {run['build']:.2f} s, "
              f"peak RSS {run['peak_mb']:.0f} MB)  -> {sjoin_s / run['seconds']:.1f}x faster than sjoin; "
              f"answers vs sjoin: {agreement(codes, sjoin_codes)}")
    if not args.no_postgis:
        pg_s, pg_codes = run_postgis(args.postgis_url, grids, lon, lat)
        print(f"PostGIS ST_Contains join          {pg_s:7.2f} s  -> {pg_s / ours['seconds']:.1f}x slower than gridmap; "
              f"answers vs gridmap: {agreement(pg_codes, ours_codes)}")


if __name__ == "__main__":
    main()
