"""Server-side sessions of the review application (``web_sessions``): only a hash of the
cookie's session id is kept. When a session ends and why is :mod:`nbs.web.sessions`'s."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from nbs.store.connection import connect, query


def start_session(
    db_path: Path, session_hash: str, username: str, address: str | None, now: dt.datetime
) -> None:
    """A new session of ``username``, started and last seen ``now``."""
    with connect(db_path) as con:
        con.execute(
            "INSERT INTO web_sessions VALUES (?, ?, ?, ?, ?, NULL, NULL)",
            [session_hash, username, address, now, now],
        )


def session(db_path: Path, session_hash: str) -> tuple[Any, ...] | None:
    """(username, role of the account if still active, started, last seen, ended, end
    reason) of a session, or None."""
    rows = query(
        db_path,
        "SELECT s.username, u.role, s.created_at, s.last_seen_at, s.ended_at, s.end_reason "
        "FROM web_sessions s LEFT JOIN users u ON u.username = s.username AND NOT u.disabled "
        "WHERE s.session_hash = ?",
        [session_hash],
    ).rows()
    return rows[0] if rows else None


def touch_session(db_path: Path, session_hash: str, now: dt.datetime) -> None:
    """The session's last activity."""
    with connect(db_path) as con:
        con.execute(
            "UPDATE web_sessions SET last_seen_at = ? WHERE session_hash = ?",
            [now, session_hash],
        )


def end_session(db_path: Path, session_hash: str, when: dt.datetime, reason: str) -> None:
    """End a session (a session ended before keeps its first end)."""
    with connect(db_path) as con:
        con.execute(
            "UPDATE web_sessions SET ended_at = ?, end_reason = ? "
            "WHERE session_hash = ? AND ended_at IS NULL",
            [when, reason, session_hash],
        )
