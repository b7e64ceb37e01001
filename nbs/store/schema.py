"""The schema: numbered migrations for the tables, then the view definitions.

* ``migrations/NNN_name.sql`` create and change the tables, each applied once, in order,
  in its own transaction; a migration is never edited once landed.
* ``views/NNN_name.sql`` hold the current definition of every view (and table macro),
  ordered so that a definition comes after those it reads. They are applied with
  ``CREATE OR REPLACE`` after the migrations whenever the definitions the database holds
  are not these files' (a digest of the files is kept as the comment of
  ``schema_migrations``), so a change to a view is an edit of its file, not a migration.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from pathlib import Path

import duckdb

from nbs.store.connection import (
    Connection,
    check_file,
    connect,
    private_creation,
    refuse_foreign,
    run_lock,
    transaction,
    utc_now,
)

MIGRATION_PACKAGE = "nbs.store.migrations"
VIEWS_PACKAGE = "nbs.store.views"
_SCRIPT_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
#: the comment of ``schema_migrations`` once the view definitions are applied
_VIEWS_MARK = "view definitions sha256 "


class MigrationFailed(RuntimeError):
    """A migration stopped (its transaction rolled back: the database is as it was)."""


def _scripts(package: str) -> list[tuple[int, str, str]]:
    found = []
    for entry in importlib.resources.files(package).iterdir():
        match = _SCRIPT_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    numbers = [n for n, _, _ in found]
    if len(numbers) != len(set(numbers)):
        raise RuntimeError(f"two scripts of {package} share a number: {sorted(numbers)}")
    return sorted(found)


def migration_scripts() -> list[tuple[int, str, str]]:
    """(number, name, sql) of every packaged migration, in order."""
    return _scripts(MIGRATION_PACKAGE)


def view_scripts() -> list[tuple[int, str, str]]:
    """(number, name, sql) of every view definition, in the order they are applied."""
    return _scripts(VIEWS_PACKAGE)


def views_mark() -> str:
    """What ``schema_migrations``' comment says once these view definitions are applied."""
    digest = hashlib.sha256()
    for number, name, sql in view_scripts():
        digest.update(f"{number} {name}\n{sql}\n".encode())
    return _VIEWS_MARK + digest.hexdigest()


def _applied_views(con: Connection) -> str | None:
    row = con.execute(
        "SELECT comment FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = 'schema_migrations'"
    ).fetchone()
    return row[0] if row else None


def migrate(db_path: Path) -> list[int]:
    """Create the database if needed, apply the migrations it lacks (each in its own
    transaction), then the view definitions if the database's differ. Returns the
    migrations applied."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    check_file(db_path)
    applied: list[int] = []
    with private_creation(db_path), connect(db_path) as con:
        refuse_foreign(con, db_path)
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
        rows = con.execute("SELECT version FROM schema_migrations").fetchall()
        done = {r[0] for r in rows}
        scripts = migration_scripts()
        for number, name, sql in scripts:
            if number in done:
                continue
            try:
                with transaction(con):
                    con.execute(sql)
                    con.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                        [number, name, utc_now()],
                    )
            except duckdb.Error as exc:
                raise MigrationFailed(
                    f"database {db_path}: migration {number:03d} ({name}) stopped and changed "
                    f"nothing: {exc}"
                ) from exc
            applied.append(number)
        # a database a newer version has migrated keeps that version's views
        newer = max(done, default=0) > max(n for n, _, _ in scripts)
        if not newer and _applied_views(con) != views_mark():
            _apply_views(con, db_path)
    return applied


def _apply_views(con: Connection, db_path: Path) -> None:
    """Every view definition, and the mark that says so, in one transaction."""
    mark = views_mark()
    with transaction(con):
        for number, name, sql in view_scripts():
            try:
                con.execute(sql)
            except duckdb.Error as exc:
                raise MigrationFailed(
                    f"database {db_path}: view definition {number:03d} ({name}) stopped and "
                    f"changed nothing: {exc}"
                ) from exc
        con.execute(f"COMMENT ON TABLE schema_migrations IS '{mark}'")


def ensure_schema(db_path: Path) -> list[int]:
    """Bring an existing database up to this software's schema (after an upgrade of the
    software, a command that reads a view added or changed since would otherwise fail or
    answer by the old definition); one read-only look when nothing is missing. Returns the
    migrations applied.

    Migrates under the run lock, as a run does: a run computing meanwhile would commit
    into tables of another shape (refused with :class:`RunInProgress` instead)."""
    version, views = _schema_state(db_path)
    latest = max(n for n, _, _ in migration_scripts())
    if version > latest or (version == latest and views == views_mark()):
        return []
    with run_lock(db_path):
        return migrate(db_path)


def _schema_state(db_path: Path) -> tuple[int, str | None]:
    """The highest migration applied (0 for a new file) and the view definitions' mark."""
    if not db_path.exists():
        return 0, None
    check_file(db_path)
    with connect(db_path, read_only=True) as con:
        try:
            row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        except duckdb.CatalogException:
            refuse_foreign(con, db_path)
            return 0, None  # an empty DuckDB file: migrated like a new one
        return (int(row[0]) if row else 0), _applied_views(con)


def schema_version(db_path: Path) -> int:
    """Highest migration applied (0 for a new file)."""
    return _schema_state(db_path)[0]
