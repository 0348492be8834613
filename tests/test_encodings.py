"""Files in Chinese encodings import with their names intact, or are refused; never mojibake.

Every file is written here, in the encoding under test, the way Chinese Windows tools
write them: a shapefile without a .cpg file (ArcGIS, older tools), a CSV saved by Excel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import pytest
from click.testing import Result
from shapely.geometry import box
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from api.cli import app
from data.db import session_factory
from data.models import Area, Category, Department
from data.settings import get_settings

# Names with a character outside GBK (𠀀, only GB18030 has it) and traditional ones.
NAMES = {"G1": "长洲社区第一网格", "G2": "万秀区城东街道𠀀", "G3": "中西區東區"}
GBK_NAMES = {"G1": "长洲社区第一网格", "G2": "万秀区城东街道", "G3": "中西區東區"}
Cli = Callable[..., Result]


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Cli]:
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", database_url)
    monkeypatch.setenv("GRIDMAP_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield lambda *args: CliRunner().invoke(app, [str(a) for a in args])
    get_settings.cache_clear()


def write_shapefile(
    path: Path, names: dict[str, str], encoding: str, cpg: str | None = None
) -> Path:
    """A shapefile of one grid per name, its text in ``encoding``; a .cpg only if given."""
    frame = gpd.GeoDataFrame(
        {"code": list(names), "名称": list(names.values())},
        geometry=[
            box(111.30 + i * 0.01, 23.5, 111.31 + i * 0.01, 23.51) for i in range(len(names))
        ],
        crs=4326,
    )
    frame.to_file(path, encoding=encoding)
    path.with_suffix(".cpg").unlink(missing_ok=True)
    if cpg is not None:
        path.with_suffix(".cpg").write_text(cpg)
    return path


def area_names(engine: Engine) -> dict[str, str]:
    with session_factory(engine)() as session:
        return dict(session.execute(select(Area.code, Area.name)).tuples().all())


@pytest.mark.parametrize(
    ("encoding", "names"),
    [
        ("gbk", GBK_NAMES),  # what most Chinese GIS tools write
        ("gb18030", NAMES),  # GBK's superset, with a 4-byte character
    ],
)
def test_shapefile_without_cpg_keeps_its_chinese_names(
    cli: Cli, engine: Engine, tmp_path: Path, encoding: str, names: dict[str, str]
) -> None:
    shp = write_shapefile(tmp_path / f"grids_{encoding}.shp", names, encoding)
    # The field name is in the same encoding: 名称 must be found as written.
    result = cli("import", "grids", shp, "--name-field", "名称", "--effective", "2026-01-01")
    assert result.exit_code == 0, result.output
    assert "text read as gb18030" in result.output
    assert area_names(engine) == names


def test_a_cpg_saying_gbk_does_not_garble_gb18030_characters(
    cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    shp = write_shapefile(tmp_path / "grids.shp", NAMES, "gb18030", cpg="GBK")
    result = cli("import", "grids", shp, "--name-field", "名称", "--effective", "2026-01-01")
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.output
    assert area_names(engine) == NAMES


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_csv_from_excel_in_gbk_is_read_not_refused(
    cli: Cli, engine: Engine, tmp_path: Path, encoding: str
) -> None:
    names = {"D1": "万秀区城管执法大队", "D2": "长洲区公安分局"}
    if encoding == "gb18030":
        names["D3"] = "龙圩区𠀀街道办事处"
    path = tmp_path / "departments.csv"
    path.write_bytes(
        ("code,name,kind\r\n" + "".join(f"{c},{n},police\r\n" for c, n in names.items())).encode(
            encoding
        )
    )
    result = cli("import", "departments", path)
    assert result.exit_code == 0, result.output
    with session_factory(engine)() as session:
        stored = dict(session.execute(select(Department.code, Department.name)).tuples().all())
    assert stored == names


def test_categories_csv_in_gb18030(cli: Cli, engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "categories.csv"
    rows = {"C1": "占道经营", "C2": "井盖缺失𠀀"}
    path.write_bytes(
        (
            "code,name,group,time_limit_hours,working_hours\n"
            + "".join(f"{c},{n},event,4,true\n" for c, n in rows.items())
        ).encode("gb18030")
    )
    result = cli("import", "categories", path)
    assert result.exit_code == 0, result.output
    with session_factory(engine)() as session:
        assert dict(session.execute(select(Category.code, Category.name)).tuples().all()) == rows


def test_unclear_text_is_refused_until_the_encoding_is_given(
    cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    # Two one-character names read equally well as GBK (一, 二) and as Big5: guessing could
    # store the wrong characters, so the import stops and asks.
    names = {"D1": "一", "D2": "二"}
    path = tmp_path / "departments.csv"
    path.write_bytes(
        ("code,name,kind\n" + "".join(f"{c},{n},police\n" for c, n in names.items())).encode("gbk")
    )
    result = cli("import", "departments", path)
    assert result.exit_code == 1
    assert "cannot tell which encoding" in result.output and "--encoding" in result.output
    with session_factory(engine)() as session:
        assert session.scalar(select(Department.id)) is None

    result = cli("import", "departments", path, "--encoding", "gbk")
    assert result.exit_code == 0, result.output
    with session_factory(engine)() as session:
        assert (
            dict(session.execute(select(Department.code, Department.name)).tuples().all()) == names
        )


def test_a_wrong_encoding_is_refused_not_stored(cli: Cli, engine: Engine, tmp_path: Path) -> None:
    shp = write_shapefile(tmp_path / "grids.shp", GBK_NAMES, "gbk")
    result = cli("import", "grids", shp, "--name-field", "名称", "--encoding", "utf-8")
    assert result.exit_code == 1
    assert "not valid utf-8" in result.output and "--encoding" in result.output
    assert area_names(engine) == {}


def test_assign_reads_a_gbk_csv(cli: Cli, engine: Engine, tmp_path: Path) -> None:
    shp = write_shapefile(tmp_path / "grids.shp", GBK_NAMES, "gbk")
    assert (
        cli("import", "grids", shp, "--name-field", "名称", "--effective", "2026-01-01").exit_code
        == 0
    )
    points = tmp_path / "points.csv"
    points.write_bytes("编号,经度,纬度\n甲,111.305,23.505\n乙,111.315,23.505\n".encode("gbk"))
    out = tmp_path / "out.csv"
    result = cli("assign", points, "--out", out, "--crs", "wgs84", "--at", "2026-02-01")
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    got = {r.split(",")[0]: r.split(",")[header.index("grid_name")] for r in lines[1:]}
    assert got == {"甲": GBK_NAMES["G1"], "乙": GBK_NAMES["G2"]}
