"""The one module that talks to DuckDB.

Rules it keeps (see STACK-FACTS: a read-write connection locks the file against every
other process, readers included):

* connections are short-lived and never kept between operations;
* a locked file is retried with backoff, then reported as :class:`DatabaseBusy`;
* the schema is created by numbered migrations (``migrations/NNN_name.sql``);
* a run's writes happen in one transaction, keyed by natural ids, so a crash leaves the
  previous state and a repeat writes nothing twice.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import importlib.resources
import os
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from nbs.run.faults import crash_point
from nbs.store import dbfile

MIGRATION_PACKAGE = "nbs.store.migrations"
_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


class DatabaseBusy(RuntimeError):
    """The database file stayed locked by another process past the retry budget."""


class RunInProgress(RuntimeError):
    """Another screening run holds this database's run lock."""


class MigrationFailed(RuntimeError):
    """A migration stopped (its transaction rolled back: the database is as it was)."""


@contextlib.contextmanager
def run_lock(db_path: Path) -> Iterator[None]:
    """Exclusive lock for one screening run on a database (``FILE.run.lock`` beside it).

    Two runs started at once (the schedule and a manual start) must not interleave: the
    second is refused at once with a clear message. The OS releases the lock when the
    process dies, so a killed run never leaves a stale lock behind.
    """
    import fcntl
    import os

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


@contextlib.contextmanager
def connect(db_path: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection, retried with backoff while another process holds the file
    (the policy of :func:`retry_policy` when one is set, else the default)."""
    policy = _RETRY.get() or RetryPolicy()
    delay = policy.first_delay_s
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False
    }
    for attempt in range(1, policy.attempts + 1):
        try:
            con = duckdb.connect(str(db_path), read_only=read_only, config=config)
            break
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
    try:
        # DuckDB's own progress bar would print over the CLI's status line, from every
        # statement over two seconds (a connection setting, not a database one)
        con.execute("SET enable_progress_bar = false")
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
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


def migration_scripts() -> list[tuple[int, str, str]]:
    """(number, name, sql) of every packaged migration, in order."""
    found = []
    for entry in importlib.resources.files(MIGRATION_PACKAGE).iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    numbers = [n for n, _, _ in found]
    if len(numbers) != len(set(numbers)):
        raise RuntimeError(f"two migrations share a number: {sorted(numbers)}")
    return sorted(found)


def migrate(db_path: Path) -> list[int]:
    """Create the database if needed and apply the migrations it lacks (each in its own
    transaction). Returns the numbers applied."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    dbfile.check_file(db_path)
    applied: list[int] = []
    with dbfile.private_creation(db_path), connect(db_path) as con:
        dbfile.refuse_foreign(con, db_path)
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
        rows = con.execute("SELECT version FROM schema_migrations").fetchall()
        done = {r[0] for r in rows}
        for number, name, sql in migration_scripts():
            if number in done:
                continue
            try:
                with _transaction(con):
                    con.execute(sql)
                    con.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, ?)", [number, name, _now()]
                    )
            except duckdb.Error as exc:
                raise MigrationFailed(
                    f"database {db_path}: migration {number:03d} ({name}) stopped and changed "
                    f"nothing: {exc}"
                ) from exc
            applied.append(number)
    return applied


def ensure_schema(db_path: Path) -> list[int]:
    """Bring an existing database up to this software's schema (after an upgrade of the
    software, a command that reads a view added since would otherwise fail); one read-only
    look when nothing is missing. Returns the migrations applied.

    Migrates under the run lock, as a run does: a run computing meanwhile would commit
    into tables of another shape (refused with :class:`RunInProgress` instead)."""
    if schema_version(db_path) >= max(n for n, _, _ in migration_scripts()):
        return []
    with run_lock(db_path):
        return migrate(db_path)


def schema_version(db_path: Path) -> int:
    """Highest migration applied (0 for a new file)."""
    if not db_path.exists():
        return 0
    dbfile.check_file(db_path)
    with connect(db_path, read_only=True) as con:
        try:
            row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        except duckdb.CatalogException:
            dbfile.refuse_foreign(con, db_path)
            return 0  # an empty DuckDB file: migrated like a new one
    return int(row[0]) if row else 0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def fetch(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None
) -> pl.DataFrame:
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


def fetch_with(
    con: duckdb.DuckDBPyConnection, sql: str, frames: dict[str, pl.DataFrame]
) -> pl.DataFrame:
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


#: the storage format of files other programs open (the officials' statistics file): the
#: DuckDB 1.x command-line tool a new user installs reads it; the default of DuckDB 2 it
#: refuses ("can only read versions between 64 and 68")
PORTABLE_STORAGE_VERSION = "v1.2.0"


def write_tables(
    db_path: Path, tables: dict[str, pl.DataFrame], storage_version: str | None = None
) -> None:
    """Create a new DuckDB file holding the given frames as tables (one transaction), in
    the given storage format (default: this DuckDB's own)."""
    if storage_version is None:
        with connect(db_path) as con, _transaction(con):
            _create_tables(con, tables, "")
        return
    # in memory: the file is attached in the chosen format
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    try:
        quoted = str(db_path).replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS out (STORAGE_VERSION '{storage_version}')")
        with _transaction(con):
            _create_tables(con, tables, "out.")
        con.execute("DETACH out")
    finally:
        con.close()


def _create_tables(
    con: duckdb.DuckDBPyConnection, tables: dict[str, pl.DataFrame], at: str
) -> None:
    for name, frame in tables.items():
        con.register("_frame", frame.to_arrow())
        con.execute(f'CREATE TABLE {at}"{name}" AS SELECT * FROM _frame')
        con.unregister("_frame")


def load_generated(db_path: Path, frames: dict[str, pl.DataFrame], sql: str) -> None:
    """Run a generating SQL script with the given frames registered, in one transaction
    (synthetic cohorts for tests and benchmarks; never used on a laboratory's data)."""
    with connect(db_path) as con:
        for name, frame in frames.items():
            con.register(name, frame.to_arrow())
        with _transaction(con):
            con.execute(sql)


# -- the run's single transaction ----------------------------------------------------


#: where staged files leave their Parquet parts, inside a run's work folder
STAGED_DIR = "staged"


def staged_part(
    work_dir: Path, what: str, kind: str, sha256: str = "*", index: int | None = None
) -> Path:
    """A Parquet part a staged file leaves in the run's work folder (``what``: raw, good
    or quarantine; block ``index``), or with the defaults a glob pattern of such parts."""
    block = "*" if index is None else f"{index:05d}"
    return work_dir / STAGED_DIR / f"{what}-{kind}-{sha256}-{block}.parquet"


def write_part(frame: pl.DataFrame, path: Path) -> None:
    """Write a run's work part. Without column statistics: the commit reads every row of
    a part, so no reader skips anything by them, and computing them took a quarter of the
    write (measured on a block of 800,000 results). Snappy, not zstd: a part is read once,
    soon after, from memory; zstd's smaller file cost 40 % more CPU to write and 20 % more
    to insert (11 M raw result rows: 4.1 + 6.9 CPU-seconds against 2.9 + 5.7)."""
    frame.write_parquet(path, statistics=False, compression="snappy")


@dataclass(frozen=True)
class RunFiles:
    """Parquet files of a computed run, written by the pipeline and read by the commit."""

    files: Path
    raw_specimens: Path
    raw_results: Path
    quarantine: Path
    specimens: Path
    warnings: Path
    results: Path
    calls: Path  # the calls, each with its card's collected_at (the commit joins nothing for it)
    worklist: Path
    recalls: Path
    findings: Path  # cards with a specimen problem or that break a rule (answer_blocker)
    markers: Path  # (condition, marker) of the configuration, for the statistics views
    multi_card_babies: Path  # babies with more than one card among the cards evaluated
    reevaluated_cards: Path  # cards stored before the run and evaluated again

    @classmethod
    def in_dir(cls, folder: Path) -> RunFiles:
        """The standard file names inside a run's work folder. ``calls`` and the raw rows
        are patterns: the calls are written in parts, a chunk of cards at a time, and the
        raw rows as each file was staged, a block of rows at a time (bounded memory)."""
        files = {name: folder / f"{name}.parquet" for name in cls.__dataclass_fields__}
        files["calls"] = folder / "calls" / "part-*.parquet"
        files["raw_specimens"] = staged_part(folder, "raw", "specimens")
        files["raw_results"] = staged_part(folder, "raw", "results")
        return cls(**files)


@dataclass(frozen=True)
class CommitCounts:
    """What the commit added (rows new to the database, not rows offered)."""

    run_seq: int
    specimens: int
    results: int
    quarantined: int
    calls: int
    retests_opened: int
    retests_done: int
    recalls: int
    recalls_answered: int = 0
    recalls_escalated: int = 0


RECALL_ID_SQL = (
    "'R-' || upper(substr(md5(specimen_id || '|' || coalesce(condition, '*') || '|' || action),"
    " 1, 10))"
)


@dataclass(frozen=True)
class RunRecord:
    """The ``runs`` row of a run."""

    run_id: str
    started_at: dt.datetime
    inbox: str
    engine: str
    cutoff_versions: str
    summary_json: str


def _parquet(path: Path) -> str:
    """SQL reading a Parquet file (or a pattern of parts) of the run's work folder."""
    return "read_parquet('" + str(path).replace("'", "''") + "')"


#: DuckDB's memory during a run's commit (``NBS_COMMIT_MEMORY`` overrides, e.g. ``4GB``).
#: A bound, so that a huge batch spills to disk instead of taking DuckDB's default of 80 %
#: of the machine. Not lower: at 2 GB the commit of a million cards kept switching its
#: aggregates to their slower spilling mode (first cards per condition 3.5-3.8 s instead
#: of 2.1-2.4 s, the commit 2-4 s longer) while the process's peak memory was the same
#: (3.0-3.1 GiB in the commit at 2 GB and at 8 GB); 4 GB was sometimes one, sometimes
#: the other.
COMMIT_MEMORY = "8GB"


def commit_run(db_path: Path, files: RunFiles, run: RunRecord) -> CommitCounts:
    """Write a computed run in one transaction. Re-committing the same content adds nothing."""
    with connect(db_path) as con:
        # a bounded commit: DuckDB spills to disk beyond this rather than grow with the
        # batch (its default is 80% of the machine); rows need no order within a table
        memory = os.environ.get("NBS_COMMIT_MEMORY", COMMIT_MEMORY)
        con.execute("SET memory_limit = ?", [memory])
        con.execute("SET preserve_insertion_order = false")
        with _transaction(con):
            counts = _write(con, files, run, _now())
            crash_point("inside-commit")
    return counts


def commit_reprocess(db_path: Path, calls: Path, run: RunRecord) -> tuple[int, int]:
    """Write a reprocessing run's calls (kind ``reprocess``) and its ``runs`` row in one
    transaction; the screening calls, recalls and statistics are not touched. Returns
    (run_seq, calls added); the same calls twice add nothing."""
    source = _parquet(calls)
    now = _now()
    with connect(db_path) as con, _transaction(con):
        run_seq = _insert_run(con, run, now)
        before = _count(con, "calls")
        # a call already made under this version from the same evidence is not repeated
        _insert_new_calls(con, source, run.run_id, run_seq, now, "reprocess")
        added = _count(con, "calls") - before
    return run_seq, added


def _insert_run(con: duckdb.DuckDBPyConnection, run: RunRecord, now: dt.datetime) -> int:
    """The run's ``runs`` row, with the next run number (returned)."""
    row = con.execute("SELECT coalesce(max(run_seq), 0) + 1 FROM runs").fetchone()
    run_seq = int(row[0]) if row else 1
    con.execute(
        "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run.run_id,
            run_seq,
            run.started_at,
            now,
            run.inbox,
            run.engine,
            run.cutoff_versions,
            run.summary_json,
        ],
    )
    return run_seq


def _insert_new_calls(
    con: duckdb.DuckDBPyConnection,
    source: str,
    run_id: str,
    run_seq: int,
    now: dt.datetime,
    kind: str,
) -> None:
    """Insert calls not already made: the natural key is (card, condition, cutoff version,
    evidence), so a card re-evaluated on the same punches under the same version adds no
    row, whoever made the earlier call (a screening or a reprocessing run)."""
    con.execute(
        f"INSERT INTO calls SELECT specimen_id, baby_id, condition, call, urgency, "
        f"level_first, level_final, basis, reason, explanation, rule_version, evidence, "
        f"?, ?, ?, ? FROM {source} n WHERE NOT EXISTS (SELECT 1 FROM calls c "
        f"WHERE c.specimen_id = n.specimen_id AND c.condition = n.condition "
        f"AND c.rule_version IS NOT DISTINCT FROM n.rule_version AND c.evidence = n.evidence)",
        [run_id, run_seq, now, kind],
    )


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _write(
    con: duckdb.DuckDBPyConnection, f: RunFiles, run: RunRecord, now: dt.datetime
) -> CommitCounts:
    run_seq = _insert_run(con, run, now)
    run_id = run.run_id
    before = {
        t: _count(con, t)
        for t in ("specimens", "results", "quarantine", "calls", "retests", "recalls")
    }
    open_before = _count(con, "retests WHERE status = 'open'")
    # The run's files not recorded before this commit (a file is kept once, by content).
    # Every raw row, card and result comes from one of them, so a commit repeated (a
    # retried task) adds none; looking up each result's key instead cost 7 s at a million
    # cards.
    # The keys themselves were checked against the database by the run (under its lock).
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _new_files AS SELECT file_sha256 FROM {_parquet(f.files)} "
        f"WHERE file_sha256 NOT IN (SELECT file_sha256 FROM ingested_files)"
    )
    new_file = "file_sha256 IN (SELECT file_sha256 FROM _new_files)"
    con.execute(
        f"INSERT INTO raw_specimen_rows SELECT * FROM {_parquet(f.raw_specimens)} WHERE {new_file}"
    )
    con.execute(
        f"INSERT INTO raw_result_rows SELECT * FROM {_parquet(f.raw_results)} WHERE {new_file}"
    )
    con.execute(
        f"INSERT OR IGNORE INTO ingested_files SELECT file_sha256, file_name, kind, ?, ?, "
        f"status, rows_read, rows_quarantined, archived_as, error FROM {_parquet(f.files)}",
        [run_id, now],
    )
    con.execute(
        f"INSERT OR IGNORE INTO quarantine SELECT file_sha256, file_name, kind, row_number, "
        f"column_name, value, reason, ?, ? FROM {_parquet(f.quarantine)}",
        [run_id, now],
    )
    # a plain insert: the run kept only cards not stored (checked under its lock), and a
    # card stored all the same would fail the commit rather than be skipped in silence.
    # Checking every key for a conflict (INSERT OR IGNORE) cost 0.3 s at a million cards
    con.execute(
        f"INSERT INTO specimens SELECT specimen_id, baby_id, birth_at, collected_at, "
        f"received_at, sex, birth_weight_g, gestational_age_weeks, transfusion, "
        f"parenteral_nutrition, consent_cf, specimen_quality, submitter, file_sha256, "
        f"row_number, ?, NULL, NULL, NULL, last_transfusion_at "
        f"FROM {_parquet(f.specimens)} WHERE {new_file}",
        [run_id],
    )
    con.execute(
        f"INSERT OR IGNORE INTO specimen_warnings SELECT specimen_id, column_name, reason, ? "
        f"FROM {_parquet(f.warnings)}",
        [run_id],
    )
    con.execute(
        f"INSERT INTO results SELECT specimen_id, analyte, replicate, value, unit, "
        f"value_reported, measured_at, flag, file_sha256, row_number, ?, censored "
        f"FROM {_parquet(f.results)} WHERE {new_file}",
        [run_id],
    )
    con.execute("DROP TABLE _new_files")
    _insert_new_calls(con, _parquet(f.calls), run_id, run_seq, now, "screening")
    con.execute(
        f"INSERT OR IGNORE INTO retests SELECT specimen_id, condition, reason, priority, "
        f"rule_version, ?, ?, 'open', NULL, NULL FROM {_parquet(f.worklist)}",
        [now, run_id],
    )
    # a retest is done once the card's current call for the condition is no longer 'retest'
    con.execute(
        f"UPDATE retests SET status = 'done', done_at = ?, done_run_id = ? "
        f"WHERE status = 'open' AND (specimen_id, condition) IN ("
        f"  SELECT (specimen_id, condition) FROM {_parquet(f.calls)} WHERE call <> 'retest')",
        [now, run_id],
    )
    con.execute(
        f"INSERT OR IGNORE INTO recalls (recall_id, baby_id, specimen_id, condition, action, "
        f"urgency, reason, rule_version, created_at, run_id, status, stage, card_birth_at, "
        f"card_collected_at) "
        f"SELECT {RECALL_ID_SQL}, r.baby_id, r.specimen_id, r.condition, r.action, r.urgency, "
        f"r.reason, r.rule_version, ?, ?, 'open', 'open', s.birth_at, s.collected_at "
        f"FROM {_parquet(f.recalls)} r LEFT JOIN specimens s USING (specimen_id)",
        [now, run_id],
    )
    answered, escalated = _answer_recalls(con, _parquet(f.calls), _parquet(f.findings), run_id, now)
    _keep_statistics(
        con,
        _parquet(f.calls),
        _parquet(f.specimens),
        _parquet(f.warnings),
        _parquet(f.markers),
        _parquet(f.multi_card_babies),
        _parquet(f.reevaluated_cards),
        now,
    )
    after = {t: _count(con, t) for t in before}
    open_after = _count(con, "retests WHERE status = 'open'")
    opened = after["retests"] - before["retests"]
    return CommitCounts(
        run_seq=run_seq,
        specimens=after["specimens"] - before["specimens"],
        results=after["results"] - before["results"],
        quarantined=after["quarantine"] - before["quarantine"],
        calls=after["calls"] - before["calls"],
        retests_opened=opened,
        retests_done=open_before + opened - open_after,
        recalls=after["recalls"] - before["recalls"],
        recalls_answered=answered,
        recalls_escalated=escalated,
    )


def _keep_statistics(
    con: duckdb.DuckDBPyConnection,
    calls: str,
    cards: str,
    warnings: str,
    markers: str,
    multi_card_babies: str,
    reevaluated_cards: str,
    now: dt.datetime,
) -> None:
    """Keep what the statistics views read, in the run's transaction (idempotent): when
    each card's calls became final (``specimens.reported_at``), each baby's first card
    (``specimens.first_of_baby``) and first evaluated card per condition with its current
    call (``screened``), the year a recall's baby is counted in (``recalls.cohort_year``),
    the conditions' markers, and which cards lack essential information. Only this run's
    babies are touched."""
    con.execute(
        f"UPDATE specimens SET missing_information = true WHERE specimen_id IN ("
        f"  SELECT specimen_id FROM {warnings} "
        f"  WHERE reason LIKE 'missing essential information%') "
        f"AND NOT coalesce(missing_information, false)"
    )
    con.execute(
        f"UPDATE specimens SET reported_at = ? WHERE reported_at IS NULL AND specimen_id IN ("
        f"  SELECT specimen_id FROM {calls} GROUP BY specimen_id "
        f"  HAVING NOT bool_or(call = 'retest'))",
        [now],
    )
    con.execute(
        f"UPDATE specimens SET first_of_baby = (specimens.specimen_id = f.first_id) FROM ("
        f"  SELECT baby_id, arg_min(specimen_id, (collected_at, specimen_id)) AS first_id "
        f"  FROM specimens "
        f"  WHERE baby_id IN (SELECT baby_id FROM {cards}) GROUP BY baby_id) f "
        f"WHERE specimens.baby_id = f.baby_id "
        f"AND specimens.first_of_baby IS DISTINCT FROM (specimens.specimen_id = f.first_id)"
    )
    # the run's first evaluated card per baby and condition, and its call, computed once
    # for both uses; cards collected at the same time: the smaller id, as the evaluation
    # orders them. Only babies with more than one card in the run need grouping (a few in
    # a thousand): grouping all seven million calls of a million cards took 2.1 s, this 0.7 s
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _firsts AS "
        f"WITH evaluated AS ("
        f"  SELECT condition, baby_id, specimen_id, collected_at, call FROM {calls} "
        f"  WHERE call <> 'not_evaluated') "
        f"SELECT * FROM evaluated ANTI JOIN {multi_card_babies} USING (baby_id) "
        f"UNION ALL "
        f"SELECT condition, baby_id, arg_min(specimen_id, (collected_at, specimen_id)), "
        f"min(collected_at), arg_min(call, (collected_at, specimen_id)) "
        f"FROM evaluated SEMI JOIN {multi_card_babies} USING (baby_id) "
        f"GROUP BY condition, baby_id"
    )
    # a card collected earlier that arrives late becomes the baby's first card (before the
    # insert: a row the insert adds comes from _firsts and needs no update, and at a million
    # new babies the update then joins an empty table instead of seven million rows)
    con.execute(
        "UPDATE screened SET first_specimen_id = n.specimen_id, "
        "first_collected_at = n.collected_at, year = year(n.collected_at), "
        "first_call = n.call FROM _firsts n "
        "WHERE screened.condition = n.condition AND screened.baby_id = n.baby_id "
        "AND (n.collected_at, n.specimen_id) "
        "< (screened.first_collected_at, screened.first_specimen_id)"
    )
    con.execute(
        "INSERT INTO screened (condition, baby_id, first_specimen_id, first_collected_at, "
        "year, first_call) "
        "SELECT condition, baby_id, specimen_id, collected_at, year(collected_at), call "
        "FROM _firsts n WHERE NOT EXISTS ("
        "  SELECT 1 FROM screened x WHERE x.condition = n.condition AND x.baby_id = n.baby_id)"
    )
    # The run's call is a new card's only call. A card evaluated again keeps its latest
    # screening call: the run adds none where the same call (version, evidence) was made
    # before, by a screening or a reprocessing run. Latest as in the view screening_calls,
    # by arg_max: the view's window is not narrowed to these cards (1.3 s against 0.13 s
    # for 200 cards among a million)
    con.execute(
        f"UPDATE screened SET first_call = l.call FROM ("
        f"  SELECT specimen_id, condition, arg_max(call, run_seq) AS call FROM calls "
        f"  WHERE kind = 'screening' "
        f"  AND specimen_id IN (SELECT specimen_id FROM {reevaluated_cards}) "
        f"  GROUP BY specimen_id, condition) l "
        f"WHERE screened.first_specimen_id = l.specimen_id "
        f"AND screened.condition = l.condition AND screened.first_call IS DISTINCT FROM l.call"
    )
    con.execute("DROP TABLE _firsts")
    con.execute(
        f"UPDATE recalls SET cohort_year = s.year FROM screened s "
        f"WHERE recalls.condition = s.condition AND recalls.baby_id = s.baby_id "
        f"AND recalls.baby_id IN (SELECT baby_id FROM {calls}) "
        f"AND recalls.cohort_year IS DISTINCT FROM s.year"
    )
    con.execute(f"INSERT OR IGNORE INTO condition_markers SELECT condition, marker FROM {markers}")
    span = con.execute(
        f"SELECT min(date_trunc('month', collected_at))::DATE, "
        f"max(date_trunc('month', collected_at))::DATE FROM {calls}"
    ).fetchone()
    if span and span[0] is not None:
        con.execute(
            "DELETE FROM marker_month_percentiles WHERE month BETWEEN ? AND ?", [span[0], span[1]]
        )
        con.execute(
            "INSERT INTO marker_month_percentiles SELECT * FROM marker_month_stats(?, ?)",
            [span[0], span[1]],
        )


#: who the audit trail names for changes the screening run makes itself
PIPELINE_ACTOR = "pipeline"

_ANSWERS_SQL = """
CREATE OR REPLACE TEMP TABLE _answers AS
WITH new_calls AS (
    SELECT c.specimen_id, c.baby_id, c.condition, c.call, c.basis, c.collected_at,
           f.answer_blocker
    FROM {calls} c LEFT JOIN {findings} f USING (specimen_id)
    -- only babies with an open repeat-card recall can answer one (a few in a million)
    WHERE c.baby_id IN (SELECT baby_id FROM recalls
                        WHERE status = 'open' AND action = 'repeat_specimen')
),
cards AS (
    SELECT specimen_id, baby_id, any_value(collected_at) AS collected_at,
           any_value(answer_blocker) AS blocker,
           bool_or(call IN ('repeat_specimen', 'referral')) AS abnormal,
           -- in text order: the note an audit event keeps must not depend on row order
           string_agg(DISTINCT condition || ' ' || call, ', '
                      ORDER BY condition || ' ' || call)
               FILTER (WHERE call IN ('repeat_specimen', 'referral')) AS abnormal_calls,
           -- a condition the card has not answered yet: retests or a second tier awaited,
           -- too premature for the marker, or a result still missing; a condition not
           -- screened for a reason no card changes (no consent, too old for the marker)
           -- does not hold the card back
           bool_or(call = 'retest'
                   OR (call = 'not_evaluated' AND coalesce(basis, '') NOT IN ({settled})))
               AS pending
    FROM new_calls GROUP BY specimen_id, baby_id
),
candidates AS (
    -- a specimen-level recall is answered by the whole of a later card that meets the
    -- specimen rules itself (not unsatisfactory, not too early, not too soon after a
    -- transfusion, old enough for the preterm protocol) and has every condition answered
    SELECT r.recall_id, r.stage, r.urgency, r.answered_by_specimen_id AS answered_before,
           k.specimen_id AS answer, k.collected_at,
           CASE WHEN k.abnormal THEN 'escalate'
                WHEN k.pending OR k.blocker IS NOT NULL THEN NULL
                ELSE 'close' END AS verdict,
           coalesce(k.abnormal_calls, '') AS detail
    FROM recalls r JOIN specimens rs ON rs.specimen_id = r.specimen_id
    JOIN cards k ON k.baby_id = r.baby_id AND k.collected_at > rs.collected_at
    WHERE r.status = 'open' AND r.action = 'repeat_specimen' AND r.condition IS NULL
    UNION ALL
    -- a borderline recall of one condition by that condition's negative call on a later
    -- card that meets the specimen rules itself
    SELECT r.recall_id, r.stage, r.urgency, r.answered_by_specimen_id,
           n.specimen_id, n.collected_at,
           CASE WHEN n.call IN ('repeat_specimen', 'referral') THEN 'escalate'
                WHEN n.call = 'negative' AND n.answer_blocker IS NULL THEN 'close'
                ELSE NULL END,
           n.condition || ' ' || n.call
    FROM recalls r JOIN specimens rs ON rs.specimen_id = r.specimen_id
    JOIN new_calls n ON n.baby_id = r.baby_id AND n.condition = r.condition
                    AND n.collected_at > rs.collected_at
    WHERE r.status = 'open' AND r.action = 'repeat_specimen' AND r.condition IS NOT NULL
)
SELECT * FROM candidates
WHERE verdict IS NOT NULL
  AND (verdict = 'close' OR answered_before IS DISTINCT FROM answer)
QUALIFY row_number() OVER (PARTITION BY recall_id
                           ORDER BY verdict = 'escalate' DESC, collected_at DESC, answer) = 1
"""

#: the audit events of an answered recall, one statement per field so that their
#: sequence numbers keep this order (link, stage, outcome / urgency)
_ANSWER_EVENTS: tuple[tuple[str, str, str, str], ...] = (
    ("answered_by_specimen_id", "answered_before", "answer", "TRUE"),
    ("stage", "stage", "'closed'", "verdict = 'close'"),
    ("outcome", "NULL", "'repeat_normal'", "verdict = 'close'"),
    ("urgency", "urgency", "'urgent'", "verdict = 'escalate' AND urgency <> 'urgent'"),
)
_ANSWER_NOTE_SQL = (
    "CASE WHEN ? <> 'answered_by_specimen_id' THEN NULL "
    "WHEN verdict = 'close' "
    "THEN 'repeat card ' || answer || ' screened negative (run ' || ? || ')' "
    "ELSE 'repeat card ' || answer || ' still abnormal: ' || detail || ' (run ' || ? || ')' END"
)


def _answer_recalls(
    con: duckdb.DuckDBPyConnection, calls: str, findings: str, run_id: str, now: dt.datetime
) -> tuple[int, int]:
    """Let later cards of the same baby answer open repeat-card recalls, inside the run's
    transaction: a card that can answer and screens negative closes the recall
    (``repeat_normal``, linked to the card); a card still abnormal escalates it to urgent
    and links it. Each change is an audit event by :data:`PIPELINE_ACTOR`. Idempotent: a
    recall already closed, or already linked to the same card, is left alone."""
    from nbs.evaluate.decide import SETTLED_BASES

    settled = ", ".join(f"'{b}'" for b in SETTLED_BASES)
    con.execute(_ANSWERS_SQL.format(calls=calls, findings=findings, settled=settled))
    for field, old, new, where in _ANSWER_EVENTS:
        con.execute(
            f"INSERT INTO recall_events SELECT recall_id, ?, ?, ?, {old}, {new}, "
            f"{_ANSWER_NOTE_SQL}, nextval('recall_event_seq') FROM _answers WHERE {where} "
            f"ORDER BY recall_id",
            [now, PIPELINE_ACTOR, field, field, run_id, run_id],
        )
    con.execute(
        "UPDATE recalls SET stage = 'closed', status = 'closed', outcome = 'repeat_normal', "
        "closed_at = ?, closed_by = ?, answered_by_specimen_id = a.answer "
        "FROM _answers a WHERE recalls.recall_id = a.recall_id AND a.verdict = 'close'",
        [now, PIPELINE_ACTOR],
    )
    con.execute(
        "UPDATE recalls SET urgency = 'urgent', answered_by_specimen_id = a.answer "
        "FROM _answers a WHERE recalls.recall_id = a.recall_id AND a.verdict = 'escalate'"
    )
    row = con.execute(
        "SELECT count(*) FILTER (WHERE verdict = 'close'), "
        "count(*) FILTER (WHERE verdict = 'escalate') FROM _answers"
    ).fetchone()
    con.execute("DROP TABLE _answers")
    return (int(row[0]), int(row[1])) if row else (0, 0)


# -- reads used by the pipeline and the command line ---------------------------------


def first_punches(
    con: duckdb.DuckDBPyConnection, markers: list[str], since: dt.datetime
) -> pl.DataFrame:
    """Stored first punches of these markers on cards collected since ``since``:
    ``specimen_id, analyte, value, collected_at`` (reference distributions of percentile
    limits)."""
    return fetch(
        con,
        "SELECT r.specimen_id, r.analyte, r.value, s.collected_at FROM results r "
        "JOIN specimens s USING (specimen_id) WHERE r.replicate = 1 AND r.value IS NOT NULL "
        f"AND r.analyte IN ({', '.join('?' for _ in markers)}) AND s.collected_at >= ?",
        [*markers, since],
    )


def prior_calls(con: duckdb.DuckDBPyConnection, ids: pl.DataFrame) -> pl.DataFrame:
    """The current screening call of each of these cards (``ids``: ``specimen_id``) per
    condition, with the card's baby and collection time (``escalation.PRIOR_SCHEMA``)."""
    return fetch_with(
        con,
        "SELECT c.specimen_id, any_value(c.baby_id) AS baby_id, c.condition, "
        "any_value(s.collected_at) AS collected_at, arg_max(c.call, c.run_seq) AS call, "
        "arg_max_null(c.level_first, c.run_seq) AS level_first, "
        "arg_max_null(c.level_final, c.run_seq) AS level_final, "
        "arg_max_null(c.explanation, c.run_seq) AS explanation "
        "FROM calls c JOIN specimens s USING (specimen_id) SEMI JOIN ids USING (specimen_id) "
        "WHERE c.kind = 'screening' GROUP BY c.specimen_id, c.condition",
        {"ids": ids},
    )


def known_files(db_path: Path, shas: list[str]) -> pl.DataFrame:
    """Files already recorded: ``file_sha256, file_name, status, archived_as``."""
    frame = pl.DataFrame({"file_sha256": shas}, schema={"file_sha256": pl.String})
    return query_with(
        db_path,
        "SELECT f.file_sha256, f.file_name, f.status, f.archived_as FROM ingested_files f "
        "SEMI JOIN wanted w USING (file_sha256)",
        {"wanted": frame},
    )


def recall_list(db_path: Path, status: str | None = None) -> pl.DataFrame:
    """The recall list, urgent first, then newest."""
    where = "WHERE status = ?" if status else ""
    return query(
        db_path,
        f"SELECT recall_id, baby_id, specimen_id, condition, action, urgency, status, stage, "
        f"outcome, created_at, closed_at, closed_by, rule_version, reason, "
        f"answered_by_specimen_id, note FROM recall_list {where} "
        f"ORDER BY urgency = 'urgent' DESC, created_at DESC, recall_id",
        [status] if status else [],
    )


def utc_now() -> dt.datetime:
    """Now, as stored: naive UTC, whole seconds."""
    return _now()


def recall(db_path: Path, recall_id: str) -> dict[str, object] | None:
    """One recall as a mapping, or None."""
    frame = query(db_path, "SELECT * FROM recall_list WHERE recall_id = ?", [recall_id])
    return frame.row(0, named=True) if frame.height else None


def card_results(db_path: Path, specimen_id: str) -> pl.DataFrame:
    """A card's results for review: each value in the catalogue unit, with the text, number,
    unit and instrument as reported beside (``result_details``; ``censored``: ``<`` / ``>``),
    by analyte and replicate."""
    return query(
        db_path,
        "SELECT analyte, replicate, value, unit, value_reported, unit_reported, flag, "
        "instrument, measured_at, value_text, censored FROM result_details "
        "WHERE specimen_id = ? ORDER BY analyte, replicate",
        [specimen_id],
    )


def card_warnings(db_path: Path, specimen_id: str) -> list[str]:
    """What the coordinator must know of a card (``specimen_warnings``): missing
    information, an implausible weight, a condition not screened on it."""
    return query(
        db_path,
        "SELECT reason FROM specimen_warnings WHERE specimen_id = ? ORDER BY column_name",
        [specimen_id],
    )["reason"].to_list()


def recall_events(db_path: Path, recall_id: str) -> pl.DataFrame:
    """A recall's audit trail, oldest first."""
    return query(
        db_path,
        "SELECT event_at, actor, field, old_value, new_value, note FROM recall_events "
        "WHERE recall_id = ? ORDER BY event_seq",
        [recall_id],
    )


class RecallChanged(RuntimeError):
    """The recall changed since it was read (someone else saved first): nothing written."""


#: recall columns a person may change, and what else a stage change implies
_CHANGEABLE = {"stage", "outcome", "note", "urgency"}


def change_recall(
    db_path: Path,
    recall_id: str,
    expected_stage: str,
    changes: list[Any],
    actor: str,
    note: str | None,
) -> None:
    """Apply field changes to a recall and append one audit event per change, in one
    transaction. Refused (RecallChanged) if the recall's stage is no longer
    ``expected_stage``: the caller decided on a stale view."""
    now = _now()
    with connect(db_path) as con, _transaction(con):
        row = con.execute("SELECT stage FROM recalls WHERE recall_id = ?", [recall_id]).fetchone()
        if row is None or row[0] != expected_stage:
            raise RecallChanged(
                f"{recall_id} changed meanwhile (now {row[0] if row else 'gone'}); "
                "reload it and try again"
            )
        sets: list[str] = []
        params: list[object] = []
        for change in changes:
            if change.field not in _CHANGEABLE:
                raise ValueError(f"recall field {change.field!r} cannot be changed")
            sets.append(f"{change.field} = ?")
            params.append(change.new)
            if change.field == "stage":
                closed = change.new == "closed"
                sets += ["status = ?", "closed_at = ?", "closed_by = ?"]
                params += [
                    "closed" if closed else "open",
                    now if closed else None,
                    actor if closed else None,
                ]
        con.execute(
            f"UPDATE recalls SET {', '.join(sets)} WHERE recall_id = ?", [*params, recall_id]
        )
        for change in changes:
            con.execute(
                "INSERT INTO recall_events VALUES (?, ?, ?, ?, ?, ?, ?, "
                "nextval('recall_event_seq'))",
                [recall_id, now, actor, change.field, change.old, change.new, note],
            )
