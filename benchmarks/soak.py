"""Soak: reports from 20 clients for minutes; every 201 stored once, nothing else stored.

    .venv/bin/python benchmarks/soak.py [--minutes 5] [--clients 20] [--backend spatialite|postgis]

Loads a fresh demo city (SpatiaLite in a temporary folder, or a new PostGIS database),
starts the server (``gridmap serve``, uvicorn) on 127.0.0.1 with the report rate limit
raised for the run, and sends ``POST /api/v1/issues`` from concurrent clients (httpx)
at points inside the city's grids, each report marked with a unique text. Then it checks
the database: every 201 answer is stored with the id and ref it gave, no id or ref was
given twice, and no marked report is stored that was not answered 201. Prints the
counts, the throughput and the latency p50/p99. Not a test: nothing here is timed
against a bound.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import geopandas  # noqa: F401  (before SpatiaLite: see data/db.py)
import httpx
from sqlalchemy import select

from data.db import drop_database, make_engine, recreate_database, session_factory
from data.importer import today
from data.models import Category, Issue
from data.repository import areas, version_in_force

GRIDMAP = Path(sys.executable).with_name("gridmap")
POSTGIS = "postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_soak"
MARK = "soak"


@dataclass
class Tally:
    """What the clients saw."""

    created: dict[int, str] = field(default_factory=dict)  # id -> ref, from the 201 answers
    ids_given: list[int] = field(default_factory=list)
    refs_given: list[str] = field(default_factory=list)
    marks_created: dict[str, int] = field(default_factory=dict)  # marker text -> id
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(args: list[object], env: dict[str, str]) -> None:
    subprocess.run([str(GRIDMAP), *map(str, args)], env=env, check=True, stdout=subprocess.DEVNULL)


def targets(url: str) -> tuple[list[tuple[float, float]], list[str]]:
    """A point inside every grid of the demo city, and the categories to report under."""
    engine = make_engine(url)
    with session_factory(engine)() as session:
        version = version_in_force(session, "grid", today())
        assert version is not None, "the demo city has no grid layer in force"
        points = [
            (p.x, p.y) for p in (a.geom.representative_point() for a in areas(session, version.id))
        ]
        categories = list(session.scalars(select(Category.code)))
    engine.dispose()
    return points, categories


def wait_until_up(base: str, server: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped (exit {server.returncode}) before answering")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server did not answer {base}/health within {seconds:.0f} s")


async def client(
    number: int,
    base: str,
    until: float,
    points: list[tuple[float, float]],
    categories: list[str],
    tally: Tally,
) -> None:
    rng = random.Random(number)
    sent = 0
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        while time.monotonic() < until:
            sent += 1
            mark = f"{MARK}-{number}-{sent}"
            lon, lat = rng.choice(points)
            body = {
                "lon": lon,
                "lat": lat,
                "crs": "wgs84",
                "category": rng.choice(categories),
                "description": mark,
            }
            started = time.perf_counter()
            try:
                answer = await http.post("/api/v1/issues", json=body)
            except httpx.HTTPError as exc:
                tally.statuses[type(exc).__name__] += 1
                continue
            tally.latencies.append(time.perf_counter() - started)
            tally.statuses[str(answer.status_code)] += 1
            if answer.status_code == 201:
                issue = answer.json()
                tally.created[issue["id"]] = issue["ref"]
                tally.ids_given.append(issue["id"])
                tally.refs_given.append(issue["ref"])
                tally.marks_created[mark] = issue["id"]


async def soak(
    base: str,
    minutes: float,
    clients: int,
    points: list[tuple[float, float]],
    categories: list[str],
) -> tuple[Tally, float]:
    tally = Tally()
    started = time.monotonic()
    until = started + minutes * 60
    await asyncio.gather(
        *(client(n, base, until, points, categories, tally) for n in range(clients))
    )
    return tally, time.monotonic() - started


def check(url: str, tally: Tally) -> list[str]:
    """Everything wrong between what the clients were told and what the database holds."""
    engine = make_engine(url)
    with session_factory(engine)() as session:
        stored = session.execute(
            select(Issue.id, Issue.ref, Issue.description).where(
                Issue.description.like(f"{MARK}-%")
            )
        ).all()
    engine.dispose()
    faults = []
    if len(set(tally.ids_given)) != len(tally.ids_given):
        faults.append(f"{len(tally.ids_given) - len(set(tally.ids_given))} ids given twice")
    if len(set(tally.refs_given)) != len(tally.refs_given):
        faults.append(f"{len(tally.refs_given) - len(set(tally.refs_given))} refs given twice")
    by_id = {row.id: row for row in stored}
    missing = [i for i in tally.created if i not in by_id]
    if missing:
        faults.append(f"{len(missing)} reports answered 201 are not stored (e.g. id {missing[0]})")
    wrong = [i for i, ref in tally.created.items() if i in by_id and by_id[i].ref != ref]
    if wrong:
        faults.append(f"{len(wrong)} stored reports carry another ref than their 201 gave")
    moved = [m for m, i in tally.marks_created.items() if i in by_id and by_id[i].description != m]
    if moved:
        faults.append(f"{len(moved)} ids hold another report's text")
    extra = [row for row in stored if row.description not in tally.marks_created]
    if extra:
        faults.append(
            f"{len(extra)} reports stored that were not answered 201 (e.g. {extra[0].description})"
        )
    return faults


def server_errors(log: Path) -> Counter[str]:
    """The exceptions the server logged (each traceback's last line), counted."""
    found = re.findall(
        r"^[\w.]+(?:Error|Exception)\b.*$", log.read_text(errors="replace"), re.MULTILINE
    )
    return Counter(line[:200] for line in found)


def percentile(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--backend", choices=("spatialite", "postgis"), default="spatialite")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gridmap-soak-") as folder:
        url = (
            f"sqlite:///{Path(folder) / 'gridmap.sqlite'}"
            if options.backend == "spatialite"
            else POSTGIS
        )
        if options.backend == "postgis":
            recreate_database(url)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDMAP_")}
        env |= {
            "GRIDMAP_DATA_DIR": folder,
            "GRIDMAP_DATABASE_URL": url,
            "GRIDMAP_PORT": str(port),
            # Twenty clients share one address: the per-address limit is raised for the run.
            "GRIDMAP_REPORT_RATE_PER_MINUTE": "100000000",
            "GRIDMAP_ESCALATE_EVERY_SECONDS": "0",
            "GRIDMAP_TILE_SEED_ZOOM": "0",
        }
        print(f"loading the demo city into {options.backend} ...", flush=True)
        run(["demo"], env)
        points, categories = targets(url)
        log = Path(folder) / "server.log"
        with log.open("w") as sink:
            server = subprocess.Popen([str(GRIDMAP), "serve"], env=env, stdout=sink, stderr=sink)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(base, server)
            print(
                f"sending reports from {options.clients} clients for {options.minutes:g} min to {base} ...",
                flush=True,
            )
            tally, seconds = asyncio.run(
                soak(base, options.minutes, options.clients, points, categories)
            )
        finally:
            server.terminate()
            server.wait(timeout=60)
        faults = check(url, tally)
        failed = {k: v for k, v in tally.statuses.items() if not k.isdigit() or k.startswith("5")}
        if failed:  # not a lost report, but a resident who was turned away
            faults.append(
                "answers that were not a 2xx/4xx: "
                + ", ".join(f"{k} {v:,}" for k, v in failed.items())
            )
        errors = server_errors(log)
        if errors:  # the first traceback in full: where the fault is, not only what
            text = log.read_text(errors="replace")
            start = text.find("Traceback (most recent call last)")
            print("first server traceback:\n" + text[start : start + 8000])
        if options.backend == "postgis":
            drop_database(url)
    answered = sum(tally.statuses.values())
    print(f"backend {options.backend}, {options.clients} clients, {seconds:.0f} s")
    print(
        "answers: "
        + ", ".join(f"{status} {count:,}" for status, count in sorted(tally.statuses.items()))
    )
    print(
        f"created {len(tally.created):,} reports: {len(tally.created) / seconds:.1f} per second; "
        f"{answered / seconds:.1f} requests per second"
    )
    if tally.latencies:
        print(
            f"latency p50 {percentile(tally.latencies, 50) * 1000:.0f} ms, "
            f"p99 {percentile(tally.latencies, 99) * 1000:.0f} ms"
        )
    for error, count in errors.most_common(5):
        print(f"server error x{count}: {error}")
    if faults:
        print("FAULTS:\n  " + "\n  ".join(faults))
        raise SystemExit(1)
    print(
        "every 201 stored with its id and ref; no id or ref given twice; nothing else stored; no 5xx"
    )


if __name__ == "__main__":
    main()
