"""Sign-in admission: what keeps password guessing slow and a flood of sign-ins harmless.

An argon2 verification costs 64 MiB and a good part of a second of one core: a hundred
parallel wrong sign-ins, unchecked, would take gigabytes of memory and leave a
coordinator's page waiting for tens of seconds. So, before any hashing and without
touching the database (in the event loop, where nothing else runs between the check and
the reservation):

* a client address with recent failures waits a doubling delay (``address_policy``);
* a name with recent failures but no account behaves like an account (delay, then
  "locked"), so refusals do not tell which names exist; accounts are guarded in the
  database (:func:`nbs.web.users.check_sign_in`), where the administrator lifts a lock-out;
* one attempt at a time per name and per address;
* at most ``hashing`` verifications run at once and ``waiting`` more may wait their turn;
  beyond that the answer is an immediate 503.

Every attempt, refused ones included, goes to the audit trail (``login_attempts``) through
a bounded queue written about once a second; in a flood the queue keeps the first
``AUDIT_QUEUE`` and counts the rest in one row.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from nbs import store
from nbs.web import users

AUDIT_QUEUE = 5_000
#: names and addresses remembered (least recently failed forgotten first)
MEMORY = 10_000


@dataclass(frozen=True)
class GuardSettings:
    """Limits on sign-in work (see the module's description)."""

    hashing: int = 1
    waiting: int = 8
    account_policy: users.ThrottlePolicy = field(default_factory=users.ThrottlePolicy)
    #: addresses may be shared (a ward behind one proxy): more free failures, no lock-out
    address_policy: users.ThrottlePolicy = field(
        default_factory=lambda: users.ThrottlePolicy(
            free_failures=5, first_delay_s=1.0, max_delay_s=120.0, lock_after=0
        )
    )
    #: an address's or unknown name's failures are forgotten after this long without one
    forget_after_s: float = 900.0


@dataclass(frozen=True)
class Refusal:
    """An attempt answered without hashing."""

    status: int
    message: str
    outcome: str
    retry_after_s: float = 0.0


@dataclass(frozen=True)
class Ticket:
    """An admitted attempt; give it back with :meth:`LoginGuard.release`."""

    name: str
    address: str


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0  # monotonic seconds


class LoginGuard:
    """Admission of sign-in attempts for one server process."""

    def __init__(
        self, settings: GuardSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings, self.clock = settings, clock
        self._addresses: OrderedDict[str, _Failures] = OrderedDict()
        self._unknown_names: OrderedDict[str, _Failures] = OrderedDict()
        self._busy_names: set[str] = set()
        self._busy_addresses: set[str] = set()
        self._admitted = 0
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """The hashing slots (made in the event loop, where anyio wants it)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.settings.hashing)
        return self._limiter

    def admit(self, name: str, address: str) -> Ticket | Refusal:
        """Admit an attempt or refuse it at once. Call in the event loop only."""
        key = name.lower()
        now = self.clock()
        wait = self._wait(self._addresses, address, self.settings.address_policy, now)
        if wait > 0:
            return _throttled(wait, "from this address")
        ghost = self._unknown_names.get(key)
        if ghost is not None:
            if self.settings.account_policy.locks(ghost.count):
                return Refusal(403, LOCKED_MESSAGE, users.LOCKED)
            wait = self._wait(self._unknown_names, key, self.settings.account_policy, now)
            if wait > 0:
                return _throttled(wait, "for this name")
        if key in self._busy_names or address in self._busy_addresses:
            return Refusal(
                429,
                "A sign-in for this name or address is being checked; try again.",
                users.THROTTLED,
                2,
            )
        if self._admitted >= self.settings.hashing + self.settings.waiting:
            return Refusal(
                503,
                "The server is checking too many sign-ins at once; try again in a moment.",
                "server_busy",
                5,
            )
        self._admitted += 1
        self._busy_names.add(key)
        self._busy_addresses.add(address)
        return Ticket(key, address)

    def release(self, ticket: Ticket, verdict: users.Verdict | None) -> None:
        """The attempt is answered: free its places and count a failure."""
        self._admitted -= 1
        self._busy_names.discard(ticket.name)
        self._busy_addresses.discard(ticket.address)
        if verdict is None or verdict.outcome == users.SIGNED_IN:
            return
        if verdict.hashed:  # a guess was checked (not one refused unheard)
            self._fail(self._addresses, ticket.address)
        if verdict.outcome == users.UNKNOWN_USER:
            self._fail(self._unknown_names, ticket.name)

    def refusal_for(self, verdict: users.Verdict, name: str) -> Refusal | None:
        """How to answer a checked attempt that did not sign in (None: it did)."""
        if verdict.outcome == users.SIGNED_IN:
            return None
        if verdict.outcome == users.THROTTLED:
            return _throttled(verdict.retry_after_s, "for this name")
        locked = verdict.outcome == users.LOCKED
        ghost = self._unknown_names.get(name.lower())
        if locked or (ghost is not None and self.settings.account_policy.locks(ghost.count)):
            return Refusal(403, LOCKED_MESSAGE, users.LOCKED)
        return Refusal(401, WRONG_MESSAGE, verdict.outcome)

    # -- inside ------------------------------------------------------------------------

    def _wait(
        self,
        table: OrderedDict[str, _Failures],
        key: str,
        policy: users.ThrottlePolicy,
        now: float,
    ) -> float:
        seen = table.get(key)
        if seen is None:
            return 0.0
        if now - seen.last > self.settings.forget_after_s:
            del table[key]
            return 0.0
        return policy.delay_s(seen.count) - (now - seen.last)

    def _fail(self, table: OrderedDict[str, _Failures], key: str) -> None:
        seen = table.pop(key, None) or _Failures()
        seen.count += 1
        seen.last = self.clock()
        table[key] = seen  # moved to the end: the least recently failed go first
        while len(table) > MEMORY:
            table.popitem(last=False)


WRONG_MESSAGE = "Unknown user name or wrong password."
LOCKED_MESSAGE = (
    "Too many failed sign-ins for this name: it is locked until the laboratory's "
    "administrator lifts the lock (nbs users unlock)."
)


def _throttled(wait_s: float, where: str) -> Refusal:
    seconds = max(1, math.ceil(wait_s))
    return Refusal(
        429,
        f"Too many failed sign-ins {where}: try again in {seconds} s.",
        users.THROTTLED,
        seconds,
    )


class AuditQueue:
    """Sign-in attempts waiting to be written to ``login_attempts`` (bounded: in a flood
    the overflow is counted, not kept)."""

    def __init__(self, db: Path, size: int = AUDIT_QUEUE) -> None:
        self.db, self.size = db, size
        self._rows: deque[users.Attempt] = deque()
        self._dropped = 0
        self._first_dropped: users.Attempt | None = None
        self._lock = threading.Lock()

    def add(self, attempt: users.Attempt) -> None:
        with self._lock:
            if len(self._rows) < self.size:
                self._rows.append(attempt)
                return
            self._dropped += 1
            self._first_dropped = self._first_dropped or attempt

    def __len__(self) -> int:
        return len(self._rows) + (1 if self._dropped else 0)

    def flush(self) -> None:
        """Write what is queued; kept for the next time while a run holds the file."""
        with self._lock:
            rows, self._rows = list(self._rows), deque()
            dropped, first, self._dropped, self._first_dropped = (
                self._dropped,
                self._first_dropped,
                0,
                None,
            )
        if first is not None:
            rows.append(
                users.Attempt(
                    first.at,
                    "-",
                    None,
                    "not_recorded",
                    f"{dropped} attempts in a flood not recorded one by one",
                )
            )
        try:
            users.record_attempts(self.db, rows)
        except store.DatabaseBusy:
            with self._lock:  # back to the front, in order
                self._rows.extendleft(reversed(rows))
