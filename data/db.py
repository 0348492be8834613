"""Engines for the two backends: embedded SpatiaLite (default) and PostGIS."""

from __future__ import annotations

import threading
from pathlib import Path

# GDAL (through pyogrio) must be loaded before mod_spatialite: when it is first imported
# after SpatiaLite in the same process, the clashing PROJ/SQLite symbols segfault Python.
# Importing it here, before any engine exists, keeps that order whatever the caller does.
# tests/test_db.py::test_spatialite_then_pyogrio_does_not_crash guards this.
import pyogrio  # noqa: F401  (imported for its side effect on symbol load order)
import sqlean
from geoalchemy2.admin.dialects.sqlite import load_spatialite
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

# The Debian package libsqlite3-mod-spatialite installs the module here; GeoAlchemy2
# reads the path from this variable.
SPATIALITE_LIBRARY = "mod_spatialite"
# The execution option that makes a SpatiaLite transaction BEGIN IMMEDIATE.
WRITE_OPTION = "gridmap_write"


class BackendUnavailable(RuntimeError):
    """The configured database cannot be reached or lacks its spatial extension."""


def backend_name(engine: Engine) -> str:
    """'spatialite' or 'postgis'."""
    return "spatialite" if engine.dialect.name == "sqlite" else "postgis"


def make_engine(url: str) -> Engine:
    """An engine for a SpatiaLite file or a PostGIS database, spatially enabled."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _spatialite_engine(url)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True)
    raise BackendUnavailable(
        f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: use "
        "sqlite:///path/file.sqlite (SpatiaLite) or postgresql+psycopg://user@host/db (PostGIS)"
    )


def holds_gridmap(url: str) -> bool:
    """Whether the database exists and has a gridmap schema, without creating anything.

    A SpatiaLite file springs into being on first connect, so a command run without the
    intended GRIDMAP_DATA_DIR would silently make an empty one; read-only commands ask this
    first. A server that cannot be reached answers True: connecting reports that better.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        return not database or database == ":memory:" or (
            Path(database).exists() and Path(database).stat().st_size > 0
        )
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT to_regclass('alembic_version')")).scalar() is not None
    except Exception:  # noqa: BLE001 (unreachable: let make_engine/upgrade say why)
        return True
    finally:
        engine.dispose()


def _spatialite_engine(url: str) -> Engine:
    import os

    os.environ.setdefault("SPATIALITE_LIBRARY_PATH", SPATIALITE_LIBRARY)
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # The stdlib sqlite3 of this Python cannot load extensions; sqlean's binding can.
    engine = create_engine(url, module=sqlean)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, record):  # type: ignore[no-untyped-def]
        try:
            load_spatialite(dbapi_conn, record, transaction=True, init_mode="WGS84")
        except Exception as exc:  # the module is missing or broken: say how to fix it
            raise BackendUnavailable(
                f"cannot load SpatiaLite ({exc}); install it with "
                "`apt-get install libsqlite3-mod-spatialite` (make demo does this)"
            ) from exc
        dbapi_conn.execute("PRAGMA foreign_keys = ON")
        # WAL lets readers (map pages) run while a report is written, and with
        # synchronous=NORMAL a commit no longer waits for a disk flush; a power cut can
        # lose the last commits but never corrupts the file (SQLite's documented trade).
        dbapi_conn.execute("PRAGMA journal_mode = WAL")
        dbapi_conn.execute("PRAGMA synchronous = NORMAL")
        dbapi_conn.execute("PRAGMA busy_timeout = 5000")
        # The WGS84 init mode omits Web Mercator, which vector tiles need later.
        if dbapi_conn.execute("SELECT SridIsGeographic(3857)").fetchone()[0] is None:
            dbapi_conn.execute("SELECT InsertEpsgSrid(3857)")

    # pysqlite's implicit transactions would let DDL and SAVEPOINTs escape the
    # all-or-nothing imports; take BEGIN ourselves, as the SQLAlchemy docs advise.
    @event.listens_for(engine, "connect")
    def _no_implicit_tx(dbapi_conn, record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None

    # A write session (``session_factory(engine, write=True)``) begins IMMEDIATE: it takes
    # the write lock at BEGIN and waits up to busy_timeout for it. A deferred BEGIN that
    # turns into a write while another writer commits fails at once with "database is
    # locked", whatever the timeout: 20 clients reporting at once got 500s that way.
    # Readers stay deferred, so tiles and pages never queue behind the write lock.
    # SQLite's own wait for the lock polls with growing sleeps and is not fair: with 20
    # clients reporting at once, a few writers waited past any timeout while others went
    # through. Within one process, writers therefore queue on a lock first, which hands the
    # write lock on at once; busy_timeout still covers other processes (the CLI).
    writers = _WriterQueue()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        if conn.get_execution_options().get(WRITE_OPTION):
            writers.enter(conn.connection.dbapi_connection)
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    for name in ("commit", "rollback"):
        event.listen(engine, name, lambda conn: writers.leave(conn.connection.dbapi_connection))
    # However a connection ends its transaction (an error may invalidate it), it lets go.
    for name in ("checkin", "reset", "invalidate", "close"):
        event.listen(engine.pool, name, lambda dbapi_conn, *_: writers.leave(dbapi_conn))

    return engine


class _WriterQueue:
    """One writing transaction at a time per SpatiaLite engine, released however it ends."""

    # Longer than any write transaction of ours; past it, SQLite's own busy wait takes over.
    WAIT_SECONDS = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: object | None = None

    def enter(self, dbapi_conn: object) -> None:
        if self._holder is dbapi_conn:
            return
        if self._lock.acquire(timeout=self.WAIT_SECONDS):
            self._holder = dbapi_conn

    def leave(self, dbapi_conn: object) -> None:
        if dbapi_conn is not None and self._holder is dbapi_conn:
            self._holder = None
            self._lock.release()


def prepare_postgis(engine: Engine) -> None:
    """Make sure the PostGIS extension exists in the target database."""
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    except Exception as exc:
        raise BackendUnavailable(
            f"PostGIS is not available in {engine.url.render_as_string(hide_password=True)} "
            f"({exc.__class__.__name__}: {str(exc).splitlines()[0]}). Install it with "
            "`apt-get install postgresql-15-postgis-3` (.ci/run and make do this)."
        ) from exc


def session_factory(engine: Engine, write: bool = False) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit; ``write`` for requests that write.

    On SpatiaLite a write session takes the write lock when it begins (see ``_begin``);
    PostgreSQL needs nothing of the kind.
    """
    if write and backend_name(engine) == "spatialite":
        engine = engine.execution_options(**{WRITE_OPTION: True})
    return sessionmaker(engine, expire_on_commit=False)


def _admin(url: str) -> Engine:
    """An autocommit engine on the server's maintenance database (CREATE/DROP DATABASE)."""
    return create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def create_database(url: str) -> None:
    """Create the PostgreSQL database named in ``url`` if it does not exist."""
    name = make_url(url).database
    admin = _admin(url)
    try:
        with admin.connect() as conn:
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    """Drop the PostgreSQL database named in ``url``, ending its sessions (tests, benchmarks)."""
    admin = _admin(url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def recreate_database(url: str) -> None:
    """An empty PostgreSQL database at ``url``."""
    drop_database(url)
    create_database(url)
