/* WGS84 -> GCJ-02 (the offset Chinese map apps' tiles use), the same published formula as
 * geo/crs.py; tests/test_resident_page.py checks this port against it. Shared by every
 * page (maps/shell.py puts it first). Identity outside
 * the mainland-China box, like the Python version. Returns [lon, lat]. */
function gridmapToGcj02(lon, lat) {
  if (!(lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271)) return [lon, lat];
  const A = 6378245.0; // Krasovsky 1940
  const EE = 0.00669342162296594323;
  const PI = Math.PI;
  const x = lon - 105.0;
  const y = lat - 35.0;
  const s = Math.sin;
  const wiggle = ((20.0 * s(6.0 * PI * x) + 20.0 * s(2.0 * PI * x)) * 2.0) / 3.0;
  const dlatM = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x)) + wiggle
    + ((20.0 * s(PI * y) + 40.0 * s((PI * y) / 3.0)) * 2.0) / 3.0
    + ((160.0 * s((PI * y) / 12.0) + 320.0 * s((PI * y) / 30.0)) * 2.0) / 3.0;
  const dlonM = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x)) + wiggle
    + ((20.0 * s(PI * x) + 40.0 * s((PI * x) / 3.0)) * 2.0) / 3.0
    + ((150.0 * s((PI * x) / 12.0) + 300.0 * s((PI * x) / 30.0)) * 2.0) / 3.0;
  const phi = (lat * PI) / 180.0;
  const w = 1.0 - EE * s(phi) ** 2;
  const perRadLat = (A * (1.0 - EE)) / (w * Math.sqrt(w));
  const perRadLon = (A / Math.sqrt(w)) * Math.cos(phi);
  return [lon + ((dlonM / perRadLon) * 180.0) / PI, lat + ((dlatM / perRadLat) * 180.0) / PI];
}
