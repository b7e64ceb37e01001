"""One batch evaluation, shared by screening runs and reprocessing: the same stored context
(reference distributions of percentile limits, the babies' other cards for escalation),
the same sampler for the whole batch and the same chunks.

A reprocessing that drew a window percentile from the reprocessed cards alone or from
cards collected after them (:func:`nbs.evaluate.sampler.make_sampler`), saw no earlier card
of a baby, or used results a plate holds (:func:`mark_held`), would not decide as the run
did.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from nbs import settings, store
from nbs.config import ScreeningConfig
from nbs.evaluate.core import Evaluation, evaluate
from nbs.evaluate.gating import split_held
from nbs.evaluate.sampler import make_sampler

#: the columns of results the evaluation reads
EVALUATED_RESULT_COLUMNS = ("specimen_id", "analyte", "replicate", "value", "flag", "censored")

#: the defaults of the settings ``evaluation_chunk`` (cards evaluated at once: the calls of
#: a chunk and their texts are ~0.5 KB per card and condition, and each chunk pays a fixed
#: planning cost for the conditions' expressions) and ``evaluation_threads`` (chunks
#: evaluated at once: each holds its frames, and a chunk spends part of its time in Python
#: holding the GIL); the settings are read when a batch is evaluated
EVALUATION_CHUNK: int = settings.Settings.model_fields["evaluation_chunk"].default
EVALUATION_THREADS: int = settings.Settings.model_fields["evaluation_threads"].default


@dataclass(frozen=True)
class Context:
    """What the evaluation needs from the database besides the batch's own cards and
    results: stored first punches for percentile windows, and the current calls of the
    babies' other cards (escalation)."""

    history: pl.DataFrame | None
    prior: pl.DataFrame
    #: where a percentile window ends (None: at the batch's latest card, as in a run)
    window_end: dt.datetime | None = None


def load_context(
    con: store.Connection,
    config: ScreeningConfig,
    cards: pl.DataFrame,
    siblings: pl.DataFrame,
    as_delivered: bool = False,
) -> Context:
    """The stored context of ``cards``; ``siblings``: every stored card of their babies
    (``specimen_id``), of which those not in ``cards`` are the other cards.
    ``as_delivered`` (stored cards evaluated again): percentile windows as the runs that
    delivered the cards saw them, ending at the latest card those runs delivered and
    drawing only on what was stored by then, whichever of their cards are evaluated."""
    others = siblings.join(cards.select("specimen_id"), on="specimen_id", how="anti")
    end, last_run = None, None
    if as_delivered and config.percentile_markers() and not cards.is_empty():
        end, last_run = store.as_delivered(con, cards.select("specimen_id"))
    return Context(
        history=_history(con, config, cards, last_run),
        prior=store.prior_calls(con, others.select("specimen_id")),
        window_end=end,
    )


def _history(
    con: store.Connection, config: ScreeningConfig, cards: pl.DataFrame, until_run: int | None
) -> pl.DataFrame | None:
    """Stored first punches that percentile limits need (their longest window back; the
    sampler leaves out those collected after the window's end)."""
    needs = config.percentile_markers()
    if not needs or cards.is_empty():
        return None
    earliest = cards["collected_at"].min()
    assert isinstance(earliest, dt.datetime)
    since = earliest - dt.timedelta(days=max(needs.values()))
    return store.first_punches(con, list(needs), since, until_run)


def mark_held(results: pl.DataFrame, held: pl.DataFrame) -> pl.DataFrame:
    """The results with ``held_reason`` (why a plate holds the result; null: usable) when
    any is held; unchanged otherwise (the usual batch pays nothing). ``held``: the keys of
    the held results with ``held_reason`` (:func:`nbs.store.plates.held_results`). A run
    and a reprocessing both mark their results here: a result a plate holds makes no call
    in either (:mod:`nbs.evaluate.gating`)."""
    if held.is_empty():
        return results
    keys = ["specimen_id", "analyte", "replicate"]
    reasons = held.unique(keys).cast({"replicate": results.schema["replicate"]})
    return results.join(reasons, on=keys, how="left", maintain_order="left")


@dataclass(frozen=True)
class BatchEvaluation:
    """The small frames of a batch's evaluation (the calls are in their parts), the calls
    by kind and the cutoff versions used."""

    worklist: pl.DataFrame
    recalls: pl.DataFrame
    findings: pl.DataFrame
    warnings: pl.DataFrame
    calls: dict[str, int]
    versions: list[str]


def _write_calls(calls: pl.DataFrame, chunk: pl.DataFrame, path: Path) -> None:
    """A chunk's calls as a part, with the card's collection time, which the commit's
    statistics need for every call (cheaper here than joining all the calls to the cards
    there); a card's calls together, not a condition's: the database then finds the same
    card and baby ids close together (faster writes of calls and screened, and screened
    takes half the bytes, for a small sort of each chunk)."""
    store.write_part(
        calls.join(
            chunk.select("specimen_id", "collected_at"),
            on="specimen_id",
            how="left",
            validate="m:1",
            maintain_order="left",
        ).sort("specimen_id", maintain_order=True),
        path,
    )


def evaluate_batch(
    cards: pl.DataFrame,
    results: pl.DataFrame,
    config: ScreeningConfig,
    context: Context,
    parts: Path,
) -> BatchEvaluation:
    """Evaluate ``cards`` (with ``is_first_card``) on ``results`` (all their punches; rows of
    other cards are ignored) a chunk at a time, writing each chunk's calls, with the card's
    ``collected_at``, as ``parts/part-NNNNN.parquet``."""
    # one sampler for the whole batch: a percentile of "the run" is of every card, whatever
    # the chunk; then the cards are evaluated a chunk at a time (bounded memory: the calls
    # carry their texts) and each chunk's calls written as a part
    tunables = settings.current()
    chunk_size, threads = tunables.evaluation_chunk, tunables.evaluation_threads
    # results a plate holds are left out, of the percentiles too (nbs.evaluate.gating)
    results, held = split_held(results)
    sampler = make_sampler(
        cards, results, context.history, config.percentile_markers(), context.window_end
    )
    parts.mkdir(parents=True, exist_ok=True)
    # cards and results in card order: a chunk's results are one slice (no copy per chunk).
    # A slice may hold results of no card (pending): the evaluation keeps only those of its
    # cards (ResultsByMarker), so they are not filtered out here first
    cards = cards.sort("specimen_id")
    # instruments' files mostly list a card's results together and cards in order: a check
    # is cheaper than the sort it spares
    if not results["specimen_id"].is_sorted():
        results = results.sort("specimen_id")
    result_ids = results["specimen_id"]

    def evaluate_chunk(i: int) -> tuple[Evaluation, dict[str, int], set[str]]:
        """Evaluate the i-th chunk of cards and write its calls as a part; returns its
        evaluation without the calls (memory), its calls by kind and cutoff versions."""
        chunk = cards.slice(i * chunk_size, chunk_size)
        ids = chunk["specimen_id"]
        # an empty chunk only when the batch has no card at all
        lo = int(result_ids.search_sorted(ids[0], "left")) if ids.len() else 0
        hi = int(result_ids.search_sorted(ids[-1], "right")) if ids.len() else 0
        evaluation = evaluate(
            chunk,
            results.slice(lo, hi - lo),
            config,
            sampler=sampler,
            prior=context.prior,
            held=held,
        )
        calls = evaluation.calls
        _write_calls(calls, chunk, parts / f"part-{i:05d}.parquet")
        return (
            replace(evaluation, calls=calls.clear()),
            dict(calls.group_by("call").len().iter_rows()),
            {v for v in calls["rule_version"].unique().to_list() if v},
        )

    kept: list[Evaluation] = []
    versions: set[str] = set()
    counts: Counter[str] = Counter()
    n_chunks = max(1, -(-cards.height // chunk_size))
    # chunks in threads: polars releases the GIL while it computes, and a chunk's frames
    # are too small to keep both cores busy on their own
    with ThreadPoolExecutor(threads) as pool:
        for evaluation, by_call, chunk_versions in pool.map(evaluate_chunk, range(n_chunks)):
            kept.append(evaluation)
            counts.update(by_call)
            versions |= chunk_versions
    return BatchEvaluation(
        worklist=pl.concat([e.worklist for e in kept]),
        recalls=pl.concat([e.recalls for e in kept]),
        findings=pl.concat([e.findings for e in kept]),
        warnings=pl.concat([e.warnings for e in kept]),
        calls=dict(sorted(counts.items())),
        versions=sorted(versions),
    )
