"""The built-in rule kinds.

Every kind follows the limits convention of the cutoff files: a value equal to a limit
reaches it (``>=`` for a marker that rises in disease, ``<=`` for one that falls), up to
float noise (:func:`reaches`), and a condition reaches a tier when all its criteria reach
it. A missing input gives a null
level, which the evaluator reports as ``not_evaluated``, never as ``negative``.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from analytes.catalogue import UNDETERMINED
from cutoffs.model import TierLimits
from nbs.rules.registry import CriterionExprs, KindContext, KindRegistry, LimitRow, RuleKind

Limit = float | pl.Expr


class _Params(BaseModel):
    # an infinite or NaN limit is a typing error in a cutoff file, never a setting
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def _num(x: float) -> str:
    return f"{x:g}"


def _ordered(limits: TierLimits, direction: Literal["high", "low"]) -> TierLimits:
    values = limits.resolved()
    ok = list(values) == sorted(values, reverse=direction == "low")
    if not ok:
        order = "<=" if direction == "high" else ">="
        raise ValueError(
            f"limits must satisfy retest {order} repeat_specimen {order} referral, got {values}"
        )
    return limits


def limits_text(limits: TierLimits, direction: Literal["high", "low"]) -> str:
    """Human text of the three tier limits, e.g. ``retest ≥120, repeat ≥150, referral ≥240``,
    or ``≥1.6`` where one limit serves every tier."""
    sign = "≥" if direction == "high" else "≤"
    retest, repeat, referral = limits.resolved()
    if retest == repeat == referral:
        return f"{sign}{_num(referral)}"
    return (
        f"retest {sign}{_num(retest)}, repeat {sign}{_num(repeat)}, referral {sign}{_num(referral)}"
    )


_LIMITS_TEXT = re.compile(
    r"^retest (?P<sign>[≥≤])(?P<retest>[-+.\deE]+), repeat [≥≤](?P<repeat>[-+.\deE]+), "
    r"referral [≥≤](?P<referral>[-+.\deE]+)$"
)
_ONE_LIMIT_TEXT = re.compile(r"^(?P<sign>[≥≤])(?P<limit>[-+.\deE]+)$")


def parse_limits_text(text: str) -> tuple[Literal["high", "low"], float, float, float] | None:
    """The inverse of :func:`limits_text`: (direction, retest, repeat, referral), or None
    for a text of another shape (qualitative rules). Used to draw a value against its
    limits from a stored explanation."""
    one = _ONE_LIMIT_TEXT.match(text.strip())
    if one:
        limit = float(one["limit"])
        return ("high" if one["sign"] == "≥" else "low"), limit, limit, limit
    match = _LIMITS_TEXT.match(text.strip())
    if not match:
        return None
    direction: Literal["high", "low"] = "high" if match["sign"] == "≥" else "low"
    return direction, float(match["retest"]), float(match["repeat"]), float(match["referral"])


#: a value within this many units in the last place of a limit is at the limit. Values are
#: decimals held in binary: Phe 557.77 / Tyr 328.10 is exactly 1.7 but computes as
#: 1.6999999999999997, and a mean of retests can land a hair under the limit it reaches.
#: Wide enough for a mean of ~15 punches, far narrower than any reported digit.
LIMIT_NOISE_ULPS = 8
#: the same, relative to the number: what a comparison or a rounding may treat as noise
FLOAT_NOISE = LIMIT_NOISE_ULPS * float(np.finfo(np.float64).eps)


def reaches(value: pl.Expr, limit: Limit, direction: Literal["high", "low"]) -> pl.Expr:
    """``value`` reaches ``limit``: ``>=`` for a rising marker (``high``), ``<=`` for a
    falling one, inclusive up to float noise (``LIMIT_NOISE_ULPS``), so that a value at the
    limit in decimals is never read as short of it. Plug-in kinds compare with this too."""
    # an infinite limit has no noise (inf - inf would be NaN, which polars orders above
    # every number): it compares exactly
    if isinstance(limit, pl.Expr):
        slack: Limit = pl.when(limit.is_finite()).then(limit.abs() * FLOAT_NOISE).otherwise(0.0)
    else:
        slack = abs(limit) * FLOAT_NOISE if math.isfinite(limit) else 0.0
    return value >= limit - slack if direction == "high" else value <= limit + slack


def tier_level(
    value: pl.Expr, limits: tuple[Limit, Limit, Limit], direction: Literal["high", "low"]
) -> pl.Expr:
    """Int8 tier reached by ``value`` against (retest, repeat, referral); null if no value,
    or no limit (a limit computed per card, e.g. by a plug-in, that comes out null: not
    evaluated, never negative)."""
    retest, repeat, referral = limits

    def past(limit: Limit) -> pl.Expr:
        return reaches(value, limit, direction)

    unknown = value.is_null() | value.is_nan()
    for limit in limits:
        if isinstance(limit, pl.Expr):
            unknown = unknown | limit.is_null()
    return (
        pl.when(unknown)
        .then(None)
        .when(past(referral))
        .then(3)
        .when(past(repeat))
        .then(2)
        .when(past(retest))
        .then(1)
        .otherwise(0)
        .cast(pl.Int8)
    )


def _detail(label: str, value_text: pl.Expr, unit: str, bracket: pl.Expr) -> pl.Expr:
    unit_part = f" {unit}" if unit else ""
    return pl.concat_str(
        [
            pl.lit(f"{label} "),
            value_text.fill_null("no value"),
            pl.lit(f"{unit_part} ("),
            bracket,
            pl.lit(")"),
        ]
    )


class ThresholdParams(_Params):
    """``marker`` compared with one limit per tier."""

    marker: str
    limits: TierLimits


class AboveParams(ThresholdParams):
    """A rising marker: limits ordered retest <= repeat_specimen <= referral."""

    @model_validator(mode="after")
    def _order(self) -> AboveParams:
        _ordered(self.limits, "high")
        return self


class BelowParams(ThresholdParams):
    """A falling marker: limits ordered retest >= repeat_specimen >= referral."""

    @model_validator(mode="after")
    def _order(self) -> BelowParams:
        _ordered(self.limits, "low")
        return self


def _threshold(
    params: ThresholdParams, ctx: KindContext, direction: Literal["high", "low"]
) -> CriterionExprs:
    value = pl.col(params.marker)
    text = limits_text(params.limits, direction)
    return CriterionExprs(
        label=params.marker,
        level=tier_level(value, params.limits.resolved(), direction),
        value=value,
        detail=_detail(
            params.marker, ctx.shown(params.marker), ctx.unit(params.marker), pl.lit(text)
        ),
        limits=pl.lit(text),
        stratum=pl.lit(None, dtype=pl.String),
        markers=(params.marker,),
    )


def build_above(params: AboveParams, ctx: KindContext) -> CriterionExprs:
    """A marker that rises in disease: the tier is the highest limit with value >= limit."""
    return _threshold(params, ctx, "high")


def build_below(params: BelowParams, ctx: KindContext) -> CriterionExprs:
    """A marker that falls in disease (e.g. TREC): the tier is the highest limit with
    value <= limit (limits ordered retest >= repeat_specimen >= referral)."""
    return _threshold(params, ctx, "low")


class RatioParams(_Params):
    """``numerator / denominator`` compared with one limit per tier."""

    numerator: str
    denominator: str
    limits: TierLimits

    @model_validator(mode="after")
    def _order(self) -> RatioParams:
        _ordered(self.limits, "high")
        return self


def build_ratio_above(params: RatioParams, ctx: KindContext) -> CriterionExprs:
    """The ratio of two markers rises in disease (e.g. Phe/Tyr in PKU): the tier is the
    highest limit with ratio >= limit. A zero denominator gives an infinite ratio
    (flagged); 0/0 is no value (not evaluated)."""
    ratio = (pl.col(params.numerator) / pl.col(params.denominator)).fill_nan(None)
    label = f"{params.numerator}/{params.denominator}"
    text = limits_text(params.limits, "high")
    # two significant digits past the smallest limit: C8/C2 0.017 must not read as 0.02
    smallest = (
        min(v for v in params.limits.resolved() if v > 0)
        if any(v > 0 for v in params.limits.resolved())
        else 1.0
    )
    decimals = max(2, 1 - math.floor(math.log10(smallest)))
    return CriterionExprs(
        label=label,
        level=tier_level(ratio, params.limits.resolved(), "high"),
        value=ratio,
        detail=_detail(label, ctx.fmt(ratio, decimals=decimals), "", pl.lit(text)),
        limits=pl.lit(text),
        stratum=pl.lit(None, dtype=pl.String),
        markers=(params.numerator, params.denominator),
    )


class AgeBand(_Params):
    """Ages at collection [from_hours, to_hours) with their tier limits."""

    from_hours: float = Field(ge=0)
    to_hours: float | None = None
    limits: TierLimits

    @model_validator(mode="after")
    def _order(self) -> AgeBand:
        if self.to_hours is not None and self.to_hours <= self.from_hours:
            raise ValueError(f"age band to_hours {self.to_hours} <= from_hours {self.from_hours}")
        _ordered(self.limits, "high")
        return self

    @property
    def label(self) -> str:
        """``0-72 h`` or ``≥120 h``."""
        if self.to_hours is None:
            return f"≥{_num(self.from_hours)} h"
        return f"{_num(self.from_hours)}-{_num(self.to_hours)} h"


class AgeBandedParams(_Params):
    """A rising marker whose limits depend on the age at collection (``age_hours``)."""

    marker: str
    bands: tuple[AgeBand, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _contiguous(self) -> AgeBandedParams:
        bands = sorted(self.bands, key=lambda b: b.from_hours)
        if bands[0].from_hours != 0:
            raise ValueError("age bands must start at 0 hours")
        for before, after in itertools.pairwise(bands):
            if before.to_hours != after.from_hours:
                raise ValueError(
                    f"age bands must be contiguous: {before.label} is followed by {after.label}"
                )
        if bands[-1].to_hours is not None:
            raise ValueError("the last age band must be open-ended (no to_hours)")
        return self


def build_above_by_age(params: AgeBandedParams, ctx: KindContext) -> CriterionExprs:
    """A rising marker with limits stratified by age at collection in hours (e.g. TSH:
    Germany < 20 mU/L to day 3, < 15 to day 5, < 10 after). Bands are [from, to): a card
    collected at exactly 72 h belongs to the band starting at 72 h."""
    age = pl.col("age_hours")
    bands = sorted(params.bands, key=lambda b: b.from_hours)

    def by_band(items: Sequence[object]) -> pl.Expr:
        """The item of the band each row's age falls in (null when age is null)."""
        expr: pl.Expr = pl.lit(None)
        for band, item in reversed(list(zip(bands, items, strict=True))):
            cond = age >= band.from_hours
            if band.to_hours is not None:
                cond = cond & (age < band.to_hours)
            expr = pl.when(cond).then(pl.lit(item)).otherwise(expr)
        return expr

    resolved = [b.limits.resolved() for b in bands]
    limit_exprs = tuple(by_band([r[i] for r in resolved]) for i in range(3))
    texts = [limits_text(b.limits, "high") for b in bands]
    strata = [f"age band {b.label}" for b in bands]
    value = pl.col(params.marker)
    level = (
        pl.when(age.is_null())
        .then(None)
        .otherwise(tier_level(value, (limit_exprs[0], limit_exprs[1], limit_exprs[2]), "high"))
    )
    stratum = by_band(strata)
    bracket = pl.concat_str(
        [
            pl.lit("age "),
            ctx.fmt(age, decimals=1).str.strip_suffix(".0"),
            pl.lit(" h, "),
            stratum,
            pl.lit(": "),
            by_band(texts),
        ]
    )
    return CriterionExprs(
        label=params.marker,
        level=level.cast(pl.Int8),
        value=value,
        detail=_detail(params.marker, ctx.shown(params.marker), ctx.unit(params.marker), bracket),
        limits=by_band(texts),
        stratum=stratum,
        markers=(params.marker,),
    )


class AnyOfParams(_Params):
    """Sub-criteria of which ANY may reach a tier (the highest tier any reaches)."""

    criteria: tuple[dict[str, Any], ...] = Field(min_length=2)


def all_reach(levels: Sequence[pl.Expr]) -> pl.Expr:
    """The tier ALL criteria reach (their lowest); null when any input is missing."""
    return (
        pl.when(pl.any_horizontal([lv.is_null() for lv in levels]))
        .then(None)
        .otherwise(pl.min_horizontal(levels))
        .cast(pl.Int8)
    )


def _group(
    params: AnyOfParams | AllOfParams, ctx: KindContext, word: str, sep: str
) -> tuple[list[CriterionExprs], dict[str, Any]]:
    """Build the nested criteria and the parts of a combined criterion common to OR/AND."""
    if ctx.build is None:
        raise ValueError(f"{word} needs a registry to build its sub-criteria")
    subs = [ctx.build(c) for c in params.criteria]
    joiner = " or " if word == "any of" else " and "
    common = {
        "label": "(" + joiner.join(sub.label for sub in subs) + ")",
        "value": subs[0].value,
        "detail": pl.concat_str(
            [
                pl.lit(f"{word} ["),
                pl.concat_str([sub.detail for sub in subs], separator=sep),
                pl.lit("]"),
            ]
        ),
        "limits": pl.concat_str([sub.limits for sub in subs], separator=sep),
        "stratum": pl.lit(None, dtype=pl.String),
        "markers": tuple(dict.fromkeys(m for sub in subs for m in sub.markers)),
        "invalid": pl.any_horizontal([sub.invalid.fill_null(False) for sub in subs]),
    }
    return subs, common


def build_any_of(params: AnyOfParams, ctx: KindContext) -> CriterionExprs:
    """OR of sub-criteria (e.g. MCAD: C8/C10 or C8/C2): the tier is the highest tier any
    sub-criterion reaches; null only when every sub-criterion lacks its input."""
    subs, common = _group(params, ctx, "any of", " | ")
    return CriterionExprs(
        level=pl.max_horizontal([sub.level for sub in subs]).cast(pl.Int8), **common
    )


class AllOfParams(_Params):
    """Sub-criteria that must ALL reach a tier (used inside ``any_of``)."""

    criteria: tuple[dict[str, Any], ...] = Field(min_length=2)


def build_all_of(params: AllOfParams, ctx: KindContext) -> CriterionExprs:
    """AND of sub-criteria (e.g. Dutch CF: IRT >= 60 and PAP >= 3.0): the tier is the lowest
    tier all reach; null when any input is missing."""
    subs, common = _group(params, ctx, "all of", " & ")
    return CriterionExprs(level=all_reach([sub.level for sub in subs]), **common)


class Range(_Params):
    """[from, to) of a covariate; a missing bound is open."""

    from_: float | None = Field(default=None, alias="from")
    to: float | None = None

    def expr(self, column: str) -> pl.Expr:
        """True where the column lies in the range (null where the column is null)."""
        cond = pl.lit(True)
        if self.from_ is not None:
            cond = cond & (pl.col(column) >= self.from_)
        if self.to is not None:
            cond = cond & (pl.col(column) < self.to)
        return cond

    def text(self, unit: str) -> str:
        """``32-37 weeks``, ``≥2500 g``, ``<1500 g``."""
        if self.from_ is not None and self.to is not None:
            return f"{self.from_:g}-{self.to:g} {unit}"
        if self.from_ is not None:
            return f"≥{self.from_:g} {unit}"
        return f"<{self.to:g} {unit}" if self.to is not None else "all"


STRATUM_COVARIATES = {
    "gestational_age_weeks": "weeks",
    "postmenstrual_weeks": "weeks",
    "birth_weight_g": "g",
    "age_hours": "h",
}


class Stratum(_Params):
    """Limits for babies whose covariates fall in all the given ranges."""

    gestational_age_weeks: Range | None = None
    #: gestation plus age at collection: the maturity the marker reflects
    postmenstrual_weeks: Range | None = None
    birth_weight_g: Range | None = None
    age_hours: Range | None = None
    limits: TierLimits

    @property
    def conditions(self) -> list[tuple[str, Range]]:
        """(covariate, range) pairs this stratum sets."""
        return [(c, r) for c in STRATUM_COVARIATES if (r := getattr(self, c)) is not None]

    @property
    def label(self) -> str:
        """``gestation 32-37 weeks, birth weight ≥2500 g`` or ``all other babies``."""
        names = {"birth_weight_g": "birth weight", "postmenstrual_weeks": "postmenstrual age"}
        parts = [
            f"{names.get(c, c.split('_')[0])} {r.text(STRATUM_COVARIATES[c])}"
            for c, r in self.conditions
        ]
        return ", ".join(parts).replace("gestational", "gestation") or "all other babies"


class StratifiedParams(_Params):
    """A rising marker with limits by stratum (gestation, birth weight, age)."""

    marker: str
    strata: tuple[Stratum, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _catch_all_last(self) -> StratifiedParams:
        if self.strata[-1].conditions:
            raise ValueError(
                "the last stratum must have no conditions: it applies to every baby no other "
                "stratum matches, including babies whose gestation or weight is missing"
            )
        for stratum in self.strata:
            _ordered(stratum.limits, "high")
        return self


def build_above_by_stratum(params: StratifiedParams, ctx: KindContext) -> CriterionExprs:
    """A rising marker with limits stratified by gestational age, birth weight and/or age
    at collection (e.g. 17-OHP, which runs high in preterm and low-birth-weight babies).
    The first stratum whose ranges all contain the baby's covariates applies; ranges are
    [from, to). A baby matching none, or with a needed covariate missing, gets the last
    stratum (no conditions): put the most sensitive (term-baby) limits there."""
    matched: list[pl.Expr] = [
        pl.all_horizontal([r.expr(c) for c, r in s.conditions]).fill_null(False)
        for s in params.strata[:-1]
    ]

    def pick(items: Sequence[object]) -> pl.Expr:
        expr: pl.Expr = pl.lit(items[-1])
        for cond, item in reversed(list(zip(matched, items[:-1], strict=True))):
            expr = pl.when(cond).then(pl.lit(item)).otherwise(expr)
        return expr

    resolved = [s.limits.resolved() for s in params.strata]
    limits = tuple(pick([r[i] for r in resolved]) for i in range(3))
    texts = pick([limits_text(s.limits, "high") for s in params.strata])
    stratum = pick([s.label for s in params.strata])
    value = pl.col(params.marker)
    bracket = pl.concat_str([stratum, pl.lit(": "), texts])
    return CriterionExprs(
        label=params.marker,
        level=tier_level(value, (limits[0], limits[1], limits[2]), "high"),
        value=value,
        detail=_detail(params.marker, ctx.shown(params.marker), ctx.unit(params.marker), bracket),
        limits=texts,
        stratum=stratum,
        markers=(params.marker,),
    )


def _no_amplification(marker: str) -> pl.Expr:
    """The punch did not amplify: every spelling is stored as ``undetermined`` (catalogue's
    ``no_amplification_texts``), and its value is the catalogue's ``evaluated_as``."""
    return pl.col(f"{marker}__flag") == UNDETERMINED


class AbsentParams(_Params):
    """A qPCR target that is absent in disease (no amplification, or Ct at/after a limit)."""

    marker: str
    absent_from_ct: float = Field(gt=0, le=50)


def build_absent(params: AbsentParams, ctx: KindContext) -> CriterionExprs:
    """A qPCR target absent in disease (e.g. SMN1 exon 7 in SMA): no amplification (empty
    value flagged ``undetermined``) or a Ct at or after ``absent_from_ct`` reaches the
    referral tier; amplification before it is tier 0. No value and no flag: not evaluated.
    Pair it with ``reference_gene`` so that a failed reaction is never read as absence."""
    value = pl.col(params.marker)
    absent = _no_amplification(params.marker) | reaches(value, params.absent_from_ct, "high")
    level = (
        pl.when(absent.fill_null(False))
        .then(3)
        .when(value.is_not_null())
        .then(0)
        .otherwise(None)
        .cast(pl.Int8)
    )
    text = f"absent at Ct ≥{params.absent_from_ct:g} or no amplification"
    shown = (
        pl.when(_no_amplification(params.marker))
        .then(pl.lit("no amplification"))
        .otherwise(pl.concat_str([pl.lit("Ct "), ctx.shown(params.marker)]))
    )
    return CriterionExprs(
        label=params.marker,
        level=level,
        value=value,
        detail=pl.concat_str(
            [pl.lit(f"{params.marker} "), shown.fill_null("no value"), pl.lit(f" ({text})")]
        ),
        limits=pl.lit(text),
        stratum=pl.lit(None, dtype=pl.String),
        markers=(params.marker,),
    )


class ReferenceParams(_Params):
    """The qPCR reference gene that shows the DNA of the punch amplified."""

    marker: str
    max_ct: float = Field(gt=0, le=50)


def build_reference_gene(params: ReferenceParams, ctx: KindContext) -> CriterionExprs:
    """The reference gene (e.g. RPP30) must amplify by ``max_ct`` (inclusive): otherwise
    the punch is a DNA failure (invalid): retest, then a new card; never a referral and
    never negative. A valid reference does not limit the tier (it reaches referral)."""
    value = pl.col(params.marker)
    failed = _no_amplification(params.marker) | ~reaches(value, params.max_ct, "low")
    missing = value.is_null() & ~_no_amplification(params.marker)
    text = f"valid at Ct ≤{params.max_ct:g}"
    shown = (
        pl.when(_no_amplification(params.marker))
        .then(pl.lit("no amplification"))
        .otherwise(pl.concat_str([pl.lit("Ct "), ctx.shown(params.marker)]))
    )
    return CriterionExprs(
        label=params.marker,
        level=pl.when(missing.fill_null(True)).then(None).otherwise(3).cast(pl.Int8),
        value=value,
        detail=pl.concat_str(
            [
                pl.lit(f"{params.marker} "),
                shown.fill_null("no value"),
                pl.when(failed.fill_null(False))
                .then(pl.lit(f" (reference {text}: DNA failure)"))
                .otherwise(pl.lit(f" (reference {text})")),
            ]
        ),
        limits=pl.lit(text),
        stratum=pl.lit(None, dtype=pl.String),
        markers=(params.marker,),
        invalid=failed.fill_null(False),
    )


class PercentileParams(_Params):
    """A rising marker whose limits are percentiles of a reference distribution."""

    marker: str
    percentiles: TierLimits
    of: Literal["run", "window"] = "window"
    window_days: int = Field(default=90, ge=1, le=730)
    min_values: int = Field(default=1000, ge=10)
    fallback: TierLimits

    @model_validator(mode="after")
    def _check(self) -> PercentileParams:
        _ordered(self.percentiles, "high")
        _ordered(self.fallback, "high")
        if not all(0 < p < 100 for p in self.percentiles.resolved()):
            raise ValueError("percentiles must lie strictly between 0 and 100")
        return self


def percentile_limits(
    params: PercentileParams, sample: np.ndarray
) -> tuple[tuple[float, float, float], str]:
    """The limits for a reference sample and the text that explains them.

    With at least ``min_values`` values: the percentiles of the sample (scipy, linear
    interpolation); otherwise the fixed ``fallback`` limits, and the text says so.
    """
    n = int(sample.size)
    where = "this run" if params.of == "run" else f"{params.window_days}-day window"
    if n >= params.min_values:
        # imported here: scipy.stats costs ~0.7 s to import, and most runs never need it
        from scipy.stats import scoreatpercentile

        values = tuple(float(scoreatpercentile(sample, p)) for p in params.percentiles.resolved())
        names = ("retest", "repeat", "referral")
        parts = [
            f"{name} ≥{v:.1f} (p{p:g})"
            for name, v, p in zip(names, values, params.percentiles.resolved(), strict=True)
        ]
        return (values[0], values[1], values[2]), f"{', '.join(parts)} of {where}, n={n}"
    fixed = params.fallback.resolved()
    return fixed, (
        f"{limits_text(params.fallback, 'high')}: fixed fallback, {n} values in "
        f"{where} < {params.min_values}"
    )


def build_above_percentile(params: PercentileParams, ctx: KindContext) -> CriterionExprs:
    """A rising marker with limits at percentiles of the first punches of this run or of a
    rolling window of days (e.g. Germany: IRT >= 99.0th percentile -> PAP, >= 99.9th ->
    DNA). Below ``min_values`` reference values the fixed ``fallback`` limits apply; the
    reason states which limits were used, from how many values."""
    sample = (
        ctx.sample(params.marker, params.of, params.window_days)
        if ctx.sample
        else np.array([], dtype=float)
    )
    limits, text = percentile_limits(params, sample)
    value = pl.col(params.marker)
    return CriterionExprs(
        label=params.marker,
        level=tier_level(value, limits, "high"),
        value=value,
        detail=_detail(
            params.marker, ctx.shown(params.marker), ctx.unit(params.marker), pl.lit(text)
        ),
        limits=pl.lit(text),
        stratum=pl.lit(None, dtype=pl.String),
        markers=(params.marker,),
    )


def describe_percentile(params: PercentileParams, registry: KindRegistry) -> list[LimitRow]:
    """Two rows: the percentiles, and the fixed fallback limits."""
    where = "run" if params.of == "run" else f"{params.window_days}-day window"
    p = params.percentiles.resolved()
    f = params.fallback.resolved()
    return [
        LimitRow(params.marker, f"≥ percentile of {where}", "percentiles", *p),
        LimitRow(params.marker, "≥", f"fallback below {params.min_values} values", *f),
    ]


def _row(marker: str, rule: str, limits: TierLimits, stratum: str = "") -> LimitRow:
    retest, repeat, referral = limits.resolved()
    return LimitRow(marker, rule, stratum, retest, repeat, referral)


def describe_above(params: ThresholdParams, registry: KindRegistry) -> list[LimitRow]:
    """One row: the marker with its three limits."""
    return [_row(params.marker, "≥" if isinstance(params, AboveParams) else "≤", params.limits)]


def describe_ratio(params: RatioParams, registry: KindRegistry) -> list[LimitRow]:
    """One row: the ratio with its three limits."""
    return [_row(f"{params.numerator}/{params.denominator}", "≥", params.limits)]


def describe_by_age(params: AgeBandedParams, registry: KindRegistry) -> list[LimitRow]:
    """One row per age band."""
    return [_row(params.marker, "≥", b.limits, f"age {b.label}") for b in params.bands]


def describe_by_stratum(params: StratifiedParams, registry: KindRegistry) -> list[LimitRow]:
    """One row per stratum, in the order they are tried."""
    return [_row(params.marker, "≥", s.limits, s.label) for s in params.strata]


def _describe_group(
    params: AnyOfParams | AllOfParams, word: str, registry: KindRegistry
) -> list[LimitRow]:
    rows = []
    for i, criterion in enumerate(params.criteria, start=1):
        for row in registry.describe(criterion):
            prefix = f"{word} {i}"
            rows.append(replace(row, stratum=f"{prefix}: {row.stratum}" if row.stratum else prefix))
    return rows


def describe_any_of(params: AnyOfParams, registry: KindRegistry) -> list[LimitRow]:
    """The rows of every alternative, labelled ``either 1``, ``either 2``..."""
    return _describe_group(params, "either", registry)


def describe_all_of(params: AllOfParams, registry: KindRegistry) -> list[LimitRow]:
    """The rows of every part, labelled ``and 1``, ``and 2``..."""
    return _describe_group(params, "and", registry)


def describe_absent(params: AbsentParams, registry: KindRegistry) -> list[LimitRow]:
    """One row: absent at the Ct limit or with no amplification (referral)."""
    return [
        LimitRow(params.marker, "absent (no amplification or Ct ≥)", referral=params.absent_from_ct)
    ]


def describe_reference(params: ReferenceParams, registry: KindRegistry) -> list[LimitRow]:
    """One row: the reference gene's validity limit."""
    return [LimitRow(params.marker, f"reference valid at Ct ≤{params.max_ct:g}, else DNA failure")]


def builtin_kinds() -> tuple[RuleKind, ...]:
    """The kinds the core provides; conditions' plug-ins may add more."""
    return (
        RuleKind("above", AboveParams, build_above, describe_above),
        RuleKind("below", BelowParams, build_below, describe_above),
        RuleKind("ratio_above", RatioParams, build_ratio_above, describe_ratio),
        RuleKind("above_by_age", AgeBandedParams, build_above_by_age, describe_by_age),
        RuleKind("above_by_stratum", StratifiedParams, build_above_by_stratum, describe_by_stratum),
        RuleKind("any_of", AnyOfParams, build_any_of, describe_any_of),
        RuleKind("all_of", AllOfParams, build_all_of, describe_all_of),
        RuleKind("absent", AbsentParams, build_absent, describe_absent),
        RuleKind("reference_gene", ReferenceParams, build_reference_gene, describe_reference),
        RuleKind("above_percentile", PercentileParams, build_above_percentile, describe_percentile),
    )
