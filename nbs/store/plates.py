"""Plates and their quality control (``plates``, ``qc_results``, ``plate_events``): the
verdicts a run writes, the supervisor's decisions with their audit trail, and the reads.
What a verdict means is :mod:`nbs.qc`'s."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from nbs.store.connection import (
    Connection,
    connect,
    fetch,
    fetch_with,
    query,
    transaction,
    utc_now,
)

#: a plate's statuses; only ``accepted`` lets its specimen results reach a call
PLATE_STATUSES = ("accepted", "held", "rejected")


class PlateDecisionError(ValueError):
    """A supervisor's decision that cannot be made (no such plate, not held)."""


def write_plates(
    con: Connection, plates_sql: str, qc_sql: str, run_id: str, now: dt.datetime
) -> int:
    """Inside a run's transaction: the batch's new plates (relation ``plates_sql``: plate_id,
    instrument, run_at, kit_lot, status, reason, qc_version) with their verdicts, and their QC
    rows (``qc_sql``: the columns of ``qc_results`` but the run); a plate judged before keeps
    its status and rows. Returns the plates added."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _new_plates AS SELECT * FROM {plates_sql} n "
        f"WHERE NOT EXISTS (SELECT 1 FROM plates p WHERE p.plate_id = n.plate_id)"
    )
    try:
        con.execute(
            "INSERT INTO plates (plate_id, instrument, run_at, kit_lot, status, reason, "
            "qc_version, judged_at, run_id) SELECT plate_id, instrument, run_at, kit_lot, "
            "status, reason, qc_version, ?, ? FROM _new_plates",
            [now, run_id],
        )
        con.execute(
            "INSERT INTO plate_events SELECT plate_id, ?, 'pipeline', NULL, status, reason "
            "FROM _new_plates",
            [now],
        )
        con.execute(
            f"INSERT INTO qc_results SELECT plate_id, well, sample_type, analyte, material, "
            f"level, lot, value, value_text, nominal, ct, measured_at, z, rules, file_sha256, "
            f"row_number, ? FROM {qc_sql} SEMI JOIN _new_plates USING (plate_id)",
            [run_id],
        )
        rows = con.execute("SELECT count(*) FROM _new_plates").fetchall()
    finally:
        con.execute("DROP TABLE IF EXISTS _new_plates")
    return int(rows[0][0])


def mark_released(con: Connection, released_sql: str, run_id: str) -> None:
    """Inside a run's transaction: the accepted plates whose cards the run evaluated, and
    the re-evaluation requests it answered (those made before the run started)."""
    con.execute(
        f"UPDATE plates SET released_run_id = ? WHERE plate_id IN "
        f"(SELECT plate_id FROM {released_sql})",
        [run_id],
    )
    con.execute(
        "UPDATE reevaluation_requests SET run_id = ? WHERE run_id IS NULL AND requested_at "
        "<= (SELECT started_at FROM runs WHERE run_id = ?)",
        [run_id, run_id],
    )


def known_plates(con: Connection, plate_ids: pl.DataFrame) -> pl.DataFrame:
    """The stored plates among ``plate_ids`` (a frame with ``plate_id``): id, status, reason."""
    return fetch_with(
        con,
        "SELECT p.plate_id, p.status, p.reason FROM plates p SEMI JOIN ids USING (plate_id)",
        {"ids": plate_ids},
    )


def held_results(con: Connection, cards: pl.DataFrame, held: list[str]) -> pl.DataFrame:
    """The stored results of ``cards`` (a frame with ``specimen_id``) that lie on one of
    the ``held`` plates (not accepted), with the plate's reason. A stored result knows its
    plate through its raw row."""
    if not held:
        return pl.DataFrame(
            schema={
                "specimen_id": pl.String,
                "analyte": pl.String,
                "replicate": pl.Int32,
                "held_reason": pl.String,
            }
        )
    return fetch_with(
        con,
        "SELECT r.specimen_id, r.analyte, r.replicate, p.reason AS held_reason "
        "FROM results r SEMI JOIN cards USING (specimen_id) "
        "JOIN raw_result_rows w USING (file_sha256, row_number) "
        "JOIN plates p ON p.plate_id = w.plate_id AND p.status <> 'accepted'",
        {"cards": cards},
    )


def released_cards(con: Connection) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Accepted plates whose cards no run has evaluated since the acceptance, and those
    cards with the cards whose re-evaluation is asked for (``plate_id``; ``specimen_id``)."""
    plates_ = fetch(
        con,
        "SELECT plate_id FROM plates WHERE status = 'accepted' AND decided_at IS NOT NULL "
        "AND released_run_id IS NULL",
    )
    asked = fetch(
        con,
        "SELECT DISTINCT specimen_id FROM reevaluation_requests WHERE run_id IS NULL "
        "AND specimen_id IN (SELECT specimen_id FROM specimens)",
    )
    if plates_.is_empty():
        return plates_, asked
    cards = fetch_with(
        con,
        "SELECT DISTINCT r.specimen_id FROM results r "
        "JOIN raw_result_rows w USING (file_sha256, row_number) "
        "SEMI JOIN released ON released.plate_id = w.plate_id",
        {"released": plates_},
    )
    return plates_, pl.concat([cards, asked]).unique(maintain_order=True)


_PLATE_LIST = (
    "SELECT plate_id, instrument, kit_lot, run_at, status, reason, decided_by, decided_at, "
    "qc_version FROM plates {where} ORDER BY status = 'held' DESC, run_at DESC, plate_id"
)


def _status_where(status: str | None) -> tuple[str, list[object]]:
    return ("WHERE status = ?", [status]) if status else ("", [])


def plate_list(db_path: Path, status: str | None = None) -> pl.DataFrame:
    """Plates, held first, then newest."""
    where, params = _status_where(status)
    return query(db_path, _PLATE_LIST.format(where=where), params)


def plate_count(db_path: Path, status: str | None = None) -> int:
    """Plates with this status (any: None)."""
    where, params = _status_where(status)
    return int(query(db_path, f"SELECT count(*) FROM plates {where}", params).item())


def plate_page(db_path: Path, status: str | None, size: int, offset: int) -> pl.DataFrame:
    """A page of :func:`plate_list`."""
    where, params = _status_where(status)
    sql = _PLATE_LIST.format(where=where) + " LIMIT ? OFFSET ?"
    return query(db_path, sql, [*params, size, offset])


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
        rows = con.execute("SELECT status FROM plates WHERE plate_id = ?", [plate_id]).fetchall()
        found = rows[0] if rows else None
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


def waiting_recalls(db_path: Path, plate_id: str) -> pl.DataFrame:
    """The open recalls of the cards with a result on ``plate_id``: while the plate is held
    they wait for the supervisor's decision, which is why it is urgent."""
    return query(
        db_path,
        "SELECT r.recall_id, r.specimen_id, r.condition, r.action, r.urgency, r.stage "
        "FROM recall_list r WHERE r.status = 'open' AND r.specimen_id IN "
        "(SELECT specimen_id FROM raw_result_rows WHERE plate_id = ?) "
        "ORDER BY r.urgency = 'urgent' DESC, r.created_at, r.recall_id",
        [plate_id],
    )


def request_reevaluation(db_path: Path, specimen_ids: list[str], reason: str, actor: str) -> None:
    """Ask the next screening run to evaluate ``specimen_ids`` again (stored cards only)."""
    now = utc_now()
    with connect(db_path) as con, transaction(con):
        known = {
            row[0]
            for row in con.execute(
                "SELECT specimen_id FROM specimens WHERE list_contains(?, specimen_id)",
                [specimen_ids],
            ).fetchall()
        }
        missing = sorted(set(specimen_ids) - known)
        if missing:
            raise ValueError(f"no stored card {', '.join(missing)}")
        con.executemany(
            "INSERT INTO reevaluation_requests VALUES (?, ?, ?, ?, NULL)",
            [[s, reason, actor, now] for s in specimen_ids],
        )
