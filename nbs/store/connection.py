"""Connections to the database file: short-lived, retried while another process holds the
file, one run at a time, and only to a file that is this pipeline's database.

Rules kept here (see STACK-FACTS: a read-write connection locks the file against every
other process, readers included):

* connections are short-lived and never kept between operations;
* a locked file is retried with backoff, then reported as :class:`DatabaseBusy`;
* a wrong ``--db`` (a SQLite file, a text file, a DuckDB file of another program) is
  refused as it is, before anything is written to it: the migrations would otherwise add
  the screening tables to another program's database, and DuckDB's own errors (or its
  attempt to download a SQLite reader) say nothing a laboratory can act on.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

#: an open connection, for the store functions that share one between several reads
Connection = duckdb.DuckDBPyConnection
#: any error DuckDB raises (other modules catch it without importing DuckDB)
DatabaseError = duckdb.Error
#: DuckDB's input/output error, e.g. a reader without the right to write the file
DatabaseIOError = duckdb.IOException


class NotAScreeningDatabase(ValueError):
    """``--db`` names a file that is not this pipeline's database (refused, untouched)."""


class DatabaseBusy(RuntimeError):
    """The database file stayed locked by another process past the retry budget."""


class RunInProgress(RuntimeError):
    """Another screening run holds this database's run lock."""


@contextlib.contextmanager
def run_lock(db_path: Path) -> Iterator[None]:
    """Exclusive lock for one screening run on a database (``FILE.run.lock`` beside it).

    Two runs started at once (the schedule and a manual start) must not interleave: the
    second is refused at once with a clear message. The OS releases the lock when the
    process dies, so a killed run never leaves a stale lock behind.
    """
    import fcntl

    # by the real path: two runs given the database through a link and by its name (or
    # two links) must meet at the same lock
    real = db_path.resolve()
    lock_path = real.with_name(real.name + ".run.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            raise RunInProgress(
                f"another screening run is writing to {db_path} ({holder}); "
                "try again when it has finished"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for a locked database file: attempts and the first and largest delay."""

    attempts: int = 12
    first_delay_s: float = 0.05
    max_delay_s: float = 2.0


_RETRY: contextvars.ContextVar[RetryPolicy | None] = contextvars.ContextVar(
    "nbs_storage_retry", default=None
)


@contextlib.contextmanager
def retry_policy(policy: RetryPolicy) -> Iterator[None]:
    """Use ``policy`` for the connections opened inside the block (this thread or task only).

    The review application waits a second or two for a run's lock, not the pipeline's
    fifteen, so a coordinator hears at once that a run is writing.
    """
    token = _RETRY.set(policy)
    try:
        yield
    finally:
        _RETRY.reset(token)


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    # another process holds the file, or (in a multi-threaded server) another thread of
    # this process has it open in the other mode for a moment: both pass, so retry
    return ("lock" in text and ("could not set" in text or "conflicting" in text)) or (
        "different configuration" in text
    )


#: databases a run keeps open in this process (:func:`held_open`), by resolved path
_HELD: dict[str, Connection] = {}
_HELD_LOCK = threading.Lock()


@contextlib.contextmanager
def held_open(db_path: Path) -> Iterator[None]:
    """Keep ``db_path`` open while the block runs: every :func:`connect` to it from this
    process is then a cursor of the one open database, not a new open (each of which
    reads the catalogue again: ~20 ms, a run's steps open the file a dozen times). Other
    processes wait for the file meanwhile, as they wait for a run's commit."""
    key = str(Path(db_path).resolve())
    with connect(db_path) as con:
        with _HELD_LOCK:
            _HELD[key] = con
        try:
            yield
        finally:
            with _HELD_LOCK:
                _HELD.pop(key, None)


def _held_cursor(db_path: Path) -> Connection | None:
    if not _HELD:
        return None
    with _HELD_LOCK:
        held = _HELD.get(str(Path(db_path).resolve()))
        return held.cursor() if held is not None else None


def _open(db_path: Path, read_only: bool) -> Connection:
    """A new connection to the file, retried with backoff while another process holds it."""
    policy = _RETRY.get() or RetryPolicy()
    delay = policy.first_delay_s
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False
    }
    for attempt in range(1, policy.attempts + 1):
        try:
            return duckdb.connect(str(db_path), read_only=read_only, config=config)
        except duckdb.Error as exc:
            if not _is_lock_error(exc):
                raise
            if attempt == policy.attempts:
                raise DatabaseBusy(
                    f"{db_path} is locked by another process (a run is writing?); "
                    f"tried {policy.attempts} times"
                ) from exc
            time.sleep(delay * (1 + random.random() * 0.25))
            delay = min(delay * 2, policy.max_delay_s)
    raise AssertionError("unreachable: the last attempt returns or raises")


@contextlib.contextmanager
def connect(db_path: Path, *, read_only: bool = False) -> Iterator[Connection]:
    """A short-lived connection, retried with backoff while another process holds the file
    (the policy of :func:`retry_policy` when one is set, else the default). Inside
    :func:`held_open` of the same file: a cursor of the held database (read-only or not)."""
    con = _held_cursor(db_path)
    if con is None:
        con = _open(db_path, read_only)
    try:
        # DuckDB's own progress bar would print over the CLI's status line, from every
        # statement over two seconds (a connection setting, not a database one)
        con.execute("SET enable_progress_bar = false")
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def transaction(con: Connection) -> Iterator[None]:
    """The block in one transaction: committed at its end, rolled back on any exception
    (a killed process leaves nothing either: DuckDB discards an uncommitted transaction)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        # after a fatal error (disk full...) DuckDB may refuse the ROLLBACK too: the
        # transaction is lost either way, and the first error is the one to report
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def utc_now() -> dt.datetime:
    """Now, as stored: naive UTC, whole seconds."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def fetch(con: Connection, sql: str, params: list[object] | None = None) -> pl.DataFrame:
    """Run a query on an open connection; the complete result as polars."""
    relation = con.sql(sql, params=params) if params else con.sql(sql)
    if relation is None:  # a statement without a result
        return pl.DataFrame()
    table = relation.to_arrow_table()
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def query(db_path: Path, sql: str, params: list[object] | None = None) -> pl.DataFrame:
    """Run a read query on a short-lived read-only connection; the result as polars."""
    with connect(db_path, read_only=True) as con:
        return fetch(con, sql, params)


def fetch_with(con: Connection, sql: str, frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """A query on an open connection that may join the given polars frames (registered
    under their names for this query only)."""
    for name, frame in frames.items():
        con.register(name, frame.to_arrow())
    try:
        return fetch(con, sql)
    finally:
        for name in frames:
            con.unregister(name)


def query_with(db_path: Path, sql: str, frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """A read query that may join the given polars frames (registered under their names)."""
    with connect(db_path, read_only=True) as con:
        return fetch_with(con, sql, frames)


# -- is the file this pipeline's database? --------------------------------------------

#: DuckDB's magic bytes, at offset 8 of its main header
_DUCKDB_MAGIC = b"DUCK"
_SQLITE_MAGIC = b"SQLite format 3\x00"


def _looks_like(head: bytes) -> str:
    if head.startswith(_SQLITE_MAGIC):
        return "a SQLite database"
    if not head:
        return "an empty file"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "not a database"
    return "a text file"


def check_file(db_path: Path) -> None:
    """Refuse a file that exists and is not a DuckDB database (nothing is written to it)."""
    try:
        with open(db_path, "rb") as fh:
            head = fh.read(4096)
    except FileNotFoundError:
        return  # a new database
    if head[8:12] != _DUCKDB_MAGIC:
        raise NotAScreeningDatabase(
            f"{db_path} is {_looks_like(head)}, not a DuckDB database: give the screening "
            "database, or a new file name to create one"
        )


def refuse_foreign(con: Connection, db_path: Path) -> None:
    """Refuse a DuckDB database made by another program: tables, but no
    ``schema_migrations`` (run before the first statement that writes)."""
    names = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() ORDER BY table_name"
        ).fetchall()
    ]
    if names and "schema_migrations" not in names:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise NotAScreeningDatabase(
            f"{db_path} is a DuckDB database of another program (tables: {shown}), not a "
            "screening database; it was left untouched: give a new file name to create one"
        )


@contextlib.contextmanager
def private_creation(db_path: Path) -> Iterator[None]:
    """Inside the block a new database file is created readable by its owner only (0600):
    it holds babies' data. The umask is narrowed only while the file is being created (a
    process-wide setting, so for as short as possible), and the mode is set again after,
    whatever the umask was."""
    new = not db_path.exists()
    old = os.umask(0o077) if new else None
    try:
        yield
    finally:
        if old is not None:
            os.umask(old)
    if new and db_path.exists():
        os.chmod(db_path, 0o600)
