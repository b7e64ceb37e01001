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
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import polars as pl

from cutoffs.model import CutoffSet, ReplicatePolicy
from nbs.config import Sampler, ScreeningConfig
from nbs.evaluate.decide import AGE_LIMIT_BASIS, CALL_BY_LEVEL, CALLS_SCHEMA, decide
from nbs.evaluate.escalation import escalate
from nbs.evaluate.jsontext import json_float, json_object, json_scalar, json_text
from nbs.evaluate.punches import ResultsByMarker, mean_of, present
from nbs.evaluate.specimen_rules import specimen_findings
from nbs.rules.kinds import all_reach
from nbs.rules.registry import CriterionExprs

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


FINDINGS_SCHEMA = pl.Schema(
    {
        "specimen_id": pl.String,
        "baby_id": pl.String,
        "card_problem": pl.String,
        "card_problem_urgency": pl.String,
        "answer_blocker": pl.String,
        "cutoff_version": pl.String,
    }
)
WARNINGS_SCHEMA = pl.Schema(
    {"specimen_id": pl.String, "column_name": pl.String, "reason": pl.String}
)


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


#: optional card columns the rules read, added empty where a caller's cards lack them
OPTIONAL_CARD_COLUMNS = {"last_transfusion_at": pl.Datetime("us"), "received_at": pl.Datetime("us")}


def prepare_cards(cards: pl.DataFrame) -> pl.DataFrame:
    """Add ``age_hours`` (birth to collection) and ``postmenstrual_weeks`` (gestation plus
    age at collection) used by age- and maturity-dependent rules."""
    missing = [
        pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in OPTIONAL_CARD_COLUMNS.items()
        if name not in cards.columns
    ]
    return (
        cards.with_columns(*missing)
        .with_columns(
            age_hours=(pl.col("collected_at") - pl.col("birth_at")).dt.total_seconds() / 3600.0,
        )
        .with_columns(
            postmenstrual_weeks=pl.col("gestational_age_weeks") + pl.col("age_hours") / 168.0,
        )
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
    prior: pl.DataFrame | None = None,
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
            part.filter(
                pl.col("card_problem").is_not_null() | pl.col("answer_blocker").is_not_null()
            ).select(list(FINDINGS_SCHEMA))
        )
        by_marker = ResultsByMarker(
            results, part.select(COVARIATES), config.catalogue.no_amplification_values()
        )
        for code in cutoff_set.conditions:
            calls.append(_evaluate_condition(part, by_marker, config, cutoff_set, code, sampler))
    orphan = cards.filter(pl.col("cutoff_version").is_null())
    if not orphan.is_empty():
        calls.append(_no_cutoff_set(orphan, config))

    call_frame = pl.concat(calls) if calls else pl.DataFrame(schema=CALLS_SCHEMA)
    call_frame = escalate(call_frame, cards, prior, config.cutoff_sets)
    # not sorted: every reader orders its query, and a sort of the calls with their texts
    # was a fifth of a chunk's CPU
    finding_frame = pl.concat(findings) if findings else FINDINGS_SCHEMA.to_frame()
    return Evaluation(
        calls=call_frame,
        worklist=_worklist(call_frame),
        recalls=_recalls(call_frame, finding_frame),
        findings=finding_frame,
        warnings=_warnings(call_frame),
    )


def _warnings(calls: pl.DataFrame) -> pl.DataFrame:
    """A condition not screened because the card is too old for its marker: the
    coordinator must know (the baby may need another test, e.g. a sweat test for CF)."""
    return (
        calls.filter(pl.col("basis") == AGE_LIMIT_BASIS)
        .select("specimen_id", column_name=pl.col("condition"), reason=pl.col("reason"))
        .cast(WARNINGS_SCHEMA)
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


def _criteria_json(crits: list[CriterionExprs]) -> pl.Expr:
    """The criteria of a punch as a JSON array of ``{criterion, value, limits, stratum,
    tier}``: built as text, as a list of structs encoded per row costs half the
    evaluation."""
    objects = [
        json_object(
            {
                "criterion": pl.lit(json.dumps(c.label)),
                "value": json_float(c.value.cast(pl.Float64)),
                "limits": json_text(c.limits),
                "stratum": json_text(c.stratum),
                "tier": json_scalar(c.level),
            }
        )
        for c in crits
    ]
    return pl.concat_str([pl.lit("["), pl.concat_str(objects, separator=","), pl.lit("]")])


@dataclass(frozen=True)
class Scoring:
    """A condition's criteria and its failsafes (each: the tier level it guarantees and its
    criteria), built for one cutoff set."""

    criteria: list[CriterionExprs]
    failsafe: list[tuple[int, list[CriterionExprs]]]

    def level(self) -> pl.Expr:
        """The tier all criteria reach (null if an input is missing), raised to a fired
        failsafe's level: a failsafe fires where all its criteria reach referral, and a
        missing input of the other criteria does not stop it."""
        combined = all_reach([c.level for c in self.criteria])
        if not self.failsafe:
            return combined
        fired = self.fired()
        return (
            pl.when(fired > 0)
            .then(pl.max_horizontal(combined, fired))
            .otherwise(combined)
            .cast(pl.Int8)
        )

    def fired(self) -> pl.Expr:
        """The highest level a failsafe guarantees on the row (0: none fired)."""
        return pl.max_horizontal(
            [
                pl.when(all_reach([c.level for c in crits]) >= 3)
                .then(pl.lit(level, dtype=pl.Int8))
                .otherwise(pl.lit(0, dtype=pl.Int8))
                for level, crits in self.failsafe
            ]
        )

    def detail(self) -> pl.Expr:
        """The criteria's texts, and a failsafe's where it raised the tier."""
        text = pl.concat_str([c.detail for c in self.criteria], separator="; ")
        combined = all_reach([c.level for c in self.criteria])
        for level, crits in self.failsafe:
            fired = (all_reach([c.level for c in crits]) >= 3) & (
                combined.is_null() | (combined < level)
            )
            action = CALL_BY_LEVEL[level]
            note = pl.concat_str(
                [
                    pl.lit(f"; failsafe (at least {action} whatever the other criteria): "),
                    pl.concat_str([c.detail for c in crits], separator="; "),
                ]
            )
            text = pl.concat_str(
                [text.fill_null(""), pl.when(fired).then(note).otherwise(pl.lit(""))]
            )
        return text


def _score(
    frame: pl.DataFrame, scoring: Scoring, prefix: str, criteria: bool = True
) -> pl.DataFrame:
    """Add ``{prefix}level`` (see :meth:`Scoring.level`), ``{prefix}invalid`` (a
    measurement failed), ``{prefix}detail`` (text) and, with ``criteria``,
    ``{prefix}criteria`` (the criteria as a JSON array)."""
    crits = scoring.criteria
    columns = [
        scoring.level().alias(f"{prefix}level"),
        pl.any_horizontal([c.invalid.fill_null(False) for c in crits]).alias(f"{prefix}invalid"),
        scoring.detail().alias(f"{prefix}detail"),
    ]
    if criteria:
        columns.append(_criteria_json(crits).alias(f"{prefix}criteria"))
    return frame.with_columns(columns)


COVARIATES = (
    "specimen_id",
    "age_hours",
    "gestational_age_weeks",
    "postmenstrual_weeks",
    "birth_weight_g",
)


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
    punches = results.punches(markers)
    first_rows = punches.filter(pl.col("replicate") == 1)
    # the first punch's criteria (JSON) only for the calls that are explained (decide)
    first = _score(first_rows, scoring, "first_", criteria=False).select(
        "specimen_id", "first_level", "first_invalid", "first_detail"
    )

    def first_criteria(explained: pl.DataFrame) -> pl.DataFrame:
        return first_rows.join(explained, on="specimen_id", how="semi").select(
            "specimen_id", first_criteria=_criteria_json(scoring.criteria)
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
    return decide(frame, code, cond, policy, basis_text, qpcr, first_criteria)


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
    # scoring every card's punches a second time cost a third of the evaluation
    complete = retests.filter(pl.col("n_retests") >= policy.retests_needed).select("specimen_id")
    if policy.method == "mean_of_retests":
        retest_rows = punches.filter((pl.col("replicate") >= 2) & present(markers))
        agg = mean_of(retest_rows.join(complete, on="specimen_id", how="semi"), markers)
        final = _score(agg.join(covariates, on="specimen_id"), scoring, "final_")
        basis_text = f"mean of the retest punches (needs {policy.retests_needed})"
    else:
        decided = punches.filter(present(markers)).join(complete, on="specimen_id", how="semi")
        scored = _score(decided, scoring, "final_")
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
        scored = _score(rows, scoring, "r_", criteria=False)
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
    punches = results.punches(markers)
    agg = mean_of(punches.filter(present(markers)), markers).join(covariates, on="specimen_id")
    scored = _score(agg, Scoring(crits, []), "t2_").select(
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
