"""The map pages against the naive page (every feature embedded as GeoJSON), same run.

    .venv/bin/python benchmarks/maps.py [--scale demo|city] [--backend spatialite|postgis] [--rounds 3]

Loads the demo city at the chosen scale into a fresh database (the city scale is kept in
/tmp/gridmap-bench-<scale>.sqlite between runs: loading it is the slow part), serves the
app with uvicorn and opens each page in Debian's Chromium, with every request off
127.0.0.1 blocked. For each page it prints:

- the HTML's size and the bytes the browser fetched until the map was drawn;
- the time from navigation to "drawn": the page's panel saying data-status="ready"
  (every visible tile loaded and coloured, or the clusters drawn); for the naive page,
  the load event (its script adds every embedded feature before it), plus a paint;
- tile latency p50/p99 of the tiles the planner asked for, cold (cache emptied) and warm.

The naive peer is benchmarks/naive_map.py: the areas of every level, the compounds, the
facilities and the issues, embedded in the page as GeoJSON, as folium makes it by default.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import geopandas  # before SpatiaLite: see data/db.py
import httpx
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.app import create_app
from benchmarks.naive_map import render_city_map
from data.db import make_engine, recreate_database, session_factory
from data.demo import load_demo_city
from data.importer import today
from data.migrate import upgrade
from data.models import Compound, Facility, Issue
from data.repository import areas_frame, geom_column, load_geom, table_frame
from data.settings import Settings
from geo.areas import LEVELS
from tests.browser import chromium, live_server, watched_page

VIEWPORT = {"width": 1280, "height": 800}


def database(scale: str, backend: str) -> str:
    if backend == "postgis":
        url = os.environ.get("GRIDMAP_BENCH_POSTGIS_URL", f"postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_bench_{scale}")
        recreate_database(url)
        fresh = True
    else:
        path = Path(f"/tmp/gridmap-bench-{scale}.sqlite")
        fresh = not path.exists()
        url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    if fresh:
        started = time.perf_counter()
        load_demo_city(engine, scale=scale) if scale != "demo" else load_demo_city(engine)
        if backend == "postgis":
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        print(f"loaded the {scale} city into {backend} in {time.perf_counter() - started:.1f} s")
    engine.dispose()
    return url


def naive_page(url: str) -> str:
    """Everything the planner shows, embedded: areas, compounds, facilities and issues."""
    engine = make_engine(url)
    with session_factory(engine)() as session:
        areas = {level: areas_frame(session, level, today()) for level in LEVELS}
        compounds = table_frame(session, Compound.__table__, ["code", "name"])
        facilities = table_frame(session, Facility.__table__, ["code", "name", "kind", "opening_hours"])
        rows = session.execute(select(Issue.ref, Issue.status, geom_column(Issue.__table__))).all()
        issues = geopandas.GeoDataFrame({"code": [r[0] for r in rows], "name": [r[1] for r in rows]},
                                        geometry=[load_geom(r[2]) for r in rows], crs="EPSG:4326")
    engine.dispose()
    return render_city_map(areas, compounds, facilities, points={"issues": issues}, title="naive")


def draw(browser: Any, url: str, ready: str) -> dict[str, float]:
    context = browser.new_context(viewport=VIEWPORT)
    page, watch = watched_page(context)
    fetched: list[int] = []
    page.on("requestfinished", lambda r: fetched.append((r.sizes() or {}).get("responseBodySize", 0)))
    started = time.perf_counter()
    response = page.goto(url, timeout=120_000)
    page.wait_for_function(ready, timeout=120_000, polling=50)
    # Two animation frames: what was added has been painted.
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    elapsed = time.perf_counter() - started
    html = len(response.body())
    watch.assert_clean()
    context.close()
    return {"seconds": elapsed, "fetched": sum(fetched), "requests": len(fetched), "html": html}


def tile_paths(log: list[str]) -> list[str]:
    return sorted({p for p in log if p.startswith("/tiles/")})


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def tile_latency(base: str, app: Any, paths: list[str]) -> dict[str, tuple[float, float]]:
    out = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        for mode in ("cold", "warm"):
            if mode == "cold" and getattr(app.state, "tile_cache", None) is not None:
                app.state.tile_cache.clear()
            times = []
            for path in paths:
                t = time.perf_counter()
                client.get(path).raise_for_status()
                times.append((time.perf_counter() - t) * 1000)
            out[mode] = (percentile(times, 0.5), percentile(times, 0.99))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="demo", choices=["demo", "city"])
    parser.add_argument("--backend", default="spatialite", choices=["spatialite", "postgis"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = database(args.scale, args.backend)
    engine = make_engine(url)
    with session_factory(engine)() as session:
        counts = {t: session.scalar(select(func.count()).select_from(t)) for t in (Issue.__table__,)}
    engine.dispose()
    data_dir = Path(f"/tmp/gridmap-bench-data-{args.scale}")
    shutil.rmtree(data_dir, ignore_errors=True)
    app = create_app(Settings(database_url=url, data_dir=data_dir, escalate_every_seconds=0))
    naive = naive_page(url)
    app.add_api_route("/naive", lambda: HTMLResponse(naive), include_in_schema=False)
    requested: list[str] = []
    pages = {
        "planner": ("/maps/planner", "document.getElementById('planner-panel').dataset.status === 'ready'"),
        "dispatch": ("/maps/dispatch", "document.getElementById('dispatch-panel').dataset.status === 'ready'"),
        # Its script adds every embedded feature before the load event; drawn after that.
        "naive GeoJSON": ("/naive", "document.readyState === 'complete'"),
    }
    print(f"scale {args.scale}, backend {args.backend}, {counts[Issue.__table__]:,} issues, Chromium {VIEWPORT['width']}x{VIEWPORT['height']}")
    with live_server(app) as server, chromium() as browser:
        results: dict[str, list[dict[str, float]]] = {name: [] for name in pages}
        for _round in range(args.rounds):
            for name, (path, ready) in pages.items():
                # Every round starts cold on the server too: no tile is cached yet.
                if getattr(app.state, "tile_cache", None) is not None:
                    app.state.tile_cache.clear()
                results[name].append(draw(browser, server.url + path, ready))
        # The tiles a planner asks for at the first view, timed one by one.
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.on("request", lambda r: requested.append(r.url.removeprefix(server.url)))
        page.goto(server.url + "/maps/planner")
        page.wait_for_function(pages["planner"][1], timeout=120_000)
        context.close()
        latency = tile_latency(server.url, app, tile_paths(requested))
    print(f"\n{'page':<16}{'HTML':>12}{'fetched':>12}{'requests':>10}{'drawn (median)':>16}{'runs':>26}")
    for name, runs in results.items():
        seconds = [r["seconds"] for r in runs]
        print(f"{name:<16}{runs[0]['html'] / 1024:>10,.0f} K{runs[0]['fetched'] / 1024:>10,.0f} K{runs[0]['requests']:>10}"
              f"{statistics.median(seconds):>14.2f} s   {', '.join(f'{s:.2f}' for s in seconds):>22}")
    paths = tile_paths(requested)
    print(f"\ntiles of the planner's first view: {len(paths)}")
    for mode, (p50, p99) in latency.items():
        print(f"  {mode:<5} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")


if __name__ == "__main__":
    main()
