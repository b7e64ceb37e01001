"""One condition on a cutoff set's cards: the punches scored (first punch, retests, the
replicate method's final tier, the second tier), then decided and explained."""

from __future__ import annotations

import polars as pl

from cutoffs.model import CutoffSet, ReplicatePolicy
from nbs.config import Sampler, ScreeningConfig
from nbs.evaluate.cards import COVARIATES
from nbs.evaluate.decide import decide
from nbs.evaluate.explain import explain
from nbs.evaluate.punches import ResultsByMarker, floored, mean_of, present
from nbs.evaluate.scoring import Scoring, criteria_json, score


def evaluate_condition(
    cards: pl.DataFrame,
    results: ResultsByMarker,
    config: ScreeningConfig,
    cutoff_set: CutoffSet,
    code: str,
    sampler: Sampler,
) -> pl.DataFrame:
    """The calls of condition ``code`` on ``cards`` (all of ``cutoff_set``), in
    ``CALLS_SCHEMA`` columns."""
    cond = cutoff_set.conditions[code]
    policy = cutoff_set.replicate_policy(code)
    rules = config.rules[(cutoff_set.version, code)]
    scoring = Scoring(
        [config.build(p, sampler, results.annotated) for p in rules.first],
        [
            (f.level, [config.build(p, sampler, results.annotated) for p in f.criteria])
            for f in rules.failsafe
        ],
    )
    markers = list(cond.markers)
    covariates = cards.select(COVARIATES)

    # every marker the call reads or shows: a second-tier result or a report marker that
    # arrives later makes a new call (the evidence is part of a call's key)
    tier2 = cond.second_tier.markers if cond.second_tier else ()
    evidence = results.evidence(list(dict.fromkeys([*markers, *tier2, *cond.report_markers])))
    punches = _punches(results, markers, config)
    first_rows = punches.filter(pl.col("replicate") == 1)
    # the first punch's criteria (JSON) only for the calls that are explained (decide)
    first = score(first_rows, scoring, "first_", criteria=False).select(
        "specimen_id", "first_level", "first_invalid", "first_detail"
    )

    def first_criteria(explained: pl.DataFrame) -> pl.DataFrame:
        return first_rows.join(explained, on="specimen_id", how="semi").select(
            "specimen_id", first_criteria=criteria_json(scoring.criteria)
        )

    retests = _retests(punches, markers, scoring, policy.retests_needed, covariates)
    final, basis_text = _final(punches, retests, markers, scoring, policy, covariates)

    frame = (
        cards.select(
            "specimen_id",
            "baby_id",
            "card_problem",
            "cutoff_version",
            "gestational_age_weeks",
            "age_hours",
            *cond.requires_true,
        )
        .join(first, on="specimen_id", how="left")
        .join(retests, on="specimen_id", how="left")
        .join(final, on="specimen_id", how="left")
        .join(evidence, on="specimen_id", how="left")
        .with_columns(
            pl.col("n_retests").fill_null(0),
            pl.col("n_retest_punches").fill_null(0),
            pl.col("evidence").fill_null(""),
        )
    )
    frame = _with_second_tier(frame, results, config, cutoff_set, code, covariates, sampler)
    frame = _with_report_markers(frame, results, cond.report_markers, config)
    qpcr = any(m in config.catalogue.no_amplification_values() for m in markers)
    decided = decide(frame, cond, policy, basis_text, qpcr)
    return explain(decided, code, cond, policy, first_criteria)


def _punches(results: ResultsByMarker, markers: list[str], config: ScreeningConfig) -> pl.DataFrame:
    """The markers' punches, a value censored below the plausible range at its minimum."""
    censored = [m for m in markers if m in results.annotated]
    if not censored:
        return results.punches(markers)
    minima = {a.code: a.plausible.min for a in config.catalogue.analytes}
    return floored(results.punches(markers), minima, censored)


def _final(
    punches: pl.DataFrame,
    retests: pl.DataFrame,
    markers: list[str],
    scoring: Scoring,
    policy: ReplicatePolicy,
    covariates: pl.DataFrame,
) -> tuple[pl.DataFrame, str]:
    """The tier of the cards whose retest punches are all in (``final_level``, ``_invalid``,
    ``_detail``, ``_criteria``) by the replicate method, and the method's words."""
    # the final tier counts only where enough retests are in (see decide's on_final):
    # scoring every card's punches a second time would cost a third of the evaluation
    complete = retests.filter(pl.col("n_retests") >= policy.retests_needed).select("specimen_id")
    if policy.method == "mean_of_retests":
        retest_rows = punches.filter((pl.col("replicate") >= 2) & present(markers))
        agg = mean_of(retest_rows.join(complete, on="specimen_id", how="semi"), markers)
        final = score(agg.join(covariates, on="specimen_id"), scoring, "final_")
        basis_text = f"mean of the retest punches (needs {policy.retests_needed})"
    else:
        decided = punches.filter(present(markers)).join(complete, on="specimen_id", how="semi")
        scored = score(decided, scoring, "final_")
        # the tier reached by at least k punches = the k-th highest tier
        final = scored.group_by("specimen_id").agg(
            final_level=pl.col("final_level")
            .sort(descending=True)
            .get(policy.k - 1, null_on_oob=True),
            final_invalid=pl.col("final_invalid").any(),
            final_detail=pl.col("final_detail").sort_by("replicate").str.join(" | "),
            final_criteria=pl.col("final_criteria").sort_by("replicate").first(),
        )
        basis_text = f"tier reached by {policy.k} punches"
    columns = ("specimen_id", "final_level", "final_invalid", "final_detail", "final_criteria")
    return final.select(columns), basis_text


def _retests(
    punches: pl.DataFrame,
    markers: list[str],
    scoring: Scoring,
    needed: int,
    covariates: pl.DataFrame,
) -> pl.DataFrame:
    """Per card with retest punches: ``n_retests`` (punches with every marker),
    ``n_retest_punches`` (punches with any row of a marker), ``max_retest_level`` (the
    highest tier a single valid retest punch reaches) and ``retest_failsafe`` (the level a
    failsafe guarantees on the mean of the retest punches that hold its markers, once
    ``needed`` of them are in: a failsafe marker decides even where another marker stays
    missing). Retest punches are few: scoring each costs little."""
    rows = punches.filter(pl.col("replicate") >= 2)
    if rows.is_empty():  # the usual chunk of first cards: nothing to score
        rows = rows.with_columns(
            r_level=pl.lit(None, dtype=pl.Int8), r_invalid=pl.lit(False), r_detail=pl.lit("")
        )
        scored = rows
    else:
        scored = score(rows, scoring, "r_", criteria=False)
    # a failed punch (DNA failure) says nothing of the marker: its tier does not count
    valid = ~pl.col("r_invalid")
    counted = scored.group_by("specimen_id").agg(
        n_retests=present(markers).sum().cast(pl.Int64),
        n_retest_punches=pl.len().cast(pl.Int64),
        max_retest_level=pl.col("r_level").filter(valid).max(),
    )
    if not scoring.failsafe:
        return counted.with_columns(
            retest_failsafe=pl.lit(None, dtype=pl.Int8),
            retest_failsafe_detail=pl.lit(None, dtype=pl.String),
        )
    own = list(dict.fromkeys(m for _, crits in scoring.failsafe for c in crits for m in c.markers))
    held = rows.filter(present(own))
    enough = held.group_by("specimen_id").len().filter(pl.col("len") >= needed)
    agg = mean_of(held.join(enough, on="specimen_id", how="semi"), own).join(
        covariates, on="specimen_id"
    )
    failsafe = agg.select(
        "specimen_id",
        retest_failsafe=scoring.fired(),
        retest_failsafe_detail=pl.concat_str(
            [c.detail for _, crits in scoring.failsafe for c in crits], separator="; "
        ),
    )
    return counted.join(failsafe, on="specimen_id", how="left")


def _with_second_tier(
    frame: pl.DataFrame,
    results: ResultsByMarker,
    config: ScreeningConfig,
    cutoff_set: CutoffSet,
    code: str,
    covariates: pl.DataFrame,
    sampler: Sampler,
) -> pl.DataFrame:
    """Add ``t2_level``, ``t2_invalid``, ``t2_detail``, ``t2_criteria`` (null without a
    configured or received second tier): the mean of every punch of the second-tier markers."""
    tier2 = cutoff_set.conditions[code].second_tier
    rules = config.rules[(cutoff_set.version, code)]
    if tier2 is None:
        return frame.with_columns(
            t2_level=pl.lit(None, dtype=pl.Int8),
            t2_invalid=pl.lit(False),
            t2_detail=pl.lit(None, dtype=pl.String),
            t2_criteria=pl.lit(None, dtype=pl.String),
        )
    markers = list(tier2.markers)
    crits = [config.build(p, sampler, results.annotated) for p in rules.second]
    punches = _punches(results, markers, config)
    agg = mean_of(punches.filter(present(markers)), markers).join(covariates, on="specimen_id")
    scored = score(agg, Scoring(crits, []), "t2_").select(
        "specimen_id", "t2_level", "t2_invalid", "t2_detail", "t2_criteria"
    )
    return frame.join(scored, on="specimen_id", how="left").with_columns(
        pl.col("t2_invalid").fill_null(False)
    )


def _with_report_markers(
    frame: pl.DataFrame,
    results: ResultsByMarker,
    markers: tuple[str, ...],
    config: ScreeningConfig,
) -> pl.DataFrame:
    """Add ``report_note``: markers carried in the reason only (e.g. SMN2 copy number)."""
    if not markers:
        return frame.with_columns(report_note=pl.lit(""))
    ctx = config.kind_context
    shown = (
        results.of(markers)
        .filter(pl.col("value").is_not_null())
        .sort("replicate")
        .group_by("specimen_id", "analyte")
        .agg(pl.col("value").first())
        .with_columns(
            text=pl.concat_str(
                [
                    pl.col("analyte"),
                    pl.lit(" "),
                    pl.col("value").round(2).cast(pl.String),
                    pl.lit(" "),
                    pl.col("analyte").replace_strict(dict(ctx.units), default=""),
                ]
            )
        )
        .group_by("specimen_id")
        .agg(report_note=pl.concat_str([pl.lit("; "), pl.col("text").sort().str.join("; ")]))
    )
    return frame.join(shown, on="specimen_id", how="left").with_columns(
        pl.col("report_note").fill_null("")
    )
