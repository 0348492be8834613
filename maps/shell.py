"""What every gridmap page shares: the base map setting, the folium map, and a control
element that brings a page's panel, styles, scripts and configuration.

Pages are thin on purpose. Python builds a folium map with no data in it and hands the
browser a configuration (URLs of the API and tiles, the base map's system, the city's
extent); the scripts in ``templates/`` fetch what they draw. That keeps the HTML small at
any city size and makes the served page and the API agree by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import folium
from branca.element import MacroElement
from folium.elements import JSCSSMixin
from jinja2 import Template

from maps.local_assets import use_local_assets

TEMPLATES = Path(__file__).resolve().parent / "templates"
# Systems the pages can draw in: WGS84 for OSM-style tiles, GCJ-02 for AMap/Gaode and
# Tencent tiles. The scripts shift what the API answers in WGS84 (templates/gcj02.js).
DISPLAY_CRS = ("wgs84", "gcj02")
MAX_ZOOM = 19


@dataclass(frozen=True)
class BaseMap:
    """The tile layer under the overlays; none by default (intranets may have no tiles)."""

    tile_url: str | None = None
    attribution: str = ""
    crs: str = "wgs84"  # 'gcj02' when the tiles are AMap/Gaode or Tencent

    def __post_init__(self) -> None:
        if self.crs not in DISPLAY_CRS:
            raise ValueError(f"base map tiles must be in {' or '.join(DISPLAY_CRS)}, not {self.crs!r} "
                             "(set GRIDMAP_TILE_CRS)")


NO_TILES = BaseMap()


# folium links Bootstrap, jQuery, glyphicons and awesome-markers into every map; our pages
# use none of them, and they were most of the bytes a page loads before drawing.
_LEAFLET_ONLY = ("leaflet", "leaflet_css")
_ICON_CSS = ("awesome_markers_font_css",)  # folium's name for Font Awesome's all.min.css


def new_map(base: BaseMap, *, icons: bool = False, **options: Any) -> folium.Map:
    """A folium map with no default tiles, and the base layer if one is set.

    ``icons`` keeps Font Awesome, for pages that draw its icons.
    """
    m = folium.Map(tiles=None, max_zoom=MAX_ZOOM, control_scale=True, **options)
    m.default_js = [(n, u) for n, u in m.default_js if n in _LEAFLET_ONLY]
    m.default_css = [(n, u) for n, u in m.default_css if n in _LEAFLET_ONLY + (_ICON_CSS if icons else ())]
    if base.tile_url:
        # An empty attribution makes folium raise; a space keeps the control quiet.
        folium.TileLayer(base.tile_url, attr=base.attribution or " ", name="base map",
                         max_zoom=MAX_ZOOM, overlay=False, control=False).add_to(m)
    return m


class PageControls(JSCSSMixin, MacroElement):
    """A page's panel, styles and scripts, run after folium has made the map.

    ``scripts`` are files in ``templates/``, concatenated in order; ``entry`` is the
    function they define, called with the map and ``config``. ``assets`` are extra
    (name, CDN URL) pairs such as a plugin's script: use_local_assets() maps them to our
    copies, so a page names exactly the versions that folium's plugins would.
    """

    _template = Template(
        """
        {% macro header(this, kwargs) %}<style>{{ this.css }}</style>{% endmacro %}
        {% macro html(this, kwargs) %}{{ this.panel }}{% endmacro %}
        {% macro script(this, kwargs) %}
        {{ this.js }}
        {{ this.entry }}({{ this._parent.get_name() }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )

    def __init__(
        self, entry: str, scripts: Sequence[str], config: dict[str, Any], *, css: str = "", panel: str = "",
        assets: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__()
        self._name = entry
        self.entry = entry
        self.config = config
        self.css = css
        self.panel = panel
        self.js = "\n".join((TEMPLATES / name).read_text(encoding="utf-8") for name in scripts)
        self.default_js = list(assets)


def page_html(m: folium.Map, title: str) -> str:
    """The whole page, with every asset served by the app."""
    # An empty icon: otherwise the browser asks for /favicon.ico, and a 404 in the console
    # would hide real errors.
    m.get_root().header.add_child(folium.Element(f'<title>{title}</title><link rel="icon" href="data:,">'))
    use_local_assets(m)
    return m.get_root().render()


def fit(bounds: tuple[float, float, float, float] | None) -> list[list[float]] | None:
    """(minlon, minlat, maxlon, maxlat) as Leaflet's [[south, west], [north, east]]."""
    if bounds is None:
        return None
    minx, miny, maxx, maxy = bounds
    return [[miny, minx], [maxy, maxx]]
