"""The dispatchers' page (/maps/dispatch): cases clustered by the server and coloured by
status, overdue ones marked, over grid boundaries, with filters by department, category
and status, a popup per case linking its detail, and a refresh that redraws only the
cases.

``templates/dispatch.js`` draws it from GET /api/v1/issues/clusters (one GROUP BY per
view, so 100,000 cases cost the same page as 1,000), /issues and /issues/{id}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import folium.plugins

from geo.issues import OPEN_STATUSES, STATUSES
from maps.shell import NO_TILES, BaseMap, PageControls, fit, new_map, page_html

# Colours per status, in loop order: cool while with the centre, warm while with the
# handler, grey once ended. Overdue is not a status: it is a red ring on top.
STATUS_STYLE: dict[str, tuple[str, str]] = {
    "reported": ("#1f77b4", "上报 Reported"),
    "accepted": ("#17becf", "立案 Accepted"),
    "dispatched": ("#9467bd", "派遣 Dispatched"),
    "in_progress": ("#ff7f0e", "处置 In progress"),
    "responded": ("#bcbd22", "反馈 Responded"),
    "verified": ("#2ca02c", "核查 Verified"),
    "closed": ("#7f7f7f", "结案 Closed"),
    "rejected": ("#c7c7c7", "不予立案 Rejected"),
}
OVERDUE_COLOUR = "#d62728"
REFRESH_SECONDS = 60


@dataclass(frozen=True)
class DispatchOptions:
    """Where the page finds its data: "" is the serving app; a standalone copy names a server."""

    server: str = ""
    refresh_seconds: int = REFRESH_SECONDS


def dispatch_config(bounds: tuple[float, float, float, float] | None, base: BaseMap, options: DispatchOptions) -> dict[str, Any]:
    server = options.server.rstrip("/")
    assert set(STATUS_STYLE) == set(STATUSES), "every status needs a colour"
    return {
        "api": f"{server}/api/v1",
        "tiles": f"{server}/tiles/{{layer}}/{{z}}/{{x}}/{{y}}.mvt",
        "crs": base.crs,
        "bounds": fit(bounds),
        "statuses": [{"key": s, "colour": STATUS_STYLE[s][0], "label": STATUS_STYLE[s][1], "open": s in OPEN_STATUSES}
                     for s in STATUSES],
        "overdue_colour": OVERDUE_COLOUR,
        "refresh_seconds": options.refresh_seconds,
    }


_PANEL = """
<div id="dispatch-panel" class="gm-panel" data-status="starting" data-loads="0">
  <div class="gm-row">
    <select id="dispatch-department" aria-label="Department"><option value="">All departments</option></select>
  </div>
  <div class="gm-row">
    <select id="dispatch-category" aria-label="Category"><option value="">All categories</option></select>
  </div>
  <div class="gm-row gm-statuses" id="dispatch-statuses" role="group" aria-label="Statuses"></div>
  <div class="gm-row">
    <button id="dispatch-refresh" type="button">Refresh</button>
    <label><input id="dispatch-auto" type="checkbox" checked> every minute</label>
  </div>
  <div id="dispatch-status" role="status" aria-live="polite">Loading&hellip;</div>
</div>
"""

_CSS = """
.gm-panel { position: absolute; top: 10px; left: 54px; z-index: 1000; width: 310px;
  background: rgba(255,255,255,.96); border-radius: 6px; box-shadow: 0 1px 6px rgba(0,0,0,.3);
  padding: 8px 10px; font: 13px/1.35 system-ui, sans-serif; }
.gm-panel .gm-row { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 8px; margin-top: 6px; }
.gm-panel select { width: 100%; font: inherit; }
.gm-statuses label { white-space: nowrap; font-size: 12px; }
.gm-statuses i, .gm-key i { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin: 0 3px; vertical-align: -1px; }
#dispatch-status { margin-top: 6px; min-height: 16px; color: #333; }
.gm-cluster { border-radius: 50%; display: flex; align-items: center; justify-content: center; box-sizing: border-box; }
.gm-cluster span { background: #fff; border-radius: 50%; display: flex; align-items: center; justify-content: center;
  font: 600 11px/1 system-ui, sans-serif; color: #222; }
.gm-cluster.overdue { box-shadow: 0 0 0 3px #d62728; }
.gm-cluster b { position: absolute; right: -8px; top: -8px; background: #d62728; color: #fff; border-radius: 8px;
  font: 700 10px/14px system-ui, sans-serif; padding: 0 4px; }
.gm-case { border-radius: 50%; border: 2px solid #fff; box-shadow: 0 0 0 1px rgba(0,0,0,.5); box-sizing: border-box; }
.gm-case.overdue { border-color: #d62728; box-shadow: 0 0 0 2px #d62728; }
.gm-popup h4 { font-size: 14px; margin: 0 0 4px; }
.gm-popup table { border-collapse: collapse; }
.gm-popup td { padding: 1px 6px 1px 0; vertical-align: top; }
.gm-popup td:first-child { color: #666; white-space: nowrap; }
.gm-popup ul { margin: 4px 0; padding-left: 16px; max-height: 220px; overflow-y: auto; }
.gm-popup .late { color: #d62728; font-weight: 600; }
"""


def render_dispatch_map(
    bounds: tuple[float, float, float, float] | None,
    base: BaseMap = NO_TILES,
    options: DispatchOptions | None = None,
    title: str = "gridmap — dispatch",
) -> str:
    """The page; ``bounds`` (WGS84 lon/lat box of the city) sets the first view."""
    options = options or DispatchOptions()
    m = new_map(base, location=(0, 0), zoom_start=2)
    PageControls(
        "gridmapDispatch", ["gcj02.js", "common.js", "dispatch.js"], dispatch_config(bounds, base, options),
        css=_CSS, panel=_PANEL, assets=folium.plugins.VectorGridProtobuf.default_js,
    ).add_to(m)
    return page_html(m, title)
