"""Vector tile latency over the demo city at zoom 14, on SpatiaLite and PostGIS.

    .venv/bin/python benchmarks/tiles.py [--zoom 14] [--rounds 3]

Loads the demo city into a fresh SpatiaLite file and a fresh PostGIS database, then asks
the app (in process, through FastAPI's TestClient, so routing, the version lookup and the
ETag are included) for every tile of every layer that covers the city's box. "cold" empties
the tile cache before each round; "cached" repeats the requests with the cache warm.
Prints p50 and p99 per backend and layer, and how many tiles hold features (the city is
an ellipse, so the corners of its box are empty: 204 No Content).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import geopandas  # noqa: F401  (before SpatiaLite: see data/db.py)
import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.routes import tiles as tile_routes
from data.db import make_engine, recreate_database
from data.demo import load_demo_city
from data.migrate import upgrade
from data.settings import Settings
from data.tiles import LAYERS, tiles_covering

CITY = (111.187, 23.397, 111.383, 23.533)  # the demo city's box, lon/lat


def city_tiles(z: int) -> list[tuple[int, int, int]]:
    return [(t.z, t.x, t.y) for t in tiles_covering(CITY, z)]


def load(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    load_demo_city(engine)
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    engine.dispose()


def time_requests(client: TestClient, paths: list[str]) -> tuple[list[float], list[int]]:
    timings, sizes = [], []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code in (200, 204), (path, response.status_code, response.text)
        sizes.append(len(response.content))
    return timings, sizes


def report(backend: str, layer: str, mode: str, timings: list[float], sizes: list[int]) -> None:
    p50, p99 = np.percentile(timings, [50, 99])
    filled = [size for size in sizes if size]
    mean_kib = np.mean(filled) / 1024 if filled else 0.0
    print(f"{backend:<10} {layer:<12} {mode:<6} {len(timings):>4} requests  p50 {p50:6.2f} ms  "
          f"p99 {p99:6.2f} ms  ({len(filled)}/{len(sizes)} tiles not empty, {mean_kib:.1f} KiB each)")


def bench(backend: str, url: str, data_dir: Path, tiles: list[tuple[int, int, int]], rounds: int) -> None:
    app = create_app(Settings(database_url=url, data_dir=data_dir, escalate_every_seconds=0))
    if not any(getattr(route, "path", "").startswith("/tiles") for route in app.routes):
        app.include_router(tile_routes.router)
    with TestClient(app) as client:
        client.get("/tiles/grids/0/0/0.mvt")  # warm up connections and imports
        for layer in LAYERS:
            paths = [f"/tiles/{layer}/{z}/{x}/{y}.mvt" for z, x, y in tiles]
            cold: list[float] = []
            cached: list[float] = []
            sizes: list[int] = []
            for _ in range(rounds):
                tile_routes.tile_cache(app).clear()
                timings, sizes = time_requests(client, paths)
                cold += timings
                cached += time_requests(client, paths)[0]
            report(backend, layer, "cold", cold, sizes)
            report(backend, layer, "cached", cached, sizes)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--zoom", type=int, default=14)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgis-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_bench_tiles")
    args = parser.parse_args()
    tiles = city_tiles(args.zoom)
    print(f"{len(tiles)} tiles at zoom {args.zoom} cover the demo city; {args.rounds} rounds each")
    with tempfile.TemporaryDirectory() as tmp:
        recreate_database(args.postgis_url)
        for backend, url in (("SpatiaLite", f"sqlite:///{Path(tmp) / 'bench.sqlite'}"),
                             ("PostGIS", args.postgis_url)):
            started = time.perf_counter()
            load(url)
            print(f"{backend}: demo city loaded in {time.perf_counter() - started:.1f} s")
            bench(backend, url, Path(tmp), tiles, args.rounds)


if __name__ == "__main__":
    main()
