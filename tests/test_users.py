"""Accounts of the review application: created on the command line, argon2id hashes,
roles checked, disabled accounts refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from nbs import storage, users
from nbs.cli import UserError, app


def test_accounts_are_hashed_checked_and_disabled(tmp_path: Path) -> None:
    db = tmp_path / "nbs.duckdb"
    users.add_user(db, "anne", "coordinator", "a long passphrase", "root")
    stored = storage.query(db, "SELECT password_hash FROM users").item()
    assert stored.startswith("$argon2id$") and "passphrase" not in stored
    assert users.authenticate(db, "anne", "a long passphrase") == users.User("anne", "coordinator")
    assert users.authenticate(db, "anne", "a long passphrasE") is None
    assert users.authenticate(db, "nobody", "a long passphrase") is None
    users.set_disabled(db, "anne", True)
    assert users.authenticate(db, "anne", "a long passphrase") is None
    assert users.active_role(db, "anne") is None
    users.set_disabled(db, "anne", False)
    assert users.active_role(db, "anne") == "coordinator"


@pytest.mark.parametrize(
    ("name", "role", "password", "message"),
    [
        ("anne", "admin", "a long passphrase", "role must be one of"),
        ("Anne Smith", "lab", "a long passphrase", "user name"),
        ("anne", "lab", "short", "at least 10"),
    ],
)
def test_bad_accounts_are_refused(
    tmp_path: Path, name: str, role: str, password: str, message: str
) -> None:
    with pytest.raises(users.UserError, match=message):
        users.add_user(tmp_path / "nbs.duckdb", name, role, password, "root")


def test_cli_adds_lists_and_refuses_a_duplicate(tmp_path: Path) -> None:
    db = str(tmp_path / "nbs.duckdb")
    runner = CliRunner()
    add = ["users", "add", "lars", "--role", "lab", "--db", db, "--password-stdin"]
    first = runner.invoke(app, add, input="laboratory-pw-1\n")
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, add, input="laboratory-pw-1\n")
    assert isinstance(again.exception, UserError) and "exists already" in str(again.exception)
    listed = runner.invoke(app, ["users", "list", "--db", db], env={"COLUMNS": "200"})
    assert "lars" in listed.output and "lab" in listed.output and "argon2" not in listed.output
