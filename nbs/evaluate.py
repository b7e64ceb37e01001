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
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np
import polars as pl

from cutoffs.model import CutoffSet
from nbs.config import Sampler, ScreeningConfig
from nbs.rules.kinds import FLOAT_NOISE, all_reach, reaches
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

#: ``basis`` of a call withheld because the baby is too premature for the marker: the
#: card answers nothing for that condition, a later card is needed
NOT_ASSESSABLE_BASIS = "not assessable"
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


HISTORY_SCHEMA = pl.Schema(
    {
        "specimen_id": pl.String(),
        "analyte": pl.String(),
        "value": pl.Float64(),
        "collected_at": pl.Datetime("us"),
    }
)


def make_sampler(
    cards: pl.DataFrame,
    results: pl.DataFrame,
    history: pl.DataFrame | None,
    markers: Collection[str] | None = None,
) -> Sampler:
    """Reference distributions for percentile limits: first punches of this run's cards
    (``run``), or those plus stored first punches collected within the window before the
    run's latest card (``window``). ``markers``: only these can be asked for (keeps the
    sampler small when a run is evaluated in chunks that share it)."""
    first = results.filter(pl.col("replicate") == 1)
    if markers is not None:
        first = first.filter(pl.col("analyte").is_in(list(markers)))
    batch = (
        first.join(cards.select("specimen_id", "collected_at"), on="specimen_id")
        .select(list(HISTORY_SCHEMA))
        .cast(HISTORY_SCHEMA)
    )
    stored = history.cast(HISTORY_SCHEMA) if history is not None else HISTORY_SCHEMA.to_frame()
    pool = pl.concat([stored, batch]).unique(subset=["specimen_id", "analyte"], keep="last")
    latest = cards["collected_at"].max() if cards.height else None
    cache: dict[tuple[str, str, int], np.ndarray] = {}

    def sample(marker: str, of: str, window_days: int) -> np.ndarray:
        key = (marker, of, window_days)
        if key not in cache:
            rows = batch if of == "run" else pool
            if of != "run" and latest is not None:
                start = latest - dt.timedelta(days=window_days)  # type: ignore[operator]
                rows = rows.filter(pl.col("collected_at") > start)
            cache[key] = rows.filter((pl.col("analyte") == marker) & pl.col("value").is_not_null())[
                "value"
            ].to_numpy()
        return cache[key]

    return sample


def evaluate(
    cards: pl.DataFrame,
    results: pl.DataFrame,
    config: ScreeningConfig,
    history: pl.DataFrame | None = None,
    sampler: Sampler | None = None,
) -> Evaluation:
    """Evaluate every card against every condition of the cutoff set in force.

    ``cards``: typed specimen cards plus ``is_first_card`` (the baby's first card).
    ``results``: canonical results (``specimen_id, analyte, replicate, value, flag``) of
    these cards, all replicates known so far (rows of other cards are ignored).
    ``history``: stored first punches (``specimen_id, analyte, value, collected_at``) for
    limits set as percentiles of a rolling window; see
    :meth:`ScreeningConfig.percentile_markers`. ``sampler``: the run's reference
    distributions when the run's cards are evaluated in several chunks (a percentile of
    "the run" is then of the whole run, not of the chunk).
    """
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
            part.select(
                "specimen_id", "baby_id", "card_problem", "card_problem_urgency", "cutoff_version"
            )
        )
        by_marker = ResultsByMarker(results, part.select(COVARIATES))
        for code in cutoff_set.conditions:
            calls.append(_evaluate_condition(part, by_marker, config, cutoff_set, code, sampler))
    orphan = cards.filter(pl.col("cutoff_version").is_null())
    if not orphan.is_empty():
        calls.append(_no_cutoff_set(orphan, config))

    call_frame = pl.concat(calls) if calls else pl.DataFrame(schema=CALLS_SCHEMA)
    # not sorted: every reader orders its query, and a sort of the calls with their texts
    # was a fifth of a chunk's CPU
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


def _json_text(expr: pl.Expr) -> pl.Expr:
    """A string expression as a JSON string (``null`` where null). The texts come from the
    cutoff files and the catalogue, so quotes, backslashes and line breaks are escaped."""
    escaped = (
        expr.str.replace_all("\\", "\\\\", literal=True)
        .str.replace_all('"', '\\"', literal=True)
        .str.replace_all("\n", "\\n", literal=True)
        .str.replace_all("\r", "\\r", literal=True)
        .str.replace_all("\t", "\\t", literal=True)
    )
    return pl.concat_str([pl.lit('"'), escaped, pl.lit('"')]).fill_null("null")


def _json_float(expr: pl.Expr) -> pl.Expr:
    """A Float64 as JSON (``null`` where null, NaN or infinite: JSON has no such number)."""
    return pl.when(expr.is_finite()).then(expr.cast(pl.String)).otherwise(pl.lit("null"))


def _json_scalar(expr: pl.Expr) -> pl.Expr:
    """An integer or a boolean as JSON (``null`` where null)."""
    return expr.cast(pl.String).fill_null("null")


def _json_object(fields: dict[str, pl.Expr]) -> pl.Expr:
    """A JSON object of already-encoded values, in the given key order."""
    parts: list[pl.Expr] = []
    for i, (key, value) in enumerate(fields.items()):
        parts += [pl.lit(("{" if i == 0 else ",") + json.dumps(key) + ":"), value]
    return pl.concat_str([*parts, pl.lit("}")])


def _criteria_json(crits: list[CriterionExprs]) -> pl.Expr:
    """The criteria of a punch as a JSON array of ``{criterion, value, limits, stratum,
    tier}``: built as text, as a list of structs encoded per row costs half the
    evaluation."""
    objects = [
        _json_object(
            {
                "criterion": pl.lit(json.dumps(c.label)),
                "value": _json_float(c.value.cast(pl.Float64)),
                "limits": _json_text(c.limits),
                "stratum": _json_text(c.stratum),
                "tier": _json_scalar(c.level),
            }
        )
        for c in crits
    ]
    return pl.concat_str([pl.lit("["), pl.concat_str(objects, separator=","), pl.lit("]")])


def _score(
    frame: pl.DataFrame, crits: list[CriterionExprs], prefix: str, criteria: bool = True
) -> pl.DataFrame:
    """Add ``{prefix}level`` (tier all criteria reach, null if any input missing),
    ``{prefix}invalid`` (a measurement failed), ``{prefix}detail`` (text) and, with
    ``criteria``, ``{prefix}criteria`` (the criteria as a JSON array)."""
    combined = all_reach([c.level for c in crits])
    columns = [
        combined.alias(f"{prefix}level"),
        pl.any_horizontal([c.invalid.fill_null(False) for c in crits]).alias(f"{prefix}invalid"),
        pl.concat_str([c.detail for c in crits], separator="; ").alias(f"{prefix}detail"),
    ]
    if criteria:
        columns.append(_criteria_json(crits).alias(f"{prefix}criteria"))
    return frame.with_columns(columns)


class ResultsByMarker:
    """The results of a set of cards, shaped once for all conditions: each condition takes
    its markers' punches instead of filtering, pivoting and joining every result again."""

    def __init__(self, results: pl.DataFrame, covariates: pl.DataFrame) -> None:
        mine = results.join(covariates.select("specimen_id"), on="specimen_id", how="semi")
        self._mine = mine
        self._analytes = set(mine["analyte"].unique().to_list())
        # every card's punches as bits, and as one row per punch with the card's covariates,
        # once for all conditions (a grouping, a pivot and a join per condition were a
        # third of the evaluation)
        self._masks = _punch_masks(mine)
        self._wide = _punches(mine, sorted(self._analytes)).join(
            covariates, on="specimen_id", how="inner"
        )
        self._covariates = [c for c in covariates.columns if c != "specimen_id"]

    def punches(self, markers: list[str]) -> pl.DataFrame:
        """One row per (card, replicate) with a result of any of these markers: its value
        and ``__flag`` per marker (null where that marker has no row) and the card's
        covariates."""
        held = [m for m in markers if m in self._analytes]
        rows = self._wide
        if held:
            rows = rows.filter(pl.any_horizontal([pl.col(f"{m}__row") for m in held]))
        else:
            rows = rows.clear()
        frame = rows.select(
            "specimen_id",
            "replicate",
            *[name for m in held for name in (m, f"{m}__flag")],
            *self._covariates,
        )
        return _with_missing(frame, markers)

    def of(self, markers: Collection[str]) -> pl.DataFrame:
        """The rows of these markers (no row of another)."""
        return self._mine.filter(pl.col("analyte").is_in(list(markers)))

    def evidence(self, markers: Collection[str]) -> pl.DataFrame:
        """``specimen_id, evidence`` of the cards with a result of these markers (see
        :func:`_evidence`)."""
        if self._masks is None:
            return _evidence(self.of(markers))
        masks, pairs = self._masks
        keep = sum(1 << i for i, (analyte, _) in enumerate(pairs) if analyte in markers)
        mine = masks.select("specimen_id", mask=pl.col("mask") & keep).filter(pl.col("mask") != 0)
        return _spell(mine, [token for _, token in pairs])


def _punches(mine: pl.DataFrame, markers: list[str]) -> pl.DataFrame:
    """One row per (card, replicate) with, per marker, its value, ``__flag`` and ``__row``
    (true where the marker has a row for that punch; ``mine``: the markers' results).
    Columns: the key, then per marker its value, flag and row."""
    key = ["specimen_id", "replicate"]
    if mine.is_empty():
        frame = pl.DataFrame(schema={"specimen_id": pl.String, "replicate": pl.Int64})
    else:
        # one pivot of the columns: value_PHE, flag_PHE, __row_PHE... renamed PHE,
        # PHE__flag, PHE__row
        values = ["value", "flag", "__row"]
        frame = mine.with_columns(__row=pl.lit(True)).pivot(on="analyte", index=key, values=values)
        names = {
            f"{v}_{m}": m if v == "value" else f"{m}__{v.strip('_')}"
            for m in markers
            for v in values
        }
        frame = frame.rename({c: names[c] for c in frame.columns if c in names})
    frame = _with_missing(frame, markers, exists=True)
    return frame.select(*key, *[f"{m}{x}" for m in markers for x in ("", "__flag", "__row")])


def _with_missing(frame: pl.DataFrame, markers: list[str], exists: bool = False) -> pl.DataFrame:
    """The markers' value and flag (and row) columns that ``frame`` lacks, added null."""
    kinds = [("", pl.Float64), ("__flag", pl.String)] + ([("__row", pl.Boolean)] if exists else [])
    missing = [
        pl.lit(None, dtype=dtype).alias(f"{m}{x}")
        for m in markers
        for x, dtype in kinds
        if f"{m}{x}" not in frame.columns
    ]
    return frame.with_columns(missing) if missing else frame


def _token() -> pl.Expr:
    """A punch as text in evidence: ``PHE#1`` (marker, replicate)."""
    return pl.concat_str([pl.col("analyte"), pl.lit("#"), pl.col("replicate").cast(pl.String)])


def _punch_masks(mine: pl.DataFrame) -> tuple[pl.DataFrame, list[tuple[str, str]]] | None:
    """Per card (``specimen_id, mask``) one bit per distinct (marker, replicate) pair of
    ``mine``, and the pairs as ``(marker, token)`` with the tokens (``PHE#1``) in text
    order, bit i for pair i. None beyond 63 pairs (more than a mask holds)."""
    token = _token()
    pairs = mine.select("analyte", "replicate").unique().with_columns(token=token).sort("token")
    if pairs.height > 63:
        return None
    pairs = pairs.with_columns(
        bit=pl.Series("bit", [1 << i for i in range(pairs.height)], pl.UInt64)
    )
    masks = (
        mine.select("specimen_id", "analyte", "replicate")
        .join(pairs, on=["analyte", "replicate"])
        .group_by("specimen_id")
        .agg(mask=pl.col("bit").bitwise_or())
    )
    return masks, list(pairs.select("analyte", "token").iter_rows())


def _spell(masks: pl.DataFrame, tokens: list[str]) -> pl.DataFrame:
    """``specimen_id, evidence``: each distinct mask spelt once, its tokens joined by commas."""
    spelt = {
        mask: ",".join(t for i, t in enumerate(tokens) if mask >> i & 1)
        for mask in masks["mask"].unique().to_list()
    }
    return masks.select(
        "specimen_id",
        evidence=pl.col("mask").replace_strict(spelt, return_dtype=pl.String),
    )


def _evidence(mine: pl.DataFrame) -> pl.DataFrame:
    """Per card, the punches a call rests on: ``evidence`` like ``PHE#1,TYR#1`` (its
    (marker, replicate) pairs in text order; part of a call's natural key). ``mine``: the
    results of the condition's markers.

    Each distinct pair is a bit, a card's pairs are OR-ed into one integer and each
    distinct integer is spelt once: sorting and joining the texts of every card was a
    quarter of the evaluation."""
    masks = _punch_masks(mine)
    if masks is None:  # more pairs than bits: spell every card's own (never seen so far)
        token = _token()
        return mine.group_by("specimen_id").agg(evidence=token.sort().str.join(","))
    return _spell(masks[0], [token for _, token in masks[1]])


def _present(markers: list[str]) -> pl.Expr:
    """Every marker has a value or an instrument flag (a result, even 'no amplification')."""
    return pl.all_horizontal(
        [pl.col(m).is_not_null() | pl.col(f"{m}__flag").is_not_null() for m in markers]
    )


#: a mean of punches that lies within float noise (``rules.kinds.FLOAT_NOISE``) of a
#: number with ``MEAN_DECIMALS`` decimals is shown and used as that number: the mean of
#: 94.99, 139.97, 93.45 and 271.59 is 150.00, not 149.99999999999997. (Other means keep
#: their value, to 9 decimals from about 1e5 up, where that grid is finer than the noise.
#: Whether a value reaches a limit allows for the same noise: ``rules.kinds.reaches``.)
MEAN_DECIMALS = 9


def _mean(column: str) -> pl.Expr:
    """The mean of ``column`` in the group, summed left to right in row order, snapped to
    ``MEAN_DECIMALS`` decimals where it is within float noise of such a number."""
    values = pl.col(column)
    n = values.count()
    # cum_sum, not sum: polars' sum switches between plain and compensated summation with
    # the number of threads and groups, so a card's mean could change in its last digit
    # with the chunk it was evaluated in
    mean = values.fill_null(0.0).cum_sum().last() / n
    near = mean.round(MEAN_DECIMALS)
    snapped = pl.when((mean - near).abs() <= FLOAT_NOISE * near.abs()).then(near).otherwise(mean)
    return pl.when(n > 0).then(snapped)


def _mean_of(frame: pl.DataFrame, markers: list[str]) -> pl.DataFrame:
    """Per card: the mean of each marker's values and the most severe flag seen.

    The values are summed in replicate order, so the same punches give the same mean
    whatever order their rows arrive in (chunks, threads, partitions): a float sum depends
    on its order. See ``_mean`` for float noise."""
    ordered = frame.sort("specimen_id", "replicate")
    return ordered.group_by("specimen_id").agg(
        [_mean(m).alias(m) for m in markers] + [pl.col(f"{m}__flag").max() for m in markers]
    )


COVARIATES = ("specimen_id", "age_hours", "gestational_age_weeks", "birth_weight_g")


def _evaluate_condition(
    cards: pl.DataFrame,
    results: ResultsByMarker,
    config: ScreeningConfig,
    cutoff_set: CutoffSet,
    code: str,
    sampler: Sampler,
) -> pl.DataFrame:
    cond = cutoff_set.conditions[code]
    policy = cutoff_set.replicate_policy(code)
    rules = config.rules[(cutoff_set.version, code)]
    crits = [config.build(p, sampler) for p in rules.first]
    markers = list(cond.markers)
    covariates = cards.select(COVARIATES)

    evidence = results.evidence(markers)
    punches = results.punches(markers)
    first_rows = punches.filter(pl.col("replicate") == 1)
    # the first punch's criteria (JSON) only for the calls that are explained (_decide)
    first = _score(first_rows, crits, "first_", criteria=False).select(
        "specimen_id", "first_level", "first_invalid", "first_detail"
    )

    def first_criteria(explained: pl.DataFrame) -> pl.DataFrame:
        return first_rows.join(explained, on="specimen_id", how="semi").select(
            "specimen_id", first_criteria=_criteria_json(crits)
        )

    retest_rows = punches.filter((pl.col("replicate") >= 2) & _present(markers))
    counts = retest_rows.group_by("specimen_id").agg(n_retests=pl.len().cast(pl.Int64))
    # the final tier counts only where enough retests are in (see _decide's on_final):
    # scoring every card's punches a second time cost a third of the evaluation
    complete = counts.filter(pl.col("n_retests") >= policy.retests_needed).select("specimen_id")
    if policy.method == "mean_of_retests":
        agg = _mean_of(retest_rows.join(complete, on="specimen_id", how="semi"), markers)
        final = _score(agg.join(covariates, on="specimen_id"), crits, "final_")
        basis_text = f"mean of the retest punches (needs {policy.retests_needed})"
    else:
        decided = punches.filter(_present(markers)).join(complete, on="specimen_id", how="semi")
        scored = _score(decided, crits, "final_")
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
    final = final.select(
        "specimen_id", "final_level", "final_invalid", "final_detail", "final_criteria"
    )

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
        .join(counts, on="specimen_id", how="left")
        .join(final, on="specimen_id", how="left")
        .join(evidence, on="specimen_id", how="left")
        .with_columns(pl.col("n_retests").fill_null(0), pl.col("evidence").fill_null(""))
    )
    frame = _with_second_tier(frame, results, config, cutoff_set, code, covariates, sampler)
    frame = _with_report_markers(frame, results, cond.report_markers, config)
    return _decide(
        frame, code, cutoff_set, policy.retests_needed, basis_text, markers, first_criteria
    )


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
    crits = [config.build(p, sampler) for p in rules.second]
    punches = results.punches(markers)
    agg = _mean_of(punches.filter(_present(markers)), markers).join(covariates, on="specimen_id")
    scored = _score(agg, crits, "t2_").select(
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


def _decide(
    frame: pl.DataFrame,
    code: str,
    cutoff_set: CutoffSet,
    retests_needed: int,
    basis_text: str,
    markers: list[str],
    first_criteria: Callable[[pl.DataFrame], pl.DataFrame],
) -> pl.DataFrame:
    """The call, its urgency, its reason and its explanation, from the scored columns.
    ``first_criteria`` gives the first punch's criteria (JSON) of the cards asked for."""
    cond = cutoff_set.conditions[code]
    tier2 = cond.second_tier
    has_problem = pl.col("card_problem").is_not_null()
    lf, lfin = pl.col("first_level"), pl.col("final_level")
    on_final = pl.col("on_final")
    frame = frame.with_columns(
        on_final=((pl.col("n_retests") >= retests_needed) & lfin.is_not_null()).fill_null(False),
        consent=pl.all_horizontal([pl.col(f).fill_null(False) for f in cond.requires_true])
        if cond.requires_true
        else pl.lit(True),
        assessable=reaches(
            pl.col("gestational_age_weeks") + pl.col("age_hours") / 168.0,
            cond.not_assessable.below_postmenstrual_weeks,
            "high",
        ).fill_null(True)
        if cond.not_assessable
        else pl.lit(True),
    )
    # first-tier call
    base = (
        pl.when(on_final & pl.col("final_invalid"))
        .then(pl.lit("repeat_specimen"))
        .when(on_final)
        .then(lfin.replace_strict(CALL_BY_LEVEL, return_dtype=pl.String))
        .when(lf.is_null())
        .then(pl.lit("not_evaluated"))
        .when(pl.col("first_invalid"))
        .then(pl.lit("retest"))
        .when(has_problem & (lf == 3))
        .then(pl.lit("referral"))
        .when(lf >= 1)
        .then(pl.lit("retest"))
        .otherwise(pl.lit("negative"))
    )
    frame = frame.with_columns(base_call=base)
    # the second tier decides positives from its tier on, when configured
    if tier2 is not None:
        from_level = 3 if tier2.from_tier == "referral" else 2
        positive = pl.col("base_call").is_in(["repeat_specimen", "referral"]) & ~(
            on_final & pl.col("final_invalid")
        )
        tier = pl.when(on_final).then(lfin).otherwise(lf)
        reached = tier >= from_level
        if tier2.failsafe_at_referral:
            reached = reached & (tier < 3)
        applies = (positive & reached).fill_null(False)
        t2 = pl.col("t2_level")
        second = (
            pl.when(~applies)
            .then(pl.col("base_call"))
            .when(t2.is_not_null() & ~pl.col("t2_invalid"))
            .then(t2.replace_strict(CALL_BY_LEVEL, return_dtype=pl.String))
            .when(pl.lit(tier2.required))
            .then(pl.lit("retest"))
            .otherwise(pl.col("base_call"))
        )
        frame = frame.with_columns(t2_applies=applies, call=second)
    else:
        frame = frame.with_columns(t2_applies=pl.lit(False), call=pl.col("base_call"))
    frame = frame.with_columns(
        call=pl.when(~pl.col("consent") | ~pl.col("assessable"))
        .then(pl.lit("not_evaluated"))
        .otherwise(pl.col("call"))
    )
    basis = (
        pl.when(~pl.col("assessable"))
        .then(pl.lit(NOT_ASSESSABLE_BASIS))
        .when(on_final)
        .then(
            pl.concat_str(
                [pl.lit(basis_text + ": "), pl.col("n_retests").cast(pl.String), pl.lit(" in")]
            )
        )
        .when(lf.is_not_null())
        .then(pl.lit("first punch"))
    )
    frame = frame.with_columns(basis=basis)
    call = pl.col("call")
    urgency = (
        pl.when(call == "referral")
        .then(pl.lit(cond.urgency.get("referral", "urgent")))
        .when(call == "repeat_specimen")
        .then(pl.lit(cond.urgency.get("repeat_specimen", "routine")))
        .when(call == "retest")
        .then(
            pl.when((lf == 3) | pl.col("t2_applies"))
            .then(pl.lit("urgent"))
            .otherwise(pl.lit("routine"))
        )
    )
    detail = pl.when(on_final).then(pl.col("final_detail")).otherwise(pl.col("first_detail"))
    t2_name = tier2.name if tier2 else ""
    t2_note = (
        pl.when(pl.col("t2_applies") & pl.col("t2_level").is_not_null())
        .then(pl.concat_str([pl.lit(f"; second tier {t2_name} decides: "), pl.col("t2_detail")]))
        .when(pl.col("t2_applies") & (call == "retest"))
        .then(pl.lit(f"; second tier {t2_name} needed on this card: no result yet"))
        .when(pl.col("t2_applies"))
        .then(pl.lit(f"; no second tier {t2_name} result: first tier decides"))
        .otherwise(pl.lit(""))
    )
    retest_note = (
        pl.when((call == "retest") & (pl.col("n_retests") > 0) & ~on_final)
        .then(
            pl.concat_str(
                [
                    pl.lit("; "),
                    pl.col("n_retests").cast(pl.String),
                    pl.lit(f" of {retests_needed} retest punches in"),
                ]
            )
        )
        .otherwise(pl.lit(""))
    )
    invalid_note = (
        pl.when(on_final & pl.col("final_invalid"))
        .then(pl.lit("; DNA failure persists on the retest punches: a new card is needed"))
        .when(~on_final & pl.col("first_invalid").fill_null(False))
        .then(pl.lit("; DNA failure on the first punch: retest"))
        .otherwise(pl.lit(""))
    )
    context = (
        pl.when(has_problem & (call == "negative"))
        .then(
            pl.concat_str(
                [
                    pl.lit("; not conclusive: repeat card requested ("),
                    pl.col("card_problem"),
                    pl.lit(")"),
                ]
            )
        )
        .when(has_problem & (call == "referral") & ~on_final)
        .then(pl.concat_str([pl.lit("; acted on at once ("), pl.col("card_problem"), pl.lit(")")]))
        .otherwise(pl.lit(""))
    )
    first_note = (
        pl.when(on_final)
        .then(pl.concat_str([pl.lit("; first punch: "), pl.col("first_detail")]))
        .otherwise(pl.lit(""))
    )
    not_assessable_text = (
        pl.concat_str(
            [
                pl.lit(f"{code} not evaluated: {cond.not_assessable.reason} (born at "),
                pl.col("gestational_age_weeks").cast(pl.String),
                pl.lit(" weeks, "),
                (pl.col("age_hours") / 24).round(0).cast(pl.Int64).cast(pl.String),
                pl.lit(" days old)"),
            ]
        )
        if cond.not_assessable
        else pl.lit("")
    )
    reason = (
        pl.when(~pl.col("consent"))
        .then(
            pl.lit(
                f"{code} not evaluated: no parental consent ({', '.join(cond.requires_true)}"
                " not true)"
            )
        )
        .when(~pl.col("assessable"))
        .then(not_assessable_text)
        .when(call == "not_evaluated")
        .then(pl.concat_str([pl.lit(f"{code} not evaluated: "), _missing_markers_text(markers)]))
        .otherwise(
            pl.concat_str(
                [
                    pl.lit(f"{code} "),
                    call,
                    pl.when(urgency.is_not_null())
                    .then(pl.concat_str([pl.lit(" ("), urgency, pl.lit(")")]))
                    .otherwise(pl.lit("")),
                    pl.lit(" on "),
                    pl.col("basis"),
                    pl.lit(": "),
                    detail,
                    pl.col("report_note"),
                    first_note,
                    t2_note,
                    retest_note,
                    invalid_note,
                    context,
                    pl.lit(" [cutoffs "),
                    pl.col("cutoff_version"),
                    pl.lit("]"),
                ]
            )
        )
    )
    # JSON built as text (see _criteria_json); first_punch only when the call was made on
    # the retests (otherwise it is the criteria themselves)
    explanation = _json_object(
        {
            "condition": pl.lit(json.dumps(code)),
            "call": _json_text(call),
            "basis": _json_text(pl.col("basis")),
            "tier_first_punch": _json_scalar(lf),
            "tier_final": _json_scalar(pl.when(on_final).then(lfin)),
            "retest_punches": _json_scalar(pl.col("n_retests")),
            "invalid": _json_scalar(
                pl.when(on_final).then(pl.col("final_invalid")).otherwise(pl.col("first_invalid"))
            ),
            "criteria": pl.when(on_final)
            .then(pl.col("final_criteria"))
            .otherwise(pl.col("first_criteria"))
            .fill_null("null"),
            "first_punch": pl.when(on_final).then(pl.col("first_criteria")).fill_null("null"),
            "second_tier": pl.when(pl.col("t2_applies"))
            .then(pl.col("t2_criteria"))
            .fill_null("null"),
            "card_problem": _json_text(pl.col("card_problem")),
            "cutoff_version": _json_text(pl.col("cutoff_version")),
        }
    )
    columns = {
        "specimen_id": pl.col("specimen_id"),
        "baby_id": pl.col("baby_id"),
        "condition": pl.lit(code),
        "call": call,
        "urgency": urgency,
        "level_first": lf,
        "level_final": pl.when(on_final).then(lfin),
        "basis": pl.col("basis"),
        "reason": reason,
        "explanation": explanation,
        "rule_version": pl.col("cutoff_version"),
        "evidence": pl.col("evidence"),
    }
    # Explained (JSON) is every call someone acts on or reads twice: all but a negative call
    # on a satisfactory card, whose reason already gives each value, its limits, stratum
    # and cutoff version. Building and storing the JSON of every negative call was a fifth
    # of a run's evaluation and half of its calls' bytes.
    explained = (call != "negative") | has_problem
    shown = frame.filter(explained)
    shown = shown.join(first_criteria(shown.select("specimen_id")), on="specimen_id", how="left")
    plain = frame.filter(~explained)
    return pl.concat(
        [
            shown.select(**columns).cast(CALLS_SCHEMA),
            plain.select(**(columns | {"explanation": pl.lit(None, dtype=pl.String)})).cast(
                CALLS_SCHEMA
            ),
        ]
    )


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
