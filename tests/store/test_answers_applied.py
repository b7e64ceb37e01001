"""Repeat-card verdicts applied in a run's commit: the recall and its audit events change
together, and a recall a coordinator changed since the verdicts' inputs were read is
left as the coordinator left it."""

from __future__ import annotations

import datetime as dt
import importlib
from pathlib import Path

import polars as pl

from nbs import store
from nbs.followup.answers import VERDICT_SCHEMA

recalls = importlib.import_module("nbs.store.recalls")

NOW = dt.datetime(2026, 3, 12, 9, 0)


def _database(db: Path) -> None:
    store.migrate(db)
    with store.connect(db) as con:
        for recall_id, condition, stage in (
            ("R-A", None, "open"),
            ("R-P", "PKU", "open"),
            ("R-C", "CH", "contacted"),  # a coordinator called the family since
        ):
            con.execute(
                "INSERT INTO recalls (recall_id, baby_id, specimen_id, condition, action, "
                "urgency, reason, created_at, run_id, status, stage) "
                "VALUES (?, 'B1', 'S1', ?, 'repeat_specimen', 'routine', 'r', ?, 'run-1', "
                "'open', ?)",
                [recall_id, condition, NOW, stage],
            )


def _verdict(recall_id: str, verdict: str, answer: str, detail: str = "") -> dict[str, object]:
    return {
        "recall_id": recall_id,
        "stage": "open",  # as read by the run
        "urgency": "routine",
        "answered_before": None,
        "answer": answer,
        "verdict": verdict,
        "detail": detail,
    }


def test_verdicts_are_applied_with_their_events_unless_the_recall_changed(
    db_path: Path,
) -> None:
    _database(db_path)
    verdicts = pl.DataFrame(
        [
            _verdict("R-A", "close", "S2"),
            _verdict("R-P", "escalate", "S2", "PKU referral"),
            _verdict("R-C", "close", "S2"),
        ],
        schema=VERDICT_SCHEMA,
    )
    with store.connect(db_path) as con:
        counts = recalls.apply_answers(con, verdicts, "run-2", NOW)
    assert counts == (1, 1)
    rows = {r["recall_id"]: r for r in store.recall_list(db_path).rows(named=True)}
    assert (rows["R-A"]["stage"], rows["R-A"]["outcome"], rows["R-A"]["status"]) == (
        "closed",
        "repeat_normal",
        "closed",
    )
    assert (rows["R-P"]["urgency"], rows["R-P"]["answered_by_specimen_id"]) == ("urgent", "S2")
    assert (rows["R-C"]["stage"], rows["R-C"]["answered_by_specimen_id"]) == ("contacted", None)
    events = store.query(
        db_path,
        "SELECT recall_id, actor, field, old_value, new_value, note FROM recall_events "
        "ORDER BY event_seq",
    ).rows()
    assert events == [
        ("R-A", "pipeline", "answered_by_specimen_id", None, "S2",
         "repeat card S2 screened negative (run run-2)"),
        ("R-P", "pipeline", "answered_by_specimen_id", None, "S2",
         "repeat card S2 still abnormal: PKU referral (run run-2)"),
        ("R-A", "pipeline", "stage", "open", "closed", None),
        ("R-A", "pipeline", "outcome", None, "repeat_normal", None),
        ("R-P", "pipeline", "urgency", "routine", "urgent", None),
    ]  # fmt: skip


def test_a_closed_recall_is_not_answered_again(db_path: Path) -> None:
    _database(db_path)
    verdicts = pl.DataFrame([_verdict("R-A", "close", "S2")], schema=VERDICT_SCHEMA)
    with store.connect(db_path) as con:
        assert recalls.apply_answers(con, verdicts, "run-2", NOW) == (1, 0)
        assert recalls.apply_answers(con, verdicts, "run-3", NOW) == (0, 0)
    assert store.recall_events(db_path, "R-A").height == 3
