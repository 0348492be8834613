"""Tables of the service. One schema, created by the Alembic migrations, on both backends.

Geometries are stored in EPSG:4326 (WGS84 lon/lat); importers convert on the way in.
Every geometry column has a spatial index (R*Tree on SpatiaLite, GiST on PostGIS).
"""

from __future__ import annotations

import datetime as dt

from geoalchemy2 import Geometry
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from geo.areas import LEVELS
from geo.issues import STATUSES

SRID = 4326


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware datetimes stored as UTC.

    SQLite has no timezone type and would silently drop the offset; storing UTC and
    re-attaching it on the way out gives both backends the same answers.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give a timezone")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class LayerVersion(Base):
    """One dated drawing of one level's boundaries; redrawn layers sit beside old ones."""

    __tablename__ = "layer_versions"
    __table_args__ = (
        UniqueConstraint("level", "effective_from", name="uq_layer_versions_level_effective"),
        CheckConstraint(_in("level", LEVELS), name="ck_layer_versions_level"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    effective_from: Mapped[dt.date] = mapped_column(Date)
    source: Mapped[str | None] = mapped_column(String(500))
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A hash of the version's codes and geometries, written at import
    # (data.repository.stamp_version): caches key on it, and a --replace changes it.
    content_stamp: Mapped[str | None] = mapped_column(String(64))


class Area(Base):
    """A district, sub-district, community or grid cell in one layer version."""

    __tablename__ = "areas"
    __table_args__ = (
        UniqueConstraint("layer_version_id", "code", name="uq_areas_version_code"),
        CheckConstraint(_in("level", LEVELS), name="ck_areas_level"),
        CheckConstraint("length(code) > 0", name="ck_areas_code_nonempty"),
        Index("ix_areas_code", "code"),
        Index("ix_areas_parent_code", "parent_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    layer_version_id: Mapped[int] = mapped_column(
        ForeignKey("layer_versions.id", ondelete="CASCADE")
    )
    level: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    parent_code: Mapped[str | None] = mapped_column(String(32))
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=False)

    layer_version: Mapped[LayerVersion] = relationship()


class Compound(Base):
    """A residential compound (小区)."""

    __tablename__ = "compounds"
    __table_args__ = (
        CheckConstraint("households IS NULL OR households >= 0", name="ck_compounds_households"),
        Index("ix_compounds_community_code", "community_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    community_code: Mapped[str | None] = mapped_column(String(32))
    households: Mapped[int | None] = mapped_column(Integer)
    property_manager: Mapped[str | None] = mapped_column(String(200))
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=False)


class Department(Base):
    """A unit that handles cases: police, fire, city management, a command centre, ..."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    # The area whose command the unit answers to (street-chief scheme), if any.
    area_code: Mapped[str | None] = mapped_column(String(32))
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=True)


class Facility(Base):
    """A car park, sports ground, toilet, ... that the public may use at set hours."""

    __tablename__ = "facilities"
    __table_args__ = (
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="ck_facilities_capacity"),
        CheckConstraint(
            "shared_spaces IS NULL OR (shared_spaces >= 0 AND "
            "(capacity IS NULL OR shared_spaces <= capacity))",
            name="ck_facilities_shared_spaces",
        ),
        Index("ix_facilities_kind", "kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    operator: Mapped[str | None] = mapped_column(String(200))
    access: Mapped[str | None] = mapped_column(String(40))
    capacity: Mapped[int | None] = mapped_column(Integer)
    shared_spaces: Mapped[int | None] = mapped_column(Integer)
    fee: Mapped[str | None] = mapped_column(String(40))
    contact: Mapped[str | None] = mapped_column(String(200))
    opening_hours: Mapped[str | None] = mapped_column(String(500))
    # Other OSM-style tags kept as they came, e.g. access:conditional.
    tags: Mapped[dict | None] = mapped_column(JSON)
    # A point or a polygon: distances are measured to the real shape.
    geom = mapped_column(Geometry("GEOMETRY", srid=SRID, spatial_index=True), nullable=False)
    # Live occupancy from the gate system, and when it was read.
    occupied: Mapped[int | None] = mapped_column(Integer)
    occupied_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The source's own hours text when it is not OSM opening_hours syntax.
    hours_text: Mapped[str | None] = mapped_column(String(1000))


class Issue(Base):
    """A reported problem at a place, and where it stands in the loop."""

    __tablename__ = "issues"
    __table_args__ = (
        CheckConstraint(_in("status", STATUSES), name="ck_issues_status"),
        Index("ix_issues_status", "status"),
        Index("ix_issues_grid_code", "grid_code"),
        Index("ix_issues_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(40), unique=True)
    category: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="reported")
    grid_code: Mapped[str | None] = mapped_column(String(32))
    community_code: Mapped[str | None] = mapped_column(String(32))
    subdistrict_code: Mapped[str | None] = mapped_column(String(32))
    district_code: Mapped[str | None] = mapped_column(String(32))
    department_code: Mapped[str | None] = mapped_column(String(32))
    # Private: never shown in public views.
    reporter_contact: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # None when the report gave only an address (hotline); it is routed without a place.
    geom = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True), nullable=True)
    address: Mapped[str | None] = mapped_column(String(500))
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    escalation_level: Mapped[str | None] = mapped_column(String(16))
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    # Optimistic lock: two dispatchers acting on one case cannot both win.
    version: Mapped[int] = mapped_column(Integer, default=1)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    client_id: Mapped[str | None] = mapped_column(String(64))
    media: Mapped[list | None] = mapped_column(JSON)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The deadline in force was computed on a provisional calendar (the official one for
    # its year was not loaded); `gridmap calendar import` recomputes it.
    due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)

    events: Mapped[list[IssueEvent]] = relationship(order_by="IssueEvent.seq")


class IssueEvent(Base):
    """One step in an issue's history. Append-only: a trigger refuses UPDATE and DELETE."""

    __tablename__ = "issue_events"
    __table_args__ = (UniqueConstraint("issue_id", "seq", name="uq_issue_events_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(120))
    note: Mapped[str | None] = mapped_column(Text)
    # Details such as the assignment before a boundary redraw.
    data: Mapped[dict | None] = mapped_column(JSON)


class Category(Base):
    """An issue category: a component (部件) or an event (事件), with its time limit."""

    __tablename__ = "categories"

    code: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    group: Mapped[str] = mapped_column(String(16))
    time_limit_hours: Mapped[float] = mapped_column(Float)
    working_hours: Mapped[bool] = mapped_column(Boolean)
    department_kind: Mapped[str | None] = mapped_column(String(40))


class RoutingRuleRow(Base):
    """A category -> department rule, optionally limited to one area (geo.routing)."""

    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str] = mapped_column(ForeignKey("categories.code"))
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    area_code: Mapped[str | None] = mapped_column(String(32))


class User(Base):
    """A staff member with a bearer token (stored as a SHA-256 hash, never in clear)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    department_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Meta(Base):
    """Facts about the database itself; ``identity`` is a UUID written at creation."""

    __tablename__ = "gridmap_meta"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class Generation(Base):
    """A change counter per unversioned table, bumped by database triggers (migration 0004)."""

    __tablename__ = "generations"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class CalendarYear(Base):
    """A year whose official arrangement (State Council notice) was loaded."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str | None] = mapped_column(String(500))
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CalendarDay(Base):
    """One official exception to the weekend rule: a weekday off, or a make-up working day."""

    __tablename__ = "calendar_days"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    workday: Mapped[bool] = mapped_column(Boolean)
    year: Mapped[int] = mapped_column(ForeignKey("calendar_years.year", ondelete="CASCADE"))
