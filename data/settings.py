"""Settings read from the environment (prefix ``GRIDMAP_``) or a ``.env`` file.

They live in ``data/`` because the data layer is the lowest layer that needs them; ``api/``
and the command line import them from here, which keeps data flowing one way.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, IPvAnyNetwork
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a deployment may change; every default works out of the box."""

    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", env_file=".env", extra="ignore")

    # Where the embedded SpatiaLite file, uploads and caches live. Gitignored.
    data_dir: Path = Path("var")
    # Unset means the embedded SpatiaLite file in data_dir. PostGIS:
    # postgresql+psycopg://user@host:5432/dbname
    database_url: str | None = None
    # "free" accepts any short code; "cn15" enforces the 6/9/12/15-digit hierarchical
    # scheme of DOMAIN.md (district/sub-district/community/grid), child codes starting
    # with the parent code. Cities differ, so the scheme is configured, not assumed.
    code_scheme: str = "free"
    # A point outside every grid but within this distance goes to the nearest grid.
    snap_metres: float = Field(50.0, ge=0)
    # The CRS of `gridmap assign` input files that carry none (CSV; a shapefile without
    # .prj): wgs84, cgcs2000, gcj02, bd09 or EPSG:n. No default on purpose: phone apps give
    # GCJ-02, and taking their points as WGS84 puts many in the wrong grid without a word.
    assign_crs: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # Base map: no base layer unless a tile URL template is set (an intranet may have none).
    tile_url: str | None = None
    tile_attribution: str = ""
    # "wgs84" or "gcj02": GCJ-02 tiles (AMap/Gaode, Tencent) need overlays shifted to match.
    tile_crs: Literal["wgs84", "gcj02"] = "wgs84"
    # At start, the server draws the area layers' tiles up to this zoom (and keeps them on
    # disk per layer version), so that the maps' first views are ready; 0: never.
    tile_seed_zoom: int = Field(11, ge=0, le=14)
    # The on-disk tile store's bound in MB; past it, the least recently written tiles go.
    tile_disk_mb: int = Field(512, ge=1)
    # Origins whose pages may read the API (GET only, no credentials): a map exported by
    # `gridmap render` is opened from a file or another server. "*" allows any.
    cors_origins: list[str] = ["*"]

    # The closed loop.
    # Working periods of a working day, for deadlines counted in working hours.
    working_day: str = "08:30-12:00,14:00-17:30"
    # Extra official holidays / make-up working days for years chinese-calendar lacks
    # (JSON: {"holidays": [...], "workdays": [...]}); geo/calendar_extra.json by default.
    calendar_extra: Path | None = None
    # Possible duplicates: open issues of the same category this close and this recent.
    duplicate_radius_m: float = Field(50.0, gt=0)
    duplicate_days: int = Field(7, gt=0)
    # Reports accepted per client address per minute.
    report_rate_per_minute: int = Field(30, gt=0)
    # Proxies (addresses or networks) whose X-Forwarded-For is believed, e.g.
    # '["127.0.0.1", "10.0.0.0/8"]'. None by default: anyone can write that header.
    trusted_proxies: list[IPvAnyNetwork] = []
    # Where reports are taken. Unset: the union of the district layer in force (or, with no
    # districts, of the widest level loaded). Or "minlon,minlat,maxlon,maxlat" (WGS84), or
    # the path of a GeoJSON file of the area.
    service_area: str | None = None
    # A report farther than this outside the service area is refused as a mistake.
    service_area_margin_m: float = Field(1000.0, ge=0)
    # The department (a code, usually a command centre) that takes reports in no grid,
    # reports with an address only, and cases no rule or local command centre takes.
    # Unset: such cases are held unrouted, with the reason, for a dispatcher.
    fallback_department: str | None = None
    # Uploaded media: the largest file accepted, in megabytes.
    max_upload_mb: float = Field(20.0, gt=0)
    # How often the server marks overdue cases and escalates them (0: never).
    escalate_every_seconds: int = Field(300, ge=0)

    # Residents' finder: an occupancy reading older than this shows as unknown.
    occupancy_max_age_seconds: int = Field(900, gt=0)

    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL in use: the configured one or the embedded SpatiaLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gridmap.sqlite').resolve()}"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
