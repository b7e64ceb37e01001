"""``nbs qc``: plates and their quality control: the list, one plate, a supervisor's
decision on a held plate, and the Levey-Jennings chart of a control series."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.table import Table

from nbs.cli.common import (
    ByOption,
    DbOption,
    Format,
    UserError,
    check_choice,
    console,
    err,
    existing_db,
    load_config,
    print_frame,
)

qc_app = typer.Typer(help="Plates and their quality control.", no_args_is_help=True)

CutoffsOption = Annotated[
    Path | None, typer.Option(help="folder of cutoff set files (for the cards' calls)")
]


@qc_app.command("plates")
def qc_plates(
    db: DbOption,
    status: Annotated[str | None, typer.Option(help="held, accepted or rejected")] = None,
    output: Annotated[Format, typer.Option("--format", help="table, csv or json")] = Format.table,
) -> None:
    """The plates and their status, held first."""
    from nbs.store import plates

    check_choice("--status", status, plates.PLATE_STATUSES)
    frame = plates.plate_list(existing_db(db), status)
    if output == Format.table:
        frame = frame.select(
            "plate_id",
            "instrument",
            pl.col("run_at").dt.strftime("%Y-%m-%d %H:%M"),
            "status",
            "reason",
            "decided_by",
        )
    print_frame(frame, output, f"Plates ({frame.height})")


@qc_app.command("show")
def qc_show(plate_id: Annotated[str, typer.Argument()], db: DbOption) -> None:
    """One plate: its status and why, its QC wells with z and broken rules, its audit trail."""
    from nbs.store import plates

    row = plates.plate(existing_db(db), plate_id)
    if row is None:
        raise UserError(f"no plate {plate_id}")
    table = Table("field", "value", title=f"Plate {plate_id}", title_justify="left")
    for key, value in row.items():
        if isinstance(value, dt.datetime):
            value = value.strftime("%Y-%m-%d %H:%M")
        table.add_row(key.replace("_", " "), "" if value is None else str(value))
    console.print(table)
    wells = (
        plates.plate_qc_results(db, plate_id)
        .drop("measured_at")  # the plate's run time, above
        .rename({"sample_type": "type"})
        .with_columns(pl.col("z").round(2))
    )
    # what the plate's kind of assay reports (no Ct column for an immunoassay, ...)
    wells = wells.select(
        c for c in wells.columns if wells.height == 0 or wells[c].is_not_null().any()
    )
    print_frame(wells, Format.table, "QC wells (z: SD from the lot's target; rules broken)")
    events = plates.plate_events(db, plate_id).with_columns(
        pl.col("event_at").dt.strftime("%Y-%m-%d %H:%M")
    )
    print_frame(events, Format.table, "Audit trail")


def _decide(
    db: Path, plate_id: str, status: str, reason: str | None, by: str | None, cutoffs: Path | None
) -> None:
    """A supervisor's decision through :func:`nbs.run.release.decide` (accepting evaluates
    the plate's cards at once)."""
    from nbs.followup.lifecycle import current_user
    from nbs.run.release import decide
    from nbs.store import plates

    if reason is None or not reason.strip():
        raise UserError("give --reason: why (kept in the plate's audit trail)")
    db = existing_db(db)
    found = plates.plate(db, plate_id)
    if found is None:
        raise UserError(f"no plate {plate_id}")
    if found["status"] != "held":
        raise UserError(f"plate {plate_id} is {found['status']}, not held: nothing to decide")
    config = load_config(cutoffs)
    try:
        decision = decide(db, plate_id, status, by or current_user(), reason.strip(), config)
    except plates.PlateDecisionError as exc:
        raise UserError(str(exc)) from exc
    except Exception:
        after = plates.plate(db, plate_id)
        if after is not None and after["status"] == status:  # recorded; the evaluation failed
            err.print(
                f"plate {plate_id} {status}; its cards were not evaluated now: the next run "
                "evaluates them",
                markup=False,
            )
        raise
    if status == "accepted":
        console.print(
            f"plate {plate_id} accepted: {decision.cards_evaluated} card(s) evaluated"
            + (f" (run {decision.run_id})" if decision.run_id else "")
        )
    else:
        console.print(f"plate {plate_id} rejected: its results stay out of every call")


ReasonOption = Annotated[
    str | None, typer.Option(help="why (required; kept in the plate's audit trail)")
]


@qc_app.command("accept")
def qc_accept(
    plate_id: Annotated[str, typer.Argument()],
    db: DbOption,
    reason: ReasonOption = None,
    by: ByOption = None,
    cutoffs: CutoffsOption = None,
) -> None:
    """Accept a held plate, with a reason: its cards are evaluated at once."""
    _decide(db, plate_id, "accepted", reason, by, cutoffs)


@qc_app.command("reject")
def qc_reject(
    plate_id: Annotated[str, typer.Argument()],
    db: DbOption,
    reason: ReasonOption = None,
    by: ByOption = None,
    cutoffs: CutoffsOption = None,
) -> None:
    """Confirm the rejection of a held plate, with a reason: its results reach no call."""
    _decide(db, plate_id, "rejected", reason, by, cutoffs)


def _file_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "none"


@qc_app.command("chart")
def qc_chart(
    analyte: Annotated[str, typer.Argument(help="analyte code or name, e.g. TSH")],
    db: DbOption,
    out: Annotated[Path, typer.Option(help="SVG file (several series: one file each, named)")],
    material: Annotated[str | None, typer.Option(help="control material")] = None,
    level: Annotated[str | None, typer.Option(help="control level")] = None,
    lot: Annotated[str | None, typer.Option(help="control lot")] = None,
) -> None:
    """The Levey-Jennings chart of a control series (analyte, material, level, lot)."""
    from analytes.catalogue import load_catalogue
    from nbs.qc.series import control_charts

    code = load_catalogue().code_for(analyte) or analyte
    charts = control_charts(existing_db(db), code, material=material, level=level, lot=lot)
    if not charts:
        raise UserError(f"no control results of {code} match")
    drawn = [c for c in charts if c.svg is not None]
    for chart in charts:
        if chart.svg is None:
            console.print(f"{chart.title}: no chart, {chart.note}")
    if not drawn:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    for chart in drawn:
        path = out
        if len(charts) > 1:
            parts = (chart.material, f"L{chart.level}", chart.lot)
            path = out.with_name(f"{out.stem}-{'-'.join(map(_file_part, parts))}{out.suffix}")
        assert chart.svg is not None
        path.write_text(chart.svg, encoding="utf-8")
        console.print(f"{chart.title}: {chart.points} results, {chart.note} -> {path}")
