"""Plates and their quality control (``plates``, ``qc_results``, ``plate_events``): the
verdicts a run writes, the supervisor's decisions with their audit trail, and the reads.
What a verdict means is :mod:`nbs.qc`'s."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from nbs.store.connection import Connection, connect, fetch, query, transaction, utc_now

#: a plate's statuses; only ``accepted`` lets its specimen results reach a call
PLATE_STATUSES = ("accepted", "held", "rejected")


class PlateDecisionError(ValueError):
    """A supervisor's decision that cannot be made (no such plate, not held)."""


def write_plates(
    con: Connection, plates: pl.DataFrame, qc_rows: pl.DataFrame, run_id: str, now: dt.datetime
) -> int:
    """Inside a run's transaction: the batch's new plates with their verdicts (a plate
    judged before keeps its status) and their QC rows; returns the plates added."""
    con.register("_new_plates", plates)
    con.register("_new_qc", qc_rows)
    try:
        added = con.execute(
            "INSERT INTO plates (plate_id, instrument, run_at, status, reason, qc_version, "
            "judged_at, run_id) SELECT plate_id, instrument, run_at, status, reason, "
            "qc_version, ?, ? FROM _new_plates n "
            "WHERE NOT EXISTS (SELECT 1 FROM plates p WHERE p.plate_id = n.plate_id) "
            "RETURNING plate_id",
            [now, run_id],
        ).fetchall()
        ids = [row[0] for row in added]
        con.execute(
            "INSERT INTO plate_events SELECT plate_id, ?, 'pipeline', NULL, status, reason "
            "FROM _new_plates WHERE list_contains(?, plate_id)",
            [now, ids],
        )
        con.execute(
            "INSERT INTO qc_results SELECT plate_id, well, sample_type, analyte, material, "
            "level, lot, value, nominal, ct, measured_at, z, rules, file_sha256, row_number, "
            "? FROM _new_qc WHERE list_contains(?, plate_id)",
            [run_id, ids],
        )
    finally:
        con.unregister("_new_plates")
        con.unregister("_new_qc")
    return len(ids)


def plate_list(db_path: Path, status: str | None = None) -> pl.DataFrame:
    """Plates, held first, then newest."""
    where = "WHERE status = ?" if status else ""
    return query(
        db_path,
        f"SELECT plate_id, instrument, run_at, status, reason, decided_by, decided_at, "
        f"qc_version FROM plates {where} ORDER BY status = 'held' DESC, run_at DESC, plate_id",
        [status] if status else [],
    )


def plate(db_path: Path, plate_id: str) -> dict[str, object] | None:
    """One plate as a mapping, or None."""
    frame = query(db_path, "SELECT * FROM plates WHERE plate_id = ?", [plate_id])
    return frame.row(0, named=True) if frame.height else None


def plate_qc_results(db_path: Path, plate_id: str) -> pl.DataFrame:
    """A plate's control, calibrator and blank wells with the rules they broke."""
    return query(
        db_path,
        "SELECT well, sample_type, analyte, material, level, lot, value, nominal, ct, z, "
        "rules, measured_at FROM qc_results WHERE plate_id = ? "
        "ORDER BY analyte, sample_type, level, well",
        [plate_id],
    )


def plate_events(db_path: Path, plate_id: str) -> pl.DataFrame:
    """A plate's audit trail, oldest first."""
    return query(
        db_path,
        "SELECT event_at, actor, old_status, new_status, reason FROM plate_events "
        "WHERE plate_id = ? ORDER BY event_at",
        [plate_id],
    )


def control_history(con: Connection, analytes: list[str]) -> pl.DataFrame:
    """The control rows of accepted plates for ``analytes`` (the rules' history)."""
    return fetch(
        con,
        "SELECT q.plate_id, p.instrument, q.well, q.sample_type, q.analyte, q.material, "
        "q.level, q.lot, q.value, q.nominal, q.ct, q.measured_at FROM qc_results q "
        "JOIN plates p USING (plate_id) WHERE p.status = 'accepted' "
        "AND q.sample_type = 'control' AND list_contains(?, q.analyte) "
        "ORDER BY q.measured_at, q.plate_id",
        [analytes],
    )


def control_series(db_path: Path, analyte: str) -> pl.DataFrame:
    """Every control result of ``analyte`` with its plate's status, oldest first (the
    Levey-Jennings chart's points)."""
    return query(
        db_path,
        "SELECT q.plate_id, p.status, q.material, q.level, q.lot, q.value, q.z, q.rules, "
        "q.measured_at FROM qc_results q JOIN plates p USING (plate_id) "
        "WHERE q.sample_type = 'control' AND q.analyte = ? "
        "ORDER BY q.material, q.level, q.lot, q.measured_at, q.plate_id",
        [analyte],
    )


def unaccepted_plates(con: Connection) -> list[str]:
    """Plates whose specimen results must not reach a call."""
    return [
        row[0]
        for row in con.execute("SELECT plate_id FROM plates WHERE status <> 'accepted'").fetchall()
    ]


def decide_plate(db_path: Path, plate_id: str, status: str, actor: str, reason: str) -> None:
    """A supervisor accepts a held plate or confirms its rejection, with a reason (kept in
    the plate's audit trail)."""
    if status not in ("accepted", "rejected"):
        raise PlateDecisionError(f"a plate is accepted or rejected, not {status!r}")
    if not reason.strip():
        raise PlateDecisionError("a decision on a plate needs a reason")
    now = utc_now()
    with connect(db_path) as con, transaction(con):
        found = con.execute("SELECT status FROM plates WHERE plate_id = ?", [plate_id]).fetchone()
        if found is None:
            raise PlateDecisionError(f"no plate {plate_id}")
        if found[0] != "held":
            raise PlateDecisionError(f"plate {plate_id} is {found[0]}, not held")
        con.execute(
            "UPDATE plates SET status = ?, reason = ?, decided_by = ?, decided_at = ? "
            "WHERE plate_id = ?",
            [status, reason, actor, now, plate_id],
        )
        con.execute(
            "INSERT INTO plate_events VALUES (?, ?, ?, 'held', ?, ?)",
            [plate_id, now, actor, status, reason],
        )
