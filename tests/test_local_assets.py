"""Maps must load every JS/CSS/font/image from our own /static/vendor (no internet)."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import branca.colormap
import folium
import pytest
from folium import plugins
from folium.elements import JSCSSMixin

from maps.local_assets import (
    ASSET_MAP,
    NOT_BUILT_MESSAGE,
    VENDOR_URL,
    UnknownAssetError,
    assets_built,
    use_local_assets,
    vendor_dir,
)


def _need_built_assets() -> None:
    # In CI the build is part of the run, so a missing vendor dir is a failure there.
    if assets_built():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{NOT_BUILT_MESSAGE} (CI=true; {vendor_dir()} is missing)")
    pytest.skip(f"{NOT_BUILT_MESSAGE} ({vendor_dir()} is missing)")


GEOJSON = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"name": "grid A"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[116.0, 39.0], [116.1, 39.0], [116.1, 39.1], [116.0, 39.0]]],
            },
        }
    ],
}


def _full_map() -> folium.Map:
    # tiles=None: no tile requests. maxZoom must then be set on the map itself, or
    # Leaflet.markercluster throws "Map has no maxZoom specified" in the browser.
    m = folium.Map(location=[39.05, 116.05], zoom_start=12, tiles=None, maxZoom=19)
    points = [[39.0 + i / 100, 116.0 + i / 100] for i in range(10)]
    cluster = plugins.MarkerCluster(name="facilities").add_to(m)
    for p in points:
        folium.Marker(p, icon=folium.Icon(icon="home", prefix="fa", angle=45)).add_to(cluster)
    folium.Marker(points[0], icon=folium.Icon(icon="star")).add_to(m)  # glyphicon default
    plugins.HeatMap([[*p, 1.0] for p in points], name="heat").add_to(m)
    grids = folium.GeoJson(
        GEOJSON, name="grids", tooltip=folium.GeoJsonTooltip(fields=["name"])
    ).add_to(m)
    plugins.Search(layer=grids, search_label="name").add_to(m)
    plugins.VectorGridProtobuf("/tiles/{z}/{x}/{y}.pbf", name="tiles").add_to(m)
    branca.colormap.LinearColormap(["green", "red"], vmin=0, vmax=1).add_to(m)
    folium.LayerControl().add_to(m)
    return m


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("src", "href"):
            if tag in ("script", "link", "img") and a.get(key):
                self.urls.append(a[key])  # type: ignore[arg-type]


def _vendor_file(url: str) -> Path:
    assert url.startswith(VENDOR_URL + "/"), f"not a local vendor URL: {url}"
    return vendor_dir() / url.removeprefix(VENDOR_URL + "/")


def test_every_asset_of_a_full_map_is_local_and_exists() -> None:
    _need_built_assets()
    m = use_local_assets(_full_map())
    # Plugins added after the call are covered too (the header guard).
    plugins.MarkerCluster(name="late").add_to(m)
    html = m.get_root().render()

    parser = _Links()
    parser.feed(html)
    assert len(parser.urls) >= 15, parser.urls
    for url in parser.urls:
        assert _vendor_file(url).is_file(), f"{url} is not in {vendor_dir()}"
    assert "cdn" not in html.lower()
    for expected in (
        "leaflet.markercluster.js",
        "leaflet_heat.min.js",
        "leaflet-search.min.js",
        "Leaflet.VectorGrid.bundled.js",
        "d3.min.js",
        "bootstrap-glyphicons.css",
    ):
        assert any(u.endswith(expected) for u in parser.urls), expected


def test_relative_urls_inside_vendored_css_resolve() -> None:
    # The CSS finds fonts/images by relative paths: the copied layout must keep them valid.
    _need_built_assets()
    for rel in ASSET_MAP.values():
        path = vendor_dir() / rel
        assert path.is_file(), f"ASSET_MAP entry {rel} was not built (see build.py NPM_FILES)"
        if path.suffix != ".css":
            continue
        for ref in re.findall(r"url\(\s*['\"]?([^'\")]+)", path.read_text("utf-8")):
            if ref.startswith(("data:", "#")):
                continue
            target = (path.parent / ref.split("?")[0].split("#")[0]).resolve()
            assert target.is_file(), f"{rel} refers to missing {ref}"


def test_vectorgrid_bundle_is_vendored() -> None:
    _need_built_assets()
    assert (vendor_dir() / "leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.js").is_file()


class _CdnPlugin(JSCSSMixin):
    """Stands for a new plugin whose JS we have not vendored."""

    def __init__(self) -> None:
        super().__init__()
        self.default_js = [("mystery_js", "https://cdn.example.com/mystery.js")]


def test_unknown_asset_raises_naming_it() -> None:
    m = folium.Map(tiles=None)
    _CdnPlugin().add_to(m)
    with pytest.raises(UnknownAssetError, match="mystery_js.*https://cdn.example.com/mystery.js"):
        use_local_assets(m, require_built=False)


def test_unknown_asset_added_after_the_call_raises_on_render() -> None:
    m = use_local_assets(folium.Map(tiles=None), require_built=False)
    _CdnPlugin().add_to(m)
    with pytest.raises(UnknownAssetError, match="mystery.js"):
        m.get_root().render()


def test_folium_classes_are_not_changed() -> None:
    # Only the map instance is rewritten; folium's class attributes keep the CDN URLs.
    before = list(folium.Map.default_js)
    m = use_local_assets(folium.Map(tiles=None), "/x/vendor", require_built=False)
    assert folium.Map.default_js == before
    assert all(url.startswith("/x/vendor/") for _, url in m.default_js)
    html = m.get_root().render()
    assert '<script src="/x/vendor/leaflet/dist/leaflet.js"></script>' in html


def test_missing_vendor_dir_gives_the_make_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import maps.local_assets as la

    monkeypatch.setattr(la, "vendor_dir", lambda: tmp_path / "vendor")
    assert not la.assets_built()
    with pytest.raises(la.AssetsNotBuiltError, match="run `make assets`"):
        use_local_assets(folium.Map(tiles=None))
