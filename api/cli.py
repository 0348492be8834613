"""The ``gridmap`` command line."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine

from api.cli_calendar import calendar_app
from data.db import BackendUnavailable, backend_name, holds_gridmap, make_engine, session_factory
from data.exporters import write_faults
from data.importer import (
    LAYERS,
    FieldMap,
    ImportOptions,
    ImportRejected,
    ImportReport,
    coverage_check,
    import_layer,
    today,
)
from data.migrate import upgrade
from data.settings import Settings, get_settings
from geo.coverage import Coverage

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

app = typer.Typer(help="gridmap: community grid governance GIS service.", no_args_is_help=True)
check_app = typer.Typer(help="Check loaded layers.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(check_app, name="check")
app.add_typer(db_app, name="db")
users_app = typer.Typer(help="Staff users and their tokens.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(calendar_app, name="calendar")
# soft_wrap: long problem lines stay whole when piped to a file or a CI log.
console = Console(stderr=True, soft_wrap=True)


@app.callback()
def _clean_output() -> None:
    """gridmap: community grid governance GIS service."""
    # Library warnings (SQLAlchemy, GDAL through pyogrio) would print with a file path and a
    # source line; users see one plain line instead. The ones that matter are turned into
    # our own messages where they arise (e.g. text GDAL could not decode: data/readers.py).
    warnings.showwarning = _show_warning


def _show_warning(  # the signature warnings.showwarning is called with
    message: Warning | str, category: type[Warning], filename: str, lineno: int,
    file: TextIO | None = None, line: str | None = None,
) -> None:
    console.print(f"[yellow]warning:[/yellow] {str(message).split('. This warning')[0]}", markup=True, highlight=False)


def open_database(read_only: bool = False, missing_exit: int = 2) -> Engine:
    """The configured database, upgraded to the current schema; exits with a fix on failure.

    ``read_only`` commands (info, assign, check) do not create a database that is not
    there: a forgotten GRIDMAP_DATA_DIR would otherwise give an empty one and zeros. They
    say so, name it, and exit with ``missing_exit``.
    """
    settings = get_settings()
    url = settings.resolved_database_url()
    if read_only and not holds_gridmap(url):
        lead = "[red]error:[/red]" if missing_exit else "note:"
        console.print(f"{lead} {_no_database(settings)}", highlight=False)
        raise typer.Exit(missing_exit)
    try:
        engine = make_engine(url)
        upgrade(engine)
    except BackendUnavailable as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    return engine


def _no_database(settings: Settings) -> str:
    if not settings.database_url:
        where = settings.data_dir / "gridmap.sqlite"
        return (
            f"the database {where} does not exist (nothing was created): set GRIDMAP_DATA_DIR to "
            "the folder that holds gridmap.sqlite, or GRIDMAP_DATABASE_URL to your database; "
            "gridmap import or gridmap demo makes a new one"
        )
    shown = settings.database_url.split("@")[-1]  # no user or password in the message
    return (
        f"the database {shown} holds no gridmap data (no schema; nothing was created): set "
        "GRIDMAP_DATABASE_URL to your database; gridmap import or gridmap demo fills a new one"
    )


@contextmanager
def steps(description: str) -> Iterator[callable]:  # type: ignore[valid-type]
    """A spinner with elapsed time whose text each step updates."""
    if not console.is_terminal:  # a log or a pipe: no spinner, each step on a line of its own
        console.print(f"{description} ...", highlight=False, markup=False)
        yield lambda message: console.print(f"{message} ...", highlight=False, markup=False)
        return
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=console, transient=True,
    ) as progress:
        task = progress.add_task(description)
        yield lambda message: progress.update(task, description=message)


def _parse_fields(fields: list[str]) -> dict[str, str]:
    mapping = {}
    for item in fields:
        target, sep, source = item.partition("=")
        if not sep or not target or not source:
            raise typer.BadParameter(f"{item!r}: write --field TARGET=COLUMN, e.g. --field households=HH")
        mapping[target.strip()] = source.strip()
    return mapping


@app.command("import")
def import_command(
    layer: Annotated[str, typer.Argument(help=f"One of: {', '.join(LAYERS)}")],
    file: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage, zipped Shapefile or CSV")],
    code_field: Annotated[str | None, typer.Option(help="Field holding the code; ':row' numbers features in file order")] = None,
    name_field: Annotated[str | None, typer.Option(help="Field holding the name")] = None,
    parent_field: Annotated[str | None, typer.Option(help="Field holding the parent code; ':spatial' takes the containing parent")] = None,
    field: Annotated[list[str], typer.Option("--field", help="Map another field: TARGET=COLUMN (repeatable)")] = [],  # noqa: B006
    code_prefix: Annotated[str, typer.Option(help="Prefix added to every code")] = "",
    crs: Annotated[str | None, typer.Option(help="Source CRS: EPSG:NNNN, wgs84, cgcs2000, gcj02 or bd09")] = None,
    lon_field: Annotated[str | None, typer.Option(help="CSV longitude column")] = None,
    lat_field: Annotated[str | None, typer.Option(help="CSV latitude column")] = None,
    source_layer: Annotated[str | None, typer.Option("--layer", help="Layer inside a GeoPackage")] = None,
    effective: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Date the boundaries take effect (default today)")] = None,
    repair: Annotated[bool, typer.Option(help="Fix invalid polygons with make_valid and list each repair")] = False,
    replace: Annotated[bool, typer.Option(help="Replace the layer (same effective date) instead of refusing")] = False,
    code_scheme: Annotated[str | None, typer.Option(help="Code format to enforce: free or cn15 (default from GRIDMAP_CODE_SCHEME)")] = None,
    report: Annotated[Path | None, typer.Option(help="Write the full report as JSON here")] = None,
    faults: Annotated[Path | None, typer.Option(help="Grids: write coverage faults as GeoJSON here")] = None,
    options_file: Annotated[Path | None, typer.Option("--options", help="Facilities: TOML/JSON mapping an institution list's columns (see data/facility_sources.py)")] = None,
    encoding: Annotated[str | None, typer.Option(help="Text encoding of the file, e.g. gbk, big5, utf-8 (default: detected; a shapefile's .cpg)")] = None,
) -> None:
    """Import a layer (or the categories / routing rules) from a file, all or nothing."""
    engine = open_database()
    if layer in ("routing", "categories"):
        _import_table(engine, layer, file, encoding)
        return
    options = ImportOptions(
        layer=layer,
        path=file,
        fields=FieldMap(code_field, name_field, parent_field, _parse_fields(field)),
        crs=crs,
        effective=effective.date() if effective else None,
        repair=repair,
        replace=replace,
        code_scheme=code_scheme or get_settings().code_scheme,
        code_prefix=code_prefix,
        source_layer=source_layer,
        lon_field=lon_field,
        lat_field=lat_field,
        options_path=options_file,
        encoding=encoding,
    )
    session = session_factory(engine)()
    try:
        with steps(f"importing {file.name}") as say:
            result = import_layer(session, options, say)
    except ImportRejected as exc:
        _print_report(exc.report)
        console.print(f"[red]error:[/red] {exc}")
        if report:
            report.write_text(json.dumps(exc.report.as_dict(), ensure_ascii=False, indent=1))
        raise typer.Exit(1) from exc
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        session.close()
    _print_report(result)
    console.print(
        f"[green]imported[/green] {result.imported} {result.layer} from {file.name} into "
        f"{backend_name(engine)} in {result.seconds:.2f} s"
        + (f", effective {result.effective}" if result.effective else "")
    )
    if result.layer == "grids" and result.coverage is not None:
        _print_faults_summary(result.coverage)
    if faults is not None:
        write_faults(result.faults, faults)
        console.print(f"wrote {len(result.faults)} coverage faults to {faults}")
    if report:
        report.write_text(json.dumps(result.as_dict(), ensure_ascii=False, indent=1))


def _import_table(engine: Engine, table: str, file: Path, encoding: str | None = None) -> None:
    from data.tables_import import TableRejected, import_categories, import_routing

    load = import_routing if table == "routing" else import_categories
    try:
        with session_factory(engine)() as session, session.begin():
            count = load(session, file, encoding)
    except TableRejected as exc:
        for problem in exc.problems:
            console.print(f"[red]problem[/red] {problem.describe().replace('feature #', 'row ')}")
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"[green]imported[/green] {count} {'routing rules' if table == 'routing' else 'categories'} from {file.name}")


def _print_report(report: ImportReport) -> None:
    for note in report.notes:
        console.print(f"note: {note}")
    for repair in report.repairs:
        console.print(f"[yellow]repair[/yellow] {repair.describe()}")
    for problem in report.problems:
        console.print(f"[red]problem[/red] {problem.describe()}")


def _print_faults_summary(coverage: Coverage) -> None:
    """The faults per kind, and every check that could not be made: never a false all-clear."""
    faults = coverage.faults
    if faults:
        kinds = Counter(f.kind for f in faults)
        table = Table(title="grid coverage faults")
        for column in ("kind", "count", "total m²"):
            table.add_column(column)
        for kind in ("overlap", "gap", "outside"):
            total = sum(f.area_m2 for f in faults if f.kind == kind)
            table.add_row(kind, str(kinds.get(kind, 0)), f"{total:,.0f}")
        console.print(table)
    for line in coverage.summary():
        console.print(line, markup=False, highlight=False)


@check_app.command("grids")
def check_grids(
    on: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Layer versions in force on this date")] = None,
    faults: Annotated[Path | None, typer.Option(help="Write the faults as GeoJSON here")] = None,
    min_area: Annotated[float, typer.Option(help="Ignore faults smaller than this (m²)")] = 1.0,
) -> None:
    """Report overlaps, gaps and grids outside their community."""
    engine = open_database(read_only=True)
    with session_factory(engine)() as session, steps("checking grid coverage"):
        coverage = coverage_check(session, on.date() if on else today(), min_area)
    found = coverage.faults
    for fault in found:
        console.print(fault.describe())
    _print_faults_summary(coverage)
    if faults is not None:
        write_faults(found, faults)
        console.print(f"wrote {len(found)} faults to {faults}")


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Random seed of the generated city")] = 2026,
    if_empty: Annotated[bool, typer.Option(help="Do nothing when the database already has areas")] = False,
    scale: Annotated[str, typer.Option(help="demo (613 grids, 2,000 issues) or city (10,000 grids, 100,000 issues)")] = "demo",
) -> None:
    """Generate the demo city (around Wuzhou) and load it."""
    from data.demo import DatabaseNotEmpty, load_demo_city
    from data.demo_city import UnknownScale, scale_named

    try:
        size = scale_named(scale)  # before the database is opened or migrated
    except UnknownScale as exc:
        raise typer.BadParameter(str(exc), param_hint="--scale") from exc
    engine = open_database()
    try:
        with steps("building the demo city") as say:
            loaded = load_demo_city(engine, seed=seed, if_empty=if_empty, progress=say, scale=size)
    except DatabaseNotEmpty as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    if loaded is None:
        console.print("the database already has areas; demo city not loaded (drop --if-empty to force)")
        return
    for table, count in loaded.items():
        console.print(f"  {table:<14} {count:>9,}")
    console.print(f"[green]demo city loaded[/green] ({size.name} scale) into {backend_name(engine)}")


@app.command()
def assign(
    points_file: Annotated[Path, typer.Argument(help="CSV with lon/lat columns, GeoJSON or GeoPackage points")],
    out: Annotated[Path, typer.Option("--out", help="Output CSV: one row per input point, in input order")],
    lon_field: Annotated[str | None, typer.Option(help="CSV longitude column")] = None,
    lat_field: Annotated[str | None, typer.Option(help="CSV latitude column")] = None,
    id_field: Annotated[str | None, typer.Option(help="Column holding each point's id (default: id/ref/code, else the row number)")] = None,
    crs: Annotated[str | None, typer.Option(help="Input CRS: wgs84, cgcs2000, gcj02, bd09 or EPSG:NNNN; required for CSV (or GRIDMAP_ASSIGN_CRS)")] = None,
    at: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Use the layers in force on this date (default today)")] = None,
    engine: Annotated[str, typer.Option(help="local (this process) or dask")] = "local",
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: a local cluster)")] = None,
    encoding: Annotated[str | None, typer.Option(help="Text encoding of a CSV, e.g. gbk or utf-8 (default: detected)")] = None,
) -> None:
    """Assign every point of a file to its grid and chain of areas."""
    from rich.progress import BarColumn, MofNCompleteColumn

    from data.assignment import load_assigner
    from data.bulk_assign import (
        CrsRequired,
        assign_dask,
        assign_local,
        looks_swapped,
        mostly_swapped,
        read_points,
        write_assignments,
    )
    from data.readers import FileRejected

    if engine not in ("local", "dask"):
        raise typer.BadParameter(f"--engine {engine!r}: use local or dask")
    database = open_database(read_only=True)
    settings = get_settings()
    try:
        points = read_points(
            points_file, crs, lon_field, lat_field, id_field, encoding,
            fallback_crs=settings.assign_crs, require_crs=True,
        )
    except CrsRequired as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    except (FileRejected, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    for note in points.attrs["notes"]:
        console.print(f"note: {note}", highlight=False)
    unusable = int(points["lon"].isna().sum())
    if unusable:
        console.print(f"[yellow]warning:[/yellow] {unusable:,} rows have no usable coordinates; they are written as outside")
    on = at.date() if at else today()
    with session_factory(database)() as session, steps("building the grid index"):
        assigner = load_assigner(session, on, settings.snap_metres, settings.data_dir / "index")
    if not assigner.layers:
        console.print(
            f"[red]error:[/red] no areas are in force on {on} in {_database_name(database)}: nothing to "
            "assign against; import grids first, or point GRIDMAP_DATA_DIR / GRIDMAP_DATABASE_URL "
            "at the database that holds them", highlight=False,
        )
        raise typer.Exit(2)
    if engine == "dask":
        with steps(f"assigning {len(points):,} points on Dask ({scheduler or 'local cluster'})"):
            result = assign_dask(assigner, points, scheduler)
    else:
        with Progress(TextColumn("assigning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("assign", total=len(points))
            result = assign_local(assigner, points, progress=lambda n: bar.advance(task, n))
    swapped = looks_swapped(assigner, points, result)
    _stop_if_swapped(points, swapped, mostly_swapped(points, swapped))
    write_assignments(result, out, swapped)
    overlapping = int(result["overlap"].sum())
    if overlapping:
        console.print(f"[yellow]warning:[/yellow] {overlapping:,} points lie where grids overlap "
                      "(column overlap): their grid rests on faulty data; see gridmap check grids")
    counts = {k: v for k, v in result["match"].value_counts().to_dict().items() if v}
    console.print(
        f"wrote {len(result):,} rows to {out} (coordinates read as {points.attrs['crs']}, "
        f"from {points.attrs['crs_origin']}; layers in force on {on}, grid version "
        f"{assigner.layer_version or 'none'}): " + ", ".join(f"{k} {v:,}" for k, v in counts.items()),
        highlight=False,
    )


def _database_name(engine: Engine) -> str:
    return engine.url.database if backend_name(engine) == "spatialite" else engine.url.render_as_string(hide_password=True)


def _stop_if_swapped(points: pd.DataFrame, swapped: npt.NDArray[np.bool_], mostly: bool) -> None:
    """Stop when most rows look swapped; otherwise name the few that do (column note)."""
    from geo.swap import SWAPPED

    count = int(swapped.sum())
    if not count:
        return
    examples = ", ".join(map(str, points["id"].to_numpy()[swapped][:5]))
    if mostly:
        console.print(
            f"[red]error:[/red] {SWAPPED}: {count:,} of {int(points['given_lon'].notna().sum()):,} "
            f"points fall in no area as given but in one with longitude and latitude exchanged "
            f"(e.g. {examples}); check the columns (--lon-field, --lat-field). Nothing written.",
            highlight=False,
        )
        raise typer.Exit(2)
    console.print(
        f"[yellow]warning:[/yellow] {count:,} rows: {SWAPPED} (e.g. {examples}); they are written "
        "as outside, flagged in the note column", highlight=False,
    )


@app.command()
def reassign(
    open_only: Annotated[bool, typer.Option(help="Only issues that are still open")] = False,
    on: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Use the layers in force on this date (default today)")] = None,
    summary: Annotated[Path | None, typer.Option(help="Also write the per-community summary as CSV here")] = None,
) -> None:
    """Move issues to the areas of the layer versions in force (after a redraw)."""
    from data.reassign import reassign_issues

    engine = open_database()
    day = on.date() if on else today()
    with session_factory(engine)() as session, session.begin(), steps("reassigning issues") as say:
        table = reassign_issues(session, day, get_settings().snap_metres, open_only, progress=say)
    view = Table(title=f"issues that changed grid, per community (layers in force on {day})")
    for column in ("community", "issues", "changed grid"):
        view.add_column(column, justify="right" if column != "community" else "left")
    for row in table.itertuples():
        view.add_row(str(row.community_code), f"{row.issues:,}", f"{row.changed_grid:,}")
    console.print(view)
    console.print(f"{int(table['changed_grid'].sum()):,} of {int(table['issues'].sum()):,} issues changed grid")
    if summary is not None:
        table.to_csv(summary, index=False)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
) -> None:
    """Serve the web app and API."""
    import uvicorn

    from api.app import create_app

    settings = get_settings()
    open_database()
    console.print(f"serving on http://{host or settings.host}:{port or settings.port}/")
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Login name")],
    role: Annotated[str, typer.Option(help="grid_worker, dispatcher, handler, planner, admin or gate")],
    department: Annotated[str | None, typer.Option(help="Department code (required for handlers)")] = None,
) -> None:
    """Create a staff user and print their bearer token (shown once; stored only hashed)."""
    from data.cases import CaseError, add_user

    engine = open_database()
    try:
        with session_factory(engine)() as session, session.begin():
            token = add_user(session, name, role, department)
    except CaseError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"created {role} {name!r}; their token (keep it, it is not shown again):")
    print(token)


@app.command()
def escalate() -> None:
    """Mark overdue cases and raise them to the district, then the city (the server does this too)."""
    from data.cases import escalate as run

    engine = open_database()
    with session_factory(engine)() as session, session.begin():
        raised = run(session)
    console.print(f"raised {raised['district']} overdue cases to the district and {raised['city']} to the city")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or update the schema."""
    engine = open_database()
    console.print(f"schema is current on {backend_name(engine)}")


@app.command()
def info() -> None:
    """Show the database in use and what it holds."""
    from data.cases import Clock
    from data.models import Area, Compound, Department, Facility, Issue
    from data.repository import count_rows
    from geo.worktime import calendar_warnings

    engine = open_database(read_only=True, missing_exit=0)
    console.print(f"database: {engine.url.render_as_string(hide_password=True)} ({backend_name(engine)})")
    with session_factory(engine)() as session:
        for model in (Area, Compound, Department, Facility, Issue):
            console.print(f"  {model.__tablename__:<12} {count_rows(session, model):>7}")
        calendar = Clock.from_settings(get_settings()).calendar_for(session)
    for warning in calendar_warnings(calendar):  # the official year ahead is not loaded yet
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


if __name__ == "__main__":
    app()


PAGES = ("planner", "dispatch", "resident")


@app.command()
def render(
    page: Annotated[str, typer.Argument(help="planner, dispatch or resident")],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write")],
    server: Annotated[str | None, typer.Option(
        help="The gridmap server the copy reads its data from (default: http://GRIDMAP_HOST:GRIDMAP_PORT)")] = None,
) -> None:
    """Write a map page as one standalone HTML file: every script, style and font inside it."""
    from api.routes.pages import render_page
    from maps.local_assets import AssetsNotBuiltError

    if page not in PAGES:
        console.print(f"[red]error:[/red] unknown page {page!r}: use {', '.join(PAGES)}")
        raise typer.Exit(2)
    settings = get_settings()
    server = (server or f"http://{settings.host}:{settings.port}").rstrip("/")
    if not server.startswith(("http://", "https://")):
        console.print(f"[red]error:[/red] --server {server!r} must be an http:// or https:// address")
        raise typer.Exit(2)
    engine = open_database()
    try:
        with session_factory(engine)() as session:
            html = render_page(page, session, settings, server=server, standalone=True)
    except AssetsNotBuiltError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    console.print(f"wrote {out} ({len(html.encode()) / 1024:,.0f} KB); it reads its data from {server}")
