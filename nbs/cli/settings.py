"""``nbs settings``: the laboratory's tunables, with their current values."""

from __future__ import annotations

import enum
import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from nbs.cli.common import UserError, console


class SettingsFormat(enum.StrEnum):
    table = "table"
    json = "json"


def show_settings(
    output: Annotated[
        SettingsFormat, typer.Option("--format", help="table or json")
    ] = SettingsFormat.table,
) -> None:
    """Every setting: its name, environment variable, default, current value and what it
    does (set a variable to change a setting, e.g. NBS_MIN_CELL=10)."""
    from pydantic import ValidationError

    from nbs import settings

    try:
        now = settings.current()
    except ValidationError as exc:
        raise UserError(f"settings: {exc}") from exc
    rows = [
        {
            "setting": name,
            "variable": variable,
            "default": default,
            "current": _shown(name, getattr(now, name)),
            "description": description,
        }
        for name, variable, default, description in settings.describe()
    ]
    if output == SettingsFormat.json:
        sys.stdout.write(json.dumps(rows, default=str, indent=1) + "\n")
        return
    table = Table(*rows[0], title="Settings", title_justify="left")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)


def _shown(name: str, value: object) -> object:
    """A setting's value as printed: a secret only says whether it is set."""
    if "secret" in name and value is not None:
        return "(set)"
    return value
