/* The residents' page: places near a point, open or closed at a time (maps/resident.py).
 *
 * All opening-hours logic stays on the server: this script only asks
 * GET /api/v1/facilities/nearby and draws the answer, so the page can never disagree with
 * the API. Page state for tests and debugging is mirrored on #resident-panel's data-*
 * attributes (status, loads, query, open-at) instead of extra globals.
 */
function gridmapResident(map, cfg) {
  "use strict";
  const TZ = "Asia/Shanghai"; // the API reads a time without an offset as Shanghai time
  const panel = document.getElementById("resident-panel");
  const statusBox = document.getElementById("resident-status");
  const timeInput = document.getElementById("resident-time");
  const kindBoxes = Array.from(panel.querySelectorAll('input[name="kind"]'));
  const markers = L.layerGroup().addTo(map);
  // The point searched around stays visible above the markers, without taking their taps.
  map.createPane("resident-here").style.zIndex = 650;
  map.getPane("resident-here").style.pointerEvents = "none";
  let here = null; // the query point as the API gets it: {lon, lat, crs, label}
  let hereLayer = null;
  let followNow = true; // until a time is picked, every query means "now" on the server's clock
  let seq = 0; // answers to superseded queries are dropped (aborting would log failed requests)
  let loads = 0;
  let popupOpen = false;
  let swallowClick = false;

  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const parts = (date, options) => Object.fromEntries(
    new Intl.DateTimeFormat("en-GB", { timeZone: TZ, hourCycle: "h23", ...options })
      .formatToParts(date).map((p) => [p.type, p.value]));

  function shanghaiNow() {
    const p = parts(new Date(), { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
    return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
  }

  // "18:00" on the day asked about, otherwise "Mon 23 Nov 08:00".
  function when(iso, day) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return esc(iso);
    const p = parts(d, { year: "numeric", month: "short", day: "2-digit", weekday: "short", hour: "2-digit", minute: "2-digit" });
    const ymd = parts(d, { year: "numeric", month: "2-digit", day: "2-digit" });
    const time = `${p.hour}:${p.minute}`;
    return `${ymd.year}-${ymd.month}-${ymd.day}` === day ? time : `${p.weekday} ${Number(p.day)} ${p.month} ${time}`;
  }

  const distance = (m) => (m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(1).replace(/\.0$/, "")} km`);

  // Markers are drawn in the base map's system; the API answers in WGS84.
  function toLatLng(lon, lat, crs) {
    if (crs === "wgs84" && cfg.display_crs === "gcj02") {
      const [x, y] = gridmapResident.toGcj02(lon, lat);
      return [y, x];
    }
    return [lat, lon];
  }

  function setStatus(html, status) {
    statusBox.innerHTML = html;
    if (status) {
      panel.dataset.status = status;
      if (status !== "loading") panel.dataset.loads = String(++loads);
    }
  }

  function stateLine(p, now) {
    const at = now ? " now" : "";
    if (p.state === "open") return `Open${at}${p.closes_at ? ` · closes ${when(p.closes_at, p._day)}` : ""}`;
    if (p.state === "exit_only") return `Exit only${at}: you can leave but not enter${p.next_change ? ` · changes ${when(p.next_change, p._day)}` : ""}`;
    if (p.state === "closed") return `Closed${at}${p.opens_next_at ? ` · opens ${when(p.opens_next_at, p._day)}` : ""}`;
    return "Opening hours unknown";
  }

  function popupHtml(p, now) {
    const kind = cfg.kinds[p.kind] ? cfg.kinds[p.kind].one : p.kind;
    const lines = [
      `<h3>${esc(p.name)}</h3>`,
      `<p>${esc(kind)}${p.operator ? ` · ${esc(p.operator)}` : ""}</p>`,
      `<p class="st-${esc(p.state)}">${stateLine(p, now)}</p>`,
      `<p>Hours: ${esc(p.opening_hours || p.hours_text || "not given")}</p>`,
    ];
    if (p.kind === "car_park" || p.capacity != null || p.free_spaces != null) {
      const of = p.capacity != null ? ` of ${p.capacity}` : "";
      lines.push(`<p>Free spaces: ${p.free_spaces == null ? "unknown" : `${p.free_spaces}${of}`}</p>`);
    }
    lines.push(`<p>Distance: ${distance(p.distance_m)} from ${esc(here.label)}</p>`);
    if (p.access_note) lines.push(`<p>${esc(p.access_note)}</p>`);
    if (p.fee) lines.push(`<p>Fee: ${esc(p.fee)}</p>`);
    if (p.contact) lines.push(`<p>Contact: ${esc(p.contact)}</p>`);
    return `<div class="resident-popup">${lines.join("")}</div>`;
  }

  function draw(body) {
    markers.clearLayers();
    const day = body.open_at.slice(0, 10); // the API answers in Shanghai time
    const popupPad = L.point(10, panel.offsetHeight + 10); // the panel floats over the map
    let open = 0;
    for (const f of body.features) {
      const p = { ...f.properties, _day: day };
      const state = ["open", "closed", "exit_only"].includes(p.state) ? p.state : "unknown";
      const icon = cfg.kinds[p.kind] ? cfg.kinds[p.kind].icon : "fa-location-dot";
      const ll = toLatLng(p.lon, p.lat, "wgs84");
      const marker = L.marker(ll, {
        title: p.name,
        zIndexOffset: p.open ? 1000 : 0, // open places stay on top where markers overlap
        icon: L.divIcon({
          className: `fac state-${state} kind-${p.kind}${p.open ? " is-open" : ""}`,
          html: `<i class="fa-solid ${icon}" aria-hidden="true"></i>${state === "exit_only" ? '<span class="badge">exit</span>' : ""}`,
          iconSize: [32, 32], iconAnchor: [16, 16], popupAnchor: [0, -14],
        }),
      }).bindPopup(popupHtml(p, followNow), { maxWidth: 280, autoPanPaddingTopLeft: popupPad });
      marker.addTo(markers);
      Object.assign(marker.getElement().dataset, { id: String(p.id), lat: String(ll[0]), lng: String(ll[1]) });
      if (p.open) open += 1;
    }
    if (followNow) timeInput.value = body.open_at.slice(0, 16);
    const n = body.features.length;
    const radius = distance(cfg.radius_m);
    const legend = [["open", "open"], ["closed", "closed"], ["exit_only", "exit only"], ["unknown", "hours unknown"]]
      .map(([s, text]) => `<span class="lgi"><span class="lg state-${s}"></span>${text}</span>`).join("");
    setStatus(n
      ? `<b>${open}</b> of ${n} places open within ${radius} of ${esc(here.label)}<br>${legend}`
      : `No places within ${radius} of ${esc(here.label)}. Tap the map elsewhere.`, "ready");
  }

  async function refresh() {
    if (!here) return;
    const mine = ++seq;
    const kinds = kindBoxes.filter((b) => b.checked).map((b) => b.value);
    if (!kinds.length) {
      markers.clearLayers();
      setStatus("Choose at least one kind of place.", "ready");
      return;
    }
    const q = new URLSearchParams({
      lon: here.lon.toFixed(7), lat: here.lat.toFixed(7), crs: here.crs,
      radius_m: String(cfg.radius_m), limit: String(cfg.limit), include_closed: "true",
    });
    kinds.forEach((k) => q.append("kind", k));
    if (!followNow && timeInput.value) q.set("open_at", timeInput.value); // no offset: Shanghai
    const url = `${cfg.api}?${q}`;
    panel.dataset.status = "loading";
    let body;
    try {
      const response = await fetch(url, { headers: { Accept: "application/geo+json" } });
      body = await response.json(); // errors come as problem+json with a readable detail
      if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
    } catch (error) {
      if (mine === seq) setStatus(`Could not load places: ${esc(error.message)}`, "error");
      return;
    }
    if (mine !== seq) return;
    Object.assign(panel.dataset, { query: url, openAt: body.open_at });
    draw(body);
  }

  function setPoint(lon, lat, crs, label, recentre) {
    here = { lon, lat, crs, label };
    const ll = toLatLng(lon, lat, crs);
    if (hereLayer) hereLayer.remove();
    const area = L.circle(ll, { radius: cfg.radius_m, interactive: false, color: "#1b6ac9", weight: 1, fillOpacity: 0.04 });
    const dot = L.circleMarker(ll, {
      radius: 8, interactive: false, pane: "resident-here", color: "#fff", weight: 3, fillColor: "#1b6ac9", fillOpacity: 1,
    });
    hereLayer = L.layerGroup([area, dot]).addTo(map);
    if (recentre) map.fitBounds(area.getBounds(), { paddingTopLeft: [0, panel.offsetHeight] });
    refresh();
  }

  function fallBack(why) {
    if (!cfg.centre) {
      setStatus(`${esc(why)}. Tap the map to choose a point.`, "ready");
      return;
    }
    setPoint(cfg.centre[0], cfg.centre[1], "wgs84", "the city centre", true);
  }

  function locate() {
    setStatus("Finding your location…", "loading");
    if (!navigator.geolocation) { // also missing on plain-http sites other than localhost
      fallBack("This browser cannot give your location");
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (pos) => setPoint(pos.coords.longitude, pos.coords.latitude, "wgs84", "your location", true),
      (err) => fallBack(err.code === err.PERMISSION_DENIED ? "Location not allowed" : "Location unavailable"),
      { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 },
    );
  }

  // A tap that only closes a popup must not also move the point. Our preclick handler is
  // registered before any popup's, so the popup is still open when it runs.
  map.on("popupopen", () => { popupOpen = true; });
  map.on("popupclose", () => { popupOpen = false; });
  map.on("preclick", () => { swallowClick = popupOpen; });
  map.on("click", (e) => {
    if (swallowClick) { swallowClick = false; return; }
    const ll = e.latlng.wrap();
    setPoint(ll.lng, ll.lat, cfg.display_crs, "the chosen point", false);
  });
  document.getElementById("resident-locate").addEventListener("click", locate);
  document.getElementById("resident-now").addEventListener("click", () => {
    followNow = true;
    timeInput.value = shanghaiNow();
    refresh();
  });
  timeInput.addEventListener("change", () => {
    followNow = !timeInput.value;
    refresh();
  });
  kindBoxes.forEach((b) => b.addEventListener("change", refresh));

  timeInput.value = shanghaiNow();
  locate();
}

gridmapResident.toGcj02 = gridmapToGcj02;
