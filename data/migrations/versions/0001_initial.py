"""Initial schema: areas with layer versions, compounds, departments, facilities, issues.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

from data.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

LEVELS = "('district', 'subdistrict', 'community', 'grid')"
STATUSES = (
    "('reported', 'accepted', 'rejected', 'dispatched', 'in_progress', 'responded', "
    "'verified', 'closed')"
)


def _geom(kind: str, nullable: bool = False) -> sa.Column:
    # spatial_index=True: GeoAlchemy2's table events create the R*Tree (SpatiaLite,
    # via RecoverGeometryColumn + CreateSpatialIndex) or the GiST index (PostGIS).
    return sa.Column("geom", Geometry(kind, srid=4326, spatial_index=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "layer_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("effective_from", sa.Date, nullable=False),
        sa.Column("source", sa.String(500)),
        sa.Column("imported_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("level", "effective_from", name="uq_layer_versions_level_effective"),
        sa.CheckConstraint(f"level IN {LEVELS}", name="ck_layer_versions_level"),
    )
    op.create_table(
        "areas",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "layer_version_id",
            sa.Integer,
            sa.ForeignKey("layer_versions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("parent_code", sa.String(32)),
        _geom("MULTIPOLYGON"),
        sa.UniqueConstraint("layer_version_id", "code", name="uq_areas_version_code"),
        sa.CheckConstraint(f"level IN {LEVELS}", name="ck_areas_level"),
        sa.CheckConstraint("length(code) > 0", name="ck_areas_code_nonempty"),
    )
    op.create_index("ix_areas_code", "areas", ["code"])
    op.create_index("ix_areas_parent_code", "areas", ["parent_code"])

    op.create_table(
        "compounds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(32), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("community_code", sa.String(32)),
        sa.Column("households", sa.Integer),
        sa.Column("property_manager", sa.String(200)),
        _geom("MULTIPOLYGON"),
        sa.CheckConstraint("households IS NULL OR households >= 0", name="ck_compounds_households"),
    )
    op.create_index("ix_compounds_community_code", "compounds", ["community_code"])

    op.create_table(
        "departments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(32), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("area_code", sa.String(32)),
        _geom("MULTIPOLYGON", nullable=True),
    )

    op.create_table(
        "facilities",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("operator", sa.String(200)),
        sa.Column("access", sa.String(40)),
        sa.Column("capacity", sa.Integer),
        sa.Column("shared_spaces", sa.Integer),
        sa.Column("fee", sa.String(40)),
        sa.Column("contact", sa.String(200)),
        sa.Column("opening_hours", sa.String(500)),
        sa.Column("tags", sa.JSON),
        _geom("GEOMETRY"),
        sa.CheckConstraint("capacity IS NULL OR capacity >= 0", name="ck_facilities_capacity"),
        sa.CheckConstraint(
            "shared_spaces IS NULL OR (shared_spaces >= 0 AND "
            "(capacity IS NULL OR shared_spaces <= capacity))",
            name="ck_facilities_shared_spaces",
        ),
    )
    op.create_index("ix_facilities_kind", "facilities", ["kind"])

    op.create_table(
        "issues",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ref", sa.String(40), nullable=False, unique=True),
        sa.Column("category", sa.String(60), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("grid_code", sa.String(32)),
        sa.Column("community_code", sa.String(32)),
        sa.Column("subdistrict_code", sa.String(32)),
        sa.Column("district_code", sa.String(32)),
        sa.Column("department_code", sa.String(32)),
        sa.Column("reporter_contact", sa.String(200)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        # Nullable: a hotline report may come with an address only; it is still taken in.
        _geom("POINT", nullable=True),
        sa.CheckConstraint(f"status IN {STATUSES}", name="ck_issues_status"),
    )
    op.create_index("ix_issues_status", "issues", ["status"])
    op.create_index("ix_issues_grid_code", "issues", ["grid_code"])
    op.create_index("ix_issues_created_at", "issues", ["created_at"])

    op.create_table(
        "issue_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("issue_id", sa.Integer, sa.ForeignKey("issues.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16)),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("data", sa.JSON),
        sa.UniqueConstraint("issue_id", "seq", name="uq_issue_events_seq"),
    )
    _make_append_only("issue_events")


def _make_append_only(table: str) -> None:
    """History must not be rewritten: refuse UPDATE and DELETE in the database itself."""
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
        return
    op.execute(
        f"""CREATE FUNCTION {table}_append_only() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION '{table} is append-only'; END; $$ LANGUAGE plpgsql"""
    )
    op.execute(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
    )


def downgrade() -> None:
    for table in ("issue_events", "issues", "facilities", "departments", "compounds", "areas"):
        op.drop_table(table)
    op.drop_table("layer_versions")
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP FUNCTION IF EXISTS issue_events_append_only()")
