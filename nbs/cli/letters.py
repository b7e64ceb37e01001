"""``nbs letter``: a recall's letter from the laboratory's template, as PDF and HTML,
recorded in the recall's contact log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nbs.cli.common import ByOption, DbOption, UserError, console, existing_db


def letter(
    recall_id: Annotated[str, typer.Argument()],
    db: DbOption,
    out: Annotated[Path, typer.Option("--out", help="folder the PDF and HTML go to")],
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            help="referral, repeat_card or no_further_action (default: the recall's own)",
        ),
    ] = None,
    templates: Annotated[
        Path | None,
        typer.Option(help="the laboratory's letter templates (default: the installed ones)"),
    ] = None,
    by: ByOption = None,
) -> None:
    """Write a recall's letter (PDF and HTML) and record it as sent in its contact log."""
    from nbs import store
    from nbs.followup.letters import default_letter, send_letter
    from nbs.followup.lifecycle import RecallError, current_user, load_followup

    path = existing_db(db)
    recall = store.recall(path, recall_id)
    if recall is None:
        raise UserError(f"no recall {recall_id}")
    name = template or default_letter(recall)
    try:
        pdf, html = send_letter(
            path, recall_id, name, by or current_user(), load_followup(), out, templates
        )
    except RecallError as exc:
        raise UserError(str(exc)) from exc
    console.print(f"{recall_id}: {name} letter written to {pdf} and {html}; recorded as sent")
