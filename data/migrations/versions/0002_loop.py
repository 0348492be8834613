"""The closed loop: categories, routing rules, staff users, and issue deadlines and versions.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from data.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "categories",
        sa.Column("code", sa.String(60), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("group", sa.String(16), nullable=False),
        sa.Column("time_limit_hours", sa.Float, nullable=False),
        sa.Column("working_hours", sa.Boolean, nullable=False),
        sa.Column("department_kind", sa.String(40)),
        sa.CheckConstraint("\"group\" IN ('component', 'event')", name="ck_categories_group"),
        sa.CheckConstraint("time_limit_hours > 0", name="ck_categories_time_limit"),
    )
    op.create_table(
        "routing_rules",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("category", sa.String(60), sa.ForeignKey("categories.code"), nullable=False),
        sa.Column("department_code", sa.String(32), sa.ForeignKey("departments.code"), nullable=False),
        sa.Column("area_code", sa.String(32)),
    )
    # One rule per category and area; NULL (city-wide) is made unique by the expression.
    op.create_index(
        "uq_routing_rules_category_area", "routing_rules",
        ["category", sa.text("coalesce(area_code, '')")], unique=True,
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(80), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("department_code", sa.String(32), sa.ForeignKey("departments.code")),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint(
            "role IN ('grid_worker', 'dispatcher', 'handler', 'planner', 'admin', 'gate')", name="ck_users_role"
        ),
        sa.CheckConstraint("role <> 'handler' OR department_code IS NOT NULL", name="ck_users_handler_department"),
    )
    # Plain ADD COLUMN with inline CHECKs works on both backends; a batch copy of the
    # table would break SpatiaLite's registration of the geometry column and its index.
    timestamp = "DATETIME" if op.get_bind().dialect.name == "sqlite" else "TIMESTAMP WITH TIME ZONE"
    for column in (
        f"due_at {timestamp}",
        ("escalation_level VARCHAR(16) CONSTRAINT ck_issues_escalation "
         "CHECK (escalation_level IS NULL OR escalation_level IN ('district', 'city'))"),
        ("satisfaction INTEGER CONSTRAINT ck_issues_satisfaction "
         "CHECK (satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5)"),
        "version INTEGER NOT NULL DEFAULT 1",
        "idempotency_key VARCHAR(200)",
        "client_id VARCHAR(64)",
        "media JSON",
        f"closed_at {timestamp}",
        "address VARCHAR(500)",
    ):
        op.execute(f"ALTER TABLE issues ADD COLUMN {column}")
    op.create_index("uq_issues_idempotency", "issues", ["client_id", "idempotency_key"], unique=True)
    op.create_index("ix_issues_due_at", "issues", ["due_at"])
    op.create_index("ix_issues_department_code", "issues", ["department_code"])


def downgrade() -> None:
    op.drop_index("ix_issues_department_code", "issues")
    op.drop_index("ix_issues_due_at", "issues")
    op.drop_index("uq_issues_idempotency", "issues")
    for column in ("address", "closed_at", "media", "client_id", "idempotency_key", "version", "satisfaction",
                   "escalation_level", "due_at"):
        op.execute(f"ALTER TABLE issues DROP COLUMN {column}")
    op.drop_table("users")
    op.drop_index("uq_routing_rules_category_area", "routing_rules")
    op.drop_table("routing_rules")
    op.drop_table("categories")
