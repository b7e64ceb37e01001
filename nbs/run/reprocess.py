"""Reprocessing: stored cards re-evaluated under a chosen cutoff version.

For a proposed or corrected cutoff set: which babies would the other version have
called differently? The cards are chosen by id or by collection dates; every one is judged
by the chosen version whatever its collection date (not by the set in force then). The
new calls are written beside the old ones (``kind = 'reprocess'``) with their own run; the
clinical record (screening calls, recalls, statistics) does not change. Compare in the
view ``reprocess_comparison``.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from nbs import store
from nbs.config import ScreeningConfig
from nbs.evaluate.batch import EVALUATED_RESULT_COLUMNS, evaluate_batch, load_context, mark_held
from nbs.store import plates as plate_store
from nbs.validate.core import SPECIMEN_FIELDS, SPECIMEN_TYPES


@dataclass(frozen=True)
class ReprocessSummary:
    """What a reprocessing run did."""

    run_id: str
    cutoff_version: str
    cards: int
    calls_added: int
    changed: int  # (card, condition) pairs whose call differs from the screening call


def only_version(config: ScreeningConfig, version: str) -> ScreeningConfig:
    """The configuration with one cutoff set, in force for every collection date."""
    chosen = [s for s in config.cutoff_sets if s.version == version]
    if not chosen:
        known = ", ".join(s.version for s in config.cutoff_sets)
        raise ValueError(f"no cutoff set {version!r} (known: {known})")
    forced = chosen[0].model_copy(update={"effective_from": dt.date(1900, 1, 1)})
    rules = {key: rule for key, rule in config.rules.items() if key[0] == version}
    return replace(config, cutoff_sets=(forced,), rules=rules)


def select_cards(
    db: Path,
    specimen_ids: list[str] | None,
    collected_from: dt.date | None,
    collected_to: dt.date | None,
) -> pl.DataFrame:
    """Stored cards by id and/or collection dates (inclusive), with ``is_first_card``."""
    if not specimen_ids and collected_from is None and collected_to is None:
        raise ValueError("name the cards (--specimen) or a collection date range (--from/--to)")
    start = None if collected_from is None else dt.datetime.combine(collected_from, dt.time())
    end = None if collected_to is None else dt.datetime.combine(collected_to, dt.time())
    before = None if end is None else end + dt.timedelta(days=1)
    cards = store.cards_to_reprocess(db, SPECIMEN_FIELDS, specimen_ids, start, before)
    return cards.cast({k: v for k, v in SPECIMEN_TYPES.items() if k in cards.columns})


def reprocess(
    db: Path,
    config: ScreeningConfig,
    cutoff_version: str,
    specimen_ids: list[str] | None = None,
    collected_from: dt.date | None = None,
    collected_to: dt.date | None = None,
) -> ReprocessSummary:
    """Re-evaluate the chosen stored cards under ``cutoff_version``; write the new calls."""
    forced = only_version(config, cutoff_version)
    cards = select_cards(db, specimen_ids, collected_from, collected_to)
    if specimen_ids:
        missing = sorted(set(specimen_ids) - set(cards["specimen_id"]))
        if missing:
            raise ValueError(f"no stored card {', '.join(missing)}")
    ids = cards.select("specimen_id")
    # the same inputs as a run: every punch of the cards (those on a plate not accepted
    # marked: they make no call), the stored first punches of the percentile windows, the
    # babies' other cards for escalation, the same chunks
    with store.connect(db, read_only=True) as con:
        held = plate_store.held_results(con, ids, plate_store.unaccepted_plates(con))
        results = mark_held(store.results_by_card(con, ids, EVALUATED_RESULT_COLUMNS), held)
        siblings = store.cards_of_babies(con, cards.select("baby_id").unique(), ["specimen_id"])
        context = load_context(con, forced, cards, siblings, as_delivered=True)
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    run_id = f"reprocess-{started:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    summary = {"cutoff_version": cutoff_version, "cards": cards.height}
    with tempfile.TemporaryDirectory(prefix="nbs-reprocess-") as work:
        parts = Path(work) / "calls"
        evaluate_batch(cards, results, forced, context, parts)
        _, added = store.commit_reprocess(
            db,
            parts / "part-*.parquet",
            store.RunRecord(
                run_id=run_id,
                started_at=started,
                inbox="",
                engine="reprocess",
                cutoff_versions=cutoff_version,
                summary_json=json.dumps(summary),
            ),
        )
    changed = store.reprocess_changes(db, run_id)
    return ReprocessSummary(run_id, cutoff_version, cards.height, added, changed)
