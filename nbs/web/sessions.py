"""Server-side sessions of the review application (``web_sessions``, migration 016).

The signed cookie carries only a random session id; whether it still opens anything is
decided here, on the server: signing out, the idle timeout, the absolute age limit or a
disabled account end the session's row, and the cookie is worthless from then on, even
copied into another browser.

The database stays the record, but a run may hold its file for a second or two: this
process then answers from its own memory of the sessions it has seen (a session it ended
stays ended), and writes what it could not (ends, last activity) once the file is free.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nbs import store
from nbs.web import users

#: last activity is written at most this often per session (every request would write)
TOUCH_EVERY = dt.timedelta(seconds=60)
#: sessions remembered in memory (for the seconds a run holds the database)
CACHE_SIZE = 10_000

#: ends after which the person may sign in again and find what they typed
TIMED_OUT = ("idle", "expired")


class SessionEnded(Exception):
    """The cookie's session is unknown, signed out, idle too long or too old."""

    def __init__(self, timed_out_user: str | None = None) -> None:
        super().__init__(timed_out_user)
        #: whose session timed out (idle or too old); None when signed out or unknown
        self.timed_out_user = timed_out_user


def _ended(username: str, reason: str | None) -> SessionEnded:
    return SessionEnded(username if reason in TIMED_OUT else None)


@dataclass
class _Known:
    username: str
    role: str
    created_at: dt.datetime
    last_seen: dt.datetime
    stored_seen: dt.datetime  # last activity as written in the database
    ended: bool = False
    end_reason: str | None = None


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """Sessions of one database: started at sign-in, checked on every request, ended at
    sign-out or after ``idle`` without a request (or ``max_age`` after sign-in)."""

    def __init__(
        self,
        db: Path,
        idle: dt.timedelta,
        max_age: dt.timedelta,
        clock: Callable[[], dt.datetime] = store.utc_now,
    ) -> None:
        self.db, self.idle, self.max_age, self.clock = db, idle, max_age, clock
        self._known: dict[str, _Known] = {}
        self._unwritten_ends: dict[str, tuple[dt.datetime, str]] = {}
        self._lock = threading.Lock()

    def start(self, user: users.User, address: str | None) -> str:
        """A new session for ``user``; returns the id for the cookie (stored hashed)."""
        session_id = secrets.token_urlsafe(32)
        digest, now = _digest(session_id), self.clock()
        store.start_session(self.db, digest, user.username, address, now)
        with self._lock:
            self._remember(digest, _Known(user.username, user.role, now, now, now))
        return session_id

    def user(self, session_id: str) -> users.User:
        """Who the session belongs to; :class:`SessionEnded` when it opens nothing any
        more. Counts as activity. Raises ``store.DatabaseBusy`` only for a session this
        process has not seen while a run holds the database."""
        digest, now = _digest(session_id), self.clock()
        known = self._current(digest)
        if known.ended:
            raise _ended(known.username, known.end_reason)
        if now - known.last_seen > self.idle:
            self._end(digest, "idle")
            raise SessionEnded(known.username)
        if now - known.created_at > self.max_age:
            self._end(digest, "expired")
            raise SessionEnded(known.username)
        known.last_seen = now
        if now - known.stored_seen >= TOUCH_EVERY:
            self._touch(digest, known, now)
        return users.User(known.username, known.role)

    def end(self, session_id: str, reason: str = "signed_out") -> None:
        """End a session for good (written now, or as soon as a run frees the database)."""
        self._end(_digest(session_id), reason)

    def remembered(self, session_id: str) -> users.User | None:
        """Who this process last saw using the session (for error pages: no database)."""
        with self._lock:
            known = self._known.get(_digest(session_id))
        return None if known is None or known.ended else users.User(known.username, known.role)

    def flush(self) -> None:
        """Write the ends a run's lock held back (called from time to time)."""
        with self._lock:
            pending = dict(self._unwritten_ends)
        for digest, (when, reason) in pending.items():
            try:
                self._write_end(digest, when, reason)
            except store.DatabaseBusy:
                return
            with self._lock:
                self._unwritten_ends.pop(digest, None)

    @property
    def unwritten(self) -> int:
        """Session ends not written to the database yet."""
        return len(self._unwritten_ends)

    # -- inside ------------------------------------------------------------------------

    def _current(self, digest: str) -> _Known:
        """The session as the database has it, merged with what this process saw."""
        with self._lock:
            known = self._known.get(digest)
            if digest in self._unwritten_ends:  # ended here, not yet written
                reason = self._unwritten_ends[digest][1]
                raise _ended(known.username, reason) if known else SessionEnded()
        if known is not None and known.ended:
            return known
        try:
            row = store.session(self.db, digest)
        except store.DatabaseBusy:
            if known is None:
                raise
            return known  # a run holds the file: this process's memory stands in
        if row is None:
            raise SessionEnded()
        username, role, created_at, last_seen, ended_at, end_reason = row
        if ended_at is not None:
            with self._lock:
                self._known.pop(digest, None)
            raise _ended(username, end_reason)
        if role is None:  # the account was disabled (or removed) since sign-in
            self._end(digest, "disabled")
            raise SessionEnded()
        if known is None:
            known = _Known(username, role, created_at, last_seen, last_seen)
            with self._lock:
                self._remember(digest, known)
        else:
            known.role = role
            known.last_seen = max(known.last_seen, last_seen)
        return known

    def _touch(self, digest: str, known: _Known, now: dt.datetime) -> None:
        try:
            store.touch_session(self.db, digest, now)
        except store.DatabaseBusy:
            return  # written with a later request; the memory holds the activity meanwhile
        known.stored_seen = now

    def _end(self, digest: str, reason: str) -> None:
        now = self.clock()
        with self._lock:
            known = self._known.get(digest)
            if known is not None:
                known.ended, known.end_reason = True, reason
            self._unwritten_ends[digest] = (now, reason)
        self.flush()

    def _write_end(self, digest: str, when: dt.datetime, reason: str) -> None:
        store.end_session(self.db, digest, when, reason)

    def _remember(self, digest: str, known: _Known) -> None:
        """Keep ``known`` (under the lock); forget sessions long idle, then the oldest."""
        self._known[digest] = known
        if len(self._known) <= CACHE_SIZE:
            return
        horizon = self.clock() - self.idle
        for key in [k for k, v in self._known.items() if v.last_seen < horizon]:
            if key not in self._unwritten_ends:
                del self._known[key]
        while len(self._known) > CACHE_SIZE:
            oldest = min(self._known, key=lambda k: self._known[k].last_seen)
            del self._known[oldest]
