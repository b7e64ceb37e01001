"""``nbs settings``: every setting with its variable, default and current value."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from nbs import settings
from nbs.cli import UserError, app


def test_settings_lists_every_setting_with_its_current_value() -> None:
    env = {"NBS_MIN_CELL": "10", "NBS_WEB_SECRET": "not-to-be-printed", "COLUMNS": "300"}
    shown = CliRunner().invoke(app, ["settings", "--format", "json"], env=env)
    assert shown.exit_code == 0, shown.output
    rows = {row["setting"]: row for row in json.loads(shown.stdout)}
    assert list(rows) == [name for name, *_ in settings.describe()]
    assert rows["min_cell"] == {
        "setting": "min_cell",
        "variable": "NBS_MIN_CELL",
        "default": 5,
        "current": 10,
        "description": settings.Settings.model_fields["min_cell"].description,
    }
    assert rows["web_secret"]["current"] == "(set)"  # a secret is never printed
    assert "not-to-be-printed" not in shown.output
    table = CliRunner().invoke(app, ["settings"], env=env)
    assert table.exit_code == 0
    assert "min_cell" in table.output and "not-to-be-printed" not in table.output


def test_an_invalid_setting_is_a_user_error() -> None:
    shown = CliRunner().invoke(app, ["settings"], env={"NBS_MIN_CELL": "zero"})
    assert isinstance(shown.exception, UserError)
    assert "min_cell" in str(shown.exception)
