"""``nbs recalls``: the recall list and each recall's lifecycle."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
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
    existing_db,
    print_frame,
)

recalls_app = typer.Typer(help="The recall list.", no_args_is_help=True)


@recalls_app.command("list")
def recalls_list(
    db: DbOption,
    status: Annotated[
        str | None,
        typer.Option(help="open, closed, or a stage: contacted, sample_requested, referred"),
    ] = None,
    condition: Annotated[str | None, typer.Option(help="e.g. PKU")] = None,
    urgency: Annotated[str | None, typer.Option(help="urgent or routine")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="only overdue recalls")] = False,
    submitter: Annotated[str | None, typer.Option(help="a submitter code, e.g. CHL")] = None,
    sort: Annotated[
        str, typer.Option(help="priority, oldest, newest, youngest, due, condition, submitter")
    ] = "priority",
    output: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """The recall list: due next actions first, then urgent, overdue flagged."""
    from nbs.conditions import load_registry
    from nbs.followup.lifecycle import STAGES, list_recalls, load_followup
    from nbs.followup.worklist import SORTS

    stages = tuple(s for s in STAGES if s not in ("open", "closed"))
    check_choice("--sort", sort, SORTS)
    check_choice("--status", status, ("open", "closed", *stages))
    check_choice("--urgency", urgency, ("urgent", "routine"))
    check_choice("--condition", condition, load_registry().codes())
    frame = list_recalls(
        existing_db(db),
        load_followup(),
        status=None if status in stages else status,
        stage=status if status in stages else None,
        condition=condition,
        urgency=urgency,
        overdue=overdue,
        submitter=submitter,
        sort=sort,
    )
    if output == Format.table:
        frame = frame.select(
            "recall_id",
            "specimen_id",
            "condition",
            "action",
            "urgency",
            "stage",
            "held_by",
            "overdue",
            "days_open",
            "age",
            "next_action",
            "next_due",
            "reason",
        )
    else:
        frame = frame.drop("hours_open", "age_hours", "is_urgent")
    print_frame(frame, output, f"Recall list ({frame.height})")


def _recall_action(func: Callable[..., None], *args: object) -> None:
    from nbs import store
    from nbs.followup.lifecycle import RecallError

    try:
        func(*args)
    except (RecallError, store.RecallChanged) as exc:
        raise UserError(str(exc)) from exc


@recalls_app.command("close")
def recalls_close(
    recall_id: Annotated[str, typer.Argument()],
    outcome: Annotated[str, typer.Option(help="confirmed, false_positive, repeat_normal, ...")],
    db: DbOption,
    note: Annotated[str | None, typer.Option(help="a note kept with the change")] = None,
    by: ByOption = None,
) -> None:
    """Close a recall with its outcome (recorded with who and when)."""
    from nbs.followup.lifecycle import close_recall, current_user, load_followup

    _recall_action(
        close_recall,
        existing_db(db),
        recall_id,
        outcome,
        by or current_user(),
        note,
        load_followup(),
    )
    console.print(f"{recall_id} closed: {outcome}")


@recalls_app.command("update")
def recalls_update(
    recall_id: Annotated[str, typer.Argument()],
    db: DbOption,
    status: Annotated[
        str | None, typer.Option(help="contacted, sample_requested or referred")
    ] = None,
    note: Annotated[str | None, typer.Option(help="a note")] = None,
    by: ByOption = None,
) -> None:
    """Move a recall forward (contacted, sample_requested, referred) and/or add a note."""
    from nbs.followup.lifecycle import add_note, current_user, set_stage

    if status is None and note is None:
        raise UserError("give --status and/or --note")
    actor = by or current_user()
    if status is not None:
        _recall_action(set_stage, existing_db(db), recall_id, status, actor, note)
    elif note is not None:
        _recall_action(add_note, existing_db(db), recall_id, note, actor)
    console.print(f"{recall_id} updated")


@recalls_app.command("contact")
def recalls_contact(
    recall_id: Annotated[str, typer.Argument()],
    db: DbOption,
    how: Annotated[str, typer.Option(help="telephone, letter, email or in_person")],
    whom: Annotated[str, typer.Option(help="parents, maternity, paediatrician, specialist, other")],
    note: Annotated[str, typer.Option(help="what happened")],
    next_action: Annotated[str | None, typer.Option(help="what is to be done next")] = None,
    due: Annotated[str | None, typer.Option(help="the next action's due date, YYYY-MM-DD")] = None,
    when: Annotated[
        str | None, typer.Option(help="when it happened, YYYY-MM-DD HH:MM UTC (default: now)")
    ] = None,
    by: ByOption = None,
) -> None:
    """Log a contact about a recall (the first one moves an open recall to contacted)."""
    from nbs.followup.contacts import Contact, parse_due, parse_when, record_contact
    from nbs.followup.lifecycle import RecallError, current_user, load_followup

    try:
        contact = Contact(
            recall_id=recall_id,
            how=how,
            whom=whom,
            note=note,
            contacted_by=by or current_user(),
            contacted_at=parse_when(when or ""),
            next_action=next_action,
            next_due=parse_due(due or ""),
        )
    except RecallError as exc:
        raise UserError(str(exc)) from exc
    moved: list[bool] = []
    _recall_action(lambda: moved.append(record_contact(existing_db(db), contact, load_followup())))
    console.print(
        f"{recall_id}: {how} with {whom} logged" + (" (now contacted)" if moved[0] else "")
    )


@recalls_app.command("contacts")
def recalls_contacts(
    recall_id: Annotated[str, typer.Argument()],
    db: DbOption,
    output: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """A recall's contact log, latest first."""
    from nbs.store import contacts as contact_store

    print_frame(contact_store.recall_contacts(existing_db(db), recall_id), output, "Contacts")


@recalls_app.command("reopen")
def recalls_reopen(
    recall_id: Annotated[str, typer.Argument()],
    reason: Annotated[str, typer.Option(help="why it is reopened (kept in the audit)")],
    db: DbOption,
    by: ByOption = None,
) -> None:
    """Reopen a closed recall, with a reason."""
    from nbs.followup.lifecycle import current_user, reopen_recall

    _recall_action(reopen_recall, existing_db(db), recall_id, reason, by or current_user())
    console.print(f"{recall_id} reopened")


@recalls_app.command("show")
def recalls_show(recall_id: Annotated[str, typer.Argument()], db: DbOption) -> None:
    """One recall: the card, the values against their limits, the explanation, the history."""
    from nbs import store

    row = store.recall(existing_db(db), recall_id)
    if row is None:
        raise UserError(f"no recall {recall_id}")
    specimen = str(row["specimen_id"])
    console.print(
        f"[bold]{recall_id}[/bold] {row['action']} ({row['urgency']}) "
        f"{row['condition'] or 'repeat card'}: {row['stage']}"
        + (f", outcome {row['outcome']}" if row["outcome"] else "")
    )
    console.print(f"Reason: {row['reason']}")
    card = store.card(db, specimen)
    if card.height:
        fields = card.drop("file_sha256", "row_number", "run_id").row(0, named=True)
        _print_pairs(fields, "Card")
    for warning in store.card_warnings(db, specimen):
        console.print(f"Warning: {warning}")
    print_frame(_readable_results(store.card_results(db, specimen)), Format.table, "Results")
    if row["condition"]:
        call = store.screening_call(db, specimen, str(row["condition"]))
        if call.height and call["explanation"][0]:
            criteria = json.loads(call["explanation"][0]).get("criteria") or []
            print_frame(
                _readable_criteria(criteria),
                Format.table,
                f"Against the limits ({call['basis'][0]})",
            )
    history = store.recall_events(db, recall_id)
    opened = pl.DataFrame(
        [{"event_at": row["created_at"], "actor": "pipeline", "field": "created",
          "old_value": None, "new_value": row["action"], "note": f"run {row['run_id']}"}],
        schema=history.schema,
    )  # fmt: skip
    events = pl.concat([opened, history]).with_columns(
        pl.col("event_at").dt.strftime("%Y-%m-%d %H:%M")
    )
    print_frame(events, Format.table, "History")


#: the tiers as a reason names them
TIER_NAMES = {0: "below", 1: "retest", 2: "repeat card", 3: "referral"}


def _print_pairs(fields: dict[str, object], title: str) -> None:
    """A record as two columns (field, value): readable at 100 columns."""
    table = Table("field", "value", title=title, title_justify="left")
    for key, value in fields.items():
        if isinstance(value, dt.datetime):
            value = value.strftime("%Y-%m-%d %H:%M")
        table.add_row(key.replace("_", " "), "" if value is None else str(value))
    console.print(table)


def _readable_results(results: pl.DataFrame) -> pl.DataFrame:
    """A card's results as a reader wants them: rounded, with the text as reported."""
    number = pl.col("value").map_elements(lambda v: f"{v:.4g}", return_dtype=pl.String)
    return results.select(
        "analyte",
        punch="replicate",
        value=pl.concat_str([number.fill_null(""), pl.lit(" "), pl.col("unit")]),
        reported=pl.concat_str(
            [pl.col("value_text").fill_null(""), pl.lit(" "), pl.col("unit_reported").fill_null("")]
        ),
        flag=pl.col("flag").fill_null(""),
        measured=pl.col("measured_at").dt.strftime("%Y-%m-%d %H:%M"),
    )


def _tier_name(tier: object) -> str:
    return TIER_NAMES.get(tier, "") if isinstance(tier, int) else "no value"


def _readable_criteria(criteria: list[dict[str, object]]) -> pl.DataFrame:
    """A call's criteria with rounded values and the tier by name."""
    return pl.DataFrame(
        [
            {
                "criterion": c.get("criterion"),
                "value": "" if c.get("value") is None else f"{float(str(c['value'])):.4g}",
                "limits": c.get("limits"),
                "stratum": c.get("stratum") or "",
                "tier": _tier_name(c.get("tier")),
            }
            for c in criteria
        ],
        schema=dict.fromkeys(("criterion", "value", "limits", "stratum", "tier"), pl.String),
    )


@recalls_app.command("urgent")
def recalls_urgent(
    db: DbOption,
    out: Annotated[Path | None, typer.Option(help="CSV file (default: standard output)")] = None,
) -> None:
    """The open urgent recalls as CSV, for the phone round (with the submitting unit)."""
    from nbs import store

    frame = store.urgent_recalls(existing_db(db))
    if out is None:
        sys.stdout.write(frame.write_csv())
    else:
        frame.write_csv(out)
        console.print(f"{frame.height} urgent recall(s) written to {out}")
