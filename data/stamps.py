"""What a cache keys on, so that it can never serve another database's or a stale answer.

- The database's identity: a UUID written when the database is created (migration 0004).
  Two databases that share a data directory (switching ``GRIDMAP_DATABASE_URL``) never
  load each other's persisted index or tiles.
- A layer version's content stamp: a hash of its codes and geometries, written at import.
  ``--replace`` reloads a version under the same id; the stamp still changes.
- A generation per unversioned table (compounds, facilities, departments), bumped by a
  database trigger in the same transaction as any change.

Each is one row read by primary key, so a cache checks them on every request without an
aggregate over the layer. See docs/ARCHITECTURE.md, "Caches".
"""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from data.models import Area, Generation, LayerVersion, Meta
from data.repository import geom_column


def database_identity(session: Session) -> str:
    """The database's UUID; written now if it is missing (a truncated test database)."""
    value = session.scalar(select(Meta.value).where(Meta.key == "identity"))
    return value if value is not None else _write_identity(session)


def _write_identity(session: Session) -> str:
    """Write a missing identity in a transaction of its own, so that it lasts.

    Written inside a read-only request's session, it would be rolled back with it, and
    every later request would invent another identity and miss every cache.
    """
    bind = session.get_bind()
    write = text(
        "INSERT INTO gridmap_meta (key, value) VALUES ('identity', :value) "
        "ON CONFLICT (key) DO NOTHING"
    ).bindparams(value=uuid.uuid4().hex)
    read = select(Meta.value).where(Meta.key == "identity")
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            connection.execute(write)
            return str(connection.scalar(read))
    session.execute(write)  # bound to a connection: its owner commits
    return str(session.scalar(read))


def database_key(session: Session) -> str:
    """What names the database for a cache: its identity and its address.

    A copied SpatiaLite file (or a restored dump) keeps the identity of its original;
    the address tells the copies apart once they go their own ways.
    """
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    url = engine.url.render_as_string(hide_password=True)
    address = hashlib.sha256(url.encode()).hexdigest()[:8]
    return f"{database_identity(session)}-{address}"


def generation(session: Session, table: str) -> int:
    """How many times ``table`` has changed (0 when its counter was never bumped)."""
    return session.scalar(select(Generation.value).where(Generation.name == table)) or 0


def content_stamp(rows: list[tuple[str, bytes | None]]) -> str:
    """A hash of (code, WKB) pairs in code order."""
    digest = hashlib.sha256()
    for code, wkb in sorted(rows, key=lambda row: row[0]):
        digest.update(code.encode())
        digest.update(b"\0")
        digest.update(bytes(wkb or b""))
        digest.update(b"\1")
    return digest.hexdigest()[:32]


def version_stamp(session: Session, version: LayerVersion) -> str:
    """The version's content stamp, as written at import.

    A version written by a path that did not stamp it (a test, an older tool) is hashed
    now, an aggregate over its rows, and not written back: a stamp written here would go
    stale the next time such a path changes the rows.
    """
    if version.content_stamp:
        return version.content_stamp
    table = Area.__table__
    rows = session.execute(
        select(table.c.code, geom_column(table)).where(table.c.layer_version_id == version.id)
    ).all()
    return "unstamped-" + content_stamp([(code, wkb) for code, wkb in rows])


def stamp_version(session: Session, version_id: int) -> str:
    """Hash the version's codes and geometries as stored, and write the stamp on the version.

    Read back from the database rather than from the importer's frames, so that every path
    that loads areas (importer, demo city, migration) stamps the same way.
    """
    table = Area.__table__
    rows = session.execute(
        select(table.c.code, geom_column(table)).where(table.c.layer_version_id == version_id)
    ).all()
    stamp = content_stamp([(code, wkb) for code, wkb in rows])
    session.execute(
        update(LayerVersion).where(LayerVersion.id == version_id).values(content_stamp=stamp)
    )
    return stamp
