"""The statistics: ``nbs stats``, the annual report and the officials' file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nbs.cli.common import (
    DbOption,
    Format,
    UserError,
    console,
    existing_db,
    load_config,
    print_frame,
)
from nbs.stats import registry


def _offered(key: str) -> str:
    if key not in registry.table_keys():
        raise typer.BadParameter(f"{key!r} is not one of {', '.join(registry.table_keys())}")
    return key


def stats(
    db: DbOption,
    year: Annotated[int, typer.Option(help="the year (or the first year with --to)")],
    to: Annotated[int | None, typer.Option(help="last year of a range")] = None,
    table: Annotated[
        str,
        typer.Option(
            help="which figures",
            metavar=f"<{'|'.join(registry.table_keys())}>",
            callback=_offered,
        ),
    ] = registry.table_keys()[0],
    output: Annotated[Format, typer.Option("--format", help="table, csv or json")] = Format.table,
    cutoffs: Annotated[Path | None, typer.Option(help="folder of cutoff set files")] = None,
) -> None:
    """Yearly statistics: yield per condition (default), quality indicators, confirmed and
    missed cases, unsatisfactory cards by reason, or marker percentiles of screen-negative
    babies."""
    from nbs.stats import statistics

    db = existing_db(db)
    last = year if to is None else to
    try:
        statistics.years_between(year, last)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    statistic = registry.by_key(table)
    codes = list(load_config(cutoffs).conditions) if statistic.zero_filled else None
    frame = statistics.read(statistic, db, year, last, codes)
    span = str(year) if last == year else f"{year}-{last}"
    print_frame(frame, output, f"{table} {span}")


def report(
    db: DbOption,
    year: Annotated[int, typer.Option(help="the year reported")],
    out: Annotated[Path, typer.Option(help="folder for the HTML page and the CSV files")],
    suppress_below: Annotated[
        int | None,
        typer.Option(help="for publication: show counts below N as <N and withhold their rates"),
    ] = None,
    cutoffs: Annotated[Path | None, typer.Option(help="folder of cutoff set files")] = None,
) -> None:
    """The annual report for officials: one self-contained HTML page plus CSV of each table."""
    from nbs.stats.report import write_report

    files = write_report(
        existing_db(db), year, out, list(load_config(cutoffs).conditions), suppress_below
    )
    console.print(f"report written: {files.html} (+ {len(files.csvs)} CSV files)")


def export_stats_command(
    db: DbOption,
    out: Annotated[
        Path | None, typer.Option(help="statistics file (default: NAME.stats.duckdb beside --db)")
    ] = None,
    min_cell: Annotated[
        int | None,
        typer.Option(
            help="smallest submitter-level count shown (smaller: suppressed); "
            "default: the setting NBS_MIN_CELL (5)"
        ),
    ] = None,
) -> None:
    """Write the officials' identifier-free statistics file (DuckDB), openable with any SQL
    client without touching the live database."""
    from nbs.stats import statistics

    target = out or statistics.default_stats_path(db)
    result = statistics.export_stats(existing_db(db), target, min_cell)
    console.print(
        f"statistics written to {result.path} "
        + ", ".join(f"{name} ({rows})" for name, rows in result.tables.items())
    )


def report_cards(
    db: DbOption,
    out: Annotated[Path, typer.Option(help="folder for one HTML and one PDF per submitter")],
    month: Annotated[
        str | None, typer.Option(help="YYYY-MM (default: the month before this one)")
    ] = None,
) -> None:
    """The maternities' monthly report cards: per submitting unit, its unsatisfactory cards,
    missing information, age at collection, transit and repeat cards, beside the
    programme's figures; one HTML and one PDF file per unit, for the laboratory to send."""
    from nbs.stats.report_cards import ReportCardError, parse_month, write_report_cards

    try:
        chosen = parse_month(month)
        written = write_report_cards(existing_db(db), chosen, out)
    except ReportCardError as exc:
        raise UserError(str(exc)) from exc
    console.print(
        f"report cards {chosen:%Y-%m}: {len(written)} submitter(s) written to {out}"
        + "".join(f"\n  {c.submitter}: {c.html.name}, {c.pdf.name}" for c in written)
    )
