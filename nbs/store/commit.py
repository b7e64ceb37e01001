"""A run's commit: everything a computed run adds, in one transaction, keyed by natural ids,
so that a crash leaves the previous state and a repeat writes nothing twice."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from nbs import settings
from nbs.run.faults import crash_point
from nbs.store.connection import Connection, connect, transaction, utc_now
from nbs.store.orders import order_parts, write_orders
from nbs.store.parts import RunFiles
from nbs.store.parts import read_parquet as _parquet
from nbs.store.plates import mark_released, write_plates
from nbs.store.recalls import AnswerRule, answer_repeat_cards
from nbs.store.upkeep import keep_statistics


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


def commit_run(
    db_path: Path, files: RunFiles, run: RunRecord, answer_rule: AnswerRule
) -> CommitCounts:
    """Write a computed run in one transaction. Re-committing the same content adds nothing.
    ``answer_rule`` decides which open repeat-card recalls the run's cards answer
    (:func:`nbs.followup.answers.verdicts`); its verdicts are applied in the same
    transaction."""
    with connect(db_path) as con:
        # a bounded commit: DuckDB spills to disk beyond this rather than grow with the
        # batch (its default is 80% of the machine); rows need no order within a table
        con.execute("SET memory_limit = ?", [settings.current().commit_memory])
        con.execute("SET preserve_insertion_order = false")
        with transaction(con):
            counts = _write(con, files, run, utc_now(), answer_rule)
            crash_point("inside-commit")
    return counts


def commit_reprocess(db_path: Path, calls: Path, run: RunRecord) -> tuple[int, int]:
    """Write a reprocessing run's calls (kind ``reprocess``) and its ``runs`` row in one
    transaction; the screening calls, recalls and statistics are not touched. Returns
    (run_seq, calls added); the same calls twice add nothing."""
    source = _parquet(calls)
    now = utc_now()
    with connect(db_path) as con, transaction(con):
        run_seq = _insert_run(con, run, now)
        before = _count(con, "calls")
        # a call already made under this version from the same evidence is not repeated
        _insert_new_calls(con, source, run.run_id, run_seq, now, "reprocess")
        added = _count(con, "calls") - before
    return run_seq, added


def _insert_run(con: Connection, run: RunRecord, now: dt.datetime) -> int:
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
    con: Connection, source: str, run_id: str, run_seq: int, now: dt.datetime, kind: str
) -> None:
    """Insert calls not already made: the natural key is (card, condition, cutoff version,
    evidence), so a card re-evaluated on the same punches under the same version adds no
    row. A reprocessing adds none where any run made the call; a screening run adds its
    own unless a screening run made it (a comparison never stands in for the record)."""
    con.execute(
        f"INSERT INTO calls SELECT specimen_id, baby_id, condition, call, urgency, "
        f"level_first, level_final, basis, reason, explanation, rule_version, evidence, "
        f"?, ?, ?, ? FROM {source} n WHERE NOT EXISTS (SELECT 1 FROM calls c "
        f"WHERE c.specimen_id = n.specimen_id AND c.condition = n.condition "
        f"AND c.rule_version IS NOT DISTINCT FROM n.rule_version AND c.evidence = n.evidence "
        f"AND (? = 'reprocess' OR c.kind = 'screening'))",
        [run_id, run_seq, now, kind, kind],
    )


def _count(con: Connection, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


_COUNTED = ("specimens", "results", "quarantine", "calls", "retests", "recalls")


def _write(
    con: Connection, f: RunFiles, run: RunRecord, now: dt.datetime, answer_rule: AnswerRule
) -> CommitCounts:
    run_seq = _insert_run(con, run, now)
    before = {t: _count(con, t) for t in _COUNTED}
    open_before = _count(con, "retests WHERE status = 'open'")
    _insert_inputs(con, f, run.run_id, now)
    write_orders(con, order_parts(f.files.parent), run.run_id, now)  # HL7 card orders
    write_plates(con, _parquet(f.plates), _parquet(f.qc), run.run_id, now)
    mark_released(con, _parquet(f.released), run.run_id)
    _insert_outcomes(con, f, run.run_id, run_seq, now)
    answered, escalated = answer_repeat_cards(
        con, _parquet(f.calls), _parquet(f.findings), answer_rule, run.run_id, now
    )
    keep_statistics(
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


def _insert_inputs(con: Connection, f: RunFiles, run_id: str, now: dt.datetime) -> None:
    """The run's files, their raw rows, quarantined rows, cards, warnings and results."""
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


def _insert_outcomes(
    con: Connection, f: RunFiles, run_id: str, run_seq: int, now: dt.datetime
) -> None:
    """The run's calls, retests (opened and done) and recalls."""
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
