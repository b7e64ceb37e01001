"""``nbs outcomes``: what became of a screened baby per condition (confirmed, ruled out,
carrier, missed), as a coordinator records it outside a recall's close."""

from __future__ import annotations

from typing import Annotated

import typer

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

outcomes_app = typer.Typer(help="Case outcomes.", no_args_is_help=True)


@outcomes_app.command("record")
def outcomes_record(
    baby_id: Annotated[str, typer.Argument()],
    db: DbOption,
    condition: Annotated[str, typer.Option(help="e.g. PKU")],
    kind: Annotated[str, typer.Option(help="confirmed, ruled_out, carrier or missed")],
    code: Annotated[str | None, typer.Option(help="diagnosis code, e.g. ORPHA:716")] = None,
    diagnosed: Annotated[str | None, typer.Option(help="date of diagnosis, YYYY-MM-DD")] = None,
    treated: Annotated[str | None, typer.Option(help="date treatment started")] = None,
    ruled_out: Annotated[str | None, typer.Option(help="date ruled out (ruled_out)")] = None,
    specimen: Annotated[
        str | None, typer.Option(help="the card (missed: the negative one)")
    ] = None,
    recall: Annotated[str | None, typer.Option(help="the recall it answers")] = None,
    note: Annotated[str | None, typer.Option(help="a note")] = None,
    by: ByOption = None,
) -> None:
    """Record an outcome (a missed case: a later diagnosis after a negative card)."""
    from nbs.followup.contacts import parse_due
    from nbs.followup.lifecycle import RecallError, current_user
    from nbs.followup.outcomes import KINDS, Outcome, OutcomeError, record_outcome

    checked = check_choice("--kind", kind, KINDS)
    try:
        kept = record_outcome(
            existing_db(db),
            Outcome(
                baby_id=baby_id,
                condition=condition,
                kind=checked,
                recorded_by=by or current_user(),
                specimen_id=specimen,
                recall_id=recall,
                diagnosis_code=code,
                diagnosed_at=parse_due(diagnosed or ""),
                treatment_started_at=parse_due(treated or ""),
                ruled_out_at=parse_due(ruled_out or ""),
                note=note,
            ),
        )
    except (OutcomeError, RecallError) as exc:
        raise UserError(str(exc)) from exc
    console.print(
        f"{baby_id} {condition}: {kind} recorded"
        + (f" (card {kept.specimen_id})" if kept.specimen_id else "")
    )


@outcomes_app.command("list")
def outcomes_list(
    db: DbOption,
    baby: Annotated[str | None, typer.Option(help="one baby's")] = None,
    output: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """The latest outcome per baby and condition."""
    from nbs.store.outcomes import case_outcomes

    frame = case_outcomes(existing_db(db), baby)
    print_frame(frame, output, f"Case outcomes ({frame.height})")
