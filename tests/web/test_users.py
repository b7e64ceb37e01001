"""Accounts of the review application: created on the command line, argon2id hashes,
roles checked, disabled accounts refused."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nbs import store
from nbs.cli import UserError, app
from nbs.web import users


def test_accounts_are_hashed_checked_and_disabled(tmp_path: Path) -> None:
    db = tmp_path / "nbs.duckdb"
    users.add_user(db, "anne", "coordinator", "a long passphrase", "root")
    stored = store.query(db, "SELECT password_hash FROM users").item()
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
    store.ensure_schema(Path(db))  # a laboratory's database: accounts are never its start
    runner = CliRunner()
    add = ["users", "add", "lars", "--role", "lab", "--db", db, "--password-stdin"]
    first = runner.invoke(app, add, input="laboratory-pw-1\n")
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, add, input="laboratory-pw-1\n")
    assert isinstance(again.exception, UserError) and "exists already" in str(again.exception)
    listed = runner.invoke(app, ["users", "list", "--db", db], env={"COLUMNS": "200"})
    assert "lars" in listed.output and "lab" in listed.output and "argon2" not in listed.output


@pytest.mark.slow
def test_failed_sign_ins_slow_down_then_lock_until_an_administrator_unlocks(
    tmp_path: Path,
) -> None:
    db = tmp_path / "nbs.duckdb"
    users.add_user(db, "anne", "coordinator", "a long passphrase", "root")
    policy = users.ThrottlePolicy(free_failures=2, first_delay_s=10, max_delay_s=60, lock_after=5)
    t0 = store.utc_now()

    def attempt(password: str, after_s: float) -> users.Verdict:
        return users.check_sign_in(
            db, "anne", password, policy, now=t0 + dt.timedelta(seconds=after_s)
        )

    assert attempt("wrong one", 0).outcome == users.WRONG_PASSWORD
    second = attempt("wrong two", 1)
    assert (second.outcome, second.retry_after_s) == (users.WRONG_PASSWORD, 10)
    # within the delay even the right password is not checked (no hash is computed)
    throttled = attempt("a long passphrase", 5)
    assert throttled.outcome == users.THROTTLED and 5 <= throttled.retry_after_s <= 6
    assert attempt("wrong three", 12).retry_after_s == 20  # the delay doubles
    assert attempt("wrong four", 13).outcome == users.THROTTLED
    assert attempt("wrong four", 40).outcome == users.WRONG_PASSWORD
    locking = attempt("wrong five", 200)
    assert locking.outcome == users.LOCKED and "locked after 5" in (locking.detail or "")
    # locked: the right password, however late, does not sign in
    assert attempt("a long passphrase", 10_000).outcome == users.LOCKED
    listed = {u["username"]: u for u in users.list_users(db)}
    assert listed["anne"]["failed_sign_ins"] == 5 and listed["anne"]["locked_at"] is not None

    runner = CliRunner()
    unlocked = runner.invoke(app, ["users", "unlock", "anne", "--db", str(db), "--by", "root"])
    assert unlocked.exit_code == 0 and "unlocked" in unlocked.output, unlocked.output
    signed_in = attempt("a long passphrase", 10_001)
    assert signed_in.outcome == users.SIGNED_IN and signed_in.user == users.User(
        "anne", "coordinator"
    )
    audit = store.query(db, "SELECT username, outcome, detail FROM login_attempts").rows()
    assert audit == [("anne", "unlocked", "by root")]
    missing = runner.invoke(app, ["users", "unlock", "nobody", "--db", str(db)])
    assert isinstance(missing.exception, UserError) and "no user nobody" in str(missing.exception)


@pytest.mark.slow
def test_a_success_clears_the_failures_and_unknown_names_cost_a_hash(tmp_path: Path) -> None:
    db = tmp_path / "nbs.duckdb"
    users.add_user(db, "anne", "coordinator", "a long passphrase", "root")
    policy = users.ThrottlePolicy()
    assert users.check_sign_in(db, "anne", "wrong", policy).outcome == users.WRONG_PASSWORD
    assert users.check_sign_in(db, "anne", "a long passphrase", policy).outcome == users.SIGNED_IN
    assert store.query(db, "SELECT count(*) FROM login_guard").item() == 0
    started = time.perf_counter()
    assert users.check_sign_in(db, "nobody", "wrong", policy).outcome == users.UNKNOWN_USER
    assert time.perf_counter() - started > 0.005  # a hash was computed all the same
    users.set_disabled(db, "anne", True)
    assert users.check_sign_in(db, "anne", "a long passphrase", policy).outcome == (
        users.UNKNOWN_USER
    )
    users.record_attempts(
        db, [users.Attempt(store.utc_now(), "x" * 500, "10.0.0.1", users.UNKNOWN_USER)]
    )
    stored = store.query(db, "SELECT username FROM login_attempts").item()
    assert stored == "x" * users.MAX_USERNAME_LENGTH  # what an attacker types is cut
