"""The ``nbs`` command line: the commands, in the order ``nbs --help`` lists them.

Each module holds one group of commands; a command imports what it needs when it runs, so
``nbs --help`` stays fast.
"""

from __future__ import annotations

import os
from typing import NoReturn

import typer

from nbs.cli import (
    births,
    common,
    cutoffs,
    hl7,
    letters,
    ops,
    orders,
    outcomes,
    qc,
    recalls,
    screening,
    settings,
    stats,
    users,
)
from nbs.cli import release as release_cli
from nbs.cli.common import UserError

__all__ = ["UserError", "app", "main"]

app = typer.Typer(
    help="Newborn screening laboratory pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command(epilog=screening.exit_status_help())(screening.run)
app.command()(cutoffs.conditions)
app.command()(screening.demo)
app.command()(stats.stats)
app.command()(stats.report)
app.command("export-stats")(stats.export_stats_command)
app.command()(screening.reprocess)
app.command()(screening.reevaluate)
app.command("prefect-up")(ops.prefect_up)
app.command()(ops.serve)
app.command("settings")(settings.show_settings)
app.add_typer(recalls.recalls_app, name="recalls")
app.add_typer(cutoffs.cutoffs_app, name="cutoffs")
app.add_typer(users.users_app, name="users")
app.add_typer(qc.qc_app, name="qc")
app.add_typer(hl7.hl7_app, name="hl7")
app.add_typer(orders.orders_app, name="orders")
app.command("letter")(letters.letter)
app.add_typer(outcomes.outcomes_app, name="outcomes")
app.add_typer(births.births_app, name="births")
app.command("report-cards")(stats.report_cards)
app.command("release")(release_cli.release)
app.add_typer(release_cli.fhir_app, name="fhir")


def _click_errors() -> tuple[type[Exception], type[Exception]]:
    """click's ``ClickException`` and ``UsageError`` as the installed Typer raises them
    (recent Typers carry their own copy of click, whose classes are not ``click``'s)."""
    bases = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
    return bases["ClickException"], bases["UsageError"]


def _usage_message(exc: Exception) -> str:
    """A usage error on one line: the command, what is wrong, where the options are listed
    (Typer would draw a box of several lines around it)."""
    ctx = getattr(exc, "ctx", None)
    text = str(getattr(exc, "format_message", lambda: str(exc))())
    text = text.replace("Value error, ", "").rstrip(".")
    if ctx is None:
        return text
    return f"{ctx.command_path}: {text} (see {ctx.command_path} --help)"


def main() -> None:
    """Console-script entry point: one-line errors (no traceback, no box), and an exit
    status for each kind of failure (``nbs.run.errors``; README "Exit status")."""
    from nbs import store
    from nbs.run import errors

    def fail(message: object, status: int) -> NoReturn:
        common.err.print(f"error: {errors.one_line(str(message))}", markup=False, highlight=False)
        raise SystemExit(status) from None

    click_error, usage_error = _click_errors()
    try:
        # not standalone: click's errors come here instead of being drawn by Typer
        status = app(standalone_mode=False, prog_name="nbs")
    except errors.RunFailed as exc:
        fail(exc, exc.exit_code)
    except usage_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # the help is printed already
            raise SystemExit(errors.EXIT_USAGE) from None
        fail(_usage_message(exc), errors.EXIT_USAGE)
    except click_error as exc:
        fail(_usage_message(exc), int(getattr(exc, "exit_code", 1)))
    except typer.Abort:  # a prompt closed (Ctrl+D) or refused
        fail("aborted", 1)
    except (
        UserError,
        store.MigrationFailed,
        store.NotAScreeningDatabase,
        FileNotFoundError,
    ) as exc:
        fail(exc, errors.EXIT_USAGE)
    except (store.DatabaseBusy, store.RunInProgress) as exc:
        fail(exc, errors.EXIT_BUSY)
    except (OSError, store.DatabaseError) as exc:  # the machine's: disk, permissions, the file
        if os.environ.get("NBS_DEBUG"):
            raise
        fail(errors.describe(exc), errors.EXIT_NOT_COMMITTED)
    if isinstance(status, int) and status:  # an exit status Typer returns (Ctrl+C: 130)
        raise SystemExit(status)
