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
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from cutoffs.model import CutoffSet
from nbs.config import ScreeningConfig
from nbs.rules.registry import CriterionExprs
from nbs.specimen_rules import specimen_findings

CALLS_SCHEMA = pl.Schema(
    {
        "specimen_id": pl.String,
        "baby_id": pl.String,
        "condition": pl.String,
        "call": pl.String,
        "urgency": pl.String,
        "level_first": pl.Int8,
        "level_final": pl.Int8,
        "basis": pl.String,
        "reason": pl.String,
        "explanation": pl.String,
        "rule_version": pl.String,
        "evidence": pl.String,
    }
)

RECALL_SCHEMA = pl.Schema(
    {
        "baby_id": pl.String,
        "specimen_id": pl.String,
        "condition": pl.String,
        "action": pl.String,
        "urgency": pl.String,
        "reason": pl.String,
        "rule_version": pl.String,
    }
)

WORKLIST_SCHEMA = pl.Schema(
    {
        "specimen_id": pl.String,
        "condition": pl.String,
        "reason": pl.String,
        "priority": pl.String,
        "rule_version": pl.String,
    }
)

CALL_BY_LEVEL = {0: "negative", 1: "negative", 2: "repeat_specimen", 3: "referral"}


@dataclass(frozen=True)
class Evaluation:
    """The outcome of evaluating a batch of cards."""

    calls: pl.DataFrame
    worklist: pl.DataFrame
    recalls: pl.DataFrame


def prepare_cards(cards: pl.DataFrame) -> pl.DataFrame:
    """Add ``age_hours`` (birth to collection) used by age-dependent rules."""
    return cards.with_columns(
        age_hours=(pl.col("collected_at") - pl.col("birth_at")).dt.total_seconds() / 3600.0,
    )


def assign_cutoff_version(cards: pl.DataFrame, sets: tuple[CutoffSet, ...]) -> pl.DataFrame:
    """Add ``cutoff_version``: the newest set in force on the card's collection date."""
    date = pl.col("collected_at").dt.date()
    expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for s in sorted(sets, key=lambda s: s.effective_from):
        expr = pl.when(date >= s.effective_from).then(pl.lit(s.version)).otherwise(expr)
    return cards.with_columns(cutoff_version=expr)


def evaluate(cards: pl.DataFrame, results: pl.DataFrame, config: ScreeningConfig) -> Evaluation:
    """Evaluate every card against every condition of the cutoff set in force.

    ``cards``: typed specimen cards plus ``is_first_card`` (the baby's first card).
    ``results``: canonical results (``specimen_id, analyte, replicate, value, flag``) of
    these cards, all replicates known so far.
    """
    cards = assign_cutoff_version(prepare_cards(cards), config.cutoff_sets)
    calls: list[pl.DataFrame] = []
    findings: list[pl.DataFrame] = []
    for cutoff_set in config.cutoff_sets:
        part = cards.filter(pl.col("cutoff_version") == cutoff_set.version)
        if part.is_empty():
            continue
        part = specimen_findings(part, cutoff_set.specimen_rules)
        findings.append(
            part.select(
                "specimen_id", "baby_id", "card_problem", "card_problem_urgency", "cutoff_version"
            )
        )
        for code in cutoff_set.conditions:
            calls.append(_evaluate_condition(part, results, config, cutoff_set, code))
    orphan = cards.filter(pl.col("cutoff_version").is_null())
    if not orphan.is_empty():
        calls.append(_no_cutoff_set(orphan, config))

    call_frame = pl.concat(calls) if calls else pl.DataFrame(schema=CALLS_SCHEMA)
    call_frame = call_frame.sort("specimen_id", "condition")
    finding_frame = (
        pl.concat(findings)
        if findings
        else pl.DataFrame(
            schema={
                "specimen_id": pl.String,
                "baby_id": pl.String,
                "card_problem": pl.String,
                "card_problem_urgency": pl.String,
                "cutoff_version": pl.String,
            }
        )
    )
    return Evaluation(
        calls=call_frame,
        worklist=_worklist(call_frame),
        recalls=_recalls(call_frame, finding_frame),
    )


def _no_cutoff_set(cards: pl.DataFrame, config: ScreeningConfig) -> pl.DataFrame:
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


def _score(frame: pl.DataFrame, crits: list[CriterionExprs], prefix: str) -> pl.DataFrame:
    """Add ``{prefix}level`` (tier all criteria reach, null if any input missing),
    ``{prefix}detail`` (text) and ``{prefix}criteria`` (list of structs)."""
    levels = [c.level for c in crits]
    combined = (
        pl.when(pl.any_horizontal([lv.is_null() for lv in levels]))
        .then(None)
        .otherwise(pl.min_horizontal(levels))
        .cast(pl.Int8)
    )
    detail = pl.concat_str([c.detail for c in crits], separator="; ")
    structs = pl.concat_list(
        [
            pl.struct(
                criterion=pl.lit(c.label),
                value=c.value.cast(pl.Float64),
                limits=c.limits,
                stratum=c.stratum,
                tier=c.level,
            )
            for c in crits
        ]
    )
    return frame.with_columns(
        combined.alias(f"{prefix}level"),
        detail.alias(f"{prefix}detail"),
        structs.alias(f"{prefix}criteria"),
    )


def _evaluate_condition(
    cards: pl.DataFrame,
    results: pl.DataFrame,
    config: ScreeningConfig,
    cutoff_set: CutoffSet,
    code: str,
) -> pl.DataFrame:
    cond = cutoff_set.conditions[code]
    policy = cutoff_set.replicate_policy(code)
    ctx = config.kind_context
    crits = [p.kind.build(p.params, ctx) for p in config.criteria[(cutoff_set.version, code)]]
    markers = list(cond.markers)
    ids = cards.select("specimen_id")

    mine = results.join(ids, on="specimen_id", how="semi").filter(pl.col("analyte").is_in(markers))
    evidence = mine.group_by("specimen_id").agg(
        evidence=pl.concat_str(
            [pl.col("analyte"), pl.lit("#"), pl.col("replicate").cast(pl.String)]
        )
        .sort()
        .str.join(",")
    )
    punches = (
        mine.pivot(on="analyte", index=["specimen_id", "replicate"], values="value")
        if not mine.is_empty()
        else pl.DataFrame(schema={"specimen_id": pl.String, "replicate": pl.Int64})
    )
    for m in markers:
        if m not in punches.columns:
            punches = punches.with_columns(pl.lit(None, dtype=pl.Float64).alias(m))
    covariates = cards.select("specimen_id", "age_hours", "gestational_age_weeks", "birth_weight_g")
    punches = punches.join(covariates, on="specimen_id", how="inner")
    complete = pl.all_horizontal([pl.col(m).is_not_null() for m in markers])

    first = _score(punches.filter(pl.col("replicate") == 1), crits, "first_").select(
        "specimen_id", "first_level", "first_detail", "first_criteria"
    )
    retest_rows = punches.filter((pl.col("replicate") >= 2) & complete)
    counts = retest_rows.group_by("specimen_id").agg(n_retests=pl.len().cast(pl.Int64))

    if policy.method == "mean_of_retests":
        agg = (
            retest_rows.group_by("specimen_id")
            .agg([pl.col(m).mean() for m in markers])
            .join(covariates, on="specimen_id")
        )
        final = _score(agg, crits, "final_").select(
            "specimen_id", "final_level", "final_detail", "final_criteria"
        )
        basis_text = f"mean of the retest punches (needs {policy.retests_needed})"
    else:
        scored = _score(punches.filter(complete), crits, "final_")
        # the tier reached by at least k punches = the k-th highest tier
        final = scored.group_by("specimen_id").agg(
            final_level=pl.col("final_level")
            .sort(descending=True)
            .get(policy.k - 1, null_on_oob=True),
            final_detail=pl.col("final_detail").sort_by("replicate").str.join(" | "),
            final_criteria=pl.col("final_criteria").first(),
        )
        basis_text = f"tier reached by {policy.k} punches"

    frame = (
        cards.select("specimen_id", "baby_id", "card_problem", "cutoff_version")
        .join(first, on="specimen_id", how="left")
        .join(counts, on="specimen_id", how="left")
        .join(final, on="specimen_id", how="left")
        .join(evidence, on="specimen_id", how="left")
        .with_columns(pl.col("n_retests").fill_null(0), pl.col("evidence").fill_null(""))
    )

    has_problem = pl.col("card_problem").is_not_null()
    retests_done = pl.col("n_retests") >= policy.retests_needed
    lf = pl.col("first_level")
    lfin = pl.col("final_level")
    frame = frame.with_columns(on_final=(retests_done & lfin.is_not_null()).fill_null(False))
    on_final = pl.col("on_final")
    call = (
        pl.when(on_final)
        .then(lfin.replace_strict(CALL_BY_LEVEL, return_dtype=pl.String))
        .when(lf.is_null())
        .then(pl.lit("not_evaluated"))
        .when(has_problem & (lf == 3))
        .then(pl.lit("referral"))
        .when(lf >= 1)
        .then(pl.lit("retest"))
        .otherwise(pl.lit("negative"))
    )
    basis = (
        pl.when(on_final)
        .then(
            pl.concat_str(
                [pl.lit(basis_text + ": "), pl.col("n_retests").cast(pl.String), pl.lit(" in")]
            )
        )
        .when(lf.is_not_null())
        .then(pl.lit("first punch"))
    )
    frame = frame.with_columns(call=call, basis=basis)
    urgency = (
        pl.when(pl.col("call") == "referral")
        .then(pl.lit(cond.urgency.get("referral", "urgent")))
        .when(pl.col("call") == "repeat_specimen")
        .then(pl.lit(cond.urgency.get("repeat_specimen", "routine")))
        .when(pl.col("call") == "retest")
        .then(pl.when(lf == 3).then(pl.lit("urgent")).otherwise(pl.lit("routine")))
    )
    missing = _missing_markers_text(markers)
    detail = pl.when(on_final).then(pl.col("final_detail")).otherwise(pl.col("first_detail"))
    retest_note = (
        pl.when((pl.col("call") == "retest") & (pl.col("n_retests") > 0))
        .then(
            pl.concat_str(
                [
                    pl.lit("; "),
                    pl.col("n_retests").cast(pl.String),
                    pl.lit(f" of {policy.retests_needed} retest punches in"),
                ]
            )
        )
        .otherwise(pl.lit(""))
    )
    context = (
        pl.when(has_problem & (pl.col("call") == "negative"))
        .then(
            pl.concat_str(
                [
                    pl.lit("; not conclusive: repeat card requested ("),
                    pl.col("card_problem"),
                    pl.lit(")"),
                ]
            )
        )
        .when(has_problem & (pl.col("call") == "referral") & ~on_final)
        .then(pl.concat_str([pl.lit("; acted on at once ("), pl.col("card_problem"), pl.lit(")")]))
        .otherwise(pl.lit(""))
    )
    first_note = (
        pl.when(on_final)
        .then(pl.concat_str([pl.lit("; first punch: "), pl.col("first_detail")]))
        .otherwise(pl.lit(""))
    )
    reason = (
        pl.when(pl.col("call") == "not_evaluated")
        .then(pl.concat_str([pl.lit(f"{code} not evaluated: "), missing]))
        .otherwise(
            pl.concat_str(
                [
                    pl.lit(f"{code} "),
                    pl.col("call"),
                    pl.when(urgency.is_not_null())
                    .then(pl.concat_str([pl.lit(" ("), urgency, pl.lit(")")]))
                    .otherwise(pl.lit("")),
                    pl.lit(" on "),
                    pl.col("basis"),
                    pl.lit(": "),
                    detail,
                    first_note,
                    retest_note,
                    context,
                    pl.lit(" [cutoffs "),
                    pl.col("cutoff_version"),
                    pl.lit("]"),
                ]
            )
        )
    )
    explanation = pl.struct(
        condition=pl.lit(code),
        call=pl.col("call"),
        basis=pl.col("basis"),
        tier_first_punch=lf,
        tier_final=pl.when(on_final).then(lfin),
        retest_punches=pl.col("n_retests"),
        criteria=pl.when(on_final)
        .then(pl.col("final_criteria"))
        .otherwise(pl.col("first_criteria")),
        first_punch=pl.col("first_criteria"),
        card_problem=pl.col("card_problem"),
        cutoff_version=pl.col("cutoff_version"),
    ).struct.json_encode()
    return frame.select(
        "specimen_id",
        "baby_id",
        condition=pl.lit(code),
        call=pl.col("call"),
        urgency=urgency,
        level_first=lf,
        level_final=pl.when(on_final).then(lfin),
        basis=pl.col("basis"),
        reason=reason,
        explanation=explanation,
        rule_version=pl.col("cutoff_version"),
        evidence=pl.col("evidence"),
    ).cast(CALLS_SCHEMA)


def _missing_markers_text(markers: list[str]) -> pl.Expr:
    """Names the markers without a value on the first punch (never received, no value
    reported, or their row held in quarantine)."""
    missing = pl.concat_str(
        [
            pl.when(~pl.col("evidence").str.contains(f"(^|,){m}#1(,|$)")).then(pl.lit(m))
            for m in markers
        ],
        separator=", ",
        ignore_nulls=True,
    )
    return (
        pl.when(pl.col("evidence") == "")
        .then(pl.lit(f"awaiting {', '.join(markers)} result(s)"))
        .otherwise(
            pl.when(missing != "")
            .then(pl.concat_str([pl.lit("no first-punch result for "), missing]))
            .otherwise(pl.lit(f"no value reported for {' or '.join(markers)} on the first punch"))
        )
    )


def _worklist(calls: pl.DataFrame) -> pl.DataFrame:
    """The punches the laboratory must repeat: every ``retest`` call."""
    return (
        calls.filter(pl.col("call") == "retest")
        .select(
            "specimen_id",
            "condition",
            "reason",
            priority=pl.col("urgency"),
            rule_version="rule_version",
        )
        .cast(WORKLIST_SCHEMA)
    )


def _recalls(calls: pl.DataFrame, findings: pl.DataFrame) -> pl.DataFrame:
    """Actions that reach a baby: condition recalls and specimen-level repeat cards."""
    condition_level = calls.filter(pl.col("call").is_in(["repeat_specimen", "referral"])).select(
        "baby_id",
        "specimen_id",
        "condition",
        action=pl.col("call"),
        urgency="urgency",
        reason="reason",
        rule_version="rule_version",
    )
    specimen_level = findings.filter(pl.col("card_problem").is_not_null()).select(
        "baby_id",
        "specimen_id",
        condition=pl.lit(None, dtype=pl.String),
        action=pl.lit("repeat_specimen"),
        urgency=pl.col("card_problem_urgency"),
        reason=pl.concat_str(
            [
                pl.lit("repeat card needed: "),
                pl.col("card_problem"),
                pl.lit(" [cutoffs "),
                pl.col("cutoff_version"),
                pl.lit("]"),
            ]
        ),
        rule_version=pl.col("cutoff_version"),
    )
    return pl.concat(
        [
            condition_level.cast(RECALL_SCHEMA),
            specimen_level.cast(RECALL_SCHEMA),
        ]
    ).sort("specimen_id", "condition", nulls_last=False)


def now() -> dt.datetime:
    """Evaluation timestamp (naive UTC, second precision)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
