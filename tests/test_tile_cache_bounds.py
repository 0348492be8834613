"""The tile cache stays bounded whatever a client asks for (issue 12, item 8).

Empty tiles away from the data (far outside the city, or at zoom 22 beside it) are
answered 204 without a cache entry or a file; the disk store keeps under
GRIDMAP_TILE_DISK_MB when filled past it, across a restart; and empty entries count
against the memory cache's bound. Disk use is measured from the files themselves
(``st_blocks``), not from the store's own bookkeeping.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.routes import tiles as tile_routes
from data.demo import load_demo_city
from data.settings import Settings
from data.tiles import LAYERS, TileCache

# The demo city's box (data/demo_city.py), as in tests/test_tiles.py.
CITY = (111.187, 23.397, 111.383, 23.533)
DAY = {"at": "2026-03-01"}  # the demo's boundaries are in force from 2026-01-01


def tile_at(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """The slippy-map tile containing a point (OSM wiki formula)."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def open_client(url: str, data_dir: Path, tile_disk_mb: int = 512) -> TestClient:
    config = Settings(
        database_url=url,
        data_dir=data_dir,
        escalate_every_seconds=0,
        tile_seed_zoom=0,
        tile_disk_mb=tile_disk_mb,
    )
    app = create_app(config)
    if not any(getattr(route, "path", "").startswith("/tiles") for route in app.routes):
        app.include_router(tile_routes.router)
    return TestClient(app)


def tile_files(data_dir: Path) -> list[Path]:
    root = data_dir / "tiles"
    return [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []


def disk_use(files: list[Path]) -> int:
    """Bytes the files take on disk (allocated blocks), and at least their sizes."""
    return sum(max(p.stat().st_blocks * 512, p.stat().st_size) for p in files)


@pytest.fixture
def city(engine: Engine, database_url: str, tmp_path: Path) -> str:
    load_demo_city(engine)
    return database_url


def empty_tile_requests() -> Iterator[str]:
    """2,000 addresses of tiles no feature of the city reaches, on every layer and system."""
    west, south, east, north = CITY
    # Far away: spread over the world, zooms 5 to 22.
    far = [(-120 + 2.3 * i, -60 + 1.1 * i) for i in range(100)]
    # Zoom 22 just beside the city (about 1-2 km out on each side): a tile there is a few
    # metres wide, so its buffer cannot reach the data.
    beside = [(west - 0.01 - 0.0001 * i, south + 0.001 * i) for i in range(50)]
    beside += [(east + 0.01 + 0.0001 * i, north - 0.001 * i) for i in range(50)]
    beside += [(west + 0.001 * i, north + 0.015 + 0.0001 * i) for i in range(50)]
    beside += [(east - 0.001 * i, south - 0.015 - 0.0001 * i) for i in range(50)]
    layers = list(LAYERS)
    count = 0
    while count < 2000:
        for i, (lon, lat) in enumerate(far + beside):
            z = 22 if i >= len(far) else 5 + (i + count) % 18
            if i < len(far) and abs(lon - west) < 3 and abs(lat - south) < 3:
                continue  # not far after all
            z, x, y = tile_at(lon, lat, z)
            layer = layers[(i + count) % len(layers)]
            crs = "gcj02" if (i + count) % 3 == 0 else "wgs84"
            yield f"/tiles/{layer}/{z}/{x}/{y}.mvt?crs={crs}&at={DAY['at']}"
            count += 1
            if count == 2000:
                return


def test_empty_tiles_away_from_the_data_leave_no_entry_and_no_file(
    city: str, tmp_path: Path
) -> None:
    with open_client(city, tmp_path) as client:
        cache = tile_routes.tile_cache(client.app)  # type: ignore[arg-type]
        before = len(cache)
        addresses = list(empty_tile_requests())
        assert len(addresses) == 2000
        for address in addresses:
            response = client.get(address)
            assert response.status_code == 204, (address, response.status_code)
            assert response.content == b"" and response.headers["etag"]
        assert len(cache) == before
        assert tile_files(tmp_path) == []
        # The check is not vacuous: a tile in the city is drawn and stored as before.
        z, x, y = tile_at((CITY[0] + CITY[2]) / 2, (CITY[1] + CITY[3]) / 2, 14)
        inside = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", params=DAY)
        assert inside.status_code == 200 and inside.content
        assert len(cache) == before + 1 and len(tile_files(tmp_path)) == 1


def city_tiles(z: int) -> list[tuple[int, int, int]]:
    _, x0, y0 = tile_at(CITY[0], CITY[3], z)
    _, x1, y1 = tile_at(CITY[2], CITY[1], z)
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def test_the_disk_store_stays_under_its_bound_when_filled_past_it(
    city: str, tmp_path: Path
) -> None:
    bound = 1024 * 1024  # GRIDMAP_TILE_DISK_MB=1
    tiles = city_tiles(15) + city_tiles(16)
    served = 0
    with open_client(city, tmp_path, tile_disk_mb=1) as client:
        for z, x, y in tiles:
            response = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", params=DAY)
            assert response.status_code in (200, 204)
            served += 1
            if served == 1:
                first = response.content
        files = tile_files(tmp_path)
        # Filled past the bound: every tile drawn takes at least a block when stored.
        assert served * 4096 > 2 * bound
        assert 0 < len(files) < served
        assert disk_use(files) <= bound

        # The newest tile is kept, the oldest went; an evicted tile is drawn again, the same.
        def stored(z: int, x: int, y: int) -> bool:
            return any(p.parts[-3:] == (str(z), str(x), f"{y}.mvt") for p in files)

        assert stored(*tiles[-1]) and not stored(*tiles[0])
        z, x, y = tiles[0]
        client.app.state.tile_cache.clear()  # type: ignore[attr-defined]
        assert client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", params=DAY).content == first

    # A restarted server counts the files it finds, and still holds the bound.
    with open_client(city, tmp_path, tile_disk_mb=1) as client:
        for z, x, y in city_tiles(17)[:400]:
            assert client.get(f"/tiles/compounds/{z}/{x}/{y}.mvt").status_code in (200, 204)
        assert disk_use(tile_files(tmp_path)) <= bound


def test_empty_entries_count_against_the_memory_bound() -> None:
    cache = TileCache(max_bytes=64 * 1024)
    for i in range(100_000):
        cache.put(("db", "grids", 1, "s", "wgs84", 22, i, 0), b"")
    assert 0 < len(cache) < 100_000
    # The newest empty tile is still there; the first one is gone.
    assert cache.get(("db", "grids", 1, "s", "wgs84", 22, 99_999, 0)) == b""
    assert cache.get(("db", "grids", 1, "s", "wgs84", 22, 0, 0)) is None
