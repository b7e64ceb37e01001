"""The reads of the pipeline and of a card's review: stored cards, results, calls and
files, by id or by baby."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from nbs.store.connection import Connection, connect, fetch, fetch_with, query, query_with


def first_punches(
    con: Connection, markers: list[str], since: dt.datetime, until_run: int | None = None
) -> pl.DataFrame:
    """Stored first punches of these markers on cards collected since ``since``:
    ``specimen_id, analyte, value, collected_at`` (reference distributions of percentile
    limits); ``until_run``: only those stored by that run (``run_seq``) or earlier."""
    by_run = (
        ""
        if until_run is None
        else (" AND r.run_id IN (SELECT run_id FROM runs WHERE run_seq <= ?)")
    )
    return fetch(
        con,
        "SELECT r.specimen_id, r.analyte, r.value, s.collected_at FROM results r "
        "JOIN specimens s USING (specimen_id) WHERE r.replicate = 1 AND r.value IS NOT NULL "
        f"AND r.analyte IN ({', '.join('?' for _ in markers)}) AND s.collected_at >= ?{by_run}",
        [*markers, since, *([] if until_run is None else [until_run])],
    )


def as_delivered(con: Connection, ids: pl.DataFrame) -> tuple[dt.datetime | None, int | None]:
    """Where the runs that delivered these cards (``ids``: ``specimen_id``) stood: the
    latest collection among every card those runs delivered, and the last of them
    (``run_seq``); (None, None) for cards no run delivered."""
    row = fetch_with(
        con,
        "WITH delivered AS (SELECT DISTINCT run_id FROM specimens SEMI JOIN ids "
        "USING (specimen_id)) "
        "SELECT (SELECT max(collected_at) FROM specimens SEMI JOIN delivered USING (run_id)) "
        "AS latest, (SELECT max(run_seq) FROM runs SEMI JOIN delivered USING (run_id)) "
        "AS last_run",
        {"ids": ids},
    ).row(0)
    return row[0], row[1]


def prior_calls(con: Connection, ids: pl.DataFrame) -> pl.DataFrame:
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


def file_error(db_path: Path, sha256: str) -> object:
    """Why a recorded file could not be read (its ``ingested_files.error``)."""
    return query(db_path, "SELECT error FROM ingested_files WHERE file_sha256 = ?", [sha256]).item()


def run_committed(db_path: Path, run_id: str) -> bool:
    """Whether the run's ``runs`` row is in the database (it is written in the run's one
    transaction: its data are in too)."""
    with connect(db_path, read_only=True) as con:
        row = con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchone()
    return bool(row and row[0])


# -- a run's checks and evaluation ------------------------------------------------------


def stored_cards_to_compare(db_path: Path, ids: pl.DataFrame) -> pl.DataFrame:
    """The stored rows of these cards (``ids``: ``specimen_id``) with the name of the file
    each came from (``__stored`` true), to compare a card sent again with."""
    return query_with(
        db_path,
        "SELECT s.*, true AS __stored, f.file_name FROM specimens s "
        "JOIN ingested_files f USING (file_sha256) SEMI JOIN ids USING (specimen_id)",
        {"ids": ids},
    )


def stored_results_to_compare(db_path: Path, ids: pl.DataFrame) -> pl.DataFrame:
    """The stored results of these cards (``ids``: ``specimen_id``) with the name and row
    of the file each came from (``__stored`` true), to compare a result sent again with."""
    return query_with(
        db_path,
        "SELECT r.specimen_id, r.analyte, r.replicate, r.value, r.unit, r.flag, "
        "r.censored, true AS __stored, f.file_name, r.row_number FROM results r "
        "JOIN ingested_files f USING (file_sha256) SEMI JOIN ids USING (specimen_id)",
        {"ids": ids},
    )


def cards_by_id(con: Connection, ids: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """These columns of the stored cards among ``ids`` (``specimen_id``)."""
    return fetch_with(
        con,
        f"SELECT {', '.join(columns)} FROM specimens SEMI JOIN ids USING (specimen_id)",
        {"ids": ids},
    )


def cards_of_babies(con: Connection, babies: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """These columns of every stored card of the babies (``babies``: ``baby_id``)."""
    return fetch_with(
        con,
        f"SELECT {', '.join(columns)} FROM specimens SEMI JOIN b USING (baby_id)",
        {"b": babies},
    )


def results_by_card(con: Connection, ids: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """These columns of every stored result of the cards (``ids``: ``specimen_id``)."""
    return fetch_with(
        con,
        f"SELECT {', '.join(columns)} FROM results SEMI JOIN ids USING (specimen_id)",
        {"ids": ids},
    )


def cards_to_reprocess(
    db_path: Path,
    columns: Sequence[str],
    specimen_ids: list[str] | None,
    collected_from: dt.datetime | None,
    collected_before: dt.datetime | None,
) -> pl.DataFrame:
    """Stored cards by id and/or collection time (from inclusive, before exclusive): these
    columns and ``is_first_card``, by id."""
    where: list[str] = []
    params: list[object] = []
    if specimen_ids:
        where.append(f"specimen_id IN ({', '.join('?' for _ in specimen_ids)})")
        params += list(specimen_ids)
    if collected_from is not None:
        where.append("collected_at >= ?")
        params.append(collected_from)
    if collected_before is not None:
        where.append("collected_at < ?")
        params.append(collected_before)
    return query(
        db_path,
        f"SELECT {', '.join(columns)}, coalesce(first_of_baby, true) AS is_first_card "
        f"FROM specimens WHERE {' AND '.join(where)} ORDER BY specimen_id",
        params,
    )


def reprocess_changes(db_path: Path, run_id: str) -> int:
    """How many (card, condition) calls of a reprocessing run differ from the screening
    call (``reprocess_comparison``)."""
    changed = query(
        db_path, "SELECT count(*) FROM reprocess_comparison WHERE run_id = ? AND changed", [run_id]
    ).item()
    return int(changed)


def reprocess_comparison_query(run_id: str) -> str:
    """The query a reader types (in any SQL client) to see a reprocessing run's calls
    beside the screening calls."""
    return f"SELECT * FROM reprocess_comparison WHERE run_id = '{run_id}'"


# -- a card for review ------------------------------------------------------------------


def card(db_path: Path, specimen_id: str) -> pl.DataFrame:
    """A stored card's row (every column), or no row."""
    return query(db_path, "SELECT * FROM specimens WHERE specimen_id = ?", [specimen_id])


def card_for_review(db_path: Path, specimen_id: str) -> pl.DataFrame:
    """What a coordinator sees of a card (no file keys), or no row."""
    return query(
        db_path,
        "SELECT specimen_id, baby_id, birth_at, collected_at, received_at, sex, "
        "birth_weight_g, gestational_age_weeks, transfusion, parenteral_nutrition, "
        "consent_cf, specimen_quality, submitter, last_transfusion_at FROM specimens "
        "WHERE specimen_id = ?",
        [specimen_id],
    )


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


def screening_call(db_path: Path, specimen_id: str, condition: str) -> pl.DataFrame:
    """A card's current screening call for a condition: ``call, basis, explanation``."""
    return query(
        db_path,
        "SELECT call, basis, explanation FROM screening_calls "
        "WHERE specimen_id = ? AND condition = ?",
        [specimen_id, condition],
    )


def screening_calls_of_card(
    db_path: Path, specimen_id: str, condition: str | None = None
) -> pl.DataFrame:
    """A card's current screening calls (of one condition, or all), by condition."""
    where = "" if condition is None else "AND condition = ?"
    params: list[object] = [specimen_id] if condition is None else [specimen_id, condition]
    return query(
        db_path,
        f"SELECT condition, call, urgency, basis, reason, rule_version, explanation, "
        f"evaluated_at FROM screening_calls WHERE specimen_id = ? {where} ORDER BY condition",
        params,
    )
