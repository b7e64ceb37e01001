"""``nbs births``: the births register (import, a coordinator's mark) and the babies born
without a screened card by the configured day of life (NewSTEPs QI 3)."""

from __future__ import annotations

from pathlib import Path
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

births_app = typer.Typer(help="The births register and unscreened babies.", no_args_is_help=True)


@births_app.command("import")
def import_births(
    file: Annotated[Path, typer.Argument(help="births register CSV", exists=True, dir_okay=False)],
    db: DbOption,
) -> None:
    """Import a births register CSV (baby_id, birth_at, submitter[, status]); bad rows are
    quarantined with their reason; importing the same file again changes nothing."""
    from nbs.stats.births import BirthsError, import_register

    try:
        done = import_register(db, file)
    except BirthsError as exc:
        raise UserError(str(exc)) from exc
    console.print(
        f"births register {file.name}: {done.added} new, {done.changed} changed, "
        f"{done.unchanged} unchanged, {done.quarantined} newly quarantined"
    )


@births_app.command("mark")
def mark(
    baby_id: Annotated[str, typer.Argument(help="the baby's id in the register")],
    status: Annotated[
        str, typer.Option(help="declined | deceased | unscreened (withdraws a mark)")
    ],
    db: DbOption,
    note: Annotated[str | None, typer.Option(help="free text")] = None,
    by: ByOption = None,
) -> None:
    """Record that a baby's parents declined screening or that the baby died before a card
    could be taken (recorded with who and when)."""
    from nbs.followup.lifecycle import current_user
    from nbs.stats.births import BirthsError
    from nbs.stats.births import mark as record

    try:
        record(existing_db(db), baby_id, status, by or current_user(), note)
    except BirthsError as exc:
        raise UserError(str(exc)) from exc
    console.print(f"{baby_id}: {status}")


@births_app.command("unscreened")
def unscreened(
    db: DbOption,
    status: Annotated[
        str | None, typer.Option(help="only unscreened, declined or deceased")
    ] = None,
    output: Annotated[Format, typer.Option("--format", help="table, csv or json")] = Format.table,
) -> None:
    """The babies of the register without a screened card by the configured day of life."""
    from nbs.stats.births import MARKS
    from nbs.store.births import unscreened_babies

    check_choice("--status", status, MARKS)
    print_frame(unscreened_babies(existing_db(db), status), output, "unscreened babies")


@births_app.command("quarantine")
def quarantine(
    db: DbOption,
    output: Annotated[Format, typer.Option("--format", help="table, csv or json")] = Format.table,
) -> None:
    """The register's rows that could not be kept, with the reason."""
    from nbs.store.births import births_quarantine

    print_frame(births_quarantine(existing_db(db)), output, "births quarantine")
