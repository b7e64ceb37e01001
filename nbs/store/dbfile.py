"""Is ``--db`` this pipeline's database? Checked before anything is written to it.

A wrong ``--db`` (a SQLite file, a text file, a DuckDB file of another program) must be
refused as it is: the migrations would otherwise add the screening tables to another
program's database, and DuckDB's own errors (or its attempt to download a SQLite reader)
say nothing a laboratory can act on.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb

from nbs.run.errors import NotAScreeningDatabase

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


def refuse_foreign(con: duckdb.DuckDBPyConnection, db_path: Path) -> None:
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
