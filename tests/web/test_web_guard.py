"""The review application's sign-in guard, server-side sessions and paging, without a
server: fake clocks, a real DuckDB file."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import duckdb
import pytest

from nbs import store as storage
from nbs.web import users
from nbs.web.common import Pager
from nbs.web.guard import AuditQueue, GuardSettings, LoginGuard, Refusal, Ticket
from nbs.web.sessions import SessionEnded, SessionStore


class Clock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _fail(guard: LoginGuard, name: str, address: str, outcome: str) -> None:
    ticket = guard.admit(name, address)
    assert isinstance(ticket, Ticket), ticket
    guard.release(ticket, users.Verdict(outcome, hashed=True))


def test_an_address_with_failures_waits_a_growing_delay_before_any_hashing() -> None:
    clock = Clock()
    policy = users.ThrottlePolicy(free_failures=2, first_delay_s=1, max_delay_s=8, lock_after=0)
    guard = LoginGuard(GuardSettings(address_policy=policy), clock)
    for i in range(2):
        _fail(guard, f"name{i}", "10.0.0.1", users.UNKNOWN_USER)
    refused = guard.admit("anne", "10.0.0.1")
    assert isinstance(refused, Refusal) and refused.status == 429
    assert "from this address" in refused.message and refused.outcome == users.THROTTLED
    assert isinstance(guard.admit("anne", "10.0.0.2"), Ticket)  # another address is heard
    clock.now += 1.1
    _fail(guard, "name3", "10.0.0.1", users.WRONG_PASSWORD)
    clock.now += 1.1  # the delay doubled to 2 s
    assert isinstance(guard.admit("anne", "10.0.0.1"), Refusal)
    clock.now += 1.0
    assert isinstance(guard.admit("bert", "10.0.0.1"), Ticket)
    clock.now += 10_000  # forgotten after a quiet while
    assert isinstance(guard.admit("carl", "10.0.0.1"), Refusal)  # still checking bert's


def test_unknown_names_are_throttled_and_locked_like_accounts() -> None:
    clock = Clock()
    account = users.ThrottlePolicy(free_failures=1, first_delay_s=1, max_delay_s=4, lock_after=3)
    guard = LoginGuard(GuardSettings(account_policy=account), clock)
    _fail(guard, "ghost", "10.0.0.1", users.UNKNOWN_USER)
    refused = guard.admit("Ghost", "10.0.0.2")  # names are compared in lower case
    assert isinstance(refused, Refusal) and "for this name" in refused.message
    for _ in range(2):
        clock.now += 10
        _fail(guard, "ghost", "10.0.0.3", users.UNKNOWN_USER)
    locked = guard.admit("ghost", "10.0.0.4")
    assert isinstance(locked, Refusal) and locked.status == 403 and "locked" in locked.message
    assert guard.refusal_for(users.Verdict(users.LOCKED), "anne") == locked  # same words


def test_one_attempt_per_name_and_address_and_a_bounded_queue() -> None:
    guard = LoginGuard(GuardSettings(hashing=2, waiting=1))
    first = guard.admit("anne", "10.0.0.1")
    assert isinstance(first, Ticket)
    same_name = guard.admit("anne", "10.0.0.2")
    same_address = guard.admit("bert", "10.0.0.1")
    assert isinstance(same_name, Refusal) and same_name.status == 429
    assert isinstance(same_address, Refusal) and same_address.status == 429
    admitted = [guard.admit(f"n{i}", f"10.0.1.{i}") for i in range(2)]
    assert all(isinstance(t, Ticket) for t in admitted)
    full = guard.admit("zoe", "10.0.2.1")
    assert isinstance(full, Refusal) and full.status == 503 and full.retry_after_s
    guard.release(first, None)  # answered (a run held the database): nothing counted
    assert isinstance(guard.admit("zoe", "10.0.2.1"), Ticket)


def test_the_audit_queue_is_bounded_and_waits_for_a_busy_database(tmp_path: Path) -> None:
    db = tmp_path / "nbs.duckdb"
    storage.migrate(db)
    queue = AuditQueue(db, size=3)
    now = storage.utc_now()
    for i in range(10):
        queue.add(users.Attempt(now, f"name{i}", "10.0.0.1", users.THROTTLED))
    holder = duckdb.connect(str(db))  # another process's lock, as a run holds it
    try:
        with storage.retry_policy(storage.RetryPolicy(attempts=1)):
            queue.flush()
    except storage.DatabaseBusy:  # pragma: no cover - flush keeps the rows instead
        pytest.fail("flush must keep the rows, not fail")
    finally:
        holder.close()
    assert storage.query(db, "SELECT count(*) FROM login_attempts").item() == 0
    queue.flush()
    rows = storage.query(db, "SELECT username, outcome, detail FROM login_attempts").rows()
    assert [r[0] for r in rows[:3]] == ["name0", "name1", "name2"]
    assert rows[3] == ("-", "not_recorded", "7 attempts in a flood not recorded one by one")
    assert len(queue) == 0


class Wall:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 1, 8, 0)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> tuple[SessionStore, Wall]:
    db = tmp_path / "nbs.duckdb"
    users.add_user(db, "anne", "coordinator", "a long passphrase", "root")
    wall = Wall()
    sessions = SessionStore(db, dt.timedelta(minutes=30), dt.timedelta(hours=8), clock=wall)
    return sessions, wall


def test_a_session_ends_after_the_idle_timeout(store: tuple[SessionStore, Wall]) -> None:
    sessions, wall = store
    anne = users.User("anne", "coordinator")
    sid = sessions.start(anne, "10.0.0.1")
    for _ in range(4):  # active every 20 minutes: still signed in after 80 minutes
        wall.now += dt.timedelta(minutes=20)
        assert sessions.user(sid) == anne
    stored = storage.query(sessions.db, "SELECT last_seen_at FROM web_sessions").item()
    assert stored == wall.now  # the activity is written (at most once a minute)
    wall.now += dt.timedelta(minutes=31)
    with pytest.raises(SessionEnded):
        sessions.user(sid)
    with pytest.raises(SessionEnded):  # for good, also read back from the database
        SessionStore(sessions.db, sessions.idle, sessions.max_age, clock=wall).user(sid)
    row = storage.query(sessions.db, "SELECT ended_at, end_reason FROM web_sessions").row(0)
    assert row == (wall.now, "idle")
    sid2 = sessions.start(anne, None)
    wall.now += dt.timedelta(hours=8, minutes=1)  # too old, however active
    with pytest.raises(SessionEnded):
        sessions.user(sid2)


def test_a_session_ended_while_a_run_holds_the_database_stays_ended(
    store: tuple[SessionStore, Wall],
) -> None:
    sessions, _ = store
    anne = users.User("anne", "coordinator")
    kept, ended = sessions.start(anne, None), sessions.start(anne, None)
    holder = duckdb.connect(str(sessions.db))
    try:
        with storage.retry_policy(storage.RetryPolicy(attempts=1)):
            assert sessions.user(kept) == anne  # this process's memory stands in
            sessions.end(ended)
            with pytest.raises(SessionEnded):
                sessions.user(ended)
            with pytest.raises(storage.DatabaseBusy):  # never seen here: cannot tell
                SessionStore(sessions.db, sessions.idle, sessions.max_age).user(kept)
    finally:
        holder.close()
    assert sessions.unwritten == 1
    with pytest.raises(SessionEnded):
        sessions.user(ended)  # still refused before the end is written...
    sessions.flush()
    assert sessions.unwritten == 0
    reasons = storage.query(sessions.db, "SELECT end_reason FROM web_sessions ORDER BY 1")
    assert reasons["end_reason"].to_list() == ["signed_out", None]  # ...and then written


def test_a_disabled_account_loses_its_sessions(store: tuple[SessionStore, Wall]) -> None:
    sessions, _ = store
    sid = sessions.start(users.User("anne", "coordinator"), None)
    users.set_disabled(sessions.db, "anne", True)
    with pytest.raises(SessionEnded):
        sessions.user(sid)
    assert storage.query(sessions.db, "SELECT end_reason FROM web_sessions").item() == "disabled"


def test_pages_of_a_list() -> None:
    pager = Pager.of(7, 100, 6273)
    assert (pager.pages, pager.offset, pager.first_row, pager.last_row) == (63, 600, 601, 700)
    assert pager.window() == [1, None, 5, 6, 7, 8, 9, None, 63]
    assert Pager.of(99, 100, 250).number == 3 and Pager.of(0, 100, 0).first_row == 0
    assert Pager.url("/recalls", {"status": "open"}, 2) == "/recalls?status=open&page=2"


def test_the_secret_file_is_readable_by_its_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbs.web.app import load_secret_key

    monkeypatch.delenv("NBS_WEB_SECRET", raising=False)
    db = tmp_path / "nbs.duckdb"
    old = os.umask(0)  # even with a permissive umask
    try:
        key = load_secret_key(db)
    finally:
        os.umask(old)
    secret = tmp_path / "nbs.duckdb.web-secret"
    assert len(key) > 40 and stat.S_IMODE(secret.stat().st_mode) == 0o600
    secret.chmod(0o644)  # widened by someone: put back
    assert load_secret_key(db) == key
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
