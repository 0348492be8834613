"""The planners' page (/maps/planner): the area hierarchy, compounds and facilities, a
choropleth of grids by an evaluation figure, a heat map of issues, search, the grid
coverage faults, and a swipe between two versions of the grid layer.

Polygons come as vector tiles (Leaflet.VectorGrid) and issues as server-side clusters,
so the page weighs the same for a town and for a city of 10,000 grids and 100,000 issues.
``templates/planner.js`` draws everything; this module writes the configuration it needs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import folium.plugins

from maps.shell import NO_TILES, BaseMap, PageControls, fit, new_map, page_html

# (tile layer, label, outline colour, weight, shown at first, first zoom drawn): coarser
# levels bolder, so the nesting reads at a glance. Compounds are small: drawn from zoom 13.
AREA_LAYERS: tuple[tuple[str, str, str, float, bool, int], ...] = (
    ("districts", "区 Districts", "#5b2a86", 3.0, True, 0),
    ("subdistricts", "街道 Sub-districts", "#1f6f8b", 2.2, True, 0),
    ("communities", "社区 Communities", "#2a9d8f", 1.4, False, 0),
    ("grids", "网格 Grids", "#56606e", 0.6, True, 0),
    ("compounds", "小区 Compounds", "#e76f51", 1.0, False, 13),
)
# The choropleth's figures, from GET /api/v1/stats (geo/stats.py says what each means).
FIGURES: tuple[tuple[str, str], ...] = (
    ("received", "Issues received"),
    ("open", "Open issues"),
    ("overdue", "Overdue issues"),
    ("on_time_rate", "On-time rate"),
    ("density_per_km2", "Issues per km²"),
)
FACILITY_KINDS: tuple[tuple[str, str, str], ...] = (
    ("car_park", "停车场 Car parks", "#1b6ac9"),
    ("sports_ground", "运动场 Sports grounds", "#1e9e49"),
    ("toilet", "厕所 Toilets", "#8e44ad"),
)
DEFAULT_PERIOD_DAYS = 365


@dataclass(frozen=True)
class PlannerOptions:
    """Where the page finds its data: "" is the serving app; a standalone copy names a server."""

    server: str = ""
    today: dt.date = field(default_factory=dt.date.today)
    grid_versions: tuple[str, ...] = ()  # effective dates, oldest first


def planner_config(bounds: tuple[float, float, float, float] | None, base: BaseMap, options: PlannerOptions) -> dict[str, Any]:
    server = options.server.rstrip("/")
    return {
        "api": f"{server}/api/v1",
        "tiles": f"{server}/tiles/{{layer}}/{{z}}/{{x}}/{{y}}.mvt",
        "crs": base.crs,
        "bounds": fit(bounds),
        "layers": [
            {"name": n, "label": label, "colour": c, "weight": w, "show": show, "minzoom": z}
            for n, label, c, w, show, z in AREA_LAYERS
        ],
        "figures": [{"key": k, "label": label} for k, label in FIGURES],
        "facility_kinds": [{"kind": k, "label": label, "colour": c} for k, label, c in FACILITY_KINDS],
        "period": {
            "from": (options.today - dt.timedelta(days=DEFAULT_PERIOD_DAYS)).isoformat(),
            "to": options.today.isoformat(),
        },
        "grid_versions": list(options.grid_versions),
    }


_PANEL = """
<div id="planner-panel" class="gm-panel" data-status="starting">
  <div class="gm-search">
    <input id="planner-search" type="search" placeholder="Find a grid, community or compound (code or name)"
      autocomplete="off" aria-label="Find a place by code or name">
    <ul id="planner-results" role="listbox" hidden></ul>
  </div>
  <div class="gm-row">
    <label for="planner-figure">Colour grids by</label>
    <select id="planner-figure"></select>
  </div>
  <div class="gm-row">
    <label for="planner-from">From</label><input id="planner-from" type="date">
    <label for="planner-to">to</label><input id="planner-to" type="date">
  </div>
  <div class="gm-row gm-compare">
    <label><input id="planner-compare" type="checkbox"> Compare grid versions</label>
    <select id="planner-left" aria-label="Left version"></select>
    <select id="planner-right" aria-label="Right version"></select>
  </div>
  <div id="planner-status" role="status" aria-live="polite">Loading&hellip;</div>
</div>
<div id="planner-swipe" hidden><input id="planner-swipe-range" type="range" min="0" max="1" step="0.001"
  value="0.5" aria-label="Swipe between versions"></div>
"""

_CSS = """
.gm-panel { position: absolute; top: 10px; left: 54px; z-index: 1000; width: 330px;
  background: rgba(255,255,255,.96); border-radius: 6px; box-shadow: 0 1px 6px rgba(0,0,0,.3);
  padding: 8px 10px; font: 13px/1.35 system-ui, sans-serif; }
.gm-panel .gm-row { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; margin-top: 6px; }
.gm-panel input[type=date] { width: 118px; }
.gm-panel select, .gm-panel input { font: inherit; }
.gm-search { position: relative; }
.gm-search input { width: 100%; box-sizing: border-box; padding: 4px 6px; }
#planner-results { position: absolute; left: 0; right: 0; top: 100%; margin: 0; padding: 0;
  list-style: none; background: #fff; border: 1px solid #ccc; max-height: 260px; overflow-y: auto; z-index: 1001; }
#planner-results li { padding: 4px 6px; cursor: pointer; }
#planner-results li:hover, #planner-results li.active { background: #e8f0fb; }
#planner-results .kind { color: #666; font-size: 11px; margin-right: 4px; }
#planner-status { margin-top: 6px; color: #333; min-height: 16px; }
.gm-compare select { max-width: 120px; }
.gm-legend { background: rgba(255,255,255,.95); padding: 6px 8px; border-radius: 5px;
  box-shadow: 0 1px 5px rgba(0,0,0,.3); font: 12px/1.4 system-ui, sans-serif; }
.gm-legend i { display: inline-block; width: 14px; height: 12px; margin-right: 5px; vertical-align: -1px;
  border: 1px solid rgba(0,0,0,.2); }
.gm-legend b { display: block; margin-bottom: 3px; }
#planner-swipe { position: absolute; left: 400px; right: 250px; top: 14px; z-index: 1000; padding: 6px 10px;
  background: rgba(255,255,255,.9); border-radius: 6px; box-shadow: 0 1px 5px rgba(0,0,0,.3); }
#planner-swipe input { width: 100%; }
.gm-divider { position: absolute; top: 0; bottom: 0; width: 3px; margin-left: -1px; background: #222;
  z-index: 999; pointer-events: none; }
.gm-popup h4 { font-size: 14px; margin: 0 0 4px; }
.gm-popup table { border-collapse: collapse; }
.gm-popup td { padding: 1px 6px 1px 0; vertical-align: top; }
.gm-popup td:first-child { color: #666; }
"""


def render_planner_map(
    bounds: tuple[float, float, float, float] | None,
    base: BaseMap = NO_TILES,
    options: PlannerOptions | None = None,
    title: str = "gridmap — planning",
) -> str:
    """The page; ``bounds`` (WGS84 lon/lat box of the city) sets the first view."""
    options = options or PlannerOptions()
    m = new_map(base, location=(0, 0), zoom_start=2)
    assets = [*folium.plugins.VectorGridProtobuf.default_js, *folium.plugins.HeatMap.default_js]
    PageControls(
        "gridmapPlanner", ["gcj02.js", "common.js", "planner.js"], planner_config(bounds, base, options),
        css=_CSS, panel=_PANEL, assets=assets,
    ).add_to(m)
    return page_html(m, title)
