/* What the planners' and dispatchers' pages share (maps/shell.py puts it after gcj02.js).
 *
 * The API answers in WGS84. When the base map is GCJ-02 (cfg.crs), everything is drawn
 * shifted: tiles are asked for with crs=gcj02, points are moved here, and a point the user
 * picks is sent back with crs=gcj02 so that the server undoes the shift exactly.
 */
const gridmap = (function () {
  "use strict";
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

  /* base + path with query parameters; arrays repeat the key, null and "" are left out. */
  function url(base, path, params) {
    const u = new URL(base + path, window.location.href);
    for (const [key, value] of Object.entries(params || {})) {
      for (const v of Array.isArray(value) ? value : [value]) {
        if (v !== null && v !== undefined && v !== "") u.searchParams.append(key, v);
      }
    }
    return u.toString();
  }

  /* GET JSON; a problem+json answer becomes an Error carrying the server's own words. */
  async function getJson(address) {
    const response = await fetch(address);
    if (!response.ok) {
      let detail = `${response.status} ${response.statusText}`;
      try { detail = (await response.json()).detail || detail; } catch (_e) { /* not JSON */ }
      throw new Error(detail);
    }
    return response.json();
  }

  const toDisplay = (cfg, lon, lat) => (cfg.crs === "gcj02" ? gridmapToGcj02(lon, lat) : [lon, lat]);
  const latLng = (cfg, lon, lat) => { const [x, y] = toDisplay(cfg, lon, lat); return L.latLng(y, x); };

  /* The view as a WGS84 bbox for the API. GCJ-02 moves points by under 0.01 degree, so
   * the box is grown by that much instead of inverting the shift. */
  function viewBox(cfg, map) {
    const b = map.getBounds();
    const grow = cfg.crs === "gcj02" ? 0.01 : 0;
    const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
    return [clamp(b.getWest() - grow, -180, 180), clamp(b.getSouth() - grow, -90, 90),
      clamp(b.getEast() + grow, -180, 180), clamp(b.getNorth() + grow, -90, 90)]
      .map((v) => v.toFixed(6)).join(",");
  }

  /* A vector-tile layer of one of the app's tile layers (/tiles/{layer}/...). Drawn on
   * canvas and never interactive: at city scale SVG would mean tens of thousands of DOM
   * nodes, and the pages answer clicks through /locate, which knows every level at once. */
  function vectorLayer(cfg, name, style, options, query) {
    const q = Object.assign({}, query || {});
    if (cfg.crs !== "wgs84") q.crs = cfg.crs;
    const address = url("", cfg.tiles.replace("{layer}", name), q)
      .replace(/%7B/g, "{").replace(/%7D/g, "}");
    return new TiledLayer(address, Object.assign({
      vectorTileLayerStyles: { [name]: style },
      getFeatureId: (f) => f.properties.code,
      rendererFactory: L.canvas.tile,
      interactive: false,
    }, options || {}));
  }

  /* 512-pixel tiles, each drawn from the server's tile one zoom up (z-1): a quarter of
   * the requests for the same view, and a 4096-unit tile still gives 8 units a pixel.
   * VectorGrid puts coords.z into the URL as it is, so the shift is made here. */
  const TiledLayer = L.VectorGrid.Protobuf.extend({
    options: { tileSize: 512, minZoom: 1 },
    _getVectorTilePromise(coords) {
      const up = L.point(coords.x, coords.y);
      up.z = coords.z - 1;
      const tile = L.VectorGrid.Protobuf.prototype._getVectorTilePromise.call(this, up);
      // options.waitFor: a promise (say, the figures that colour the features) to wait
      // for before drawing; the tile is fetched meanwhile, so the two overlap.
      return this.options.waitFor ? Promise.all([tile, this.options.waitFor]).then(([t]) => t) : tile;
    },
  });

  /* Codes of the features in a vector layer's current tiles (for tests and the status line). */
  function renderedCodes(layer) {
    const codes = new Set();
    for (const tile of Object.values(layer._vectorTiles || {})) {
      for (const code of Object.keys(tile._features || {})) codes.add(code);
    }
    return codes;
  }

  /* Resolves when the layer has no tile left to load (at once if it is not on a map). */
  function loaded(layer) {
    return new Promise((resolve) => {
      if (!layer._map || !layer.isLoading()) { resolve(); return; }
      layer.once("load", () => resolve());
    });
  }

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  }

  return { esc, url, getJson, toDisplay, latLng, viewBox, vectorLayer, renderedCodes, loaded, debounce };
}());
