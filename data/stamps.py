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

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from data.models import Area, Generation, LayerVersion, Meta
from data.repository import geom_column


def database_identity(session: Session) -> str:
    """The database's UUID; written now if it is missing (a truncated test database)."""
    value = session.scalar(select(Meta.value).where(Meta.key == "identity"))
    if value is None:
        value = uuid.uuid4().hex
        session.add(Meta(key="identity", value=value))
        session.flush()
    return value


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
