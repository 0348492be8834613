"""A deterministic demo city for gridmap, placed around Wuzhou, Guangxi.

The city is invented but sits at real coordinates (about 111.28°E, 23.47°N) and has the
shape of the example in DOMAIN.md: 3 districts with their real GB/T 2260 codes,
8 sub-districts (街道), 57 communities (社区), 613 grids (网格) and 451 compounds (小区),
plus the stationed departments of the "street chief" scheme (街长制), shared facilities
(car parks, school sports grounds, toilets in public buildings), an issue category list
split into components (部件) and events (事件), and about 2,000 historical issues with
their full closed-loop history.

That is the "demo" scale. The "city" scale (``SCALES``, ``DemoScale``) stretches the same
layout to 60 km x 45 km and fills it with 60 sub-districts, 930 communities, exactly
10,000 grids, 7,000 compounds and 100,000 issues, for testing and benchmarking the maps
at the size of a real city; it takes about 35 s to generate instead of under 2 s.

How the geometry is built
-------------------------
Everything is drawn in a local metric plane (x east, y north, metres from ``ORIGIN``) and
only converted to EPSG:4326 at the very end, by an *affine* map. An affine map keeps
straight lines straight and shared vertices shared, so the exact tiling built in metres
survives the conversion (a real projection such as UTM would bend the long parent edges
slightly and open gaps of a few square metres between levels).

Each level is cut out of its parent: seeds are placed by a weighted k-means over sample
points drawn inside the parent (a centroidal Voronoi tessellation, which gives compact,
irregular cells), the Voronoi cells of the seeds are intersected with the parent, and a
stray fragment that a cell leaves behind on a concave parent is handed to the sibling it
touches most. Children therefore cover their parent with no gaps and no overlaps beyond
floating-point noise. Sample points are denser in the two urban cores, so central
communities and grids come out smaller, as they do in real cities. Districts and
sub-districts get meandering borders instead of straight Voronoi edges: their parent is
cut into many small Voronoi cells which are then grouped around the seeds (see
``_split_wiggly``).

Codes
-----
* district: 6-digit GB/T 2260 code (450403 万秀区, 450405 长洲区, 450406 龙圩区)
* sub-district: district + 3-digit sequence; community: + 3 digits; grid: + 3 digits,
  the 15-digit scheme of DB11/T 2157-2023. Sequences follow the reading order described
  in ``_reading_order`` (rows from north to south, west to east inside a row).
* compound: ``XQ`` + 12-digit community code + 3-digit sequence (same reading order).
* department: ``D`` + the code of the area it serves + ``-`` + a 3-letter kind tag, e.g.
  ``D450403001-POL`` (police of sub-district 450403001) or ``D450403-WAT`` (water bureau
  of district 450403). See ``SUBDISTRICT_DEPARTMENTS`` and ``DISTRICT_DEPARTMENTS``.
* facility: ``CP0001`` car parks, ``SG001`` sports grounds, ``WC001`` toilets.
* issue: ``WZ`` + local report date ``YYYYMMDD`` + 4-digit sequence within that day.

Issues
------
Each issue's whole life is simulated (report, accept or reject, dispatch, start,
respond, on-site verification, which fails now and then and sends the case back to
the handler, and close) and then cut off at ``REFERENCE_TIME``: the last event before it
gives the status, so recent reports are still open. A few cases stall for days at one
step; they are the overdue cases dispatchers escalate. ``department_code`` is the unit
the case was dispatched to (by category kind and the point's sub-district or district)
and is None while a case is reported, accepted or rejected.

Each issue also carries what the loop (data/cases.py) records besides its status:

* ``due_at``: set at report and set again at every dispatch, so here counted from the
  last dispatch, or from the report for cases never dispatched (rejected ones keep
  that provisional deadline; they are neither overdue nor escalated). It is
  ``geo.worktime.due_at``, the function behind the intake's ``Clock.due``, with the
  default calendar (chinese_calendar and geo/calendar_extra.json) and working day
  (08:30-12:00, 14:00-17:30), not a deployment's settings, so the demo stays the same.
* ``closed_at``: the time of the close event; None for cases not closed.
* ``satisfaction``: the reporter's 1-5 score, which the loop takes at close. The
  histories hold no scores, so they are drawn from a stream of their own
  (``"satisfaction"``, after the other stages, which therefore draw what they always
  did): only closed cases whose reporter left a contact are scored (a grid worker's
  own patrol finding has nobody to call back), and cases closed late score lower.

Measured that way, about half of the closed cases close by their deadline (the time
limit runs from dispatch to close, and verification and closing come hours after the
handler's response), and most cases still open at ``REFERENCE_TIME`` are past due,
the stalled ones by days or weeks. ``escalation_level`` stays None and the histories
hold no ``escalate`` events: the first escalation run raises the overdue cases.

Randomness comes only from ``numpy.random.default_rng([seed, stage])`` with one stream
per stage, so changing how one stage draws does not reshuffle the others, and nothing
depends on wall-clock time or on set/dict iteration order. The speed-ups made for the
city scale (``_Weighted``, batched grid look-ups, the k-means means) consume the same
random numbers and compute the same floating-point values as the plain code they
replace, so the demo scale is the same city it always was.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from geo.issues import STATUSES
from geo.worktime import WorkCalendar, WorkingDay, due_at

__all__ = [
    "REFERENCE_TIME",
    "SCALES",
    "STATUSES",
    "DemoCity",
    "DemoScale",
    "UnknownScale",
    "generate_city",
    "scale_named",
]

CRS = "EPSG:4326"
TIMEZONE = "Asia/Shanghai"
# "Now" for the demo: issues are reported during the HISTORY_DAYS before this instant and
# their histories are cut off here, so the recent ones are still open.
REFERENCE_TIME = pd.Timestamp("2026-11-01 00:00:00", tz=TIMEZONE)
HISTORY_DAYS = 183


# Longitude/latitude of the local plane's origin: between Wuzhou's old town (east) and
# Longxu (south-west), so the city covers all three districts.
ORIGIN = (111.285, 23.465)
# Size of the "demo" scale. The layout below (district sites, urban cores) is drawn for
# this size and stretched with the extent of a larger scale (see ``DemoScale``).
CITY_WIDTH_M = 20_000.0
CITY_HEIGHT_M = 15_000.0

# (code, name, Voronoi site in metres). Sites follow the real layout: Wanxiu east around
# the old town, Changzhou west, Longxu south of the Xi River.
DISTRICTS: tuple[tuple[str, str, tuple[float, float]], ...] = (
    ("450403", "万秀区", (4_000.0, 2_000.0)),
    ("450405", "长洲区", (-5_500.0, 2_500.0)),
    ("450406", "龙圩区", (-1_000.0, -4_500.0)),
)
MAX_COMPOUNDS_PER_GRID = 4

# Urban cores as (x, y, sigma, weight) in metres: the old town in Wanxiu and the centre
# of Longxu. "Busyness" drives where seeds, compounds, institutions and issues cluster.
URBAN_CORES: tuple[tuple[float, float, float, float], ...] = (
    (2_500.0, 1_500.0, 2_600.0, 1.0),
    (-2_500.0, -4_000.0, 1_800.0, 0.7),
)
BASE_BUSYNESS = 0.18
MAX_BUSYNESS = BASE_BUSYNESS + sum(core[3] for core in URBAN_CORES)

# Stream ids for numpy's SeedSequence, one per generation stage.
_STAGES = (
    "outline",
    "names",
    "subdistricts",
    "communities",
    "grids",
    "compounds",
    "facilities",
    "issues",
    "satisfaction",  # added later: a stream of its own, so "issues" draws as before
)

# Two-character stems for sub-district and community names (drawn without replacement).
PLACE_STEMS = (
    "龙华", "新兴", "富民", "河东", "桂林", "金鸡", "鸳江", "西江", "白云", "红岭",
    "蝶山", "文澜", "兴龙", "安平", "福寿", "和平", "东升", "南环", "嘉园", "德政",
    "华山", "明珠", "锦绣", "翠湖", "银湖", "永安", "广厦", "云岭", "泰宁", "宏图",
    "春晖", "秀岭", "阳光", "荔枝", "榕树", "枫林", "月湾", "凤凰", "松园", "竹园",
    "梅岭", "富仪", "大同", "工人", "新港", "沙头", "马王", "泗洲", "三龙", "桂江",
    "竹湾", "塘源", "旺步", "金龙", "江滨", "城南", "城北", "城东", "城中", "东兴",
    "西竹", "角嘴", "新地", "白沙", "大塘", "茶山", "紫荆", "龙湖", "钱鉴", "富民坊",
)
# Characters composed into compound, road and business names.
NAME_FIRST = "龙新富桂金鸳白红蝶文兴安福和东嘉德华明锦翠银永广云泰宏春秀阳荔榕枫凤松竹梅碧御雅"
NAME_SECOND = "华兴民林江山岭湖塘园桥湾洲坪岗城源峰泉田景庭居苑轩阁都"
COMPOUND_SUFFIXES = ("小区", "花园", "苑", "新村")
ROAD_SUFFIXES = ("路", "路", "大道", "街", "一路", "二路")
# More compound suffixes for scales with thousands of compounds: the four above give only
# about 4,300 distinct names, and compound names stay unique.
MORE_COMPOUND_SUFFIXES = ("家园", "公寓", "华庭", "雅居", "名苑", "山庄", "新城", "佳园")
CHINESE_NUMERALS = "零一二三四五六七八九十"


# --------------------------------------------------------------------------------------
# Scales
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoScale:
    """How big a generated city is; ``SCALES`` holds the named ones.

    The layout (district sites, urban cores, the meanders of district borders) is drawn
    for the 20 km x 15 km demo and stretched to ``width_m`` x ``height_m``. Compounds,
    facilities and issue spots keep their real sizes, so a larger city has more of
    them, not bigger ones; grids get smaller only as far as the counts ask for.
    """

    name: str
    width_m: float
    height_m: float
    subdistricts_per_district: tuple[int, ...]  # in the order of DISTRICTS
    community_count: int
    grid_count: int
    compound_count: int
    issue_count: int
    min_communities_per_subdistrict: int = 5
    min_grids_per_community: int = 5
    compound_suffixes: tuple[str, ...] = COMPOUND_SUFFIXES

    def __post_init__(self) -> None:
        if len(self.subdistricts_per_district) != len(DISTRICTS):
            raise ValueError(f"{self.name}: one sub-district count per district is needed")
        # Sequence numbers have 3 digits in the 15-digit code scheme.
        if max(self.subdistricts_per_district) > 999:
            raise ValueError(f"{self.name}: at most 999 sub-districts per district")
        if self.community_count < self.min_communities_per_subdistrict * sum(
            self.subdistricts_per_district
        ) or self.grid_count < self.min_grids_per_community * self.community_count:
            raise ValueError(f"{self.name}: too few communities or grids for the minimums")

    @property
    def stretch(self) -> tuple[float, float]:
        """Factors (x, y) from the demo's layout to this scale's extent."""
        return self.width_m / CITY_WIDTH_M, self.height_m / CITY_HEIGHT_M


SCALES: dict[str, DemoScale] = {
    # The city of DOMAIN.md's example; its output must not change (tests and docs use it).
    "demo": DemoScale(
        name="demo",
        width_m=CITY_WIDTH_M,
        height_m=CITY_HEIGHT_M,
        subdistricts_per_district=(3, 3, 2),
        community_count=57,
        grid_count=613,
        compound_count=451,
        issue_count=2_000,
    ),
    # City scale, for testing and benchmarking the map pages: 60 km x 45 km (three times
    # the demo each way; about 2,100 km² inside the city limit). Grids per community
    # (~10.8) and compounds per grid (0.7) stay close to the demo's. Sub-districts get
    # ~15 communities each, a common size for a 街道, rather than the demo's 7 (its 8
    # sub-districts scaled up would be 130 for three districts, which no real city has);
    # they are shared out between the districts by a mix of population and area.
    "city": DemoScale(
        name="city",
        width_m=3 * CITY_WIDTH_M,
        height_m=3 * CITY_HEIGHT_M,
        subdistricts_per_district=(26, 17, 17),
        community_count=930,
        grid_count=10_000,
        compound_count=7_000,
        issue_count=100_000,
        compound_suffixes=COMPOUND_SUFFIXES + MORE_COMPOUND_SUFFIXES,
    ),
}


class UnknownScale(ValueError):
    """A scale name that is not in ``SCALES``."""


def scale_named(name: str) -> DemoScale:
    """The scale called ``name``, or an error that lists the choices."""
    try:
        return SCALES[name]
    except KeyError:
        choices = ", ".join(SCALES)
        raise UnknownScale(f"unknown demo scale {name!r}: choose one of {choices}") from None


# --------------------------------------------------------------------------------------
# Public result
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DemoCity:
    """All layers of the demo city; GeoDataFrames are in EPSG:4326.

    ``eq=False``: comparing data frames with ``==`` is element-wise, so equality of two
    cities is left to the frame-level testing helpers (see tests/test_demo_city.py).
    """

    districts: gpd.GeoDataFrame
    subdistricts: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    compounds: gpd.GeoDataFrame
    departments: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    issues: gpd.GeoDataFrame
    issue_events: pd.DataFrame
    categories: pd.DataFrame


# --------------------------------------------------------------------------------------
# Reference data: departments and issue categories
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _DepartmentKind:
    kind: str
    tag: str  # 3-letter tag used in the department code
    name_suffix: str


# Units stationed in every sub-district under the street chief scheme, plus the
# sub-district's own command centre that dispatches to them.
SUBDISTRICT_DEPARTMENTS = (
    _DepartmentKind("police", "POL", "派出所"),
    _DepartmentKind("traffic_police", "TRA", "交警中队"),
    _DepartmentKind("fire", "FIR", "消防救援站"),
    _DepartmentKind("market_supervision", "MKT", "市场监管所"),
    _DepartmentKind("city_management", "CMG", "城管中队"),
    _DepartmentKind("sanitation", "SAN", "环卫站"),
    _DepartmentKind("command_centre", "CMD", "街道综合指挥中心"),
)
# Bureaus that serve a whole district.
DISTRICT_DEPARTMENTS = (
    _DepartmentKind("housing", "HOU", "住房和城乡建设局"),
    _DepartmentKind("water", "WAT", "水务局"),
    _DepartmentKind("greening", "GRN", "园林绿化中心"),
)
_DISTRICT_KINDS = frozenset(d.kind for d in DISTRICT_DEPARTMENTS)


@dataclass(frozen=True)
class _Category:
    code: str
    name: str
    group: str  # 'component' (部件) or 'event' (事件)
    department_kind: str
    time_limit_hours: float
    working_hours: bool
    weight: float  # relative frequency among reports
    templates: tuple[str, ...]  # descriptions; {place} is filled in


# Time limits: the two published examples (exposed rubbish 4 working hours, dirty road
# 2) are kept; the rest are plausible values in the spirit of CJ/T 315. Emergencies and
# traffic run on the clock rather than on working hours.
CATEGORIES: tuple[_Category, ...] = (
    _Category("manhole_cover_damaged", "井盖破损", "component", "water", 4.0, True, 5,
              ("{place}井盖破损，存在安全隐患", "{place}井盖缺失，行人容易踩空",
               "{place}井盖松动，车辆经过响声很大")),
    _Category("street_lamp_out", "路灯不亮", "component", "city_management", 24.0, True, 6,
              ("{place}路灯不亮，晚上出行不便", "{place}连续几盏路灯损坏")),
    _Category("road_damaged", "道路破损", "component", "housing", 48.0, True, 5,
              ("{place}路面坑洼破损", "{place}人行道板松动翘起")),
    _Category("drain_blocked", "排水设施堵塞", "component", "water", 8.0, True, 4,
              ("{place}雨水篦子被堵，下雨积水", "{place}下水道堵塞反味")),
    _Category("public_toilet_broken", "公厕设施损坏", "component", "sanitation", 24.0, True, 2,
              ("{place}公厕水龙头损坏", "{place}公厕冲水设施坏了")),
    _Category("fire_hydrant_damaged", "消防栓损坏", "component", "fire", 24.0, True, 2,
              ("{place}消防栓漏水", "{place}消防栓被车辆撞歪")),
    _Category("traffic_signal_fault", "交通信号灯故障", "component", "traffic_police", 4.0,
              False, 2, ("{place}红绿灯不亮", "{place}信号灯一直闪黄灯")),
    _Category("greenery_damaged", "绿地及行道树损毁", "component", "greening", 48.0, True, 3,
              ("{place}行道树被折断", "{place}绿化带被踩踏损毁")),
    _Category("litter_bin_damaged", "垃圾箱破损", "component", "sanitation", 24.0, True, 3,
              ("{place}垃圾桶破损缺盖", "{place}果皮箱损坏")),
    _Category("exposed_rubbish", "暴露垃圾", "event", "sanitation", 4.0, True, 14,
              ("{place}有暴露垃圾未清运", "{place}垃圾堆积发臭", "{place}建筑垃圾乱倒")),
    _Category("dirty_road", "道路不洁", "event", "sanitation", 2.0, True, 9,
              ("{place}路面油污未清扫", "{place}路面有大量泥土")),
    _Category("illegal_advertising", "违规张贴小广告", "event", "city_management", 8.0, True,
              7, ("{place}墙面贴满小广告", "{place}电线杆上有违规小广告")),
    _Category("occupying_road_for_business", "占道经营", "event", "city_management", 4.0,
              True, 10, ("{place}商户占道摆卖", "{place}夜市摊档占用人行道")),
    _Category("illegal_parking", "违章停车", "event", "traffic_police", 2.0, False, 11,
              ("{place}车辆乱停放堵塞通行", "{place}机动车占用人行道停放")),
    _Category("construction_noise", "施工噪声扰民", "event", "housing", 24.0, True, 4,
              ("{place}工地夜间施工噪声扰民", "{place}工地午休时间施工")),
    _Category("unlicensed_business", "无照经营", "event", "market_supervision", 72.0, True,
              3, ("{place}有无照经营的小作坊", "{place}流动摊贩无证售卖")),
    _Category("bike_shed_blocking_way", "私搭车棚占用通道", "event", "city_management", 48.0,
              True, 3, ("{place}私搭电动车棚占用通道", "{place}车棚挡住单元出入口")),
    _Category("fire_lane_blocked", "占用堵塞消防通道", "event", "fire", 4.0, False, 3,
              ("{place}消防通道被车辆堵塞", "{place}杂物堆放堵塞消防通道")),
    _Category("illegal_construction", "违法建设", "event", "city_management", 72.0, True, 3,
              ("{place}楼顶违规加建", "{place}擅自围墙圈地搭建")),
    _Category("food_safety", "食品安全隐患", "event", "market_supervision", 24.0, True, 2,
              ("{place}餐馆后厨卫生条件差", "{place}售卖过期食品")),
    _Category("public_order_noise", "社会生活噪声扰民", "event", "police", 2.0, False, 3,
              ("{place}深夜广场舞音响太吵", "{place}夜宵档深夜喧哗")),
    _Category("fallen_tree", "树木倒伏", "event", "greening", 4.0, False, 1,
              ("{place}大树倒伏阻断道路", "{place}树枝折断悬挂在路上")),
    _Category("waterlogging", "道路积水", "event", "water", 6.0, False, 2,
              ("{place}暴雨后路面积水严重", "{place}低洼路段积水没过脚踝")),
)


# --------------------------------------------------------------------------------------
# Local plane <-> longitude/latitude
# --------------------------------------------------------------------------------------


def _degrees_per_metre(latitude: float) -> tuple[float, float]:
    """Degrees of longitude and latitude per metre at ``latitude`` on the WGS84 ellipsoid.

    Over the 20 km demo the scale error of this tangent-plane approximation stays below
    0.1 %, and below 0.2 % over the 60 km city scale: far below what the demo needs,
    and it keeps the map affine (see module docstring).
    """
    a = 6_378_137.0
    e2 = 6.694379990141e-3
    phi = math.radians(latitude)
    w = 1.0 - e2 * math.sin(phi) ** 2
    meridian_radius = a * (1.0 - e2) / w**1.5
    normal_radius = a / math.sqrt(w)
    lon_per_m = 180.0 / (math.pi * normal_radius * math.cos(phi))
    lat_per_m = 180.0 / (math.pi * meridian_radius)
    return lon_per_m, lat_per_m


_LON_PER_M, _LAT_PER_M = _degrees_per_metre(ORIGIN[1])


def _to_lonlat(geometries: Sequence[BaseGeometry | None]) -> np.ndarray:
    """Map geometries from the local plane to EPSG:4326 with one affine transform."""
    scale = np.array([_LON_PER_M, _LAT_PER_M])
    offset = np.array(ORIGIN)
    array = np.array(list(geometries), dtype=object)
    return shapely.transform(array, lambda xy: xy * scale + offset)


# --------------------------------------------------------------------------------------
# Geometry helpers (local plane, metres)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Busyness:
    """Relative activity (population, traffic, reports) at points of the local plane."""

    cores: tuple[tuple[float, float, float, float], ...]

    @classmethod
    def for_scale(cls, scale: DemoScale) -> _Busyness:
        """URBAN_CORES stretched to the scale's extent (unchanged for the demo)."""
        sx, sy = scale.stretch
        # Widths grow with the geometric mean of the stretch, so round cores stay round.
        widen = math.sqrt(sx * sy)
        return cls(tuple((x * sx, y * sy, s * widen, w) for x, y, s, w in URBAN_CORES))

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        value = np.full(np.shape(x), BASE_BUSYNESS, dtype=float)
        for cx, cy, sigma, weight in self.cores:
            value += weight * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2.0 * sigma**2))
        return value


class _Weighted:
    """Draws an index with probability ``p[i]``, exactly as ``rng.choice(len(p), p=p)``.

    ``Generator.choice`` checks ``p`` and rebuilds its cumulative sum on every call,
    which dominates when 100,000 issues each pick one of 7,000 compounds. This builds the
    cumulative sum once, the way numpy does, and consumes the same single
    ``rng.random()`` per draw, so the draws and everything drawn after them from the
    same stream stay what ``choice`` gave (the demo city must not change).
    """

    def __init__(self, p: np.ndarray) -> None:
        cdf = p.cumsum()
        cdf /= cdf[-1]
        self._cdf = cdf

    def draw(self, rng: np.random.Generator) -> int:
        return int(self._cdf.searchsorted(rng.random(), side="right"))


def _as_multipolygon(geometry: BaseGeometry) -> MultiPolygon:
    """Valid MultiPolygon holding only the polygonal parts of ``geometry``."""
    if not geometry.is_valid:
        geometry = shapely.make_valid(geometry)
    polygons: list[Polygon] = []
    for part in shapely.get_parts(geometry):
        if isinstance(part, Polygon):
            polygons.append(part)
        elif isinstance(part, MultiPolygon):
            polygons.extend(part.geoms)
        elif part.geom_type == "GeometryCollection":
            polygons.extend(_as_multipolygon(part).geoms)
    return MultiPolygon([p for p in polygons if p.area > 0.0])


def _sample_points(
    rng: np.random.Generator, area: BaseGeometry, count: int, busyness: _Busyness | None
) -> np.ndarray:
    """``count`` random points inside ``area``; denser where busier unless ``busyness`` is None."""
    minx, miny, maxx, maxy = area.bounds
    shapely.prepare(area)
    batches: list[np.ndarray] = []
    found = 0
    while found < count:
        size = max(64, 4 * (count - found))
        x = rng.uniform(minx, maxx, size)
        y = rng.uniform(miny, maxy, size)
        keep = shapely.contains_xy(area, x, y)
        if busyness is not None:
            keep &= rng.random(size) * MAX_BUSYNESS < busyness(x, y)
        batch = np.column_stack([x[keep], y[keep]])
        batches.append(batch)
        found += len(batch)
    return np.concatenate(batches)[:count]


def _nearest_seed(points: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    # Per axis rather than ``((p - s) ** 2).sum(axis=2)``: numpy reduces a length-2 last
    # axis slowly, and this is the k-means' inner loop (dx² + dy² is the same sum, bit
    # for bit).
    dx = points[:, 0, None] - seeds[None, :, 0]
    dy = points[:, 1, None] - seeds[None, :, 1]
    return (dx * dx + dy * dy).argmin(axis=1)


def _centroidal_seeds(
    rng: np.random.Generator, samples: np.ndarray, count: int, iterations: int = 20
) -> np.ndarray:
    """k-means over the samples: the result is a centroidal Voronoi seed set.

    Cells of such seeds are compact and similar in sample mass, so busy areas get
    small cells. Each seed is finally snapped to a sample of its own cluster: a mean
    can fall outside a concave parent, a sample never does.
    """
    seeds = samples[rng.choice(len(samples), size=count, replace=False)].copy()
    for _ in range(iterations):
        labels = _nearest_seed(samples, seeds)
        # All cluster means at once. bincount adds each cluster's samples one by one in
        # their original order, as ``samples[labels == k].mean(axis=0)`` does row by row,
        # so the seeds come out the same to the last bit (the demo city must not change).
        sizes = np.bincount(labels, minlength=count)
        sums = np.column_stack(
            [np.bincount(labels, weights=samples[:, axis], minlength=count) for axis in (0, 1)]
        )
        filled = sizes > 0  # an empty cluster keeps its seed
        seeds[filled] = sums[filled] / sizes[filled, None]
    labels = _nearest_seed(samples, seeds)
    used: set[int] = set()
    for k in range(count):
        candidates = np.flatnonzero(labels == k)
        if len(candidates) == 0:  # empty cluster: take the closest unused sample instead
            candidates = np.arange(len(samples))
        order = candidates[((samples[candidates] - seeds[k]) ** 2).sum(axis=1).argsort()]
        pick = next(int(i) for i in order if int(i) not in used)
        used.add(pick)
        seeds[k] = samples[pick]
    return seeds


def _voronoi_children(parent: MultiPolygon, seeds: np.ndarray) -> list[BaseGeometry]:
    """Voronoi cells of ``seeds`` clipped to ``parent``, in the order of the seeds."""
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=parent)
    )
    # GEOS does not promise the cells come out in input order: pair them by containment.
    inside = np.array([shapely.contains_xy(cell, seeds[:, 0], seeds[:, 1]) for cell in cells])
    cell_of_seed = inside.argmax(axis=0)
    return [shapely.intersection(cells[i], parent) for i in cell_of_seed]


def _merge_stray_fragments(
    children: list[BaseGeometry], seeds: np.ndarray
) -> list[MultiPolygon]:
    """Keep each child's part holding its seed; give other parts to a touching sibling.

    A Voronoi cell crossing a concave bay of the parent is cut into pieces; the pieces
    away from the seed would make odd multi-part grids, so each moves to the sibling
    it shares the longest border with (found as overlap area with a 1 cm buffer).
    """
    parts = [list(_as_multipolygon(child).geoms) for child in children]
    kept: list[list[Polygon]] = []
    strays: list[tuple[int, Polygon]] = []
    for index, polygons in enumerate(parts):
        home = Point(seeds[index])
        main = max(polygons, key=lambda p: (p.covers(home), p.area))
        kept.append([main])
        strays.extend((index, p) for p in polygons if p is not main)
    for owner, fragment in strays:
        probe = fragment.buffer(0.01)
        contact = [
            0.0 if i == owner else shapely.intersection(probe, MultiPolygon(k)).area
            for i, k in enumerate(kept)
        ]
        # A fragment touching no sibling's main part stays home rather than float off.
        target = int(np.argmax(contact)) if max(contact) > 0.0 else owner
        kept[target].append(fragment)
    return [
        _as_multipolygon(shapely.union_all(polygons) if len(polygons) > 1 else polygons[0])
        for polygons in kept
    ]


def _split(
    rng: np.random.Generator,
    parent: MultiPolygon,
    count: int,
    busyness: _Busyness,
    wiggle: float = 0.0,
) -> list[MultiPolygon]:
    """Tile ``parent`` with ``count`` irregular, compact children.

    ``wiggle`` > 0 gives meandering borders (see ``_split_wiggly``); 0 gives straight
    Voronoi edges, which suit communities and grids bounded by streets.
    """
    if count == 1:
        return [parent]
    samples = _sample_points(rng, parent, 150 * count, busyness)
    seeds = _centroidal_seeds(rng, samples, count)
    if wiggle > 0.0:
        return _split_wiggly(rng, parent, seeds, wiggle)
    return _merge_stray_fragments(_voronoi_children(parent, seeds), seeds)


def _wiggle_field(
    rng: np.random.Generator, count: int, amplitude: float, wave_scale: float = 1.0
) -> Callable[[np.ndarray, int], np.ndarray]:
    """Smooth random offsets (metres) per seed: a few plane waves 2-6 km long.

    ``wave_scale`` stretches the waves with the city, so that a larger city's district
    borders meander like the demo's instead of wriggling.
    """
    waves = 4
    directions = rng.uniform(0.0, 2.0 * math.pi, (count, waves))
    lengths = rng.uniform(2_000.0, 6_000.0, (count, waves)) * wave_scale
    phases = rng.uniform(0.0, 2.0 * math.pi, (count, waves))

    def offset(points: np.ndarray, k: int) -> np.ndarray:
        along = np.outer(points[:, 0], np.cos(directions[k])) + np.outer(
            points[:, 1], np.sin(directions[k])
        )
        return amplitude / math.sqrt(waves) * np.sin(
            2.0 * math.pi * along / lengths[k] + phases[k]
        ).sum(axis=1)

    return offset


def _split_wiggly(
    rng: np.random.Generator,
    parent: MultiPolygon,
    seeds: np.ndarray,
    wiggle: float,
    cells_per_child: int = 60,
    wave_scale: float = 1.0,
) -> list[MultiPolygon]:
    """Tile ``parent`` around ``seeds`` with meandering borders, for the coarse levels.

    Plain Voronoi borders of two or three seeds are long straight lines, which look
    nothing like district boundaries (those follow rivers, ridges and old roads). So the
    parent is first cut into many small Voronoi cells, each cell goes to the seed that
    is nearest once a smooth random offset is added to the distances, and the cells of
    each seed are dissolved. The small cells tile the parent and share their vertices
    exactly, so the dissolved children tile it too.
    """
    count = len(seeds)
    fine_sites = _sample_points(rng, parent, cells_per_child * count, None)
    cells = _voronoi_children(parent, fine_sites)
    offset = _wiggle_field(rng, count, wiggle, wave_scale)
    distance = np.sqrt(((fine_sites[:, None, :] - seeds[None, :, :]) ** 2).sum(axis=2))
    distance += np.column_stack([offset(fine_sites, k) for k in range(count)])
    owner = distance.argmin(axis=1)
    for k, (x, y) in enumerate(seeds):  # the cell under a seed always stays with it
        home = next(i for i, cell in enumerate(cells) if shapely.intersects_xy(cell, x, y))
        owner[home] = k
    groups = [
        shapely.union_all([cells[i] for i in np.flatnonzero(owner == k)]) for k in range(count)
    ]
    return _merge_stray_fragments(groups, seeds)


def _reading_order(parent: BaseGeometry, children: Sequence[BaseGeometry]) -> list[int]:
    """Indices of ``children`` in numbering order: north to south, then west to east.

    Rows are horizontal bands as tall as a typical child (the square root of the
    parent's area divided by the number of children), counted down from the parent's
    northern edge. A child belongs to the band holding its centroid; inside a band,
    children run west to east by centroid longitude. Bands of a typical child's height
    keep each row one child deep, so the numbers read like lines of text on the map.
    """
    band = math.sqrt(parent.area / max(len(children), 1))
    top = parent.bounds[3]
    centroids = [child.centroid for child in children]
    return sorted(
        range(len(children)),
        key=lambda i: (math.floor((top - centroids[i].y) / band), centroids[i].x, i),
    )


def _apportion(total: int, weights: np.ndarray, minimum: int) -> list[int]:
    """Split ``total`` into integer shares proportional to ``weights`` (largest remainder)."""
    spare = total - minimum * len(weights)
    if spare < 0:
        raise ValueError("total too small for the minimum share")
    exact = spare * weights / weights.sum()
    shares = np.floor(exact).astype(int)
    leftover = spare - int(shares.sum())
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in by_remainder[:leftover]:
        shares[i] += 1
    return [int(minimum + s) for s in shares]


def _population(areas: Sequence[BaseGeometry], busyness: _Busyness) -> np.ndarray:
    """Busyness integrated over each area, on a 100 m lattice (relative units)."""
    minx, miny, maxx, maxy = shapely.total_bounds(np.array(list(areas), dtype=object))
    xs, ys = np.meshgrid(np.arange(minx, maxx, 100.0), np.arange(miny, maxy, 100.0))
    x, y = xs.ravel(), ys.ravel()
    tree = shapely.STRtree(list(areas))
    point_index, area_index = tree.query(shapely.points(x, y), predicate="within")
    weights = np.bincount(area_index, weights=busyness(x, y)[point_index], minlength=len(areas))
    return np.maximum(weights, 1e-6)


def _rectangle_corners(
    centre: tuple[float, float], width: float, depth: float, angle_deg: float
) -> np.ndarray:
    """Corners of a ``width`` x ``depth`` rectangle around ``centre``, rotated by ``angle_deg``."""
    half = np.array([[-width, -depth], [width, -depth], [width, depth], [-width, depth]]) / 2
    theta = math.radians(angle_deg)
    rotation = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    return half @ rotation + np.array(centre)


# --------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------


class _NameBook:
    """Draws Chinese-looking names, never handing out the same one twice."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._stems = [PLACE_STEMS[i] for i in rng.permutation(len(PLACE_STEMS))]
        self._more_stems: list[str] | None = None
        self._used: set[str] = set()

    def place_stem(self) -> str:
        """A stem for a sub-district or community, unique across both levels."""
        if self._stems:
            return self._stems.pop(0)
        # Only scales with more than len(PLACE_STEMS) areas get here (the demo never
        # does, so its draws are untouched): go on with two-character stems composed like
        # compound names, shuffled once and handed out without replacement.
        if self._more_stems is None:
            known = set(PLACE_STEMS)
            composed = [
                f"{a}{b}" for a in NAME_FIRST for b in NAME_SECOND
                if a != b and f"{a}{b}" not in known
            ]
            self._more_stems = [composed[i] for i in self._rng.permutation(len(composed))]
        if not self._more_stems:
            raise ValueError("ran out of sub-district and community names for this scale")
        return self._more_stems.pop()

    def composed(self, suffixes: Sequence[str]) -> str:
        """A fresh two-character stem plus one of ``suffixes`` (compounds, roads, shops)."""
        while True:
            first = NAME_FIRST[self._rng.integers(len(NAME_FIRST))]
            second = NAME_SECOND[self._rng.integers(len(NAME_SECOND))]
            suffix = suffixes[self._rng.integers(len(suffixes))]
            name = f"{first}{second}{suffix}"
            if first != second and name not in self._used:
                self._used.add(name)
                return name


def _chinese_number(n: int) -> str:
    """Chinese numeral for 1..99 (第二十一中学 and the like)."""
    if n <= 10:
        return CHINESE_NUMERALS[n]
    tens, ones = divmod(n, 10)
    head = "" if tens == 1 else CHINESE_NUMERALS[tens]
    return f"{head}十{CHINESE_NUMERALS[ones] if ones else ''}"


# --------------------------------------------------------------------------------------
# Area hierarchy
# --------------------------------------------------------------------------------------


@dataclass
class _Area:
    code: str
    name: str
    parent_code: str | None
    stem: str  # name without the level suffix, used to name children and institutions
    geometry: MultiPolygon  # local plane, metres


def _city_outline(rng: np.random.Generator, scale: DemoScale) -> MultiPolygon:
    """An irregular, roughly elliptical city limit scaled to the scale's extent."""
    theta = np.linspace(0.0, 2.0 * math.pi, 120, endpoint=False)
    radius = np.ones_like(theta)
    for k in range(2, 7):
        radius += rng.uniform(0.02, 0.07) / k * 3 * np.sin(k * theta + rng.uniform(0, 2 * math.pi))
    x = radius * np.cos(theta)
    y = radius * np.sin(theta)
    x = (x - (x.max() + x.min()) / 2) / (x.max() - x.min()) * scale.width_m
    y = (y - (y.max() + y.min()) / 2) / (y.max() - y.min()) * scale.height_m
    return _as_multipolygon(Polygon(np.column_stack([x, y])))


def _build_districts(
    rng: np.random.Generator, outline: MultiPolygon, scale: DemoScale
) -> list[_Area]:
    sx, sy = scale.stretch
    sites = np.array([site for _, _, site in DISTRICTS]) * np.array([sx, sy])
    stretch = math.sqrt(sx * sy)
    pieces = _split_wiggly(rng, outline, sites, wiggle=900.0 * stretch, wave_scale=stretch)
    return [
        _Area(code, name, None, name.removesuffix("区"), piece)
        for (code, name, _), piece in zip(DISTRICTS, pieces, strict=True)
    ]


def _subdivide(
    rng: np.random.Generator,
    parents: Sequence[_Area],
    counts: Sequence[int],
    name_child: Callable[[_Area, int], tuple[str, str]],
    busyness: _Busyness,
    wiggle: float = 0.0,
) -> list[_Area]:
    """Split every parent into its count of children, coded and named in reading order."""
    children: list[_Area] = []
    for parent, count in zip(parents, counts, strict=True):
        if count > 999:  # the code scheme numbers children with 3 digits
            raise ValueError(f"{count} children for {parent.code}: at most 999 fit the code")
        pieces = _split(rng, parent.geometry, count, busyness, wiggle)
        for seq, index in enumerate(_reading_order(parent.geometry, pieces), start=1):
            stem, name = name_child(parent, seq)
            code = f"{parent.code}{seq:03d}"
            children.append(_Area(code, name, parent.code, stem, pieces[index]))
    return children


def _build_hierarchy(
    streams: dict[str, np.random.Generator],
    names: _NameBook,
    scale: DemoScale,
    busyness: _Busyness,
) -> tuple[list[_Area], list[_Area], list[_Area], list[_Area]]:
    outline = _city_outline(streams["outline"], scale)
    districts = _build_districts(streams["outline"], outline, scale)

    def name_subdistrict(_: _Area, __: int) -> tuple[str, str]:
        stem = names.place_stem()
        return stem, f"{stem}街道"

    def name_community(_: _Area, __: int) -> tuple[str, str]:
        stem = names.place_stem()
        return stem, f"{stem}社区"

    def name_grid(community: _Area, seq: int) -> tuple[str, str]:
        return community.stem, f"{community.stem}社区第{seq}网格"

    subdistricts = _subdivide(
        streams["subdistricts"],
        districts,
        list(scale.subdistricts_per_district),
        name_subdistrict,
        busyness,
        wiggle=500.0,
    )
    community_counts = _apportion(
        scale.community_count,
        _population([s.geometry for s in subdistricts], busyness),
        scale.min_communities_per_subdistrict,
    )
    communities = _subdivide(
        streams["communities"], subdistricts, community_counts, name_community, busyness
    )
    # Grids follow population, not area: a grid worker looks after a few hundred
    # households, so dense central communities get more (and smaller) grids.
    grid_counts = _apportion(
        scale.grid_count,
        _population([c.geometry for c in communities], busyness),
        scale.min_grids_per_community,
    )
    grids = _subdivide(streams["grids"], communities, grid_counts, name_grid, busyness)
    return districts, subdistricts, communities, grids


# --------------------------------------------------------------------------------------
# Occupancy: where compounds and facility footprints already sit
# --------------------------------------------------------------------------------------


@dataclass
class _Ground:
    """The grids with what has been built in each, for placing things without overlap."""

    grids: list[_Area]
    busyness: _Busyness
    tree: shapely.STRtree = field(init=False)
    built: dict[int, list[Polygon]] = field(default_factory=dict)
    marked: dict[int, list[Point]] = field(default_factory=dict)  # point facilities
    # Grid outlines, kept once computed: grid_at runs for every issue and facility.
    edges: dict[int, BaseGeometry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tree = shapely.STRtree([g.geometry for g in self.grids])
        for grid in self.grids:
            shapely.prepare(grid.geometry)

    def _edge(self, index: int) -> BaseGeometry:
        edge = self.edges.get(index)
        if edge is None:
            edge = self.edges[index] = self.grids[index].geometry.boundary
        return edge

    def grid_at(self, x: float, y: float) -> int | None:
        """Index of the grid strictly containing the point, at least 5 cm from its edge."""
        point = Point(x, y)
        hits = self.tree.query(point, predicate="within")
        if len(hits) != 1:
            return None
        index = int(hits[0])
        if self._edge(index).distance(point) < 0.05:
            return None  # too close to call once converted to degrees
        return index

    def grids_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``grid_at`` for many points at once, with -1 for None."""
        points = shapely.points(x, y)
        point_index, grid_index = self.tree.query(points, predicate="within")
        single = np.bincount(point_index, minlength=len(points))[point_index] == 1
        found = np.full(len(points), -1, dtype=np.int64)
        found[point_index[single]] = grid_index[single]
        inside = np.flatnonzero(found >= 0)
        edges = np.array([self._edge(int(i)) for i in found[inside]], dtype=object)
        found[inside[shapely.distance(edges, points[inside]) < 0.05]] = -1
        return found

    def is_free(self, index: int, footprint: BaseGeometry, clearance: float) -> bool:
        halo = footprint.buffer(clearance)
        if not self.grids[index].geometry.contains(halo):
            return False
        if any(halo.intersects(other) for other in self.built.get(index, [])):
            return False
        return not any(halo.intersects(point) for point in self.marked.get(index, []))

    def build(self, index: int, footprint: Polygon) -> None:
        self.built.setdefault(index, []).append(footprint)

    def mark(self, index: int, point: Point) -> None:
        """Record a point facility so later footprints keep clear of it."""
        self.marked.setdefault(index, []).append(point)

    def place_rectangle(
        self,
        rng: np.random.Generator,
        index: int,
        width: float,
        depth: float,
        angle: float,
        attempts: int = 25,
    ) -> Polygon | None:
        """Try to fit a rectangle wholly inside grid ``index``, clear of what is built."""
        grid = self.grids[index].geometry
        for _ in range(attempts):
            x, y = _sample_points(rng, grid, 1, None)[0]
            corners = _rectangle_corners((x, y), width, depth, angle)
            # Most tries end here: a corner outside the grid settles it before the
            # polygon and its costly rounded halo are built (the halo holds the
            # rectangle, so is_free would say no as well).
            if not shapely.contains_xy(grid, corners[:, 0], corners[:, 1]).all():
                continue
            footprint = Polygon(corners)
            if self.is_free(index, footprint, clearance=6.0):
                self.build(index, footprint)
                return footprint
        return None

    def free_point(
        self, rng: np.random.Generator, area: BaseGeometry, near: tuple[float, float] | None = None
    ) -> tuple[float, float, int]:
        """A point in ``area`` (or within 60 m of ``near``) that lies in a grid, off footprints."""
        while True:
            if near is not None:
                x, y = np.array(near) + rng.normal(0.0, 30.0, 2)
                near = None if rng.random() < 0.2 else near  # give up on "near" eventually
            else:
                x, y = _sample_points(rng, area, 1, self.busyness)[0]
            index = self.grid_at(x, y)
            if index is None:
                continue
            point = Point(x, y)
            if not any(point.intersects(b) for b in self.built.get(index, [])):
                return float(x), float(y), index


# --------------------------------------------------------------------------------------
# Compounds
# --------------------------------------------------------------------------------------


@dataclass
class _Compound:
    name: str
    community: _Area
    households: int
    property_manager: str | None
    footprint: Polygon
    code: str = ""


def _property_managers(names: _NameBook) -> list[str]:
    firms = [f"梧州市{names.composed(('',))}物业服务有限公司" for _ in range(14)]
    firms += [f"广西{names.composed(('',))}物业管理有限公司" for _ in range(6)]
    return firms


def _build_compounds(
    rng: np.random.Generator,
    ground: _Ground,
    communities: list[_Area],
    names: _NameBook,
    scale: DemoScale,
) -> list[_Compound]:
    """Place the scale's count of rectangular compounds, each wholly inside one grid.

    Grids are drawn in proportion to their population; a grid that cannot take another
    compound (too small, or full) drops out of the draw.
    """
    by_code = {c.code: c for c in communities}
    # Streets in one community share a heading, so its compounds line up.
    heading = {c.code: float(rng.uniform(-35.0, 35.0)) for c in communities}
    weight = _population([g.geometry for g in ground.grids], ground.busyness)
    managers = _property_managers(names)
    count = np.zeros(len(ground.grids), dtype=int)
    compounds: list[_Compound] = []
    while len(compounds) < scale.compound_count:
        open_weight = np.where(count < MAX_COMPOUNDS_PER_GRID, weight, 0.0)
        index = int(rng.choice(len(weight), p=open_weight / open_weight.sum()))
        grid = ground.grids[index]
        width = 80.0 + 220.0 * rng.beta(2.0, 3.0)
        footprint = None
        while footprint is None and width >= 80.0:
            depth = width * rng.uniform(0.55, 1.0)
            angle = heading[grid.parent_code] + rng.normal(0.0, 4.0)
            footprint = ground.place_rectangle(rng, index, width, depth, angle, attempts=8)
            width *= 0.85
        if footprint is None:
            weight[index] = 0.0  # nothing fits any more
            continue
        count[index] += 1
        name = names.composed(scale.compound_suffixes)
        # Old 新村 estates often have no property company (老旧小区 without 物业).
        unmanaged = rng.random() < (0.55 if name.endswith("新村") else 0.1)
        households = int(np.clip(footprint.area * rng.uniform(0.012, 0.04), 100, 3000))
        compounds.append(
            _Compound(
                name=name,
                community=by_code[grid.parent_code],
                households=households,
                property_manager=None if unmanaged else managers[rng.integers(len(managers))],
                footprint=footprint,
            )
        )
    _number_compounds(compounds, communities)
    return compounds


def _number_compounds(compounds: list[_Compound], communities: list[_Area]) -> None:
    by_community: dict[str, list[_Compound]] = {c.code: [] for c in communities}
    for compound in compounds:  # in placement order, which breaks reading-order ties
        by_community[compound.community.code].append(compound)
    for community in communities:
        members = by_community[community.code]
        order = _reading_order(community.geometry, [c.footprint for c in members])
        for seq, index in enumerate(order, start=1):
            members[index].code = f"XQ{community.code}{seq:03d}"


# --------------------------------------------------------------------------------------
# Institutions and shared facilities
# --------------------------------------------------------------------------------------


@dataclass
class _Institution:
    name: str
    kind: str  # government | school | hospital | culture | public_parking | commerce
    x: float
    y: float
    grid: int
    contact: str


@dataclass
class _Facility:
    kind: str
    name: str
    operator: str
    access: str
    capacity: int | None
    shared_spaces: int | None
    fee: str
    contact: str
    opening_hours: str | None
    geometry: BaseGeometry


# Opening hours of institutional car parks: open to the public outside office hours.
GOVERNMENT_PARKING_HOURS = (
    "Mo-Fr 18:00-08:00; Sa,Su,PH 00:00-24:00",
    "Mo-Fr 18:30-07:30; Sa,Su,PH 00:00-24:00",
    "Mo-Fr 19:00-07:00; Sa,Su,PH 00:00-24:00",
    "Mo-Fr 17:30-08:30; Sa,Su,PH 00:00-24:00",
)
SCHOOL_PARKING_HOURS = (
    "Mo-Fr 18:30-07:00; Sa,Su,PH 00:00-24:00",
    "Mo-Fr 19:00-07:00; Sa,Su 00:00-24:00; PH off",
)
CULTURE_PARKING_HOURS = ("Mo 00:00-24:00; Tu-Su 20:30-08:30", "Mo-Su 18:00-08:00")
PUBLIC_PARKING_HOURS = ("24/7", "24/7", "Mo-Su 07:00-22:00")
COMMERCE_PARKING_HOURS = ("Mo-Su 09:00-22:30", "Mo-Su 10:00-22:00", "24/7")
SPORTS_GROUND_HOURS = (
    "Mo-Fr 18:00-21:00; Sa,Su 08:00-20:00; PH off",
    "Mo-Fr 06:00-07:30,18:30-21:30; Sa,Su 07:00-21:00; PH off",
    "Mo-Fr 18:30-21:30; Sa,Su,PH 07:00-21:00",
    "Mo-Fr 17:30-21:00; Sa 08:00-18:00; Su,PH off",
)
TOILET_HOURS = {
    # Chinese offices keep a long lunch break, hence the split weekday hours.
    "government": (
        "Mo-Fr 08:00-12:00,14:30-17:30",
        "Mo-Fr 08:00-18:00",
        "Mo-Su 07:00-22:00",
        "24/7",
    ),
    "school": ("Mo-Fr 18:00-21:00; Sa,Su 08:00-20:00; PH off",),
    "hospital": ("24/7",),
    "culture": ("Tu-Su 09:00-17:00", "Mo-Su 06:00-22:00", "24/7"),
}

DISTRICT_BUREAUS = (
    "人民政府", "发展和改革局", "财政局", "教育局", "民政局", "司法局", "人力资源和社会保障局",
    "自然资源局", "住房和城乡建设局", "水务局", "卫生健康局", "退役军人事务局", "应急管理局",
    "审计局", "统计局", "医疗保障局", "市场监督管理局", "文化体育和旅游局", "农业农村局",
    "商务局", "人民法院", "人民检察院", "政务服务中心", "税务局", "档案馆",
)
CITY_BUREAUS = (
    "人民政府", "公安局", "财政局", "教育局", "自然资源局", "住房和城乡建设局", "城市管理监督局",
    "卫生健康委员会", "生态环境局", "交通运输局", "政务服务中心", "人民检察院",
)
CITY_HOSPITALS = (
    "梧州市人民医院", "梧州市中医医院", "梧州市妇幼保健院", "梧州市第三人民医院",
    "梧州市口腔医院", "梧州市中西医结合医院",
)
CITY_CULTURE = (
    "梧州市图书馆", "梧州市博物馆", "梧州市文化馆", "梧州市体育中心", "梧州市科技馆",
    "梧州市青少年活动中心",
)
DISTRICT_CULTURE = ("图书馆", "文化馆", "体育馆")
COMMERCE_KINDS = ("广场", "购物中心", "大酒店", "超市", "商业街", "农贸市场")
PUBLIC_PARKING_OPERATOR = "梧州市城市停车管理有限公司"
MIDDLE_SCHOOL_COUNT = 20
PRIMARY_SCHOOL_COUNT = 40
SCHOOLS_WITH_PARKING = 45
PUBLIC_PARKING_COUNT = 80
COMMERCE_COUNT = 50
PARK_COUNT = 3


def _phone(rng: np.random.Generator) -> str:
    """A made-up Wuzhou landline (area code 0774)."""
    return f"0774-{int(rng.integers(2_000_000, 7_000_000))}"


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


class _FacilityBuilder:
    """Sites institutions and derives their car parks, sports grounds and toilets."""

    def __init__(
        self,
        rng: np.random.Generator,
        ground: _Ground,
        names: _NameBook,
        districts: list[_Area],
        subdistricts: list[_Area],
        communities: list[_Area],
        roads: dict[str, list[str]],
    ) -> None:
        self.rng = rng
        self.ground = ground
        self.names = names
        self.districts = districts
        self.subdistricts = subdistricts
        self.communities = communities
        self.roads = roads
        self.city = _as_multipolygon(shapely.union_all([d.geometry for d in districts]))
        self.car_parks: list[_Facility] = []
        self.sports_grounds: list[_Facility] = []
        self.toilets: list[_Facility] = []

    # -- institutions ----------------------------------------------------------------

    def institution(self, name: str, kind: str, area: BaseGeometry) -> _Institution:
        x, y, grid = self.ground.free_point(self.rng, area)
        return _Institution(name, kind, x, y, grid, _phone(self.rng))

    def government_units(self) -> list[_Institution]:
        units = [self.institution(f"梧州市{b}", "government", self.city) for b in CITY_BUREAUS]
        for district in self.districts:
            # Sited by busyness, so most bureaus end up in the district's built-up core.
            units += [
                self.institution(f"{district.name}{b}", "government", district.geometry)
                for b in DISTRICT_BUREAUS
            ]
        units += [
            self.institution(f"{s.name}办事处", "government", s.geometry) for s in self.subdistricts
        ]
        return units

    def schools(self) -> list[tuple[_Institution, BaseGeometry]]:
        """Schools with the area they must stand in (moved within it if crowded out)."""
        middle = [
            (self.institution(f"梧州市第{_chinese_number(n)}中学", "school", self.city), self.city)
            for n in range(1, MIDDLE_SCHOOL_COUNT + 1)
        ]
        # Primary schools carry the name of the community they stand in.
        picks = self.rng.choice(len(self.communities), PRIMARY_SCHOOL_COUNT, replace=False)
        primary = [
            (self.institution(f"{c.stem}小学", "school", c.geometry), c.geometry)
            for c in (self.communities[int(i)] for i in sorted(picks))
        ]
        return middle + primary

    def hospitals(self) -> list[_Institution]:
        names = list(CITY_HOSPITALS) + [f"{d.name}人民医院" for d in self.districts]
        names += [f"{s.name}社区卫生服务中心" for s in self.subdistricts[:3]]
        return [self.institution(n, "hospital", self.city) for n in names]

    def cultural_venues(self) -> list[_Institution]:
        names = list(CITY_CULTURE)
        names += [f"{d.name}{v}" for d in self.districts for v in DISTRICT_CULTURE]
        names += [f"{self.names.composed(('',))}公园管理处" for _ in range(PARK_COUNT)]
        return [self.institution(n, "culture", self.city) for n in names]

    # -- facilities ------------------------------------------------------------------

    def car_park(
        self,
        owner: _Institution,
        name: str,
        access: str,
        capacity_range: tuple[int, int],
        share_range: tuple[float, float] | None,
        fee_probability: float,
        hours: Sequence[str],
        footprint: Polygon | None = None,
    ) -> None:
        rng = self.rng
        capacity: int | None = int(rng.integers(*capacity_range))
        shared: int | None = None
        if share_range is not None:
            shared = max(5, int(capacity * rng.uniform(*share_range)))
        if footprint is None and rng.random() < 0.08:
            capacity = None  # not surveyed yet; the shared quota is still announced
        geometry = footprint
        if geometry is None:
            geometry = self.facility_point(owner)
        hours_value: str | None = _pick(rng, hours)
        if owner.kind == "commerce" and rng.random() < 0.1:
            hours_value = None  # unknown hours are normal in OSM data
        self.car_parks.append(
            _Facility(
                kind="car_park",
                name=name,
                operator=owner.name,
                access=access,
                capacity=capacity,
                shared_spaces=shared,
                fee="yes" if rng.random() < fee_probability else "no",
                contact=owner.contact,
                opening_hours=hours_value,
                geometry=geometry,
            )
        )

    def facility_point(self, owner: _Institution) -> Point:
        """A spot next to the owner's site, off any footprint, kept clear from now on."""
        x, y, grid = self.ground.free_point(self.rng, self.city, near=(owner.x, owner.y))
        point = Point(x, y)
        self.ground.mark(grid, point)
        return point

    def toilet(self, owner: _Institution) -> None:
        point = self.facility_point(owner)
        self.toilets.append(
            _Facility(
                kind="toilet",
                name=f"{owner.name}对外开放厕所",
                operator=owner.name,
                access="yes",
                capacity=None,
                shared_spaces=None,
                fee="no",
                contact=owner.contact,
                opening_hours=_pick(self.rng, TOILET_HOURS[owner.kind]),
                geometry=point,
            )
        )

    def sports_ground(self, school: _Institution, area: BaseGeometry) -> _Institution:
        """Give the school a pitch; move the school if its grid has no room for one."""
        rng = self.rng
        while True:
            # From a five-a-side court up to a 400 m track with its infield.
            width = rng.uniform(60.0, 175.0)
            depth = width * rng.uniform(0.5, 0.65)
            footprint = self.ground.place_rectangle(
                rng, school.grid, width, depth, rng.uniform(-30.0, 30.0)
            )
            if footprint is not None:
                break
            school = self.institution(school.name, school.kind, area)
        self.sports_grounds.append(
            _Facility(
                kind="sports_ground",
                name=f"{school.name}运动场",
                operator=school.name,
                access="permissive",
                capacity=None,
                shared_spaces=None,
                fee="no",
                contact=school.contact,
                opening_hours=_pick(rng, SPORTS_GROUND_HOURS),
                geometry=footprint,
            )
        )
        return school

    def public_car_parks(self) -> None:
        """Municipal surface car parks, drawn as polygons sized by capacity."""
        used_roads: dict[str, int] = {}
        made = 0
        while made < PUBLIC_PARKING_COUNT:
            x, y, grid = self.ground.free_point(self.rng, self.city)
            capacity = int(self.rng.integers(30, 400))
            side = math.sqrt(capacity * 28.0)  # ~28 m² per space with aisles
            footprint = self.ground.place_rectangle(
                self.rng, grid, side * 1.3, side / 1.3, self.rng.uniform(-30.0, 30.0), attempts=10
            )
            if footprint is None:
                continue
            subdistrict = self.ground.grids[grid].code[:9]
            road = _pick(self.rng, self.roads[subdistrict])
            used_roads[road] = used_roads.get(road, 0) + 1
            ordinal = used_roads[road]
            prefix = road if ordinal == 1 else f"{road}{_chinese_number(ordinal)}号"
            owner = _Institution(
                PUBLIC_PARKING_OPERATOR, "public_parking", x, y, grid, _phone(self.rng)
            )
            self.car_park(
                owner, f"{prefix}公共停车场", "yes", (capacity, capacity + 1), None, 0.7,
                PUBLIC_PARKING_HOURS, footprint=footprint,
            )
            made += 1

    def build(self) -> list[_Facility]:
        rng = self.rng
        government = self.government_units()
        for unit in government:
            self.car_park(unit, f"{unit.name}停车场", "permissive", (20, 150), (0.3, 0.7), 0.2,
                          GOVERNMENT_PARKING_HOURS)
        schools = [self.sports_ground(school, area) for school, area in self.schools()]
        for index in sorted(rng.choice(len(schools), SCHOOLS_WITH_PARKING, replace=False)):
            school = schools[int(index)]
            self.car_park(school, f"{school.name}停车场", "permissive", (20, 80), (0.5, 0.9), 0.0,
                          SCHOOL_PARKING_HOURS)
        hospitals = self.hospitals()
        for hospital in hospitals:
            self.car_park(hospital, f"{hospital.name}停车场", "customers", (100, 600), (0.1, 0.2),
                          1.0, ("24/7",))
        venues = self.cultural_venues()
        for venue in venues:
            self.car_park(venue, f"{venue.name}停车场", "permissive", (40, 300), (0.3, 0.6), 0.3,
                          CULTURE_PARKING_HOURS)
        self.public_car_parks()
        for _ in range(COMMERCE_COUNT):
            shop = self.institution(self.names.composed(COMMERCE_KINDS), "commerce", self.city)
            self.car_park(shop, f"{shop.name}停车场", "customers", (80, 800), None, 0.8,
                          COMMERCE_PARKING_HOURS)
        # Toilets opened to the public: DOMAIN.md cites 67 in one county.
        for owners, count in ((government, 35), (schools, 10), (hospitals, 10), (venues, 15)):
            for index in sorted(rng.choice(len(owners), count, replace=False)):
                self.toilet(owners[int(index)])
        return self.car_parks + self.sports_grounds + self.toilets


def _road_names(names: _NameBook, subdistricts: list[_Area]) -> dict[str, list[str]]:
    """Twelve road names per sub-district, unique across the city."""
    return {s.code: [names.composed(ROAD_SUFFIXES) for _ in range(12)] for s in subdistricts}


# --------------------------------------------------------------------------------------
# Issues and their histories
# --------------------------------------------------------------------------------------

REPORT_SOURCES = (("resident", 0.55), ("grid_worker", 0.30), ("hotline", 0.15))
REPORT_NOTES = {
    "resident": ("居民通过随手拍小程序上报", "居民App上报并附现场照片"),
    "grid_worker": ("网格员日常巡查发现", "网格员巡查上报"),
    "hotline": ("12345热线工单转办", "市民热线来电反映"),
}
REJECT_NOTES = ("重复上报，已合并处理", "不属于城市管理受理范围", "现场核实无此问题",
                "上报信息不全，无法定位")
ACCEPT_NOTES = ("符合立案条件，予以立案", "核实属实，立案")
START_NOTES = ("已到达现场开始处置", "已安排人员处置")
RESPOND_NOTES = ("已处置完毕，上传处置后照片", "问题已整改到位")
FAILED_NOTES = ("现场核查未处置到位，退回重办", "核查发现问题反弹，退回")
VERIFY_NOTES = ("现场核查通过", "复核已整改")
CLOSE_NOTES = ("结案", "处置完毕，予以结案")
# Categories that happen on the street even when reported next to a compound.
ROADSIDE_CATEGORIES = frozenset(
    {"traffic_signal_fault", "road_damaged", "dirty_road", "fallen_tree", "waterlogging"}
)
COMPOUND_SPOTS = ("{c}门口", "{c}东门", "{c}北侧围墙外", "{c}{n}栋楼下", "{c}内部道路")
ROAD_SPOTS = ("{r}", "{r}与{r2}交叉口", "{r}公交站旁", "{r}{n}号附近")
# Hourly weights of reports (0..23 h local): patrols by day, residents also evenings.
HOURLY_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.3, 0.3, 0.6, 1.5, 3, 6, 8, 8, 7, 5, 5, 7, 8, 8, 7, 5, 5, 5, 4, 3, 2],
    dtype=float,
)
REJECT_PROBABILITY = 0.07
VERIFICATION_FAILURE_PROBABILITY = 0.08
STALL_PROBABILITY = 0.10
STUCK_SHARE = 0.3  # of stalled cases, those still stuck at the reference time


@dataclass
class _Event:
    at: int  # epoch seconds
    action: str
    from_status: str | None
    to_status: str
    actor: str
    note: str


def _seconds(rng: np.random.Generator, median_hours: float, spread: float = 0.6) -> int:
    """A log-normal duration in whole seconds, never under a minute."""
    return max(60, int(median_hours * 3600.0 * rng.lognormal(0.0, spread)))


def _lifecycle(
    rng: np.random.Generator,
    category: _Category,
    created: int,
    source: str,
    grid_code: str,
    dispatcher: str,
    handler: str,
    handler_name: str,
) -> list[_Event]:
    """The full history of one issue, as it would run without a cut-off."""
    reporter_actor = {"resident": "resident", "grid_worker": f"grid_worker:{grid_code}",
                      "hotline": "hotline:12345"}[source]
    events = [_Event(created, "report", None, "reported", reporter_actor,
                     _pick(rng, REPORT_NOTES[source]))]
    # Wall-clock stretch: working-hour limits run only ~9 of 24 hours on weekdays.
    stretch = 2.2 if category.working_hours else 1.0
    limit = category.time_limit_hours * stretch
    # A few cases sit untouched at one step (waiting for parts, passed between units);
    # these become the overdue cases that dispatchers escalate. Some never move again
    # before "now", which keeps a backlog in every open state.
    # Steps are numbered 1 (accept/reject) to 6 (close); 0 marks steps that never stall.
    stall_step = int(rng.integers(1, 7)) if rng.random() < STALL_PROBABILITY else None
    stuck = rng.random() < STUCK_SHARE
    stall_seconds = (HISTORY_DAYS + 1 if stuck else rng.uniform(3.0, 60.0)) * 86400
    t = created

    def step(index: int, median_hours: float) -> int:
        """Advance the clock past one step and return the step's time."""
        nonlocal t
        t += _seconds(rng, median_hours)
        if index == stall_step:
            t += int(stall_seconds)
        return t

    if rng.random() < REJECT_PROBABILITY:
        events.append(_Event(step(1, 0.8), "reject", "reported", "rejected", dispatcher,
                             _pick(rng, REJECT_NOTES)))
        return events
    events.append(_Event(step(1, 0.5), "accept", "reported", "accepted", dispatcher,
                         _pick(rng, ACCEPT_NOTES)))
    events.append(_Event(step(2, 0.3), "dispatch", "accepted", "dispatched", dispatcher,
                         f"派遣至{handler_name}"))
    events.append(_Event(step(3, 0.15 * limit), "start", "dispatched", "in_progress",
                         f"handler:{handler}", _pick(rng, START_NOTES)))
    # About one case in eight overruns its limit.
    overrun = rng.uniform(1.5, 4.0) if rng.random() < 0.12 else rng.uniform(0.2, 0.8)
    events.append(_Event(step(4, overrun * limit), "respond", "in_progress", "responded",
                         f"handler:{handler}", _pick(rng, RESPOND_NOTES)))
    verifier = f"grid_worker:{grid_code}"
    if rng.random() < VERIFICATION_FAILURE_PROBABILITY:
        events.append(_Event(step(0, 3.0), "verification_failed", "responded", "in_progress",
                             verifier, _pick(rng, FAILED_NOTES)))
        events.append(_Event(step(0, 0.5 * limit), "respond", "in_progress", "responded",
                             f"handler:{handler}", _pick(rng, RESPOND_NOTES)))
    events.append(_Event(step(5, 3.0), "verify", "responded", "verified", verifier,
                         _pick(rng, VERIFY_NOTES)))
    events.append(_Event(step(6, 6.0), "close", "verified", "closed", dispatcher,
                         _pick(rng, CLOSE_NOTES)))
    return events


def _masked_mobile(rng: np.random.Generator) -> str:
    prefix = _pick(rng, ("133", "135", "136", "138", "139", "150", "158", "177", "186", "189"))
    return f"{prefix}****{int(rng.integers(0, 10_000)):04d}"


def _issue_points(
    rng: np.random.Generator,
    ground: _Ground,
    compounds: list[_Compound],
    city: BaseGeometry,
    count: int,
) -> list[tuple[float, float, int, _Compound | None]]:
    """Report locations: most around compounds (by households), the rest by busyness."""
    households = np.array([c.households for c in compounds], dtype=float)
    by_households = _Weighted(households / households.sum())
    centres = [np.array([c.x, c.y]) for c in (f.footprint.centroid for f in compounds)]

    def spot() -> tuple[float, float, int]:
        """A candidate spot and the index of its compound (-1: none)."""
        if rng.random() < 0.55:
            pick = by_households.draw(rng)
            x, y = centres[pick] + rng.normal(0.0, 70.0, 2)
            return float(x), float(y), pick
        x, y = _sample_points(rng, city, 1, ground.busyness)[0]
        return float(x), float(y), -1

    # A spot in no grid is drawn again. Finding a spot's grid draws no random numbers,
    # so spots are drawn in batches and located with one STRtree query per batch
    # instead of one per spot. The batch that completes the count is drawn a second
    # time from its start, only as far as the last spot used, so the stream ends where
    # a spot-by-spot loop would leave it (the rest of the issue stage depends on that).
    points: list[tuple[float, float, int, _Compound | None]] = []
    while len(points) < count:
        start = rng.bit_generator.state
        spots = [spot() for _ in range(1_024)]
        grids = ground.grids_at(np.array([s[0] for s in spots]), np.array([s[1] for s in spots]))
        for used, ((x, y, pick), grid) in enumerate(zip(spots, grids, strict=True), start=1):
            if grid < 0:
                continue
            points.append((x, y, int(grid), compounds[pick] if pick >= 0 else None))
            if len(points) == count:
                rng.bit_generator.state = start
                for _ in range(used):
                    spot()
                break
    return points


def _place_text(
    rng: np.random.Generator, compound: _Compound | None, roads: list[str]
) -> str:
    number = int(rng.integers(1, 40))
    if compound is not None:
        return _pick(rng, COMPOUND_SPOTS).format(c=compound.name, n=number)
    first, second = rng.choice(len(roads), 2, replace=False)
    return _pick(rng, ROAD_SPOTS).format(r=roads[int(first)], r2=roads[int(second)], n=number)


_HOURS = _Weighted(HOURLY_WEIGHTS / HOURLY_WEIGHTS.sum())


def _created_seconds(rng: np.random.Generator) -> int:
    """A report time in the HISTORY_DAYS before REFERENCE_TIME, busier by day."""
    start = int(REFERENCE_TIME.timestamp()) - HISTORY_DAYS * 86400  # local midnight
    day = int(rng.integers(0, HISTORY_DAYS))
    hour = _HOURS.draw(rng)
    return start + day * 86400 + hour * 3600 + int(rng.integers(0, 3600))


@dataclass
class _Issue:
    category: _Category
    description: str
    created: int
    events: list[_Event]
    grid_code: str
    department_code: str | None
    reporter_contact: str | None
    x: float
    y: float
    ref: str = ""


_DEPARTMENT_TAGS = {d.kind: d.tag for d in SUBDISTRICT_DEPARTMENTS + DISTRICT_DEPARTMENTS}


def _department_code(area_code: str, kind: str) -> str:
    return f"D{area_code}-{_DEPARTMENT_TAGS[kind]}"


def _build_issues(
    rng: np.random.Generator,
    ground: _Ground,
    compounds: list[_Compound],
    city: BaseGeometry,
    roads: dict[str, list[str]],
    department_names: dict[str, str],
    count: int,
) -> list[_Issue]:
    weights = np.array([c.weight for c in CATEGORIES], dtype=float)
    categories = _Weighted(weights / weights.sum())
    source_names = [s for s, _ in REPORT_SOURCES]
    sources = _Weighted(np.array([w for _, w in REPORT_SOURCES]))
    cutoff = int(REFERENCE_TIME.timestamp())
    issues: list[_Issue] = []
    for x, y, grid_index, compound in _issue_points(rng, ground, compounds, city, count):
        category = CATEGORIES[categories.draw(rng)]
        grid_code = ground.grids[grid_index].code
        subdistrict_code = grid_code[:9]
        area = grid_code[:6] if category.department_kind in _DISTRICT_KINDS else subdistrict_code
        handler = _department_code(area, category.department_kind)
        dispatcher_code = _department_code(subdistrict_code, "command_centre")
        source = source_names[sources.draw(rng)]
        created = _created_seconds(rng)
        history = _lifecycle(rng, category, created, source, grid_code,
                             f"dispatcher:{dispatcher_code}", handler, department_names[handler])
        events = [e for e in history if e.at < cutoff]  # "now" cuts the story short
        dispatched = any(e.action == "dispatch" for e in events)
        contact = None
        if source == "hotline" or (source == "resident" and rng.random() < 0.8):
            contact = _masked_mobile(rng)
        near = None if category.code in ROADSIDE_CATEGORIES else compound
        place = _place_text(rng, near, roads[subdistrict_code])
        issues.append(
            _Issue(
                category=category,
                description=_pick(rng, category.templates).format(place=place),
                created=created,
                events=events,
                grid_code=grid_code,
                department_code=handler if dispatched else None,
                reporter_contact=contact,
                x=x,
                y=y,
            )
        )
    issues.sort(key=lambda issue: issue.created)  # stable: ties keep generation order
    per_day: dict[str, int] = {}
    for issue, day in zip(issues, _times([i.created for i in issues]).strftime("%Y%m%d"),
                          strict=True):
        per_day[day] = per_day.get(day, 0) + 1
        if per_day[day] > 9_999:
            raise ValueError(f"more than 9,999 issues on {day}: the ref has 4 digits per day")
        issue.ref = f"WZ{day}{per_day[day]:04d}"
    return issues


# --------------------------------------------------------------------------------------
# Assembling the frames
# --------------------------------------------------------------------------------------


def _times(seconds: Sequence[int]) -> pd.DatetimeIndex:
    return pd.to_datetime(np.asarray(seconds, dtype="int64"), unit="s", utc=True).tz_convert(
        TIMEZONE
    )


def _nullable(values: Sequence[object]) -> pd.Series:
    """An object column that keeps ``None`` as ``None`` (not NaN)."""
    return pd.Series(list(values), dtype=object)


def _area_frame(areas: Sequence[_Area]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "code": [a.code for a in areas],
            "name": [a.name for a in areas],
            "parent_code": _nullable([a.parent_code for a in areas]),
        },
        geometry=_to_lonlat([a.geometry for a in areas]),
        crs=CRS,
    )


def _compound_frame(compounds: Sequence[_Compound]) -> gpd.GeoDataFrame:
    ordered = sorted(compounds, key=lambda c: c.code)
    return gpd.GeoDataFrame(
        {
            "code": [c.code for c in ordered],
            "name": [c.name for c in ordered],
            "community_code": [c.community.code for c in ordered],
            "households": np.array([c.households for c in ordered], dtype="int64"),
            "property_manager": _nullable([c.property_manager for c in ordered]),
        },
        geometry=_to_lonlat([MultiPolygon([c.footprint]) for c in ordered]),
        crs=CRS,
    )


def _department_rows(
    districts: Sequence[_Area], subdistricts: Sequence[_Area]
) -> list[tuple[str, str, str, str, MultiPolygon]]:
    """(code, name, kind, area_code, jurisdiction) for every department.

    Stationed units answer to the sub-district under the street chief scheme, so their
    jurisdiction is the sub-district; district bureaus cover the whole district.
    """
    rows = []
    for district in districts:
        for kind in DISTRICT_DEPARTMENTS:
            rows.append((_department_code(district.code, kind.kind),
                         f"{district.name}{kind.name_suffix}", kind.kind, district.code,
                         district.geometry))
    for subdistrict in subdistricts:
        for kind in SUBDISTRICT_DEPARTMENTS:
            # e.g. 东兴派出所, 东兴街道综合指挥中心
            rows.append((_department_code(subdistrict.code, kind.kind),
                         f"{subdistrict.stem}{kind.name_suffix}", kind.kind,
                         subdistrict.code, subdistrict.geometry))
    return sorted(rows, key=lambda row: row[0])


def _department_frame(rows: Sequence[tuple[str, str, str, str, MultiPolygon]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "code": [r[0] for r in rows],
            "name": [r[1] for r in rows],
            "kind": [r[2] for r in rows],
            "area_code": [r[3] for r in rows],
        },
        geometry=_to_lonlat([r[4] for r in rows]),
        crs=CRS,
    )


def _facility_frame(facilities: Sequence[_Facility]) -> gpd.GeoDataFrame:
    prefixes = {"car_park": ("CP", 4), "sports_ground": ("SG", 3), "toilet": ("WC", 3)}
    codes: list[str] = []
    seen: dict[str, int] = {}
    for facility in facilities:
        prefix, width = prefixes[facility.kind]
        seen[facility.kind] = seen.get(facility.kind, 0) + 1
        codes.append(f"{prefix}{seen[facility.kind]:0{width}d}")
    return gpd.GeoDataFrame(
        {
            "code": codes,
            "kind": [f.kind for f in facilities],
            "name": [f.name for f in facilities],
            "operator": [f.operator for f in facilities],
            "access": [f.access for f in facilities],
            "capacity": pd.array([f.capacity for f in facilities], dtype="Int64"),
            "shared_spaces": pd.array([f.shared_spaces for f in facilities], dtype="Int64"),
            "fee": [f.fee for f in facilities],
            "contact": [f.contact for f in facilities],
            "opening_hours": _nullable([f.opening_hours for f in facilities]),
        },
        geometry=_to_lonlat([f.geometry for f in facilities]),
        crs=CRS,
    )


def _cumulative(p: Sequence[float]) -> np.ndarray:
    """Cumulative probabilities ending at exactly 1.0, for searchsorted draws."""
    cdf = np.cumsum(np.asarray(p, dtype=float) / sum(p))
    cdf[-1] = 1.0
    return cdf


# Satisfaction scores 1..5 of cases closed by their deadline and of late ones.
_SATISFACTION_ON_TIME = _cumulative((0.02, 0.03, 0.08, 0.30, 0.57))
_SATISFACTION_LATE = _cumulative((0.10, 0.15, 0.30, 0.30, 0.15))


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_US = dt.timedelta(microseconds=1)


def _deadlines(issues: Sequence[_Issue]) -> pd.DatetimeIndex:
    """``due_at`` as data/cases.py leaves it: set at report, set again at each dispatch.

    The same function as the intake's ``Clock.due`` (``geo.worktime.due_at``), with the
    default calendar and working day, from the last dispatch or, for cases not yet
    dispatched and rejected ones, from the report. One call per issue: about 1 s for
    the city scale's 100,000, so neither vectorised nor cached.
    """
    calendar, day, zone = WorkCalendar(), WorkingDay(), ZoneInfo(TIMEZONE)
    micros = []
    for issue in issues:
        start = issue.events[0].at
        for event in issue.events:
            if event.action == "dispatch":
                start = event.at
        due = due_at(dt.datetime.fromtimestamp(start, zone), issue.category.time_limit_hours,
                     issue.category.working_hours, calendar, day)
        micros.append((due - _EPOCH) // _ONE_US)
    return pd.to_datetime(np.asarray(micros, dtype="int64"), unit="us", utc=True).tz_convert(
        TIMEZONE
    )


def _satisfaction(
    rng: np.random.Generator, closed: np.ndarray, on_time: np.ndarray, contact: np.ndarray
) -> pd.arrays.IntegerArray:
    """The reporter's 1-5 score, recorded at close; None when there is nobody to ask.

    Only closed cases whose reporter left a contact are scored (a grid worker's own
    patrol finding has no reporter to call back). Late cases score lower. One draw per
    issue, used or not, so the scores of one case do not depend on the others' status.
    """
    draws = rng.random(len(closed))
    scores = np.where(
        on_time,
        np.searchsorted(_SATISFACTION_ON_TIME, draws, side="right"),
        np.searchsorted(_SATISFACTION_LATE, draws, side="right"),
    ) + 1
    return pd.arrays.IntegerArray(scores.astype("int64"), ~(closed & contact))


def _issue_frames(
    issues: Sequence[_Issue], satisfaction_rng: np.random.Generator
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    due = _deadlines(issues)
    closed = np.array([i.events[-1].action == "close" for i in issues], dtype=bool)
    closed_at = _times([i.events[-1].at for i in issues]).where(closed)
    on_time = np.asarray(closed_at <= due)  # NaT compares False; only closed ones matter
    contact = np.array([i.reporter_contact is not None for i in issues], dtype=bool)
    issue_frame = gpd.GeoDataFrame(
        {
            "ref": [i.ref for i in issues],
            "category": [i.category.code for i in issues],
            "description": [i.description for i in issues],
            "status": [i.events[-1].to_status for i in issues],
            "created_at": _times([i.events[0].at for i in issues]),
            "updated_at": _times([i.events[-1].at for i in issues]),
            "grid_code": [i.grid_code for i in issues],
            "community_code": [i.grid_code[:12] for i in issues],
            "subdistrict_code": [i.grid_code[:9] for i in issues],
            "district_code": [i.grid_code[:6] for i in issues],
            "department_code": _nullable([i.department_code for i in issues]),
            "reporter_contact": _nullable([i.reporter_contact for i in issues]),
            "due_at": due,
            "closed_at": closed_at,
            "satisfaction": _satisfaction(satisfaction_rng, closed, on_time, contact),
        },
        geometry=_to_lonlat(shapely.points([(i.x, i.y) for i in issues])),
        crs=CRS,
    )
    # Column by column with attrgetter: the city scale has over 600,000 events.
    events = [e for i in issues for e in i.events]
    lengths = np.array([len(i.events) for i in issues], dtype="int64")
    first_row = np.repeat(np.cumsum(lengths) - lengths, lengths)
    event_frame = pd.DataFrame(
        {
            "issue_ref": [i.ref for i in issues for _ in i.events],
            "seq": np.arange(len(events), dtype="int64") - first_row + 1,
            "at": _times(list(map(attrgetter("at"), events))),
            "action": list(map(attrgetter("action"), events)),
            "from_status": _nullable(list(map(attrgetter("from_status"), events))),
            "to_status": list(map(attrgetter("to_status"), events)),
            "actor": list(map(attrgetter("actor"), events)),
            "note": list(map(attrgetter("note"), events)),
        }
    )
    return issue_frame, event_frame


def _category_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "code": [c.code for c in CATEGORIES],
            "name": [c.name for c in CATEGORIES],
            "group": [c.group for c in CATEGORIES],
            "department_kind": [c.department_kind for c in CATEGORIES],
            "time_limit_hours": np.array([c.time_limit_hours for c in CATEGORIES], dtype=float),
            "working_hours": np.array([c.working_hours for c in CATEGORIES], dtype=bool),
        }
    )


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------


def generate_city(
    seed: int = 2026,
    scale: DemoScale | str = "demo",
    progress: Callable[[str], None] | None = None,
) -> DemoCity:
    """Generate the whole city; the same ``seed`` and ``scale`` always give the same city.

    ``scale`` is a ``DemoScale`` or the name of one in ``SCALES``. ``progress`` hears
    about each stage, which matters at the larger scales.
    """
    size = scale_named(scale) if isinstance(scale, str) else scale
    say = progress or (lambda _message: None)
    streams = {stage: np.random.default_rng([seed, i]) for i, stage in enumerate(_STAGES)}
    names = _NameBook(streams["names"])
    busyness = _Busyness.for_scale(size)
    say(f"drawing {sum(size.subdistricts_per_district):,} sub-districts, "
        f"{size.community_count:,} communities and {size.grid_count:,} grids")
    districts, subdistricts, communities, grids = _build_hierarchy(streams, names, size, busyness)
    ground = _Ground(grids, busyness)
    say(f"placing {size.compound_count:,} compounds and the facilities")
    compounds = _build_compounds(streams["compounds"], ground, communities, names, size)
    roads = _road_names(names, subdistricts)
    builder = _FacilityBuilder(
        streams["facilities"], ground, names, districts, subdistricts, communities, roads
    )
    facilities = builder.build()
    department_rows = _department_rows(districts, subdistricts)
    say(f"simulating {size.issue_count:,} issues and their histories")
    issues = _build_issues(
        streams["issues"],
        ground,
        compounds,
        builder.city,
        roads,
        {row[0]: row[1] for row in department_rows},
        size.issue_count,
    )
    issue_frame, event_frame = _issue_frames(issues, streams["satisfaction"])
    return DemoCity(
        districts=_area_frame(districts),
        subdistricts=_area_frame(subdistricts),
        communities=_area_frame(communities),
        grids=_area_frame(grids),
        compounds=_compound_frame(compounds),
        departments=_department_frame(department_rows),
        facilities=_facility_frame(facilities),
        issues=issue_frame,
        issue_events=event_frame,
        categories=_category_frame(),
    )
