"""The residents' page: open facilities near you, now or at a chosen time, on a phone.

Python only builds the shell (a folium map with local assets, the control panel and the
sub-district outlines for orientation). Markers are drawn in the browser by
``templates/resident.js`` from ``GET /api/v1/facilities/nearby``, so that a new point, time
or kind filter is one API call instead of a page load; the page and the API can never
disagree on what is open because the page has no opening-hours logic of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import folium
import geopandas as gpd
import numpy as np

from geo.crs import geometry_from_wgs84, wgs84_to_gcj02
from maps.shell import NO_TILES, BaseMap, PageControls, new_map, page_html

# (API kind, filter label, popup label, Font Awesome icon): the filter and the markers.
KINDS: tuple[tuple[str, str, str, str], ...] = (
    ("car_park", "Car parks", "Car park", "fa-square-parking"),
    ("sports_ground", 'Sports<span class="rp-more"> grounds</span>', "Sports ground", "fa-futbol"),
    ("toilet", "Toilets", "Public toilet", "fa-restroom"),
)

_PANEL = """
<div id="resident-panel" data-status="starting" data-loads="0">
  <div class="rp-row">
    <button id="resident-locate" type="button" title="Locate me" aria-label="Locate me">
      <i class="fa-solid fa-location-crosshairs" aria-hidden="true"></i>
      <span class="rp-more">Locate me</span></button>
    <label class="rp-time" for="resident-time"><span class="rp-sr">Open at</span>
      <input id="resident-time" type="datetime-local" step="60"></label>
    <button id="resident-now" type="button" title="Back to the current time">Now</button>
  </div>
  <div class="rp-row rp-kinds" role="group" aria-label="Kinds of place">{kinds}</div>
  <div id="resident-status" role="status" aria-live="polite">Finding your location&hellip;</div>
</div>
"""

_KIND_CHIP = (
    '<label class="rp-kind"><input type="checkbox" name="kind" value="{kind}" checked>'
    '<i class="fa-solid {icon}" aria-hidden="true"></i> {label}</label>'
)

# Phone first: every control is at least 44 px high (the usual touch-target minimum) and
# the panel wraps instead of overflowing a 375 px screen. The panel floats over the map,
# so resident.js pads popups' auto-pan by its height.
_CSS = """
#resident-panel { position: absolute; top: 0; left: 0; right: 0; z-index: 1000;
  background: rgba(255,255,255,.96); box-shadow: 0 1px 6px rgba(0,0,0,.25);
  padding: 6px 8px 4px; font: 15px/1.3 system-ui, sans-serif; }
#resident-panel .rp-row { display: flex; flex-wrap: wrap; gap: 6px; align-items: center;
  margin-bottom: 6px; }
#resident-panel button, #resident-panel input[type=datetime-local], .rp-kind {
  min-height: 44px; border: 1px solid #b8bec6; border-radius: 8px; background: #fff;
  font: inherit; padding: 0 10px; box-sizing: border-box; }
#resident-panel #resident-locate { background: #1b6ac9; color: #fff; border-color: #1b6ac9;
  font-weight: 600; min-width: 48px; font-size: 20px; }
.rp-time { flex: 1 1 150px; display: flex; min-width: 0; }
.rp-time input { width: 100%; min-width: 0; }
#resident-panel #resident-time { font-size: 14px; padding: 0 6px; }
.rp-kind { display: inline-flex; align-items: center; gap: 4px; cursor: pointer; margin: 0;
  user-select: none; flex: 1 1 auto; justify-content: center; font-size: 14px; }
#resident-panel .rp-kind { padding: 0 6px; }
/* On a phone, words that do not fit give way; icons and titles keep the meaning. */
@media (max-width: 480px) { .rp-more { display: none; } }
.rp-kind input { width: 18px; height: 18px; margin: 0; }
.rp-sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
#resident-status { font-size: 13px; color: #333; min-height: 18px; }
#resident-status .lgi { white-space: nowrap; margin-right: 8px; }
#resident-status .lg { display: inline-block; width: 10px; height: 10px; border-radius: 50%;
  margin-right: 3px; vertical-align: -1px; }
.fac { border-radius: 50%; border: 2px solid #fff; box-shadow: 0 0 0 1px rgba(0,0,0,.45);
  color: #fff; display: flex; align-items: center; justify-content: center;
  font-size: 14px; box-sizing: border-box; }
.fac.state-open, .lg.state-open { background: #1e9e49; }
.fac.state-closed, .lg.state-closed { background: #8d939b; }
.fac.state-unknown, .lg.state-unknown { background: #b7a98a; }
.fac.state-exit_only, .lg.state-exit_only { background: #e08a00; }
.fac.state-exit_only { border-style: dashed; }
.fac .badge { position: absolute; right: -7px; top: -7px; background: #fff; color: #b06a00;
  border-radius: 7px; font-size: 10px; font-weight: 700; padding: 0 3px; line-height: 14px; }
.resident-popup h3 { font-size: 16px; margin: 0 0 4px; }
.resident-popup p { margin: 2px 0; }
.resident-popup .st-open { color: #137a35; font-weight: 600; }
.resident-popup .st-closed, .resident-popup .st-unknown { color: #555; font-weight: 600; }
.resident-popup .st-exit_only { color: #a35f00; font-weight: 600; }
.leaflet-bottom { margin-bottom: 8px; }
"""


@dataclass(frozen=True)
class ResidentOptions:
    """What the page asks the API for; the API caps the limit at 200 and the radius at 20 km."""

    api_url: str = "/api/v1/facilities/nearby"
    radius_m: float = 2000.0
    limit: int = 200



def render_resident_map(
    centre: tuple[float, float] | None,
    base: BaseMap = NO_TILES,
    outlines: gpd.GeoDataFrame | None = None,
    options: ResidentOptions = ResidentOptions(),
    title: str = "gridmap — places near you",
) -> str:
    """The full HTML page.

    ``centre`` is the WGS84 (lon, lat) used when the browser will not give a location
    (None: no city data; the resident then taps the map). ``outlines`` are WGS84 areas
    drawn faintly for orientation, which matters when there is no base map.
    """
    start = _display(centre, base) if centre else (0.0, 0.0)
    m = new_map(base, icons=True, location=(start[1], start[0]), zoom_start=14 if centre else 2, zoom_control="bottomright")
    if outlines is not None and not outlines.empty:
        _outline_layer(outlines, base).add_to(m)
    config = {
        "api": options.api_url,
        "radius_m": options.radius_m,
        "limit": options.limit,
        "centre": list(centre) if centre else None,
        "display_crs": base.crs,
        "kinds": {k: {"one": one, "icon": icon} for k, _label, one, icon in KINDS},
    }
    panel = _PANEL.format(kinds="".join(_KIND_CHIP.format(kind=k, label=label, icon=icon) for k, label, _one, icon in KINDS))
    PageControls("gridmapResident", ["gcj02.js", "resident.js"], config, css=_CSS, panel=panel).add_to(m)
    return page_html(m, title)


def _display(point: tuple[float, float], base: BaseMap) -> tuple[float, float]:
    if base.crs == "wgs84":
        return point
    x, y = wgs84_to_gcj02(point[0], point[1])
    return float(x), float(y)


def _outline_layer(frame: gpd.GeoDataFrame, base: BaseMap) -> folium.GeoJson:
    if base.crs != "wgs84":
        moved = geometry_from_wgs84(np.asarray(frame.geometry.values, dtype=object), base.crs)
        frame = frame.set_geometry(list(moved), crs=frame.crs)
    # Not interactive: a tap inside an area must reach the map, where it picks the point.
    return folium.GeoJson(
        frame[["name", "geometry"]],
        name="areas",
        interactive=False,
        style_function=lambda _f: {
            "color": "#5b6b7f",
            "weight": 1.5,
            "fill": False,
            "dashArray": "4 4",
        },
    )
