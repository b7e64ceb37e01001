"""Accounts of the review application (``users``), their sign-in guard (``login_guard``)
and the sign-in audit trail (``login_attempts``). What the rows mean is
:mod:`nbs.web.users`'s; here is only how they are kept."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl

from nbs.store.connection import Connection, connect, query

#: one row of ``login_attempts``: at, username, address, outcome, detail
AttemptRow = tuple[dt.datetime, str, str | None, str, str | None]


def add_account(
    db_path: Path,
    username: str,
    role: str,
    password_hash: Callable[[], str],
    created_at: dt.datetime,
    created_by: str,
) -> bool:
    """Create an active account; False (nothing written) if the name is taken.
    ``password_hash`` is called only for a free name (a taken name costs no hashing)."""
    with connect(db_path) as con:
        if con.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
            return False
        con.execute(
            "INSERT INTO users (username, role, password_hash, created_at, created_by, "
            "disabled) VALUES (?, ?, ?, ?, ?, false)",
            [username, role, password_hash(), created_at, created_by],
        )
    return True


def set_account_disabled(db_path: Path, username: str, disabled: bool) -> bool:
    """Disable (or re-enable) an account; False if there is no such account."""
    with connect(db_path) as con:
        found = con.execute(
            "UPDATE users SET disabled = ? WHERE username = ? RETURNING username",
            [disabled, username],
        ).fetchone()
    return bool(found)


def list_accounts(db_path: Path) -> pl.DataFrame:
    """Accounts without their hashes, with their failed sign-ins in a row and lock-out."""
    return query(
        db_path,
        "SELECT u.username, u.role, u.created_at, u.created_by, u.disabled, "
        "coalesce(g.failures, 0) AS failed_sign_ins, g.locked_at "
        "FROM users u LEFT JOIN login_guard g USING (username) ORDER BY 1",
    )


def active_account(db_path: Path, username: str) -> tuple[str, str] | None:
    """(role, password hash) of an active account, or None."""
    rows = query(
        db_path,
        "SELECT role, password_hash FROM users WHERE username = ? AND NOT disabled",
        [username],
    ).rows()
    return (rows[0][0], rows[0][1]) if rows else None


def active_role(db_path: Path, username: str) -> str | None:
    """The role of an active account (None if it is gone or disabled)."""
    rows = query(
        db_path, "SELECT role FROM users WHERE username = ? AND NOT disabled", [username]
    ).rows()
    return str(rows[0][0]) if rows else None


def guarded_account(
    db_path: Path, username: str
) -> tuple[str, str, int, dt.datetime | None, dt.datetime | None] | None:
    """An active account with its guard: (role, password hash, failures in a row, last
    failure, locked since), or None."""
    rows = query(
        db_path,
        "SELECT u.role, u.password_hash, coalesce(g.failures, 0), g.last_failure_at, "
        "g.locked_at FROM users u LEFT JOIN login_guard g USING (username) "
        "WHERE u.username = ? AND NOT u.disabled",
        [username],
    ).rows()
    return rows[0] if rows else None


def clear_failures(db_path: Path, username: str) -> None:
    """Forget an account's failed sign-ins (after a successful one)."""
    with connect(db_path) as con:
        con.execute("DELETE FROM login_guard WHERE username = ?", [username])


def count_failure(
    db_path: Path, username: str, now: dt.datetime, locks: Callable[[int], bool]
) -> int:
    """Count a failed sign-in of an account; returns its failures in a row, and locks the
    account (since ``now``, if not locked already) when ``locks`` says so."""
    with connect(db_path) as con:
        row = con.execute(
            "INSERT INTO login_guard VALUES (?, 1, ?, NULL) ON CONFLICT (username) DO UPDATE "
            "SET failures = login_guard.failures + 1, last_failure_at = excluded.last_failure_at "
            "RETURNING failures",
            [username, now],
        ).fetchone()
        failures = int(row[0]) if row else 1
        if locks(failures):
            con.execute(
                "UPDATE login_guard SET locked_at = coalesce(locked_at, ?) WHERE username = ?",
                [now, username],
            )
    return failures


def unlock_account(db_path: Path, username: str, attempt: AttemptRow) -> bool | None:
    """Lift an account's lock-out and forget its failed sign-ins, recording ``attempt`` in
    the audit trail. Returns whether it was locked; None (nothing written) if there is no
    such account."""
    with connect(db_path) as con:
        if not con.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
            return None
        row = con.execute(
            "DELETE FROM login_guard WHERE username = ? RETURNING locked_at", [username]
        ).fetchone()
        _insert_attempts(con, [attempt])
    return bool(row and row[0] is not None)


def record_sign_ins(db_path: Path, attempts: Sequence[AttemptRow]) -> None:
    """Append sign-in attempts to the audit trail (one statement)."""
    with connect(db_path) as con:
        _insert_attempts(con, attempts)


def _insert_attempts(con: Connection, attempts: Sequence[AttemptRow]) -> None:
    con.executemany("INSERT INTO login_attempts VALUES (?, ?, ?, ?, ?)", list(attempts))
