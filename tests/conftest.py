"""Fixtures shared by the suite: both storage backends, and the shared real data.

Every storage test takes the ``engine`` fixture, which runs it once on a real SpatiaLite
file and once on a real PostGIS database. PostGIS tests skip when no server is reachable,
except in CI (CI=true) or with GRIDMAP_REQUIRE_POSTGIS=1, where that is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

# Before anything may load mod_spatialite: see data/db.py on the import-order crash.
import pyogrio  # noqa: F401
import pytest
from sqlalchemy import Engine, text

from data.db import create_database, drop_database, make_engine
from data.migrate import upgrade
from data.models import Base

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
REALDATA_EXTRA = REALDATA.with_name("realdata_extra")
IN_CI = os.environ.get("CI", "").lower() == "true"
# Apps made by tests draw no tiles in the background (tests/test_tiles.py seeds on purpose):
# a thread rendering while a test counts renders or cache entries would make it flaky.
os.environ.setdefault("GRIDMAP_TILE_SEED_ZOOM", "0")
REQUIRE_POSTGIS = IN_CI or os.environ.get("GRIDMAP_REQUIRE_POSTGIS") == "1"
# One database per test process, dropped at the end: runs side by side (two developers,
# a helper and CI on one machine) never lock or truncate each other's tables.
OWN_DATABASE = "GRIDMAP_TEST_POSTGIS_URL" not in os.environ
POSTGIS_URL = os.environ.get(
    "GRIDMAP_TEST_POSTGIS_URL", f"postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_test_{os.getpid()}"
)
# Every table of ours, so that each PostGIS test starts empty.
TABLES = tuple(table.name for table in reversed(Base.metadata.sorted_tables))


def realdata(relative: str, folder: Path = REALDATA) -> Path:
    """A file of ../shared/realdata (or ``folder``); skips when missing, except in CI: fails."""
    path = folder / relative
    if not path.exists():
        message = f"real data not found at {path} (the shared/ folder sits beside the clone in CI)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def realdata_extra(relative: str) -> Path:
    """A file of ../shared/realdata_extra, as ``realdata``."""
    return realdata(relative, REALDATA_EXTRA)


def _unavailable(message: str) -> None:
    if REQUIRE_POSTGIS:
        pytest.fail(f"PostGIS is required here but unavailable: {message}")
    pytest.skip(f"PostGIS unavailable: {message}")


# Kept under these names for the tests that manage their own database (test_tiles).
_create_database = create_database
_drop_database = drop_database


@pytest.fixture(scope="session")
def spatialite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SpatiaLite file, copied for each test (cheaper than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "gridmap.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgis_engine() -> Iterator[Engine]:
    try:
        _create_database(POSTGIS_URL)
        engine = make_engine(POSTGIS_URL)
        with engine.begin() as conn:  # start from an empty schema each session
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        upgrade(engine)
    except Exception as exc:  # noqa: BLE001 (any failure means: no usable PostGIS)
        _unavailable(f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    yield engine
    engine.dispose()
    if OWN_DATABASE:
        _drop_database(POSTGIS_URL)


@pytest.fixture(params=["spatialite", "postgis"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def engine(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty, migrated database on the test's backend."""
    if backend == "spatialite":
        path = tmp_path / "gridmap.sqlite"
        shutil.copy(request.getfixturevalue("spatialite_template"), path)
        engine = make_engine(f"sqlite:///{path}")
        yield engine
        engine.dispose()
        return
    engine = request.getfixturevalue("postgis_engine")
    # TRUNCATE does not fire the append-only row triggers, which is why it is used here.
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    yield engine


@pytest.fixture
def database_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)
