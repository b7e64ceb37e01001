"""The births register (``births``, ``birth_status_events``, ``births_quarantine``; views
``birth_register`` and ``unscreened_babies``): how it is kept and read. What a register
row may say is :mod:`nbs.stats.births`'s."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from nbs.store.connection import Connection, connect, fetch, query, transaction, utc_now


@dataclass(frozen=True)
class BirthsImported:
    """What an import changed: babies new to the register, babies whose row changed,
    rows as they were already, and quarantined rows new to the quarantine."""

    added: int
    changed: int
    unchanged: int
    quarantined: int


def _set_day(con: Connection, screened_by_day: int) -> None:
    # one row: the setting as it was at the latest import or mark
    con.execute("DELETE FROM births_settings")
    con.execute("INSERT INTO births_settings VALUES (?, ?)", [screened_by_day, utc_now()])


def import_births(
    db_path: Path,
    rows: pl.DataFrame,
    rejected: pl.DataFrame,
    file_sha256: str,
    screened_by_day: int,
) -> BirthsImported:
    """Keep the register's rows (``baby_id, birth_at, submitter, status, file_name,
    row_number``) and its rejected rows (``file_name, row_number, baby_id, reason, raw``)
    in one transaction; a baby's row replaces the one kept before."""
    now = utc_now()
    with connect(db_path) as con, transaction(con):
        con.register("_rows", rows.to_arrow())
        counts = con.execute(
            "SELECT count(*) FILTER (WHERE b.baby_id IS NULL), "
            "count(*) FILTER (WHERE b.baby_id IS NOT NULL AND (b.birth_at <> r.birth_at "
            "OR b.submitter IS DISTINCT FROM r.submitter OR b.status IS DISTINCT FROM r.status)) "
            "FROM _rows r LEFT JOIN births b USING (baby_id)"
        ).fetchall()[0]
        con.execute(
            "INSERT OR REPLACE INTO births SELECT baby_id, birth_at, submitter, status, "
            "file_name, row_number, ? FROM _rows",
            [now],
        )
        con.unregister("_rows")
        before = con.execute("SELECT count(*) FROM births_quarantine").fetchall()[0]
        con.register("_rejected", rejected.to_arrow())
        con.execute(
            "INSERT OR IGNORE INTO births_quarantine SELECT ?, file_name, row_number, baby_id, "
            "reason, raw, ? FROM _rejected",
            [file_sha256, now],
        )
        con.unregister("_rejected")
        after = con.execute("SELECT count(*) FROM births_quarantine").fetchall()[0]
        _set_day(con, screened_by_day)
    added, changed = int(counts[0]), int(counts[1])
    new_rejects = int(after[0]) - int(before[0])
    return BirthsImported(added, changed, rows.height - added - changed, new_rejects)


def mark_birth(
    db_path: Path, baby_id: str, status: str, by: str, note: str | None, screened_by_day: int
) -> bool:
    """Record a coordinator's ``status`` for a baby of the register; False when the
    register has no such baby (nothing is recorded)."""
    with connect(db_path) as con, transaction(con):
        known = con.execute("SELECT count(*) FROM births WHERE baby_id = ?", [baby_id]).fetchall()[
            0
        ]
        if not known[0]:
            return False
        con.execute(
            "INSERT INTO birth_status_events (baby_id, status, recorded_at, recorded_by, note) "
            "VALUES (?, ?, ?, ?, ?)",
            [baby_id, status, utc_now(), by, note],
        )
        _set_day(con, screened_by_day)
    return True


def unscreened_babies(db_path: Path, status: str | None = None) -> pl.DataFrame:
    """``unscreened_babies`` (of one status when given), the oldest birth first."""
    params: list[object] = [status] if status else []
    where = "WHERE status = ? " if status else ""
    return query(db_path, f"SELECT * FROM unscreened_babies {where}ORDER BY birth_at", params)


def births_quarantine(db_path: Path) -> pl.DataFrame:
    """The register's rows that could not be kept, with the reason."""
    return query(
        db_path,
        "SELECT file_name, row_number, baby_id, reason, raw, imported_at "
        "FROM births_quarantine ORDER BY imported_at, file_name, row_number",
    )


def births(db_path: Path) -> pl.DataFrame:
    """The register as kept (one row per baby)."""
    with connect(db_path, read_only=True) as con:
        return fetch(con, "SELECT * FROM births ORDER BY birth_at, baby_id")
