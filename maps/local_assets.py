"""Serve folium's JS/CSS from our own app instead of CDNs.

Maps must work with no internet (intranets, tests), but folium and its plugins link
Leaflet, jQuery, Bootstrap, Font Awesome, ... from CDNs. `maps/assets/build.py`
copies the same files from npm into `maps/static/vendor/`, and `use_local_assets()`
points a map's links at them.

Two layers, both per map (folium's class-level lists are never touched, so other
maps and other code see folium unchanged):

1. Every element already in the map tree that has `default_js`/`default_css` gets
   instance-level copies of those lists with local URLs. An unknown CDN URL raises
   here, early, naming the element and the asset.
2. The figure's <head> is replaced by a guard that maps every <script>/<link> just
   before it is written. That catches elements added *after* the call and links
   added straight to the header (branca's colormap adds d3 that way).

A CDN URL with no local copy raises `UnknownAssetError`: a new plugin can never
pull from the internet silently. To support one, add its npm package to
maps/assets/package.json, its files to NPM_FILES in build.py, and its URL here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import folium
from branca.element import CssLink, Element, Figure, JavascriptLink

VENDOR_URL = "/static/vendor"
NOT_BUILT_MESSAGE = "map assets are not built: run `make assets`"
_BUILD_INFO = "build-info.json"  # written last by build.py: marks a complete build

# folium 0.20 / branca 0.8 CDN URL path -> path under the vendor dir (layout: build.py).
# Keyed by the URL's path (host left out: we never contact those hosts, and no CDN
# host name needs to appear in our code). Exact paths on purpose: when folium changes
# a URL or a version, the map raises instead of serving a file of another version.
ASSET_MAP: dict[str, str] = {
    # folium.Map
    "/npm/leaflet@1.9.3/dist/leaflet.js": "leaflet/dist/leaflet.js",
    "/npm/leaflet@1.9.3/dist/leaflet.css": "leaflet/dist/leaflet.css",
    "/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    "/npm/bootstrap@5.2.2/dist/js/bootstrap.bundle.min.js": "bootstrap/dist/js/bootstrap.bundle.min.js",
    "/npm/bootstrap@5.2.2/dist/css/bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
    # folium links a glyphicons-only stylesheet of Bootstrap 3.0.0; build.py cuts
    # the same rules out of Bootstrap 3.4.1.
    "/bootstrap/3.0.0/css/bootstrap-glyphicons.css": "bootstrap3/dist/css/bootstrap-glyphicons.css",
    "/npm/@fortawesome/fontawesome-free@6.2.0/css/all.min.css": "@fortawesome/fontawesome-free/css/all.min.css",
    "/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.js": "drmonty-leaflet-awesome-markers/js/leaflet.awesome-markers.js",
    "/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.css": "drmonty-leaflet-awesome-markers/css/leaflet.awesome-markers.css",
    "/gh/python-visualization/folium/folium/templates/leaflet.awesome.rotate.min.css": "folium/leaflet.awesome.rotate.min.css",
    # folium.plugins.MarkerCluster
    "/ajax/libs/leaflet.markercluster/1.1.0/leaflet.markercluster.js": "leaflet.markercluster/dist/leaflet.markercluster.js",
    "/ajax/libs/leaflet.markercluster/1.1.0/MarkerCluster.css": "leaflet.markercluster/dist/MarkerCluster.css",
    "/ajax/libs/leaflet.markercluster/1.1.0/MarkerCluster.Default.css": "leaflet.markercluster/dist/MarkerCluster.Default.css",
    # folium.plugins.HeatMap: folium's own patched Leaflet.heat, copied from the package
    "/gh/python-visualization/folium@main/folium/templates/leaflet_heat.min.js": "folium/leaflet_heat.min.js",
    # folium.plugins.Search
    "/npm/leaflet-search@2.9.7/dist/leaflet-search.min.js": "leaflet-search/dist/leaflet-search.min.js",
    "/npm/leaflet-search@2.9.7/dist/leaflet-search.min.css": "leaflet-search/dist/leaflet-search.min.css",
    # folium.plugins.VectorGridProtobuf ("@latest" upstream; we pin 1.3.0, the latest)
    "/leaflet.vectorgrid@latest/dist/Leaflet.VectorGrid.bundled.js": "leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.js",
    # branca colormaps (Choropleth legend, LinearColormap/StepColormap.add_to(map))
    "/ajax/libs/d3/3.5.5/d3.min.js": "d3/d3.min.js",
}


class AssetsNotBuiltError(RuntimeError):
    """maps/static/vendor/ has not been produced by `make assets`."""


class UnknownAssetError(ValueError):
    """A map element links a remote asset that we have no local copy of."""


def vendor_dir() -> Path:
    """The folder build.py fills; serve it at VENDOR_URL (FastAPI StaticFiles)."""
    return Path(__file__).resolve().parent / "static" / "vendor"


def assets_built() -> bool:
    return (vendor_dir() / _BUILD_INFO).is_file()


def require_assets_built() -> None:
    if not assets_built():
        raise AssetsNotBuiltError(f"{NOT_BUILT_MESSAGE} (missing {vendor_dir()})")


def _is_remote(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.scheme or parts.netloc)  # "https://x", "//x", "data:..."


def local_url(url: str, base_url: str = VENDOR_URL, *, name: str = "?", owner: str = "?") -> str:
    """Map a CDN URL to our copy; URLs on our own site (no scheme/host) pass unchanged."""
    if not _is_remote(url):
        return url
    try:
        path = ASSET_MAP[urlsplit(url).path]
    except KeyError:
        raise UnknownAssetError(
            f"map asset {name!r} of {owner} has no local copy: {url} "
            "(add it to maps/assets/package.json, maps/assets/build.py and "
            "ASSET_MAP in maps/local_assets.py)"
        ) from None
    return f"{base_url.rstrip('/')}/{path}"


def _localise_lists(element: Any, base_url: str) -> None:
    owner = type(element).__name__
    for attr in ("default_js", "default_css"):
        links = getattr(element, attr, None)
        if links:
            # A new list on the instance: the class attribute stays as folium has it.
            setattr(
                element,
                attr,
                [(n, local_url(u, base_url, name=n, owner=owner)) for n, u in links],
            )


def _walk(element: Element) -> list[Element]:
    found = [element]
    for child in list(element._children.values()):
        found += _walk(child)
    return found


class _LocalHeader(Element):
    """A figure <head> that rewrites every script/stylesheet link as it renders."""

    def __init__(self, original: Element, base_url: str) -> None:
        super().__init__()
        self._name = original._name
        self._id = original._id
        self._children = original._children
        self._parent = original._parent
        for child in self._children.values():
            child._parent = self
        self.base_url = base_url

    def render(self, **kwargs: Any) -> str:
        for name, child in self._children.items():
            if isinstance(child, (JavascriptLink, CssLink)):
                child.url = local_url(child.url, self.base_url, name=name, owner="page header")
        return super().render(**kwargs)


def use_local_assets(
    m: folium.Map, base_url: str = VENDOR_URL, *, require_built: bool = True
) -> folium.Map:
    """Make map `m` (and every plugin in it) load its assets from `base_url`.

    Raises AssetsNotBuiltError if the vendor folder is missing (unless
    require_built=False, e.g. for tests that only look at the HTML) and
    UnknownAssetError for a CDN asset we have no copy of. Safe to call again.
    Returns `m` so it can be chained.
    """
    if require_built:
        require_assets_built()
    figure = m.get_root()
    if not isinstance(figure, Figure):
        raise TypeError("the map is not in a branca Figure; create it with folium.Map()")
    for element in _walk(figure):
        _localise_lists(element, base_url)
    if isinstance(figure.header, _LocalHeader):
        figure.header.base_url = base_url
    else:
        figure.header = _LocalHeader(figure.header, base_url)
    return m
