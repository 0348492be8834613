"""Nearby facility search latency on SpatiaLite and PostGIS, with 100,000 facilities.

    .venv/bin/python benchmarks/nearby.py [--facilities 100000] [--queries 500]

Loads synthetic facilities (points and small polygons, mixed kinds and real-world
opening_hours values) over a 20 km city, then times ``data.facilities.nearby`` in process
for random points: radius 1 km, limit 20, open now. Prints p50 and p99 per backend, and
checks that both backends return the same facilities in the same order.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas  # noqa: F401  (before SpatiaLite: see data/db.py)
import numpy as np
import shapely
from sqlalchemy import text

from data.db import make_engine, recreate_database, session_factory
from data.facilities import NearbyQuery, nearby
from data.migrate import upgrade
from data.models import Facility
from data.repository import insert_rows
from geo.worktime import WorkCalendar

HOURS = ["24/7", "Mo-Fr 18:00-08:00; Sa,Su,PH 00:00-24:00", "Mo-Fr 07:30-22:00; Sa 07:30-18:00; PH off",
         "Mo-Fr 18:00-21:00; Sa,Su 08:00-20:00; PH off", "06:00-22:00", None]
KINDS = ["car_park", "car_park", "car_park", "sports_ground", "toilet"]
ORIGIN, SPAN = (111.2, 23.4), 0.2


def facilities(count: int, seed: int = 5) -> list[dict]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(ORIGIN[0], ORIGIN[0] + SPAN, count)
    y = rng.uniform(ORIGIN[1], ORIGIN[1] + SPAN, count)
    rows = []
    for i in range(count):
        geom = shapely.Point(x[i], y[i]) if i % 4 else shapely.box(x[i], y[i], x[i] + 4e-4, y[i] + 3e-4)
        capacity = int(rng.integers(10, 400))
        rows.append({"code": f"B{i:06d}", "kind": KINDS[i % len(KINDS)], "name": f"设施{i}", "access": "yes",
                     "capacity": capacity, "opening_hours": HOURS[i % len(HOURS)], "geom": geom})
    return rows


def load(url: str, rows: list[dict]) -> object:
    engine = make_engine(url)
    upgrade(engine)
    with session_factory(engine)() as session, session.begin():
        for start in range(0, len(rows), 10_000):
            insert_rows(session, Facility.__table__, rows[start:start + 10_000])
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE facilities"))
    return engine


def run(engine, points: np.ndarray, at: dt.datetime, calendar: WorkCalendar) -> tuple[list[float], list[list[str]]]:  # type: ignore[no-untyped-def]
    timings, answers = [], []
    with session_factory(engine)() as session:
        nearby(session, NearbyQuery(float(points[0, 0]), float(points[0, 1]), at), calendar, 900)  # warm up
        for lon, lat in points:
            start = time.perf_counter()
            found = nearby(session, NearbyQuery(float(lon), float(lat), at), calendar, 900)
            timings.append((time.perf_counter() - start) * 1000)
            answers.append([f["code"] for f in found])
    return timings, answers


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--facilities", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--postgis-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_bench_nearby")
    args = parser.parse_args()
    rows = facilities(args.facilities)
    rng = np.random.default_rng(9)
    points = np.column_stack([rng.uniform(ORIGIN[0], ORIGIN[0] + SPAN, args.queries),
                              rng.uniform(ORIGIN[1], ORIGIN[1] + SPAN, args.queries)])
    at = dt.datetime(2026, 11, 18, 19, 30, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Wednesday evening
    calendar = WorkCalendar()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        recreate_database(args.postgis_url)
        for name, url in (("SpatiaLite", f"sqlite:///{Path(tmp) / 'bench.sqlite'}"), ("PostGIS", args.postgis_url)):
            started = time.perf_counter()
            engine = load(url, rows)
            loaded = time.perf_counter() - started
            timings, answers = run(engine, points, at, calendar)
            results[name] = answers
            print(f"{name:<10} {args.facilities:,} facilities loaded in {loaded:.1f} s; {args.queries} queries: "
                  f"p50 {percentile(timings, 50):.2f} ms, p99 {percentile(timings, 99):.2f} ms, "
                  f"mean {statistics.fmean(timings):.2f} ms, {statistics.fmean(len(a) for a in answers):.1f} results")
            engine.dispose()  # type: ignore[attr-defined]
    same = sum(a == b for a, b in zip(results["SpatiaLite"], results["PostGIS"], strict=True))
    print(f"backends agree on {same} of {len(points)} queries (same facilities, same order)")


if __name__ == "__main__":
    main()
