"""The batch's evaluation: every card the batch touches (a new card row, or new results),
with all its results, stored and new, and the context the rules need from the database."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from nbs import store
from nbs.config import ScreeningConfig
from nbs.evaluate.batch import EVALUATED_RESULT_COLUMNS, evaluate_batch, load_context, mark_held
from nbs.run.checks import ids_frame
from nbs.run.context import RunContext
from nbs.run.plates import PlateGate
from nbs.run.summary import RunSummary
from nbs.store import plates as plate_store
from nbs.validate.core import SPECIMEN_FIELDS, SPECIMEN_TYPES

# the columns are defined with the batch evaluation (a reprocessing reads the same) and
# offered here to the run's batch step
__all__ = ["EVALUATED_RESULT_COLUMNS", "evaluate_touched"]


def evaluate_touched(
    ctx: RunContext,
    config: ScreeningConfig,
    specimens: pl.DataFrame,
    handed: list[pl.DataFrame],
    warnings: pl.DataFrame,
    out: store.RunFiles,
    summary: RunSummary,
    gate: PlateGate,
) -> None:
    """Evaluate every card that has a new card row or new results, or results on a plate
    accepted since the last run, with all its results (those of plates not accepted
    marked, ``gate``). ``handed``: the batch's checked results
    (``EVALUATED_RESULT_COLUMNS``), taken out of the list (the caller then holds no
    reference to them); ``warnings``: the new cards' warnings from validation, written
    with the evaluation's."""
    results = handed.pop()
    ids = pl.concat(
        [specimens["specimen_id"], results["specimen_id"], gate.released_cards["specimen_id"]]
    )
    touched = ids_frame(ids, "specimen_id")
    # one read-only connection for what the evaluation needs from the database
    with store.connect(ctx.db_path, read_only=True) as con:
        stored_cards = store.cards_by_id(con, touched, SPECIMEN_FIELDS)
        cards = pl.concat([specimens.select(SPECIMEN_FIELDS), stored_cards.cast(SPECIMEN_TYPES)])
        earlier = store.cards_of_babies(
            con, ids_frame(cards["baby_id"], "baby_id"), ["specimen_id", "baby_id", "collected_at"]
        )
        stored_results = store.results_by_card(con, touched, EVALUATED_RESULT_COLUMNS)
        stored_held = plate_store.held_results(con, touched, gate.held_plates)
        context = load_context(con, config, cards, earlier.select("specimen_id"))
    cards = _with_first_card(cards, earlier)
    # the commit groups only these babies' calls to find their first card per condition,
    # and looks up the latest call only of these cards
    store.write_part(
        cards.group_by("baby_id").len().filter(pl.col("len") > 1).select("baby_id"),
        out.multi_card_babies,
    )
    store.write_part(stored_cards.select("specimen_id"), out.reevaluated_cards)
    all_results = mark_held(
        pl.concat([stored_results, results], how="vertical_relaxed"),
        pl.concat([stored_held, gate.held_results], how="vertical_relaxed"),
    )
    _summarise_pending(results, cards, summary)
    del results, stored_results
    # sorted here, not in the batch evaluation: this scope would keep the unsorted copy
    if not all_results["specimen_id"].is_sorted():
        all_results = all_results.sort("specimen_id")
    done = evaluate_batch(cards, all_results, config, context, Path(str(out.calls)).parent)
    store.write_part(done.worklist, out.worklist)
    store.write_part(done.recalls, out.recalls)
    store.write_part(done.findings, out.findings)
    all_warnings = pl.concat([warnings, done.warnings])
    store.write_part(all_warnings, out.warnings)
    summary.warnings = all_warnings.height
    summary.warning_rows = all_warnings.sort("specimen_id", "column_name").head(200).to_dicts()
    summary.cards_evaluated = cards.height
    summary.calls = done.calls
    summary.cutoff_versions = done.versions
    urgent = done.recalls.filter(pl.col("urgency") == "urgent")
    summary.urgent_recalls = urgent.select(
        "specimen_id", "condition", "action", "reason"
    ).to_dicts()


def _with_first_card(cards: pl.DataFrame, earlier: pl.DataFrame) -> pl.DataFrame:
    """The cards marked ``is_first_card``: the baby's first card, none of its other cards
    (stored, ``earlier``, or new) collected earlier."""
    all_cards = pl.concat(
        [
            earlier.cast({"collected_at": pl.Datetime("us")}),
            cards.select("specimen_id", "baby_id", "collected_at"),
        ]
    ).unique()
    firsts = all_cards.sort("collected_at", "specimen_id").group_by("baby_id").first()
    return cards.with_columns(
        is_first_card=pl.col("specimen_id").is_in(firsts["specimen_id"].implode())
    )


def _summarise_pending(results: pl.DataFrame, cards: pl.DataFrame, summary: RunSummary) -> None:
    """Results whose card has not arrived yet, counted in the summary."""
    pending = results.join(cards.select("specimen_id"), on="specimen_id", how="anti")
    summary.pending_results = pending.height
    summary.pending_cards = pending["specimen_id"].n_unique()
    summary.pending_specimens = sorted(pending["specimen_id"].unique().to_list())[:100]
