"""The one evaluator: cards + results + configuration -> calls, retest worklist, recalls.

Everything is vectorised per condition over all cards of a batch. How a call is made:

1. The cutoff set in force at each card's collection date is chosen.
2. Specimen-level rules mark cards needing a repeat card (``card_problem``).
3. For every condition of the set, each punch (replicate) of the card is scored by the
   condition's criteria; the condition's tier is the lowest tier all criteria reach.
4. First punch (replicate 1) at tier >= 1 -> ``retest`` (same card, in duplicate). Once
   the configured number of retest punches is in, the call is made on them (mean of the
   retests, or the tier reached by k punches): tier 2 -> ``repeat_specimen``, tier 3 ->
   ``referral``, below -> ``negative`` (a normal duplicate clears a high first punch).
5. On a card with a specimen-level problem a first punch at referral tier is referred at
   once (the card may not bear a retest, and the baby is being recalled anyway).
6. A marker without a value -> ``not_evaluated``, never ``negative``.

The steps, one module each: :mod:`~nbs.evaluate.cards` (cards made ready, the cutoff set in
force), :mod:`~nbs.evaluate.sampler` (percentile reference distributions),
:mod:`~nbs.evaluate.condition` with :mod:`~nbs.evaluate.scoring` (a condition's punches
scored), :mod:`~nbs.evaluate.decide` (the call), :mod:`~nbs.evaluate.explain` (its reason
and JSON explanation), :mod:`~nbs.evaluate.escalation` (no loop of repeat cards) and
:mod:`~nbs.evaluate.lists` (worklist, recalls, warnings).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from nbs.config import Sampler, ScreeningConfig
from nbs.evaluate.cards import COVARIATES, assign_cutoff_version, prepare_cards
from nbs.evaluate.condition import evaluate_condition
from nbs.evaluate.decide import CALLS_SCHEMA
from nbs.evaluate.escalation import escalate
from nbs.evaluate.gating import hold_calls, split_held
from nbs.evaluate.lists import FINDINGS_SCHEMA, recalls_of, warnings_of, worklist_of
from nbs.evaluate.punches import ResultsByMarker
from nbs.evaluate.sampler import make_sampler
from nbs.evaluate.specimen_rules import specimen_findings

__all__ = ["Evaluation", "evaluate", "make_sampler", "prepare_cards"]


@dataclass(frozen=True)
class Evaluation:
    """The outcome of evaluating a batch of cards. ``findings``: the cards with a specimen
    problem or that break a specimen rule themselves (``answer_blocker``: they answer no
    repeat-card request); ``warnings``: what the coordinator must know of a card (a
    condition not screened because the card is too old for its marker)."""

    calls: pl.DataFrame
    worklist: pl.DataFrame
    recalls: pl.DataFrame
    findings: pl.DataFrame
    warnings: pl.DataFrame


def evaluate(
    cards: pl.DataFrame,
    results: pl.DataFrame,
    config: ScreeningConfig,
    history: pl.DataFrame | None = None,
    sampler: Sampler | None = None,
    prior: pl.DataFrame | None = None,
    held: pl.DataFrame | None = None,
) -> Evaluation:
    """Evaluate every card against every condition of the cutoff set in force.

    ``cards``: typed specimen cards plus ``is_first_card`` (the baby's first card).
    ``results``: canonical results (``specimen_id, analyte, replicate, value, flag``) of
    these cards, all replicates known so far (rows of other cards are ignored).
    ``history``: stored first punches (``specimen_id, analyte, value, collected_at``) for
    limits set as percentiles of a rolling window; see
    :meth:`ScreeningConfig.percentile_markers`. ``sampler``: the run's reference
    distributions when the run's cards are evaluated in several chunks (a percentile of
    "the run" is then of the whole run, not of the chunk). ``prior``: the current calls
    of the babies' other cards (:data:`nbs.evaluate.escalation.PRIOR_SCHEMA`), for escalation.
    ``held``: results held by their plate (``specimen_id, analyte, held_reason``; also
    taken from a ``held_reason`` column of ``results``): no call is made from them
    (:mod:`nbs.evaluate.gating`).
    """
    results, marked = split_held(results)
    held = marked if held is None else held
    cards = assign_cutoff_version(prepare_cards(cards), config.cutoff_sets)
    sampler = sampler or make_sampler(cards, results, history)
    calls: list[pl.DataFrame] = []
    findings: list[pl.DataFrame] = []
    for cutoff_set in config.cutoff_sets:
        part = cards.filter(pl.col("cutoff_version") == cutoff_set.version)
        if part.is_empty():
            continue
        part = specimen_findings(part, cutoff_set.specimen_rules)
        findings.append(
            part.filter(
                pl.col("card_problem").is_not_null() | pl.col("answer_blocker").is_not_null()
            ).select(list(FINDINGS_SCHEMA))
        )
        by_marker = ResultsByMarker(
            results, part.select(COVARIATES), config.catalogue.no_amplification_values()
        )
        for code in cutoff_set.conditions:
            called = evaluate_condition(part, by_marker, config, cutoff_set, code, sampler)
            calls.append(hold_calls(called, held, code, cutoff_set.conditions[code]))
    orphan = cards.filter(pl.col("cutoff_version").is_null())
    if not orphan.is_empty():
        calls.append(_no_cutoff_set(orphan, config))

    call_frame = pl.concat(calls) if calls else pl.DataFrame(schema=CALLS_SCHEMA)
    call_frame = escalate(call_frame, cards, prior, config.cutoff_sets)
    # not sorted: every reader orders its query, and a sort of the calls with their texts
    # would cost a fifth of a chunk's CPU
    finding_frame = pl.concat(findings) if findings else FINDINGS_SCHEMA.to_frame()
    return Evaluation(
        calls=call_frame,
        worklist=worklist_of(call_frame),
        recalls=recalls_of(call_frame, finding_frame),
        findings=finding_frame,
        warnings=warnings_of(call_frame),
    )


def _no_cutoff_set(cards: pl.DataFrame, config: ScreeningConfig) -> pl.DataFrame:
    """``not_evaluated`` calls of every condition for cards no cutoff set covers."""
    frames = []
    for code in config.conditions:
        frames.append(
            cards.select(
                "specimen_id",
                "baby_id",
                condition=pl.lit(code),
                call=pl.lit("not_evaluated"),
                urgency=pl.lit(None, dtype=pl.String),
                level_first=pl.lit(None, dtype=pl.Int8),
                level_final=pl.lit(None, dtype=pl.Int8),
                basis=pl.lit(None, dtype=pl.String),
                reason=pl.concat_str(
                    [
                        pl.lit("no cutoff set in force on "),
                        pl.col("collected_at").dt.date().cast(pl.String),
                    ]
                ),
                explanation=pl.lit(None, dtype=pl.String),
                rule_version=pl.lit(None, dtype=pl.String),
                evidence=pl.lit(""),
            )
        )
    return pl.concat(frames).cast(CALLS_SCHEMA)
