"""Live occupancy of facilities, as gate systems report it.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN with inline CHECKs (see 0002 on why not a batch copy). The rule that
    # occupancy never exceeds capacity holds in the database too, not only in the API.
    timestamp = "DATETIME" if op.get_bind().dialect.name == "sqlite" else "TIMESTAMP WITH TIME ZONE"
    op.execute(
        "ALTER TABLE facilities ADD COLUMN occupied INTEGER CONSTRAINT ck_facilities_occupied "
        "CHECK (occupied IS NULL OR (occupied >= 0 AND (capacity IS NULL OR occupied <= capacity)))"
    )
    op.execute(f"ALTER TABLE facilities ADD COLUMN occupied_at {timestamp}")
    op.execute("ALTER TABLE facilities ADD COLUMN hours_text VARCHAR(1000)")


def downgrade() -> None:
    for column in ("hours_text", "occupied_at", "occupied"):
        op.execute(f"ALTER TABLE facilities DROP COLUMN {column}")
