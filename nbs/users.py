"""People who use the review application and their roles.

Accounts live in the ``users`` table of the screening database (migration 003) and are
created on the command line (``nbs users add``), never through the web. Passwords are kept
only as argon2id hashes. A role decides what a person may see:

* ``lab``: run history, the retest worklist, quarantined input;
* ``coordinator``: the recall list and recalls (and the run history);
* ``official``: aggregated statistics only, never a name or an id.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from nbs import storage

Role = Literal["lab", "coordinator", "official"]
ROLES: tuple[str, ...] = get_args(Role)
MIN_PASSWORD_LENGTH = 10
_USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")
_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters


class UserError(ValueError):
    """An account request that cannot be done (the message says why)."""


@dataclass(frozen=True)
class User:
    """A signed-in person."""

    username: str
    role: str


def add_user(db: Path, username: str, role: str, password: str, created_by: str) -> User:
    """Create an account. Refused for an unknown role, a taken name or a short password."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if not _USERNAME.match(username):
        raise UserError("user name: 2-32 characters, lower-case letters, digits, . _ -")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    storage.migrate(db)
    with storage.connect(db) as con:
        if con.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
            raise UserError(f"user {username} exists already")
        con.execute(
            "INSERT INTO users VALUES (?, ?, ?, ?, ?, false)",
            [username, role, _HASHER.hash(password), storage.utc_now(), created_by],
        )
    return User(username, role)


def set_disabled(db: Path, username: str, disabled: bool) -> None:
    """Disable (or re-enable) an account; it is kept so the audit's names still resolve."""
    with storage.connect(db) as con:
        found = con.execute(
            "UPDATE users SET disabled = ? WHERE username = ? RETURNING username",
            [disabled, username],
        ).fetchone()
    if not found:
        raise UserError(f"no user {username}")


def list_users(db: Path) -> list[dict[str, object]]:
    """Accounts without their hashes."""
    return storage.query(
        db, "SELECT username, role, created_at, created_by, disabled FROM users ORDER BY 1"
    ).rows(named=True)


def authenticate(db: Path, username: str, password: str) -> User | None:
    """The user if the name and password match an active account, else None.

    A wrong name costs the same hashing time as a wrong password, so timing does not tell
    which names exist.
    """
    rows = storage.query(
        db,
        "SELECT role, password_hash FROM users WHERE username = ? AND NOT disabled",
        [username],
    ).rows()
    stored = rows[0][1] if rows else _dummy_hash()
    try:
        _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return User(username, rows[0][0]) if rows else None


def active_role(db: Path, username: str) -> str | None:
    """The role of an active account (None if it is gone or disabled)."""
    rows = storage.query(
        db, "SELECT role FROM users WHERE username = ? AND NOT disabled", [username]
    ).rows()
    return str(rows[0][0]) if rows else None


@functools.cache
def _dummy_hash() -> str:
    return _HASHER.hash("not the password of anyone")
