"""Finding a baby, a card or a recall by its id or a part of it, and one baby's file
(cards, recalls, outcomes) for the coordinators' search."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from nbs.store.connection import connect, fetch, query


def _pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere (its own ``%`` and ``_`` taken as such)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(db_path: Path, text: str, limit: int) -> dict[str, pl.DataFrame]:
    """Babies, cards and recalls whose id contains ``text`` (case-insensitive), exact
    matches first, at most ``limit`` of each."""
    pattern, exact = _pattern(text.strip()), text.strip().lower()
    with connect(db_path, read_only=True) as con:
        babies = fetch(
            con,
            "SELECT baby_id, min(birth_at) AS birth_at, count(*) AS cards, "
            "max(collected_at) AS last_collected_at, any_value(submitter) AS submitter "
            "FROM specimens WHERE baby_id ILIKE ? ESCAPE '\\' GROUP BY baby_id "
            "ORDER BY lower(baby_id) <> ?, baby_id LIMIT ?",
            [pattern, exact, limit],
        )
        cards = fetch(
            con,
            "SELECT specimen_id, baby_id, collected_at, received_at, submitter, "
            "specimen_quality FROM specimens WHERE specimen_id ILIKE ? ESCAPE '\\' "
            "ORDER BY lower(specimen_id) <> ?, specimen_id LIMIT ?",
            [pattern, exact, limit],
        )
        recalls = fetch(
            con,
            "SELECT recall_id, baby_id, specimen_id, condition, action, urgency, stage, "
            "outcome, created_at FROM recall_list WHERE recall_id ILIKE ? ESCAPE '\\' "
            "ORDER BY lower(recall_id) <> ?, recall_id LIMIT ?",
            [pattern, exact, limit],
        )
    return {"babies": babies, "cards": cards, "recalls": recalls}


def baby_file(db_path: Path, baby_id: str) -> dict[str, pl.DataFrame]:
    """One baby's cards (with each card's calls that need action), recalls and recorded
    outcomes; all empty when no card names the baby."""
    with connect(db_path, read_only=True) as con:
        cards = fetch(
            con,
            "SELECT s.specimen_id, s.birth_at, s.collected_at, s.received_at, s.submitter, "
            "s.specimen_quality, string_agg(c.condition || ': ' || c.call, ', ' "
            "ORDER BY c.condition) FILTER (WHERE c.call <> 'negative') AS calls "
            "FROM specimens s LEFT JOIN screening_calls c USING (specimen_id) "
            "WHERE s.baby_id = ? GROUP BY ALL ORDER BY s.collected_at, s.specimen_id",
            [baby_id],
        )
        recalls = fetch(
            con,
            "SELECT recall_id, specimen_id, condition, action, urgency, stage, outcome, "
            "created_at FROM recall_list WHERE baby_id = ? ORDER BY created_at, recall_id",
            [baby_id],
        )
        outcomes = fetch(
            con,
            "SELECT condition, kind, specimen_id, recall_id, diagnosis_code, diagnosed_at, "
            "treatment_started_at, ruled_out_at, recorded_at, recorded_by FROM case_outcomes "
            "WHERE baby_id = ? ORDER BY condition",
            [baby_id],
        )
    return {"cards": cards, "recalls": recalls, "outcomes": outcomes}


def negative_conditions(db_path: Path, baby_id: str) -> list[str]:
    """The conditions a card of the baby screened negative for (a missed case's choices)."""
    return query(
        db_path,
        "SELECT DISTINCT condition FROM screening_calls WHERE baby_id = ? "
        "AND call = 'negative' ORDER BY 1",
        [baby_id],
    )["condition"].to_list()
