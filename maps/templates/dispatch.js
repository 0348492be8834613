/* The dispatchers' page (maps/dispatch.py): server-side clusters of cases, coloured by
 * status (a pie per cluster), overdue ones ringed in red, over grid boundaries.
 *
 * A refresh asks only GET /issues/clusters again and swaps the markers: the map, its
 * tiles and the open popup stay. #dispatch-panel's data-status is "ready" after each
 * completed draw and data-loads counts the draws, for tests and the benchmark.
 */
function gridmapDispatch(map, cfg) {
  "use strict";
  const G = gridmap;
  const panel = document.getElementById("dispatch-panel");
  const statusBox = document.getElementById("dispatch-status");
  const deptBox = document.getElementById("dispatch-department");
  const catBox = document.getElementById("dispatch-category");
  const statusGroup = document.getElementById("dispatch-statuses");
  const autoBox = document.getElementById("dispatch-auto");
  const say = (html) => { statusBox.innerHTML = html; };
  const colours = Object.fromEntries(cfg.statuses.map((s) => [s.key, s.colour]));
  const labels = Object.fromEntries(cfg.statuses.map((s) => [s.key, s.label]));
  const categories = {};
  const departments = {};
  L.DomEvent.disableClickPropagation(panel);
  L.DomEvent.disableScrollPropagation(panel);

  statusGroup.innerHTML = cfg.statuses.map((s) => `<label><input type="checkbox" name="status" value="${s.key}"${s.open ? " checked" : ""}><i style="background:${s.colour}"></i>${G.esc(s.label)}</label>`).join("");
  const statusBoxes = Array.from(statusGroup.querySelectorAll("input"));

  // --- grid boundaries ------------------------------------------------------------------
  map.createPane("gm-lines").style.zIndex = 360;
  map.getPane("gm-lines").style.pointerEvents = "none";
  const grids = G.vectorLayer(cfg, "grids", () => ({ color: "#56606e", weight: 0.7, opacity: 0.8, fill: false }), { pane: "gm-lines" });
  const subdistricts = G.vectorLayer(cfg, "subdistricts", () => ({ color: "#1f6f8b", weight: 2.2, opacity: 0.9, fill: false }), { pane: "gm-lines" });
  const markers = L.featureGroup().addTo(map);
  L.control.layers(null, {
    "网格 Grids": grids, "街道 Sub-districts": subdistricts, "案件 Cases": markers,
  }, { collapsed: false, position: "topright" }).addTo(map);

  // --- filters -----------------------------------------------------------------------------
  function filters() {
    return {
      status: statusBoxes.filter((b) => b.checked).map((b) => b.value),
      category: catBox.value || null,
      department: deptBox.value || null,
    };
  }
  async function loadChoices() {
    const [depts, cats] = await Promise.all([G.getJson(G.url(cfg.api, "/departments", {})), G.getJson(G.url(cfg.api, "/categories", {}))]);
    for (const d of depts.departments) departments[d.code] = d.name;
    deptBox.insertAdjacentHTML("beforeend", depts.departments.map((d) => `<option value="${G.esc(d.code)}">${G.esc(d.name)}</option>`).join(""));
    for (const c of cats.categories) categories[c.code] = c.name;
    catBox.insertAdjacentHTML("beforeend", cats.categories.map((c) => `<option value="${G.esc(c.code)}">${G.esc(c.name)}</option>`).join(""));
  }

  // --- markers -------------------------------------------------------------------------------
  function pie(statuses, count) {
    let at = 0;
    const stops = [];
    for (const s of cfg.statuses) {
      const n = statuses[s.key] || 0;
      if (!n) continue;
      const end = at + (n / count) * 360;
      stops.push(`${s.colour} ${at.toFixed(1)}deg ${end.toFixed(1)}deg`);
      at = end;
    }
    return `conic-gradient(${stops.join(",")})`;
  }
  function clusterIcon(p) {
    if (p.count === 1) {
      const status = Object.keys(p.statuses)[0];
      return L.divIcon({
        className: "", iconSize: [16, 16],
        html: `<div class="gm-case${p.overdue ? " overdue" : ""}" data-count="1" data-status="${status}" style="width:16px;height:16px;background:${colours[status]}"></div>`,
      });
    }
    const size = Math.round(Math.min(56, 24 + 7 * Math.log10(p.count) * 2));
    const inner = Math.round(size * 0.62);
    return L.divIcon({
      className: "", iconSize: [size, size],
      html: `<div class="gm-cluster${p.overdue ? " overdue" : ""}" data-count="${p.count}" style="width:${size}px;height:${size}px;background:${pie(p.statuses, p.count)}"><span style="width:${inner}px;height:${inner}px">${p.count}</span>${p.overdue ? `<b title="overdue">${p.overdue}</b>` : ""}</div>`,
    });
  }
  const when = (iso) => (iso ? new Date(iso).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false }) : "–");
  function casePopup(f) {
    const p = f.properties;
    const detail = G.url(cfg.api, `/issues/${p.id}`, {});
    const rows = [["Status", labels[p.status] || p.status], ["Category", categories[p.category] || p.category],
      ["Reported", when(p.created_at)], ["Due", `${when(p.due_at)}${p.due_provisional ? ' <span class="provisional" title="the official holiday calendar for that year is not loaded yet">(provisional)</span>' : ""}${p.overdue ? ' <span class="late">overdue</span>' : ""}`],
      ["Department", departments[p.department_code] || p.department_code], ["Grid", p.grid_name || p.grid_code], ["Address", p.address]]
      .filter(([, v]) => v);
    return `<div class="gm-popup"><h4>${G.esc(p.ref || `#${p.id}`)}</h4><p>${G.esc(p.description || "")}</p>
      <table>${rows.map(([k, v]) => `<tr><td>${k}</td><td>${k === "Due" ? v : G.esc(v)}</td></tr>`).join("")}</table>
      <a href="${G.esc(detail)}" target="_blank" rel="noopener">Case detail (JSON)</a></div>`;
  }
  function listPopup(p, body) {
    const items = body.features.map((f) => {
      const q = f.properties;
      return `<li><a href="${G.esc(G.url(cfg.api, `/issues/${q.id}`, {}))}" target="_blank" rel="noopener">${G.esc(q.ref || `#${q.id}`)}</a> ${G.esc(categories[q.category] || q.category)} – ${G.esc(labels[q.status] || q.status)}${q.overdue ? ' <span class="late">overdue</span>' : ""}</li>`;
    });
    const more = body.numberMatched > body.numberReturned ? `<p>${body.numberMatched - body.numberReturned} more: zoom in</p>` : "";
    return `<div class="gm-popup"><h4>${p.count} cases, ${p.open} open, ${p.overdue} overdue</h4><ul>${items.join("")}</ul>${more}</div>`;
  }
  async function openPopup(marker, p) {
    const popup = L.popup({ maxWidth: 340 }).setLatLng(marker.getLatLng()).setContent("Loading…").openOn(map);
    try {
      if (p.issue_id) {
        popup.setContent(casePopup(await G.getJson(G.url(cfg.api, `/issues/${p.issue_id}`, {}))));
      } else {
        const body = await G.getJson(G.url(cfg.api, "/issues", { ...filters(), bbox: p.bbox.join(","), limit: 20 }));
        popup.setContent(listPopup(p, body));
      }
    } catch (e) { popup.setContent(`Could not load the case: ${G.esc(e.message)}`); }
  }

  let seq = 0;
  let loads = 0;
  let tilesReady = false; // "ready" means the whole first view is drawn, boundaries included
  const done = () => (tilesReady ? "ready" : "drawing");
  let shown = [];
  async function refresh() {
    const mine = ++seq;
    panel.dataset.status = "loading";
    const f = filters();
    if (!f.status.length) {
      markers.clearLayers();
      shown = [];
      panel.dataset.status = done();
      say("Pick at least one status");
      return;
    }
    try {
      const body = await G.getJson(G.url(cfg.api, "/issues/clusters", { ...f, bbox: G.viewBox(cfg, map), zoom: map.getZoom() }));
      if (mine !== seq) return; // a newer view or filter has been asked for
      markers.clearLayers();
      shown = body.features.map((feature) => feature.properties);
      for (const p of shown) {
        const marker = L.marker(G.latLng(cfg, p.lon, p.lat), { icon: clusterIcon(p), riseOnHover: true, bubblingMouseEvents: false });
        marker.on("click", () => openPopup(marker, p));
        marker.addTo(markers);
      }
      const total = shown.reduce((n, p) => n + p.count, 0);
      const overdue = shown.reduce((n, p) => n + p.overdue, 0);
      loads += 1;
      panel.dataset.loads = String(loads);
      panel.dataset.status = done();
      const time = new Date().toLocaleTimeString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false });
      say(`${total} cases in view, <span style="color:${cfg.overdue_colour}">${overdue} overdue</span> · updated ${time}`);
    } catch (e) {
      if (mine === seq) { panel.dataset.status = "error"; say(`Could not load the cases: ${G.esc(e.message)}`); }
    }
  }

  for (const box of [deptBox, catBox, ...statusBoxes]) box.addEventListener("change", refresh);
  document.getElementById("dispatch-refresh").addEventListener("click", refresh);
  map.on("moveend", refresh);
  setInterval(() => { if (autoBox.checked && !document.hidden) refresh(); }, cfg.refresh_seconds * 1000);

  window.gridmapDispatchPage = { map, cfg, grids, subdistricts, markers, refresh, clusters: () => shown, rendered: (name) => G.renderedCodes(name === "grids" ? grids : subdistricts) };

  if (cfg.bounds) map.fitBounds(cfg.bounds);
  (async () => {
    grids.addTo(map);
    subdistricts.addTo(map);
    try { await loadChoices(); } catch (e) { say(`Could not load the filters: ${G.esc(e.message)}`); }
    await Promise.all([G.loaded(grids), G.loaded(subdistricts), refresh()]);
    tilesReady = true;
    if (panel.dataset.status === "drawing") panel.dataset.status = "ready";
  })();
}
