"""The README's command table is runnable as written: every command it lists exists and
accepts every option the table names (checked against the command's own --help)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nbs.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| `nbs ([^`]+)` \|")


def _rows() -> list[str]:
    return [m.group(1) for line in README.read_text().splitlines() if (m := ROW.match(line))]


def test_the_readme_lists_the_commands() -> None:
    assert len(_rows()) >= 15


@pytest.mark.parametrize("row", _rows())
def test_every_listed_command_takes_its_options(row: str) -> None:
    words = row.replace("\\|", "|").split()
    command = []
    for word in words:
        if not re.fullmatch(r"[a-z][a-z0-9-]*", word):
            break
        command.append(word)
    shown = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "300"})
    assert shown.exit_code == 0, (command, shown.output)
    for option in re.findall(r"--[a-z][a-z-]*", row):
        assert option in shown.output, f"nbs {' '.join(command)}: no option {option}"
