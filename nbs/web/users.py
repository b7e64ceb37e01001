"""People who use the review application and their roles.

Accounts live in the ``users`` table of the screening database (migration 003) and are
created on the command line (``nbs users add``), never through the web. Passwords are kept
only as argon2id hashes. A role decides what a person may see:

* ``lab``: run history, the retest worklist, quarantined input;
* ``coordinator``: the recall list and recalls (and the run history);
* ``official``: aggregated statistics only, never a name or an id.

Password guessing is slowed per account (migration 016, ``login_guard``): after a few
failed sign-ins in a row each further attempt must wait a doubling delay, and after
``ThrottlePolicy.lock_after`` the account is locked until an administrator lifts it
(``nbs users unlock``). Every attempt is kept in ``login_attempts``.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from nbs import store

Role = Literal["lab", "coordinator", "official"]
ROLES: tuple[str, ...] = get_args(Role)
MIN_PASSWORD_LENGTH = 10
#: longer input is refused before any hashing (no account name is longer than 32)
MAX_USERNAME_LENGTH = 64
MAX_PASSWORD_LENGTH = 1024
_USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")
_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters

#: outcomes of a sign-in attempt, as kept in ``login_attempts``
SIGNED_IN, WRONG_PASSWORD, UNKNOWN_USER = "signed_in", "wrong_password", "unknown_user"
LOCKED, THROTTLED = "locked", "throttled"


class UserError(ValueError):
    """An account request that cannot be done (the message says why)."""


@dataclass(frozen=True)
class User:
    """A signed-in person."""

    username: str
    role: str


@dataclass(frozen=True)
class ThrottlePolicy:
    """How failed sign-ins slow guessing down: ``free_failures`` in a row cost nothing,
    then each attempt waits a delay doubling from ``first_delay_s`` up to ``max_delay_s``;
    ``lock_after`` failures in a row lock the account (0: never)."""

    free_failures: int = 3
    first_delay_s: float = 2.0
    max_delay_s: float = 300.0
    lock_after: int = 10

    def delay_s(self, failures: int) -> float:
        """The wait after ``failures`` failed attempts in a row."""
        if failures < self.free_failures:
            return 0.0
        return min(self.first_delay_s * 2.0 ** (failures - self.free_failures), self.max_delay_s)

    def locks(self, failures: int) -> bool:
        """Whether ``failures`` in a row lock the account."""
        return 0 < self.lock_after <= failures


@dataclass(frozen=True)
class Verdict:
    """What became of one sign-in attempt (``outcome`` is one of the outcomes above)."""

    outcome: str
    user: User | None = None
    #: seconds before the next attempt for this name is heard (throttled or just failed)
    retry_after_s: float = 0.0
    detail: str | None = None
    #: a password was checked (an argon2 hash computed): a guess was made
    hashed: bool = False


@dataclass(frozen=True)
class Attempt:
    """One row of the sign-in audit trail."""

    at: dt.datetime
    username: str
    address: str | None
    outcome: str
    detail: str | None = None


def add_user(db: Path, username: str, role: str, password: str, created_by: str) -> User:
    """Create an account. Refused for an unknown role, a taken name or a short password."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if not _USERNAME.match(username):
        raise UserError("user name: 2-32 characters, lower-case letters, digits, . _ -")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"the password may have at most {MAX_PASSWORD_LENGTH} characters")
    store.migrate(db)
    if not store.add_account(
        db, username, role, lambda: _HASHER.hash(password), store.utc_now(), created_by
    ):
        raise UserError(f"user {username} exists already")
    return User(username, role)


def set_disabled(db: Path, username: str, disabled: bool) -> None:
    """Disable (or re-enable) an account; it is kept so the audit's names still resolve."""
    if not store.set_account_disabled(db, username, disabled):
        raise UserError(f"no user {username}")


def list_users(db: Path) -> list[dict[str, object]]:
    """Accounts without their hashes, with their failed sign-ins in a row and lock-out."""
    return store.list_accounts(db).rows(named=True)


def authenticate(db: Path, username: str, password: str) -> User | None:
    """The user if the name and password match an active account, else None (a plain
    check: no throttling, nothing recorded; the review application uses
    :func:`check_sign_in`).

    A wrong name costs the same hashing time as a wrong password, so timing does not tell
    which names exist.
    """
    account = store.active_account(db, username)
    stored = account[1] if account else _dummy_hash()
    if not _verify(stored, password):
        return None
    return User(username, account[0]) if account else None


def check_sign_in(
    db: Path,
    username: str,
    password: str,
    policy: ThrottlePolicy,
    now: dt.datetime | None = None,
) -> Verdict:
    """One sign-in attempt against the account's guard: a locked or throttled account is
    refused before any hashing; a failure counts towards the delay and the lock-out, a
    success clears them. An unknown name costs a hash like a wrong password (the caller
    throttles unknown names itself, so that they behave like accounts)."""
    account = store.guarded_account(db, username)
    if account is None:
        _verify(_dummy_hash(), password)
        return Verdict(UNKNOWN_USER, hashed=True)
    role, stored, failures, last_failure, locked_at = account
    # to the microsecond: the delays are a few seconds, whole seconds would blur them
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if locked_at is not None:
        return Verdict(LOCKED, detail=f"locked since {locked_at:%Y-%m-%d %H:%M}")
    since = (now - last_failure).total_seconds() if last_failure else float("inf")
    wait = policy.delay_s(failures) - since
    if wait > 0:
        return Verdict(THROTTLED, retry_after_s=wait, detail=f"{failures} failures in a row")
    if _verify(stored, password):
        if failures:
            store.clear_failures(db, username)
        return Verdict(SIGNED_IN, User(username, role), hashed=True)
    return _count_failure(db, username, policy, now)


def _count_failure(db: Path, username: str, policy: ThrottlePolicy, now: dt.datetime) -> Verdict:
    failures = store.count_failure(db, username, now, policy.locks)
    if policy.locks(failures):
        detail = f"wrong password; locked after {failures} in a row"
        return Verdict(LOCKED, detail=detail, hashed=True)
    return Verdict(WRONG_PASSWORD, retry_after_s=policy.delay_s(failures), hashed=True)


def unlock(db: Path, username: str, by: str) -> bool:
    """Lift an account's lock-out and forget its failed sign-ins (recorded in the audit
    trail). Returns whether it was locked."""
    attempt = Attempt(store.utc_now(), username, None, "unlocked", f"by {by}")
    was_locked = store.unlock_account(db, username, _row(attempt))
    if was_locked is None:
        raise UserError(f"no user {username}")
    return was_locked


def record_attempts(db: Path, attempts: Iterable[Attempt]) -> None:
    """Append sign-in attempts to the audit trail (one transaction)."""
    rows = [_row(a) for a in attempts]
    if rows:
        store.record_sign_ins(db, rows)


def _row(a: Attempt) -> store.AttemptRow:
    """An attempt as ``login_attempts`` keeps it (a flood's overlong names cut short)."""
    return (a.at, a.username[:MAX_USERNAME_LENGTH], a.address, a.outcome, a.detail)


def active_role(db: Path, username: str) -> str | None:
    """The role of an active account (None if it is gone or disabled)."""
    return store.active_role(db, username)


def _verify(stored: str, password: str) -> bool:
    try:
        return bool(_HASHER.verify(stored, password))
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    return _HASHER.hash("not the password of anyone")
