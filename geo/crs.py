"""Coordinate reference systems: parse CRS specs and convert coordinates/geometries to WGS84.

Besides ordinary EPSG systems (via pyproj) this handles the two unofficial systems used
by Chinese consumer map apps (see docs/DOMAIN.md, "Coordinates in China"):

* GCJ-02 ("Mars coordinates"): AMap/Gaode, Tencent. WGS84 plus a non-linear offset of a
  few hundred metres, applied only inside a rough mainland-China box.
* BD-09: Baidu. GCJ-02 with a further small polar-coordinate distortion and a fixed shift.

Why our own implementation instead of the ``prcoords`` PyPI library: prcoords (like most
published ports) is scalar-only and built on the ``math`` module, i.e. one Python call per
point. We need to convert ~1M points at once for bulk grid assignment and whole polygon
layers (every vertex) for boundaries and map overlays, so everything here is vectorised
numpy. tests/test_crs.py cross-checks these functions against prcoords (an independent
implementation) and against reference values published by the coordtransform library.

Inverses (GCJ-02 -> WGS84, BD-09 -> GCJ-02/WGS84) have no closed form. The common one-step
"subtract the offset" inverse is off by up to a few metres, which is enough to put a point
in the wrong grid near a boundary, so we iterate until the forward transform of the result
reproduces the input to ``INVERSE_TOL_DEG`` (about 0.1 mm).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Literal, TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

__all__ = [
    "BD09",
    "CGCS2000",
    "CHINA_LAT_RANGE",
    "CHINA_LON_RANGE",
    "GCJ02",
    "INVERSE_MAX_ITER",
    "INVERSE_TOL_DEG",
    "WGS84",
    "CrsSpec",
    "UnknownCRS",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "geometry_from_wgs84",
    "geometry_to_wgs84",
    "in_china",
    "parse_crs",
    "to_wgs84_xy",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

FloatArray: TypeAlias = npt.NDArray[np.float64]
# Converters return 0-d results as np.float64 (a float subclass) and everything else as
# arrays of the broadcast input shape, so scalar callers get scalars back.
Coord: TypeAlias = FloatArray | np.float64
XY: TypeAlias = tuple[Coord, Coord]
ChineseCrs: TypeAlias = Literal["gcj02", "bd09"]
G = TypeVar("G")

# --- constants of the public GCJ-02 / BD-09 formulas ------------------------------------

# GCJ-02 computes its offset on the Krasovsky 1940 ellipsoid (a, e^2).
_KRASOVSKY_A: Final = 6378245.0
_KRASOVSKY_EE: Final = 0.00669342162296594323

# The rough mainland-China box used by the widely circulated implementations (eviltransform,
# prcoords). Outside it the apps do not shift, so neither do we (bounds inclusive).
CHINA_LON_RANGE: Final = (72.004, 137.8347)
CHINA_LAT_RANGE: Final = (0.8293, 55.8271)

# BD-09: fixed shift (degrees) plus radius/angle wobble with angular frequency 3000 rad/rad.
_BD_DLON: Final = 0.0065
_BD_DLAT: Final = 0.006
_BD_FREQ: Final = np.pi * 3000.0 / 180.0

# Inverse iteration stops when forward(result) is within this of the input, per axis.
# 1e-9 degrees is ~0.1 mm: far below any source accuracy, well above float64 noise (~1e-13).
INVERSE_TOL_DEG: Final = 1e-9
# Convergence is geometric with ratio ~1e-2, so 3-5 steps suffice in practice. The bound
# only matters at the edge of the China box, where the shift is discontinuous and some
# GCJ-02 points have no WGS84 pre-image at all; there we return the last iterate.
INVERSE_MAX_ITER: Final = 30


# --- array helpers -------------------------------------------------------------------


def _as_xy(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Return x and y as broadcast float64 arrays (read-only views allowed)."""
    xa, ya = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    return xa, ya


def _out(a: FloatArray) -> Coord:
    """Unwrap 0-d arrays to np.float64 so scalar input gives scalar output."""
    return a[()]


def in_china(lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """True where (lon, lat) lies in the box inside which GCJ-02/BD-09 shifts apply."""
    lon_a, lat_a = _as_xy(lon, lat)
    # NaN compares False, so missing coordinates count as "outside" and pass through.
    return (
        (lon_a >= CHINA_LON_RANGE[0])
        & (lon_a <= CHINA_LON_RANGE[1])
        & (lat_a >= CHINA_LAT_RANGE[0])
        & (lat_a <= CHINA_LAT_RANGE[1])
    )


# --- forward formulas (raw, on float arrays) --------------------------------------------


def _gcj_offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 offset in degrees (dlon, dlat) for WGS84 points, ignoring the China box."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    # Term shared by both axes; the formula is written in metres of arc.
    wiggle_x = (20.0 * np.sin(6.0 * np.pi * x) + 20.0 * np.sin(2.0 * np.pi * x)) * 2.0 / 3.0
    dlat_m = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * sqrt_abs_x
        + wiggle_x
        + (20.0 * np.sin(np.pi * y) + 40.0 * np.sin(np.pi * y / 3.0)) * 2.0 / 3.0
        + (160.0 * np.sin(np.pi * y / 12.0) + 320.0 * np.sin(np.pi * y / 30.0)) * 2.0 / 3.0
    )
    dlon_m = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * sqrt_abs_x
        + wiggle_x
        + (20.0 * np.sin(np.pi * x) + 40.0 * np.sin(np.pi * x / 3.0)) * 2.0 / 3.0
        + (150.0 * np.sin(np.pi * x / 12.0) + 300.0 * np.sin(np.pi * x / 30.0)) * 2.0 / 3.0
    )
    # Metres -> degrees with Krasovsky meridian / parallel radii at the point's latitude.
    phi = np.radians(lat)
    w = 1.0 - _KRASOVSKY_EE * np.sin(phi) ** 2
    sqrt_w = np.sqrt(w)
    m_per_rad_lat = _KRASOVSKY_A * (1.0 - _KRASOVSKY_EE) / (w * sqrt_w)
    m_per_rad_lon = _KRASOVSKY_A / sqrt_w * np.cos(phi)
    return np.degrees(dlon_m / m_per_rad_lon), np.degrees(dlat_m / m_per_rad_lat)


def _gcj_shift(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 offset in degrees, zero outside the China box (and for NaN/inf input)."""
    inside = in_china(lon, lat)
    # inf/NaN inputs make sin() warn; they are outside the box and get a zero shift anyway.
    with np.errstate(invalid="ignore"):
        dlon, dlat = _gcj_offset(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def _wgs_to_gcj(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Forward GCJ-02 on float arrays; identity outside the China box."""
    dlon, dlat = _gcj_shift(lon, lat)
    return lon + dlon, lat + dlat


def _gcj_to_bd(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Forward BD-09 from GCJ-02 on float arrays; identity outside the China box."""
    # The published formula (coordtransform, prcoords) shifts BD-09 everywhere. We apply the
    # same China box as GCJ-02 so that "outside China nothing moves" holds for every
    # converter; foreign points in BD-09 are not something this service expects.
    inside = in_china(lon, lat)
    with np.errstate(invalid="ignore"):
        r = np.hypot(lon, lat) + 2e-5 * np.sin(lat * _BD_FREQ)
        theta = np.arctan2(lat, lon) + 3e-6 * np.cos(lon * _BD_FREQ)
        bd_lon = r * np.cos(theta) + _BD_DLON
        bd_lat = r * np.sin(theta) + _BD_DLAT
    return np.where(inside, bd_lon, lon), np.where(inside, bd_lat, lat)


def _wgs_to_bd(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Forward WGS84 -> BD-09 on float arrays (GCJ-02 then BD-09)."""
    return _gcj_to_bd(*_wgs_to_gcj(lon, lat))


# --- approximate inverses, used only as starting points for the exact iteration ----------


def _gcj_to_wgs_guess(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """One-step GCJ-02 inverse (subtract the offset evaluated at the GCJ point); ~metres off."""
    dlon, dlat = _gcj_shift(lon, lat)
    return lon - dlon, lat - dlat


def _bd_to_gcj_guess(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Analytic BD-09 inverse that evaluates the wobble at the BD point; ~decimetres off."""
    inside = in_china(lon, lat)
    with np.errstate(invalid="ignore"):
        x = lon - _BD_DLON
        y = lat - _BD_DLAT
        r = np.hypot(x, y) - 2e-5 * np.sin(y * _BD_FREQ)
        theta = np.arctan2(y, x) - 3e-6 * np.cos(x * _BD_FREQ)
        gx, gy = r * np.cos(theta), r * np.sin(theta)
    return np.where(inside, gx, lon), np.where(inside, gy, lat)


# --- exact inverse ----------------------------------------------------------------------


def _invert(
    forward: Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]],
    target_x: FloatArray,
    target_y: FloatArray,
    guess_x: FloatArray,
    guess_y: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Solve forward(x, y) == target by fixed-point iteration, per point, from the guess."""
    shape = target_x.shape
    tx, ty = target_x.ravel(), target_y.ravel()
    x = np.array(guess_x, dtype=np.float64).ravel()  # fresh, writable copies
    y = np.array(guess_y, dtype=np.float64).ravel()
    # The shifts are small and smooth (Jacobian of the offset ~1e-2), so x <- x - (F(x) - t)
    # contracts quickly (3-4 passes from the guess). Only still-unconverged points are
    # re-evaluated, so later passes cost little.
    active = np.arange(tx.size)
    for _ in range(INVERSE_MAX_ITER):
        fx, fy = forward(x[active], y[active])
        with np.errstate(invalid="ignore"):  # inf - inf for infinite input: NaN, see below
            ex = fx - tx[active]
            ey = fy - ty[active]
        # A point whose forward image is already within tolerance is left exactly as
        # verified. NaN errors (NaN/inf input) compare False and drop out unchanged too.
        todo = (np.abs(ex) > INVERSE_TOL_DEG) | (np.abs(ey) > INVERSE_TOL_DEG)
        active = active[todo]
        if active.size == 0:
            break
        x[active] -= ex[todo]
        y[active] -= ey[todo]
    return x.reshape(shape), y.reshape(shape)


# --- public point converters --------------------------------------------------------------


def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> XY:
    """Convert WGS84 lon/lat to GCJ-02 (unchanged outside the China box)."""
    gx, gy = _wgs_to_gcj(*_as_xy(lon, lat))
    return _out(gx), _out(gy)


def gcj02_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> XY:
    """Convert GCJ-02 lon/lat to WGS84 exactly (iterated inverse of wgs84_to_gcj02)."""
    gx, gy = _as_xy(lon, lat)
    wx, wy = _invert(_wgs_to_gcj, gx, gy, *_gcj_to_wgs_guess(gx, gy))
    return _out(wx), _out(wy)


def gcj02_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> XY:
    """Convert GCJ-02 lon/lat to BD-09 (unchanged outside the China box)."""
    bx, by = _gcj_to_bd(*_as_xy(lon, lat))
    return _out(bx), _out(by)


def bd09_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> XY:
    """Convert BD-09 lon/lat to GCJ-02 exactly (iterated inverse of gcj02_to_bd09)."""
    bx, by = _as_xy(lon, lat)
    gx, gy = _invert(_gcj_to_bd, bx, by, *_bd_to_gcj_guess(bx, by))
    return _out(gx), _out(gy)


def wgs84_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> XY:
    """Convert WGS84 lon/lat to BD-09 (via GCJ-02; unchanged outside the China box)."""
    bx, by = _wgs_to_bd(*_as_xy(lon, lat))
    return _out(bx), _out(by)


def bd09_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> XY:
    """Convert BD-09 lon/lat to WGS84 exactly (iterated inverse of wgs84_to_bd09)."""
    bx, by = _as_xy(lon, lat)
    # Iterate on the composed forward transform rather than chaining two inverses, so the
    # 1e-9 degree guarantee holds for the whole BD-09 -> WGS84 step, not for each half.
    guess = _gcj_to_wgs_guess(*_bd_to_gcj_guess(bx, by))
    wx, wy = _invert(_wgs_to_bd, bx, by, *guess)
    return _out(wx), _out(wy)


# --- CRS specs ------------------------------------------------------------------------


class UnknownCRS(ValueError):
    """Raised when a CRS spec is not one of the accepted forms or not a usable EPSG CRS."""


@dataclass(frozen=True, slots=True)
class CrsSpec:
    """A parsed CRS: an EPSG code, or one of China's unofficial systems (GCJ-02 / BD-09)."""

    name: str
    epsg: int | None = None
    chinese: ChineseCrs | None = None

    def __post_init__(self) -> None:
        """Enforce that exactly one of epsg / chinese is set."""
        if (self.epsg is None) == (self.chinese is None):
            raise ValueError("CrsSpec needs exactly one of epsg or chinese")


WGS84: Final = CrsSpec("wgs84", epsg=4326)
CGCS2000: Final = CrsSpec("cgcs2000", epsg=4490)
GCJ02: Final = CrsSpec("gcj02", chinese="gcj02")
BD09: Final = CrsSpec("bd09", chinese="bd09")

_NAMED: Final[dict[str, CrsSpec]] = {s.name: s for s in (WGS84, CGCS2000, GCJ02, BD09)}
_BY_EPSG: Final[dict[int, CrsSpec]] = {4326: WGS84, 4490: CGCS2000}
# CGCS2000 and WGS84 agree to a few centimetres (same ellipsoid to 0.1 mm; frames differ
# at the cm level), far below this service's accuracy, so both are passed through as-is.
# (PROJ itself only has a "ballpark" null transformation between them.)
_WGS84_EQUIVALENT: Final = frozenset(_BY_EPSG)
_EPSG_RE: Final = re.compile(r"(?:epsg:)?\s*(\d{1,9})")

ACCEPTED_FORMS: Final = (
    "'wgs84' (EPSG:4326), 'cgcs2000' (EPSG:4490), 'gcj02', 'bd09', "
    "'EPSG:<code>' (e.g. 'EPSG:4547') or a bare EPSG code (e.g. '4547'); case-insensitive"
)


def parse_crs(spec: str) -> CrsSpec:
    """Parse a user CRS spec ('wgs84', 'gcj02', 'EPSG:4547', '4547', ...) into a CrsSpec."""
    if not isinstance(spec, str):
        raise UnknownCRS(f"CRS spec must be a string, got {spec!r}; accepted: {ACCEPTED_FORMS}")
    key = spec.strip().lower()
    if key in _NAMED:
        return _NAMED[key]
    match = _EPSG_RE.fullmatch(key)
    if match is None:
        raise UnknownCRS(f"unknown CRS {spec!r}; accepted: {ACCEPTED_FORMS}")
    return _epsg_spec(int(match.group(1)), spec)


def _epsg_spec(code: int, original: str) -> CrsSpec:
    """Validate an EPSG code with pyproj and return its CrsSpec."""
    if code in _BY_EPSG:
        return _BY_EPSG[code]
    problem = _epsg_problem(code)
    if problem is not None:
        raise UnknownCRS(f"unknown CRS {original!r}: {problem}; accepted: {ACCEPTED_FORMS}")
    return CrsSpec(f"EPSG:{code}", epsg=code)


@lru_cache(maxsize=256)
def _epsg_problem(code: int) -> str | None:
    """Return why EPSG:code cannot be used for 2-D points, or None if it can (cached)."""
    try:
        crs = CRS.from_user_input(f"EPSG:{code}")
    except CRSError:
        return f"EPSG:{code} is not a CRS in the EPSG database"
    # Vertical/geocentric/engineering CRSs parse fine but cannot locate a lon/lat point.
    if not (crs.is_geographic or crs.is_projected):
        return f"EPSG:{code} is a {crs.type_name}, not a geographic or projected CRS"
    return None


def _coerce_spec(spec: CrsSpec | str) -> CrsSpec:
    """Accept either a CrsSpec or a string spec."""
    return spec if isinstance(spec, CrsSpec) else parse_crs(spec)


@lru_cache(maxsize=64)
def _transformer_to_wgs84(epsg: int) -> Transformer:
    """Cached pyproj Transformer from EPSG:epsg to WGS84 lon/lat (always_xy)."""
    # Building a Transformer costs milliseconds (database lookups); reusing one is cheap and,
    # since pyproj 3.1, thread-safe.
    return Transformer.from_crs(CRS.from_epsg(epsg), CRS.from_epsg(4326), always_xy=True)


def to_wgs84_xy(x: npt.ArrayLike, y: npt.ArrayLike, spec: CrsSpec | str) -> XY:
    """Convert x/y (easting/northing or lon/lat) in `spec` to WGS84 lon/lat."""
    spec = _coerce_spec(spec)
    if spec.chinese == "gcj02":
        return gcj02_to_wgs84(x, y)
    if spec.chinese == "bd09":
        return bd09_to_wgs84(x, y)
    assert spec.epsg is not None  # guaranteed by CrsSpec.__post_init__
    xa, ya = _as_xy(x, y)
    if spec.epsg in _WGS84_EQUIVALENT:
        return _out(xa.copy()), _out(ya.copy())
    # pyproj wants flat buffers; 0-d and n-d inputs are restored to their shape afterwards.
    lon, lat = _transformer_to_wgs84(spec.epsg).transform(xa.ravel(), ya.ravel())
    return _out(np.asarray(lon).reshape(xa.shape)), _out(np.asarray(lat).reshape(ya.shape))


# --- geometries -------------------------------------------------------------------------

_FROM_WGS84: Final[dict[ChineseCrs, Callable[[npt.ArrayLike, npt.ArrayLike], XY]]] = {
    "gcj02": wgs84_to_gcj02,
    "bd09": wgs84_to_bd09,
}

# shapely >= 2.1 can keep each geometry's Z (include_z=None); 2.0 would have to drop it.
_SHAPELY_KEEPS_Z: Final = tuple(int(p) for p in shapely.__version__.split(".")[:2]) >= (2, 1)


def _transform_geoms(geoms: G, convert: Callable[[FloatArray, FloatArray], XY]) -> FloatArray | G:
    """Apply a vectorised lon/lat converter to every vertex of geoms in one call."""

    def on_coords(coords: FloatArray) -> FloatArray:
        """Convert the x/y columns of an (N, 2|3) coordinate array, keeping Z."""
        out = np.array(coords, dtype=np.float64)
        out[:, 0], out[:, 1] = convert(coords[:, 0], coords[:, 1])
        return out

    include_z: bool | None = None if _SHAPELY_KEEPS_Z else False
    return shapely.transform(geoms, on_coords, include_z=include_z)


def _rewrap(original: Any, converted: Any, crs: str | None) -> Any:
    """Give a GeoSeries back as a GeoSeries (duck-typed: geo/ does not import geopandas)."""
    if (
        hasattr(original, "set_crs")
        and hasattr(original, "index")
        and not hasattr(original, "set_geometry")
    ):
        return type(original)(converted, index=original.index, crs=crs, name=original.name)
    return converted


def geometry_to_wgs84(geoms: G, spec: CrsSpec | str) -> G:
    """Convert a geometry, array of geometries or GeoSeries from `spec` to WGS84."""
    spec = _coerce_spec(spec)
    converted = _transform_geoms(geoms, lambda x, y: to_wgs84_xy(x, y, spec))
    return _rewrap(geoms, converted, "EPSG:4326")  # type: ignore[return-value]


def geometry_from_wgs84(geoms: G, target: ChineseCrs | CrsSpec | str) -> G:
    """Shift WGS84 geometries (or a GeoSeries) into GCJ-02 or BD-09, e.g. for app base maps."""
    spec = _coerce_spec(target)
    if spec.chinese is None:
        # EPSG targets are what GeoSeries.to_crs / pyproj are for; keep this narrow on purpose.
        raise UnknownCRS(f"geometry_from_wgs84 target must be 'gcj02' or 'bd09', got {target!r}")
    converted = _transform_geoms(geoms, _FROM_WGS84[spec.chinese])
    # GCJ-02/BD-09 have no EPSG code. Labelling the result EPSG:4326 would let a later
    # to_crs() silently treat shifted coordinates as true WGS84, so the GeoSeries gets none.
    return _rewrap(geoms, converted, None)  # type: ignore[return-value]
