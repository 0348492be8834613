"""Import time of real files on both backends, against reading the same file with geopandas.

    .venv/bin/python benchmarks/import_real.py [--postgis-url URL]

The peer is ``geopandas.read_file`` alone (no checks, no database): the gap shows what
validation and the transactional write cost.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import geopandas as gpd  # before SpatiaLite is loaded: see data/db.py

from data.db import make_engine, recreate_database, session_factory
from data.importer import FieldMap, ImportOptions, import_layer
from data.migrate import upgrade

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
CASES = [
    ("grids", "macau_osm_gemacau/macau-grid.geojson", FieldMap(code=":row"), {}),
    ("communities", "hongkong_dcca_geohk/dcca_land.hires.geojson", FieldMap(code="DCCA", name="DCCA_ENG"), {"repair": True}),
    ("districts", "china_boundaries_datav_GeoMapData_CN/wuhan_420100_districts.geojson", FieldMap(), {"crs": "gcj02", "repair": True}),
]


def fresh_engine(backend: str, postgis_url: str, workdir: Path, run: int):  # type: ignore[no-untyped-def]
    if backend == "spatialite":
        engine = make_engine(f"sqlite:///{workdir / f'bench{run}.sqlite'}")
    else:
        recreate_database(postgis_url)
        engine = make_engine(postgis_url)
    upgrade(engine)
    return engine


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgis-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_bench")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'file':<36} {'features':>8} {'read_file':>10} {'spatialite':>11} {'postgis':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for layer, relative, fields, extra in CASES:
            path = REALDATA / relative
            peer = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                frame = gpd.read_file(path)
                peer.append(time.perf_counter() - start)
            timings = {}
            for backend in ("spatialite", "postgis"):
                runs = []
                for run in range(args.repeat):
                    engine = fresh_engine(backend, args.postgis_url, Path(tmp), run)
                    options = ImportOptions(layer=layer, path=path, fields=fields, effective=dt.date(2026, 1, 1), **extra)
                    with session_factory(engine)() as session:
                        start = time.perf_counter()
                        import_layer(session, options)
                        runs.append(time.perf_counter() - start)
                    engine.dispose()
                timings[backend] = statistics.median(runs)
            print(
                f"{path.name:<36} {len(frame):>8} {statistics.median(peer):>9.3f}s "
                f"{timings['spatialite']:>10.3f}s {timings['postgis']:>8.3f}s"
            )


if __name__ == "__main__":
    main()
