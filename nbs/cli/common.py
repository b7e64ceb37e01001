"""What the commands share: the consoles, the output formats, the database and
configuration options, and the one error a user can fix."""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar, overload

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from nbs.config import ScreeningConfig

console = Console()
err = Console(stderr=True, soft_wrap=True)


class EngineChoice(enum.StrEnum):
    auto = "auto"
    prefect = "prefect"
    local = "local"
    dask = "dask"


class Format(enum.StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


class SummaryFormat(enum.StrEnum):
    """A run's summary is a document, not a table: printed, or as JSON."""

    table = "table"
    json = "json"


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


Choice = TypeVar("Choice", bound=str)


@overload
def check_choice(option: str, value: str, allowed: Iterable[Choice]) -> Choice: ...
@overload
def check_choice(option: str, value: None, allowed: Iterable[Choice]) -> None: ...
@overload
def check_choice(option: str, value: str | None, allowed: Iterable[Choice]) -> Choice | None: ...
def check_choice(option: str, value: str | None, allowed: Iterable[Choice]) -> Choice | None:
    """The value as one of those the option takes, or a refusal naming them (an unknown
    value would otherwise match nothing and print an empty list as if there were none)."""
    choices = tuple(allowed)
    if value is None:
        return None
    for choice in choices:
        if choice == value:
            return choice
    raise UserError(f"{option} must be one of {', '.join(choices)}; not {value!r}")


DbOption = Annotated[Path, typer.Option("--db", help="DuckDB file", dir_okay=False)]
ByOption = Annotated[str | None, typer.Option("--by", help="who (default: NBS_USER or login)")]


def existing_db(db: Path) -> Path:
    """The database, upgraded to this software's schema if an older version made it."""
    if not db.is_file():
        raise UserError(f"database {db} does not exist (run `nbs run INBOX --db {db}` first)")
    from nbs import store

    try:
        applied = store.ensure_schema(db)
    except store.DatabaseIOError as exc:  # e.g. a reader without the right to write the file
        raise UserError(
            f"database {db} was made by an older version and needs upgrading, which this "
            f"user cannot do ({exc}); run any nbs command on it once as its owner"
        ) from exc
    if applied:
        err.print(f"database {db} upgraded: migration(s) {', '.join(map(str, applied))}")
    return db


def load_config(cutoffs: Path | None) -> ScreeningConfig:
    """The screening configuration (cutoff sets from ``cutoffs``, or the installed ones)."""
    from nbs.config import load_config as load

    try:
        return load(cutoffs)
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(f"configuration: {exc}") from exc


def print_frame(frame: pl.DataFrame, fmt: Format, title: str) -> None:
    """A frame as a table on the console, or as CSV or JSON on standard output."""
    if fmt == Format.csv:
        sys.stdout.write(frame.write_csv())
    elif fmt == Format.json:
        sys.stdout.write(json.dumps(frame.to_dicts(), default=str, indent=1) + "\n")
    else:
        table = Table(*frame.columns, title=title, title_justify="left")
        for row in frame.iter_rows():
            style = "bold red" if "urgent" in row else None
            table.add_row(*("" if v is None else str(v) for v in row), style=style)
        console.print(table)
