"""The map pages against the naive page (every feature embedded as GeoJSON), same run.

    .venv/bin/python benchmarks/map_pages.py [--scale demo|city] [--backend spatialite|postgis] [--rounds 3]

Loads the demo city at the chosen scale into a fresh database (the city scale is kept in
/tmp/gridmap-bench-<scale>.sqlite between runs: loading it is the slow part), serves the
app with uvicorn and opens each page in Debian's Chromium, with every request off
127.0.0.1 blocked. For each page it prints:

- the HTML's size and the bytes the browser fetched until the map was drawn;
- the time from navigation to "interactive" (the map and its controls answer: pan, zoom,
  search, filters) and to "drawn": the page's panel saying data-status="ready"
  (every visible tile loaded and coloured, or the clusters drawn); for the naive page,
  the load event (its script adds every embedded feature before it), plus a paint;
- each twice: "cold", with no tile drawn yet, and "seeded", with the tiles to zoom 11 drawn
  beforehand as `gridmap serve` does at start (read back from disk);
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
from api.routes import tiles as tile_routes
from benchmarks.naive_map import render_city_map
from data.db import make_engine, recreate_database, session_factory
from data.demo import load_demo_city
from data.importer import today
from data.migrate import upgrade
from data.models import Compound, Facility, Issue
from data.repository import areas_frame, geom_column, load_geom, table_frame
from data.settings import Settings
from data.tiles import seed_tiles
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
        print(f"loaded the {scale}-scale demo city into {backend} in {time.perf_counter() - started:.1f} s")
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


def draw(browser: Any, url: str, ready: str, interactive: str) -> dict[str, float]:
    context = browser.new_context(viewport=VIEWPORT)
    page, watch = watched_page(context)
    fetched: list[int] = []
    page.on("requestfinished", lambda r: fetched.append((r.sizes() or {}).get("responseBodySize", 0)))
    started = time.perf_counter()
    response = page.goto(url, timeout=120_000, wait_until="commit")
    page.wait_for_function(interactive, timeout=120_000, polling=20)
    responsive = time.perf_counter() - started
    page.wait_for_function(ready, timeout=120_000, polling=50)
    # Two animation frames: what was added has been painted.
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    elapsed = time.perf_counter() - started
    html = len(httpx.get(url, timeout=120).content)  # the inspector may not keep a big body
    assert response is not None and response.ok
    watch.assert_clean()
    context.close()
    return {"seconds": elapsed, "interactive": responsive, "fetched": sum(fetched), "requests": len(fetched), "html": html}


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
        issues = session.scalar(select(func.count()).select_from(Issue))
    engine.dispose()
    data_dir = Path(f"/tmp/gridmap-bench-data-{args.scale}")
    shutil.rmtree(data_dir, ignore_errors=True)
    app = create_app(Settings(database_url=url, data_dir=data_dir, escalate_every_seconds=0, tile_seed_zoom=0))
    naive = naive_page(url)
    app.add_api_route("/naive", lambda: HTMLResponse(naive), include_in_schema=False)
    requested: list[str] = []
    # (path, drawn, interactive): interactive is when the map and its controls answer the
    # user (pan, zoom, search, filters), drawn when everything of the first view is on it.
    pages = {
        "planner": ("/maps/planner", "document.getElementById('planner-panel').dataset.status === 'ready'",
                    "window.gridmapPlannerPage !== undefined"),
        "dispatch": ("/maps/dispatch", "document.getElementById('dispatch-panel').dataset.status === 'ready'",
                     "window.gridmapDispatchPage !== undefined"),
        # Its script adds every embedded feature before the load event; both come after that.
        "naive GeoJSON": ("/naive", "document.readyState === 'complete'", "document.readyState === 'complete'"),
    }
    print(f"scale {args.scale}, backend {args.backend}, {issues:,} issues, Chromium {VIEWPORT['width']}x{VIEWPORT['height']}")
    store = data_dir / "tiles"

    def forget_tiles(keep_disk: bool) -> None:
        if getattr(app.state, "tile_cache", None) is not None:
            app.state.tile_cache.clear()
        if not keep_disk:
            shutil.rmtree(store, ignore_errors=True)

    with live_server(app) as server, chromium() as browser:
        results: dict[str, list[dict[str, float]]] = {}
        # "cold": nothing drawn yet, every tile rendered on request (a server that has
        # just imported a layer). "seeded": the tiles to zoom 11 drawn at start, as
        # `gridmap serve` does, and read back from disk (memory cache emptied each round).
        for mode in ("cold", "seeded"):
            if mode == "seeded":
                forget_tiles(keep_disk=False)
                started = time.perf_counter()
                with app.state.sessions() as session:
                    drawn = seed_tiles(session, tile_routes.tile_cache(app), today(), 11)
                print(f"seeding: {drawn} tiles to zoom 11 in {time.perf_counter() - started:.1f} s")
            for _round in range(args.rounds):
                for name, (path, ready, interactive) in pages.items():
                    if name == "naive GeoJSON" and mode == "seeded":
                        continue  # it has no tiles: once is enough
                    forget_tiles(keep_disk=mode == "seeded")
                    results.setdefault(f"{name} ({mode})" if name != "naive GeoJSON" else name, []).append(
                        draw(browser, server.url + path, ready, interactive))
        # The tiles a planner asks for at the first view, timed one by one.
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.on("request", lambda r: requested.append(r.url.removeprefix(server.url)))
        page.goto(server.url + "/maps/planner")
        page.wait_for_function(pages["planner"][1], timeout=120_000)
        context.close()
        forget_tiles(keep_disk=False)
        latency = tile_latency(server.url, app, tile_paths(requested))
    print(f"\n{'page':<22}{'HTML':>10}{'fetched':>10}{'requests':>9}{'interactive':>13}{'drawn':>8}   drawn, each run")
    for name, runs in results.items():
        drawn = [r["seconds"] for r in runs]
        responsive = statistics.median(r["interactive"] for r in runs)
        print(f"{name:<22}{runs[0]['html'] / 1024:>8,.0f} K{runs[0]['fetched'] / 1024:>8,.0f} K{runs[0]['requests']:>9}"
              f"{responsive:>11.2f} s{statistics.median(drawn):>6.2f} s   {', '.join(f'{s:.2f}' for s in drawn)}")
    paths = tile_paths(requested)
    print(f"\ntiles of the planner's first view: {len(paths)}")
    for mode, (p50, p99) in latency.items():
        print(f"  {mode:<5} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")


if __name__ == "__main__":
    main()
