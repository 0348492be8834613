"""Cache identity and content stamps, the official calendar in the database, provisional deadlines.

- ``gridmap_meta``: one row per key; ``identity`` is a UUID written when the database is
  created, so that caches in a shared data directory never mix two databases.
- ``layer_versions.content_stamp``: a hash of a version's codes and geometries, written
  at import (``data.repository.stamp_version``); a ``--replace`` changes it.
- ``generations``: a counter per unversioned table (compounds, facilities, departments),
  bumped by triggers in the same transaction as any change to that table.
- ``calendar_days``: official holidays and make-up working days loaded with
  ``gridmap calendar import`` (and the years they cover, ``calendar_years``), so every
  worker of every process sees the same calendar.
- ``issues.due_provisional``: the deadline in force was computed on a provisional calendar
  (weekends and statutory holidays by rule) because the official one was not loaded.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

from data.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Tables whose every change bumps their generation (geo-free caches key on it).
GENERATION_TABLES = ("compounds", "facilities", "departments")


def upgrade() -> None:
    op.create_table(
        "gridmap_meta",
        sa.Column("key", sa.String(40), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
    )
    op.execute(
        sa.text("INSERT INTO gridmap_meta (key, value) VALUES ('identity', :value)").bindparams(
            value=uuid.uuid4().hex
        )
    )
    op.create_table(
        "generations",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    for table in GENERATION_TABLES:
        op.execute(f"INSERT INTO generations (name, value) VALUES ('{table}', 0)")
        _bump_generation_on_change(table)
    op.execute("ALTER TABLE layer_versions ADD COLUMN content_stamp VARCHAR(64)")
    op.create_table(
        "calendar_years",
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("source", sa.String(500)),
        sa.Column("imported_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "calendar_days",
        sa.Column("day", sa.Date, primary_key=True),
        # True: a make-up working day (调休); False: a day off of an official holiday.
        sa.Column("workday", sa.Boolean, nullable=False),
        sa.Column("year", sa.Integer, sa.ForeignKey("calendar_years.year", ondelete="CASCADE"),
                  nullable=False),
    )
    false = "0" if op.get_bind().dialect.name == "sqlite" else "false"
    op.execute(f"ALTER TABLE issues ADD COLUMN due_provisional BOOLEAN NOT NULL DEFAULT {false}")
    _stamp_existing_versions()


def _bump_generation_on_change(table: str) -> None:
    """Any INSERT, UPDATE or DELETE on ``table`` bumps its generation in the same transaction.

    An upsert, so that a missing row (a truncated table in a test) comes back instead of
    leaving the counter silently frozen.
    """
    bump = (
        f"INSERT INTO generations (name, value) VALUES ('{table}', 1) "
        f"ON CONFLICT (name) DO UPDATE SET value = generations.value + 1"
    )
    if op.get_bind().dialect.name == "sqlite":
        # SQLite has row triggers only; a bulk load of thousands of rows costs as many
        # single-row updates, a few milliseconds.
        for verb in ("INSERT", "UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_generation_{verb.lower()} AFTER {verb} ON {table} "
                f"BEGIN {bump}; END"
            )
        return
    op.execute(
        f"""CREATE FUNCTION {table}_generation() RETURNS trigger AS $$
        BEGIN {bump}; RETURN NULL; END; $$ LANGUAGE plpgsql"""
    )
    op.execute(
        f"CREATE TRIGGER {table}_generation AFTER INSERT OR UPDATE OR DELETE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_generation()"
    )


def _stamp_existing_versions() -> None:
    """Stamp the versions of a database made before stamps existed."""
    from sqlalchemy.orm import Session

    from data.stamps import stamp_version

    session = Session(bind=op.get_bind())
    ids = [row[0] for row in session.execute(sa.text("SELECT id FROM layer_versions"))]
    for version_id in ids:
        stamp_version(session, version_id)
    session.flush()


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in GENERATION_TABLES:
        if sqlite:
            for verb in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_generation_{verb}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_generation ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_generation()")
    op.execute("ALTER TABLE issues DROP COLUMN due_provisional")
    op.execute("ALTER TABLE layer_versions DROP COLUMN content_stamp")
    for table in ("calendar_days", "calendar_years", "generations", "gridmap_meta"):
        op.drop_table(table)
