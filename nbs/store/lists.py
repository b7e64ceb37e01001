"""The laboratory's lists, one page at a time (``LIMIT``/``OFFSET``, with a count): the
retest worklist, quarantined rows, unreadable files and the run history."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from nbs.store.connection import query
from nbs.store.recalls import PIPELINE_ACTOR

#: the counts a run's stored summary cannot hold (it is written before the commit counts
#: them): recalls the run created, and repeat-card recalls its cards closed or escalated
#: (the pipeline's audit events end with "(run RUN_ID)")
_RUNS_SQL = """
WITH shown AS (
    SELECT run_id, run_seq, started_at, committed_at, engine, cutoff_versions, summary_json
    FROM runs ORDER BY run_seq DESC LIMIT ? OFFSET ?
),
created AS (
    SELECT run_id, count(*) AS new_recalls FROM recalls
    WHERE run_id IN (SELECT run_id FROM shown) GROUP BY run_id
),
answers AS (
    SELECT s.run_id,
           count(*) FILTER (WHERE e.note LIKE '%screened negative%') AS answered,
           count(*) FILTER (WHERE e.note LIKE '%still abnormal%') AS escalated
    FROM shown s JOIN recall_events e
      ON e.actor = ? AND e.field = 'answered_by_specimen_id'
     AND ends_with(e.note, '(run ' || s.run_id || ')')
    GROUP BY s.run_id
)
SELECT s.*, coalesce(c.new_recalls, 0) AS new_recalls, coalesce(a.answered, 0) AS answered,
       coalesce(a.escalated, 0) AS escalated
FROM shown s LEFT JOIN created c USING (run_id) LEFT JOIN answers a USING (run_id)
ORDER BY s.run_seq DESC
"""

_UNREADABLE = "ingested_files WHERE status = 'unreadable'"


def _count(db_path: Path, sql: str, params: list[object] | None = None) -> int:
    return int(query(db_path, f"SELECT count(*) FROM {sql}", params).item())


def _worklist_where(status: str | None) -> tuple[str, list[object]]:
    return ("WHERE status = ?", [status]) if status else ("", [])


def worklist_count(db_path: Path, status: str | None) -> int:
    """Retests of the worklist with this status (any: None)."""
    where, params = _worklist_where(status)
    return _count(db_path, f"retest_worklist {where}", params)


def worklist_page(db_path: Path, status: str | None, size: int, offset: int) -> pl.DataFrame:
    """A page of the retest worklist: open first, urgent first, oldest first."""
    where, params = _worklist_where(status)
    return query(
        db_path,
        f"SELECT specimen_id, condition, priority, reason, created_at, status, done_at, "
        f"rule_version FROM retest_worklist {where} "
        f"ORDER BY status = 'open' DESC, priority = 'urgent' DESC, created_at, specimen_id "
        f"LIMIT ? OFFSET ?",
        [*params, size, offset],
    )


def quarantine_count(db_path: Path) -> int:
    """Rows held in quarantine."""
    return _count(db_path, "quarantine")


def quarantine_page(db_path: Path, size: int, offset: int) -> pl.DataFrame:
    """A page of the quarantined rows, newest first."""
    return query(
        db_path,
        "SELECT file_name, kind, row_number, column_name, value, reason, quarantined_at, "
        "run_id FROM quarantine ORDER BY quarantined_at DESC, file_name, row_number "
        "LIMIT ? OFFSET ?",
        [size, offset],
    )


def unreadable_count(db_path: Path) -> int:
    """Files recorded as unreadable."""
    return _count(db_path, _UNREADABLE)


def unreadable_page(db_path: Path, size: int, offset: int) -> pl.DataFrame:
    """A page of the unreadable files, newest first, with their errors."""
    return query(
        db_path,
        f"SELECT file_name, kind, ingested_at, error, archived_as FROM {_UNREADABLE} "
        f"ORDER BY ingested_at DESC, file_name LIMIT ? OFFSET ?",
        [size, offset],
    )


def runs_count(db_path: Path) -> int:
    """Runs recorded (screening and reprocessing)."""
    return _count(db_path, "runs")


def runs_page(db_path: Path, size: int, offset: int) -> pl.DataFrame:
    """A page of the run history, newest first, with each run's new recalls and the
    repeat-card recalls its cards answered (``answered``) or escalated."""
    return query(db_path, _RUNS_SQL, [size, offset, PIPELINE_ACTOR])
