/* The planners' page (maps/planner.py): areas as vector tiles, a choropleth of grids from
 * GET /stats, a heat map from server-side clusters, search, coverage faults, and a swipe
 * between two grid versions.
 *
 * #planner-panel's data-status goes "starting" -> "ready" once the first view is drawn
 * (every visible tile layer loaded, with the figures applied); tests and the benchmark
 * wait for it. window.gridmapPlannerPage exposes the layers for the same reason.
 */
function gridmapPlanner(map, cfg) {
  "use strict";
  const G = gridmap;
  const panel = document.getElementById("planner-panel");
  const statusBox = document.getElementById("planner-status");
  const figureBox = document.getElementById("planner-figure");
  const fromBox = document.getElementById("planner-from");
  const toBox = document.getElementById("planner-to");
  const say = (text) => { statusBox.textContent = text; };
  const state = { figure: cfg.figures[0].key, from: cfg.period.from, to: cfg.period.to, stats: new Map(), classes: [] };
  L.DomEvent.disableClickPropagation(panel);
  L.DomEvent.disableScrollPropagation(panel);

  // Fill under outlines, coarse outlines over fine ones; only the faults take the mouse.
  for (const [pane, z, mouse] of [["gm-fill", 350, false], ["gm-lines", 360, false], ["gm-compounds", 370, false],
    ["gm-compare", 380, false], ["gm-faults", 420, true]]) {
    map.createPane(pane).style.zIndex = z;
    if (!mouse) map.getPane(pane).style.pointerEvents = "none";
  }

  // --- the choropleth -----------------------------------------------------------------
  const COUNT_COLOURS = ["#fee8c8", "#fdbb84", "#fc8d59", "#e34a33", "#b30000"];
  const RATE_COLOURS = ["#d73027", "#fc8d59", "#fee08b", "#91cf60", "#1a9850"];
  const NONE = "#f4f4f2";
  const isRate = () => state.figure === "on_time_rate";
  const value = (code) => {
    const item = state.stats.get(code);
    if (isRate()) return item ? item.on_time_rate : null;
    return item ? (item[state.figure] ?? 0) : 0;
  };
  const isCount = () => ["received", "open", "overdue"].includes(state.figure);
  const fmt = (v) => (isRate() ? `${Math.round(v * 100)}%` : v.toFixed(1));
  /* A class's range as people read it: "3–5" for counts (whole numbers, upper bound
   * excluded), "12.5–20.0" per km², "70%–80%" for the rate. */
  function rangeLabel(c) {
    if (isCount()) {
      const lo = Math.ceil(c.lo);
      const hi = Math.ceil(c.hi) - 1;
      return hi > lo ? `${lo}–${hi}` : String(lo);
    }
    return `${fmt(c.lo)}–${fmt(isRate() ? Math.min(c.hi, 1) : c.hi)}`;
  }

  /* Five classes: quantiles of the non-zero counts, fixed steps for the on-time rate. */
  function classify() {
    if (isRate()) {
      const steps = [0, 0.6, 0.7, 0.8, 0.9, 1.0001];
      state.classes = RATE_COLOURS.map((c, i) => ({ lo: steps[i], hi: steps[i + 1], colour: c }));
      return;
    }
    const values = Array.from(state.stats.values(), (item) => item[state.figure] ?? 0).filter((v) => v > 0).sort((a, b) => a - b);
    if (!values.length) { state.classes = []; return; }
    const q = (p) => values[Math.min(values.length - 1, Math.floor(p * values.length))];
    const top = values[values.length - 1];
    const cuts = [values[0], q(0.2), q(0.4), q(0.6), q(0.8), isCount() ? top + 1 : top + 1e-9];
    state.classes = [];
    for (let i = 0; i < 5; i += 1) {
      if (cuts[i + 1] > cuts[i] || i === 4) state.classes.push({ lo: cuts[i], hi: Math.max(cuts[i + 1], cuts[i] + 1e-9), colour: COUNT_COLOURS[i] });
    }
  }

  function colourOf(v) {
    if (v === null || v === undefined || (!isRate() && v === 0)) return NONE;
    for (const c of state.classes) if (v >= c.lo && v < c.hi) return c.colour;
    return state.classes.length ? state.classes[state.classes.length - 1].colour : NONE;
  }

  const gridSpec = cfg.layers.find((l) => l.name === "grids");
  const gridStyle = (props) => ({
    fill: true, fillColor: colourOf(value(props.code)), fillOpacity: 0.7,
    color: gridSpec.colour, weight: gridSpec.weight, opacity: 0.8,
  });

  const legend = L.control({ position: "bottomright" });
  legend.onAdd = () => L.DomUtil.create("div", "gm-legend");
  legend.addTo(map);
  function drawLegend() {
    const label = cfg.figures.find((f) => f.key === state.figure).label;
    const rows = state.classes.map((c) => `<div><i style="background:${c.colour}"></i>${rangeLabel(c)}</div>`);
    rows.push(`<div><i style="background:${NONE}"></i>${isRate() ? "no case closed" : "none"}</div>`);
    legend.getContainer().innerHTML = `<b>${G.esc(label)}</b><div class="gm-period">${G.esc(state.from)} → ${G.esc(state.to)}</div>${rows.join("")}`;
  }

  async function loadStats() {
    const body = await G.getJson(G.url(cfg.api, "/stats", { level: "grid", from: state.from, to: state.to }));
    state.stats = new Map(body.items.filter((i) => i.key).map((i) => [i.key, i]));
    classify();
    drawLegend();
  }

  // --- area layers ---------------------------------------------------------------------
  const areaLayers = {};
  const overlays = {};
  for (const spec of cfg.layers) {
    const pane = spec.name === "grids" ? "gm-fill" : spec.name === "compounds" ? "gm-compounds" : "gm-lines";
    const style = spec.name === "grids" ? gridStyle : () => ({
      color: spec.colour, weight: spec.weight, opacity: 0.95,
      fill: spec.name === "compounds", fillColor: spec.colour, fillOpacity: 0.3,
    });
    areaLayers[spec.name] = G.vectorLayer(cfg, spec.name, style, { pane, minZoom: spec.minzoom });
    overlays[spec.label] = areaLayers[spec.name];
  }

  // --- facilities ------------------------------------------------------------------------
  const facilityLayers = {};
  function facilityPopup(p) {
    const rows = [["Kind", p.kind.replace("_", " ")], ["Operator", p.operator], ["Opening hours", p.opening_hours],
      ["Access", p.access], ["Capacity", p.capacity], ["Shared spaces", p.shared_spaces], ["Fee", p.fee]]
      .filter(([, v]) => v !== null && v !== undefined && v !== "");
    return `<div class="gm-popup"><h4>${G.esc(p.name)}</h4><table>${rows.map(([k, v]) => `<tr><td>${k}</td><td>${G.esc(v)}</td></tr>`).join("")}</table></div>`;
  }
  async function loadFacilities(kind, colour, group) {
    const body = await G.getJson(G.url(cfg.api, "/facilities", { kind }));
    for (const f of body.features) {
      const [lon, lat] = f.geometry.coordinates;
      L.circleMarker(G.latLng(cfg, lon, lat), { radius: 5, color: "#fff", weight: 1.5, fillColor: colour, fillOpacity: 0.95, bubblingMouseEvents: false })
        .bindTooltip(G.esc(f.properties.name)).bindPopup(facilityPopup(f.properties), { maxWidth: 300 })
        .addTo(group);
    }
    group.options.loadedCount = body.features.length;
  }
  for (const k of cfg.facility_kinds) {
    const group = L.featureGroup();
    facilityLayers[k.kind] = group;
    overlays[k.label] = group;
    group.once("add", () => loadFacilities(k.kind, k.colour, group).catch((e) => say(`Could not load ${k.label}: ${e.message}`)));
  }

  // --- heat map of issues, from the server's clusters (a few hundred weighted points) ---
  const heat = L.heatLayer([], { radius: 22, blur: 18, maxZoom: 16, minOpacity: 0.3 });
  overlays["热力图 Issue heat map"] = heat;
  let heatSeq = 0;
  async function loadHeat() {
    if (!map.hasLayer(heat)) return;
    const seq = ++heatSeq;
    const zoom = Math.min(22, map.getZoom() + 1);
    const body = await G.getJson(G.url(cfg.api, "/issues/clusters", { bbox: G.viewBox(cfg, map), zoom, from: state.from, to: state.to }));
    if (seq !== heatSeq) return;
    const max = Math.max(1, ...body.features.map((f) => f.properties.count));
    heat.setOptions({ max });
    heat.setLatLngs(body.features.map((f) => { const ll = G.latLng(cfg, f.properties.lon, f.properties.lat); return [ll.lat, ll.lng, f.properties.count]; }));
    heat.options.points = body.features.length;
  }
  heat.on("add", () => loadHeat().catch((e) => say(`Could not load the heat map: ${e.message}`)));
  map.on("moveend", () => loadHeat().catch((e) => say(`Could not load the heat map: ${e.message}`)));

  // --- coverage faults ---------------------------------------------------------------------
  const FAULT_COLOURS = { overlap: "#d7191c", gap: "#fdae61", outside: "#7b3294" };
  const faults = L.geoJSON(null, {
    pane: "gm-faults",
    coordsToLatLng: (c) => G.latLng(cfg, c[0], c[1]),
    style: (f) => ({ color: FAULT_COLOURS[f.properties.kind] || "#d7191c", weight: 2, fillOpacity: 0.45 }),
    onEachFeature: (f, layer) => layer.bindTooltip(G.esc(f.properties.description)),
  });
  overlays["覆盖检查 Coverage faults"] = faults;
  faults.once("add", async () => {
    try {
      const body = await G.getJson(G.url(cfg.api, "/coverage/faults", {}));
      faults.addData(body);
      faults.options.loadedCount = body.features.length;
      say(body.features.length ? `${body.features.length} coverage faults in the grid layer` : "The grids tile their communities: no coverage faults");
    } catch (e) { say(`Could not check coverage: ${e.message}`); }
  });

  L.control.layers(null, overlays, { collapsed: false, position: "topright" }).addTo(map);

  // --- popups and tooltips: /locate names every level at the point ----------------------
  const visibleLevels = () => cfg.layers.filter((l) => map.hasLayer(areaLayers[l.name]));
  const LEVEL_KEYS = { districts: "district", subdistricts: "subdistrict", communities: "community", grids: "grid", compounds: "compound" };
  async function locate(latlng) {
    return G.getJson(G.url(cfg.api, "/locate", { lon: latlng.lng.toFixed(7), lat: latlng.lat.toFixed(7), crs: cfg.crs }));
  }
  function figuresTable(code) {
    const item = state.stats.get(code) || {};
    const pct = (v) => (v === null || v === undefined ? "–" : `${Math.round(v * 100)}%`);
    return `<table>
      <tr><td>Received</td><td>${item.received ?? 0}</td></tr>
      <tr><td>Open</td><td>${item.open ?? 0}</td></tr>
      <tr><td>Overdue</td><td>${item.overdue ?? 0}</td></tr>
      <tr><td>On time</td><td>${pct(item.on_time_rate)}</td></tr>
      <tr><td>Per km²</td><td>${item.density_per_km2 ?? 0}</td></tr></table>`;
  }
  function placePopup(body) {
    if (!body.grid_code && !body.community_code && !body.district_code) return `<div class="gm-popup">Outside every area.</div>`;
    const levels = ["grid", "community", "subdistrict", "district"].filter((k) => body[`${k}_code`]);
    const title = body.grid_code ? body.grid_name : body[`${levels[0]}_name`];
    const rows = levels.map((k) => `<tr><td>${k}</td><td>${G.esc(body[`${k}_name`])}<br><code>${G.esc(body[`${k}_code`])}</code></td></tr>`);
    if (body.compound_code) rows.push(`<tr><td>compound</td><td>${G.esc(body.compound_name)}<br><code>${G.esc(body.compound_code)}</code></td></tr>`);
    let figures = "";
    if (body.grid_code) {
      const link = G.url(cfg.api, "/issues", { area: body.grid_code, from: state.from, to: state.to });
      figures = `<h4>${G.esc(state.from)} → ${G.esc(state.to)}</h4>${figuresTable(body.grid_code)}<a href="${G.esc(link)}" target="_blank" rel="noopener">Issues in this grid (JSON)</a>`;
    }
    return `<div class="gm-popup"><h4>${G.esc(title)}</h4><table>${rows.join("")}</table>${figures}</div>`;
  }
  map.on("click", async (e) => {
    try {
      const body = await locate(e.latlng);
      L.popup({ maxWidth: 320 }).setLatLng(e.latlng).setContent(placePopup(body)).openOn(map);
    } catch (err) { say(`Could not look up the point: ${err.message}`); }
  });
  const tip = L.tooltip({ direction: "top", offset: [0, -8], opacity: 0.92 });
  let hoverSeq = 0;
  const hover = G.debounce(async (latlng) => {
    const seq = ++hoverSeq;
    const levels = visibleLevels();
    if (!levels.length) return;
    try {
      const body = await locate(latlng);
      if (seq !== hoverSeq || popupOpen) return;
      const lines = levels.map((l) => LEVEL_KEYS[l.name]).filter((k) => body[`${k}_code`])
        .map((k) => `${G.esc(body[`${k}_name`])} <code>${G.esc(body[`${k}_code`])}</code>`);
      if (lines.length) tip.setLatLng(latlng).setContent(lines.reverse().join("<br>")).addTo(map);
      else tip.remove();
    } catch (_e) { tip.remove(); }
  }, 250);
  // No hover names while a popup is open: it already names the place.
  let popupOpen = false;
  map.on("popupopen", () => { popupOpen = true; hoverSeq += 1; tip.remove(); });
  map.on("popupclose", () => { popupOpen = false; });
  map.on("mousemove", (e) => { if (!popupOpen) hover(e.latlng); });
  map.on("mouseout", () => { hoverSeq += 1; tip.remove(); });

  // --- search ----------------------------------------------------------------------------
  const searchBox = document.getElementById("planner-search");
  const results = document.getElementById("planner-results");
  let found = [];
  let highlight = null;
  let searchSeq = 0;
  const KIND_LABEL = { district: "区 district", subdistrict: "街道 sub-district", community: "社区 community", grid: "网格 grid", compound: "小区 compound" };
  function goTo(place) {
    const [w, s, e, n] = place.bbox;
    const bounds = L.latLngBounds(G.latLng(cfg, w, s), G.latLng(cfg, e, n));
    if (highlight) highlight.remove();
    highlight = L.rectangle(bounds, { color: "#0057e7", weight: 3, fill: false, dashArray: "6 4", interactive: false }).addTo(map);
    map.fitBounds(bounds, { maxZoom: 17, padding: [40, 40] });
    results.hidden = true;
    searchBox.value = `${place.name} ${place.code}`;
    say(`${KIND_LABEL[place.kind] || place.kind} ${place.name} (${place.code})`);
    panel.dataset.found = place.code;
  }
  const search = G.debounce(async () => {
    const q = searchBox.value.trim();
    const seq = ++searchSeq;
    if (!q) { results.hidden = true; return; }
    try {
      const body = await G.getJson(G.url(cfg.api, "/search", { q, limit: 12 }));
      if (seq !== searchSeq) return;
      found = body.places;
      results.innerHTML = found.length
        ? found.map((p, i) => `<li role="option" data-i="${i}"><span class="kind">${KIND_LABEL[p.kind] || p.kind}</span>${G.esc(p.name)} <code>${G.esc(p.code)}</code></li>`).join("")
        : "<li>Nothing found: try a code such as the first digits of a grid, or part of a name</li>";
      results.hidden = false;
    } catch (e) { say(`Search failed: ${e.message}`); }
  }, 200);
  searchBox.addEventListener("input", search);
  searchBox.addEventListener("keydown", (e) => { if (e.key === "Enter" && found.length) goTo(found[0]); });
  results.addEventListener("click", (e) => { const li = e.target.closest("li[data-i]"); if (li) goTo(found[Number(li.dataset.i)]); });

  // --- figure and period -----------------------------------------------------------------
  figureBox.innerHTML = cfg.figures.map((f) => `<option value="${f.key}">${G.esc(f.label)}</option>`).join("");
  fromBox.value = state.from;
  toBox.value = state.to;
  figureBox.addEventListener("change", () => {
    state.figure = figureBox.value;
    classify();
    drawLegend();
    areaLayers.grids.redraw();
  });
  async function periodChanged() {
    if (!fromBox.value || !toBox.value) return;
    if (fromBox.value > toBox.value) { say("The period ends before it starts: swap the dates"); return; }
    state.from = fromBox.value;
    state.to = toBox.value;
    panel.dataset.status = "loading";
    try {
      await loadStats();
      areaLayers.grids.redraw();
      await Promise.all([G.loaded(areaLayers.grids), loadHeat()]);
      panel.dataset.status = "ready";
      say(`Figures for ${state.from} → ${state.to}`);
    } catch (e) { say(`Could not load the figures: ${e.message}`); }
  }
  fromBox.addEventListener("change", periodChanged);
  toBox.addEventListener("change", periodChanged);

  // --- two grid versions side by side ---------------------------------------------------
  const compareBox = document.getElementById("planner-compare");
  const leftBox = document.getElementById("planner-left");
  const rightBox = document.getElementById("planner-right");
  const swipe = document.getElementById("planner-swipe");
  const range = document.getElementById("planner-swipe-range");
  const divider = L.DomUtil.create("div", "gm-divider", map.getContainer());
  divider.hidden = true;
  L.DomEvent.disableClickPropagation(swipe);
  const versions = cfg.grid_versions;
  for (const box of [leftBox, rightBox]) box.innerHTML = versions.map((v) => `<option>${G.esc(v)}</option>`).join("");
  if (versions.length < 2) {
    compareBox.disabled = true;
    compareBox.parentElement.title = "Only one version of the grid layer is loaded";
    leftBox.disabled = rightBox.disabled = true;
  } else {
    leftBox.value = versions[versions.length - 2];
    rightBox.value = versions[versions.length - 1];
  }
  const compare = { left: null, right: null };
  function clip() {
    if (!compare.left) return;
    const size = map.getSize();
    const nw = map.containerPointToLayerPoint([0, 0]);
    const se = map.containerPointToLayerPoint(size);
    const x = nw.x + size.x * Number(range.value);
    compare.left.getContainer().style.clip = `rect(${nw.y}px, ${x}px, ${se.y}px, ${nw.x}px)`;
    compare.right.getContainer().style.clip = `rect(${nw.y}px, ${se.x}px, ${se.y}px, ${x}px)`;
    divider.style.left = `${size.x * Number(range.value)}px`;
  }
  function stopComparing() {
    for (const side of ["left", "right"]) if (compare[side]) { compare[side].remove(); compare[side] = null; }
    swipe.hidden = true;
    divider.hidden = true;
  }
  function startComparing() {
    stopComparing();
    const outline = (colour) => () => ({ color: colour, weight: 2, fill: false, opacity: 0.95 });
    compare.left = G.vectorLayer(cfg, "grids", outline("#1b6ac9"), { pane: "gm-compare" }, { at: leftBox.value }).addTo(map);
    compare.right = G.vectorLayer(cfg, "grids", outline("#e66100"), { pane: "gm-compare" }, { at: rightBox.value }).addTo(map);
    swipe.hidden = false;
    divider.hidden = false;
    clip();
    say(`Left (blue): grids of ${leftBox.value}; right (orange): grids of ${rightBox.value}`);
  }
  compareBox.addEventListener("change", () => (compareBox.checked ? startComparing() : stopComparing()));
  for (const box of [leftBox, rightBox]) box.addEventListener("change", () => { if (compareBox.checked) startComparing(); });
  range.addEventListener("input", clip);
  map.on("move zoomend resize", clip);

  // --- first view --------------------------------------------------------------------------
  if (cfg.bounds) map.fitBounds(cfg.bounds);
  window.gridmapPlannerPage = { map, cfg, state, areaLayers, facilityLayers, heat, faults, compare, rendered: (name) => G.renderedCodes(areaLayers[name]) };

  (async () => {
    const first = [];
    for (const spec of cfg.layers) {
      if (spec.show && spec.name !== "grids") { areaLayers[spec.name].addTo(map); first.push(G.loaded(areaLayers[spec.name])); }
    }
    // The grid tiles are fetched while the figures load, and drawn once both are in, so
    // that each is drawn once, coloured.
    const figures = loadStats().catch((e) => say(`Could not load the figures: ${e.message}`));
    areaLayers.grids.options.waitFor = figures;
    if (gridSpec.show) { areaLayers.grids.addTo(map); first.push(G.loaded(areaLayers.grids)); }
    first.push(figures);
    facilityLayers.car_park && facilityLayers.car_park.addTo(map);
    await Promise.all(first);
    areaLayers.grids.options.waitFor = null;
    panel.dataset.status = "ready";
    if (statusBox.textContent.startsWith("Loading")) say(`Figures for ${state.from} → ${state.to}`);
  })();
}
