"""The naive city page: every feature embedded in the HTML as GeoJSON, folium's default.

This was gridmap's first page. It is kept as the peer that benchmarks/map_pages.py measures
the tiled pages against: at city scale it is tens of megabytes and slow to draw, which is
why the served pages fetch tiles and clusters instead.
"""

from __future__ import annotations

import folium
import geopandas as gpd
import numpy as np

from geo.crs import geometry_from_wgs84
from maps.local_assets import use_local_assets
from maps.shell import NO_TILES, BaseMap

# Outline colour and weight per level: coarser levels drawn bolder, so that the nesting
# reads at a glance.
LEVEL_STYLE: dict[str, tuple[str, float, str]] = {
    "district": ("#5b2a86", 3.0, "区 districts"),
    "subdistrict": ("#1f6f8b", 2.2, "街道 sub-districts"),
    "community": ("#2a9d8f", 1.4, "社区 communities"),
    "grid": ("#8d99ae", 0.7, "网格 grids"),
}
FACILITY_COLOURS = {"car_park": "blue", "sports_ground": "green", "toilet": "purple"}


def _shifted(frame: gpd.GeoDataFrame, base: BaseMap) -> gpd.GeoDataFrame:
    """Overlays moved into the tiles' system, so they line up with GCJ-02 base maps."""
    if base.crs == "wgs84" or frame.empty:
        return frame
    moved = geometry_from_wgs84(np.asarray(frame.geometry.values, dtype=object), base.crs)
    return frame.set_geometry(list(moved), crs=frame.crs)


def render_city_map(
    areas: dict[str, gpd.GeoDataFrame],
    compounds: gpd.GeoDataFrame | None = None,
    facilities: gpd.GeoDataFrame | None = None,
    base: BaseMap = NO_TILES,
    title: str = "gridmap",
    points: dict[str, gpd.GeoDataFrame] | None = None,
) -> str:
    """A full HTML page with one toggleable layer per level, compounds and facilities."""
    bounds = _bounds([f for f in areas.values() if not f.empty])
    m = folium.Map(tiles=None, max_zoom=19, control_scale=True, prefer_canvas=True)
    if base.tile_url:
        folium.TileLayer(base.tile_url, attr=base.attribution or " ", name="base map").add_to(m)
    for level, (colour, weight, label) in LEVEL_STYLE.items():
        frame = areas.get(level)
        if frame is None or frame.empty:
            continue
        _area_layer(_shifted(frame, base), colour, weight, label, show=level != "grid").add_to(m)
    if compounds is not None and not compounds.empty:
        _area_layer(_shifted(compounds, base), "#e76f51", 1.0, "小区 compounds", fill=0.25).add_to(m)
    if facilities is not None and not facilities.empty:
        _facility_layers(_shifted(facilities, base), m)
    for label, frame in (points or {}).items():
        frame = frame[frame.geometry.notna()]
        group = folium.FeatureGroup(name=label)
        folium.GeoJson(frame[["code", "name", "geometry"]], marker=folium.CircleMarker(radius=3),
                       tooltip=folium.GeoJsonTooltip(fields=["code", "name"])).add_to(group)
        group.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    if bounds is not None:
        m.fit_bounds(bounds)
    m.get_root().header.add_child(folium.Element(f"<title>{title}</title>"))
    use_local_assets(m)
    return m.get_root().render()


def _bounds(frames: list[gpd.GeoDataFrame]) -> list[list[float]] | None:
    if not frames:
        return None
    boxes = np.array([f.total_bounds for f in frames])
    minx, miny = boxes[:, 0].min(), boxes[:, 1].min()
    maxx, maxy = boxes[:, 2].max(), boxes[:, 3].max()
    return [[float(miny), float(minx)], [float(maxy), float(maxx)]]


def _area_layer(
    frame: gpd.GeoDataFrame, colour: str, weight: float, label: str, show: bool = True, fill: float = 0.0
) -> folium.FeatureGroup:
    group = folium.FeatureGroup(name=label, show=show)
    folium.GeoJson(
        frame[["code", "name", "geometry"]],
        style_function=lambda _f: {"color": colour, "weight": weight, "fillOpacity": fill},
        tooltip=folium.GeoJsonTooltip(fields=["code", "name"], aliases=["code", "name"]),
    ).add_to(group)
    return group


def _facility_layers(frame: gpd.GeoDataFrame, m: folium.Map) -> None:
    for kind, colour in FACILITY_COLOURS.items():
        subset = frame[frame["kind"] == kind]
        if subset.empty:
            continue
        group = folium.FeatureGroup(name=f"{kind.replace('_', ' ')}s ({len(subset)})", show=kind == "car_park")
        for row in subset.itertuples():
            point = row.geometry.representative_point()
            hours = row.opening_hours or "hours not given"
            folium.CircleMarker(
                (point.y, point.x), radius=5, color=colour, fill=True, fill_opacity=0.8,
                tooltip=f"{row.name}", popup=folium.Popup(f"<b>{row.name}</b><br>{hours}", max_width=260),
            ).add_to(group)
        group.add_to(m)
