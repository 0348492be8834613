"""``gridmap calendar``: load the official holiday calendar and see which years are covered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

calendar_app = typer.Typer(
    help="China's official holiday calendar: load a year's notice, list the years covered.",
    no_args_is_help=True,
)


@calendar_app.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            help='JSON {"year": 2027, "holidays": [...], "workdays": [...]} or CSV date,kind',
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
) -> None:
    """Load a year's official arrangement and recompute the provisional deadlines it settles."""
    # Imported here: api.cli imports this module to register it.
    from api.cli import console, open_database
    from data.calendar import CalendarFileError, CalendarSource, import_calendar
    from data.db import session_factory
    from data.settings import get_settings
    from geo.worktime import parse_working_day

    settings = get_settings()
    engine = open_database()
    try:
        with session_factory(engine)() as session, session.begin():
            result = import_calendar(
                session,
                file,
                CalendarSource(settings.calendar_extra),
                parse_working_day(settings.working_day),
            )
    except CalendarFileError as exc:
        console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from None
    years = ", ".join(str(year) for year in result.years)
    console.print(f"loaded {years}: {result.days} holidays and make-up working days from {file}")
    for ref, old, new in result.moves:
        console.print(f"  {ref}: due {old:%Y-%m-%d %H:%M} -> {new:%Y-%m-%d %H:%M} UTC")
    console.print(
        f"{result.moved} open cases moved to a new deadline; "
        f"{result.recomputed - result.moved} provisional deadlines confirmed unchanged"
    )


@calendar_app.command("list")
def list_command() -> None:
    """Which years are official (and from where) and which are provisional."""
    from api.cli import console, open_database
    from data.calendar import CalendarSource, calendar_status
    from data.db import session_factory
    from data.settings import get_settings
    from geo.worktime import calendar_warnings

    settings = get_settings()
    engine = open_database()
    with session_factory(engine)() as session:
        calendar = CalendarSource(settings.calendar_extra).calendar(session)
        rows = calendar_status(session, calendar)
    table = Table(title="working-day calendar")
    for column in ("year", "calendar", "source", "loaded at"):
        table.add_column(column)
    for row in rows:
        kind = "official" if row.official else row.source or "out of range"
        table.add_row(
            str(row.year),
            kind,
            f"{row.source}: {row.loaded_from}"
            if row.loaded_from
            else (row.source if row.official else ""),
            f"{row.imported_at:%Y-%m-%d %H:%M} UTC" if row.imported_at else "",
        )
    console.print(table)
    first, last = calendar.bounds()
    console.print(
        f"dates from {first} to {last} are accepted; provisional years count weekends "
        f"and statutory holidays by rule, without make-up working days"
    )
    for warning in calendar_warnings(calendar):
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
