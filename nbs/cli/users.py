"""``nbs users``: the accounts of the review application."""

from __future__ import annotations

import sys
from typing import Annotated

import polars as pl
import typer

from nbs.cli.common import ByOption, DbOption, Format, UserError, console, existing_db, print_frame

users_app = typer.Typer(help="Accounts of the review application.", no_args_is_help=True)


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="lower-case name, e.g. anne.muller")],
    role: Annotated[str, typer.Option(help="lab, coordinator or official")],
    db: DbOption,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
    by: ByOption = None,
) -> None:
    """Create an account for the review application (asks for the password twice)."""
    from nbs.followup.lifecycle import current_user
    from nbs.web import users

    existing_db(db)  # an account belongs to a laboratory's database, never a new empty one
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        users.add_user(db, username, role, password, by or current_user())
    except users.UserError as exc:
        raise UserError(str(exc)) from exc
    console.print(f"user {username} ({role}) created")


@users_app.command("list")
def users_list(db: DbOption) -> None:
    """The accounts (never their passwords)."""
    from nbs.web import users

    print_frame(pl.DataFrame(users.list_users(existing_db(db))), Format.table, "Users")


@users_app.command("disable")
def users_disable(
    username: Annotated[str, typer.Argument()],
    db: DbOption,
    enable: Annotated[bool, typer.Option("--enable", help="re-enable instead")] = False,
) -> None:
    """Disable an account (kept, so the history's names still resolve); --enable undoes it."""
    from nbs.web import users

    try:
        users.set_disabled(existing_db(db), username, not enable)
    except users.UserError as exc:
        raise UserError(str(exc)) from exc
    console.print(f"user {username} {'enabled' if enable else 'disabled'}")


@users_app.command("unlock")
def users_unlock(
    username: Annotated[str, typer.Argument()],
    db: DbOption,
    by: ByOption = None,
) -> None:
    """Lift the lock-out that failed sign-ins put on an account (kept in the audit trail)."""
    from nbs.followup.lifecycle import current_user
    from nbs.web import users

    try:
        was_locked = users.unlock(existing_db(db), username, by or current_user())
    except users.UserError as exc:
        raise UserError(str(exc)) from exc
    state = "unlocked" if was_locked else "was not locked; its failed sign-ins are forgotten"
    console.print(f"user {username} {state}")
