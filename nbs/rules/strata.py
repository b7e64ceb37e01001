"""Kinds whose limits depend on the baby: ``above_by_age`` (age at collection) and
``above_by_stratum`` (gestation, birth weight, age)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import polars as pl
from pydantic import Field, model_validator

from cutoffs.model import TierLimits
from nbs.rules.limits import KindParams, detail, limit_row, limits_text, num, ordered, tier_level
from nbs.rules.registry import CriterionExprs, Kind, KindContext, KindRegistry, LimitRow


class AgeBand(KindParams):
    """Ages at collection [from_hours, to_hours) with their tier limits."""

    from_hours: float = Field(ge=0)
    to_hours: float | None = None
    limits: TierLimits

    @model_validator(mode="after")
    def _order(self) -> AgeBand:
        if self.to_hours is not None and self.to_hours <= self.from_hours:
            raise ValueError(f"age band to_hours {self.to_hours} <= from_hours {self.from_hours}")
        ordered(self.limits, "high")
        return self

    @property
    def label(self) -> str:
        """``0-72 h`` or ``≥120 h``."""
        if self.to_hours is None:
            return f"≥{num(self.from_hours)} h"
        return f"{num(self.from_hours)}-{num(self.to_hours)} h"


class AgeBandedParams(KindParams):
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


class AboveByAge(Kind[AgeBandedParams]):
    """A rising marker with limits by age at collection in hours (TSH).

    E.g. TSH: Germany < 20 mU/L to day 3, < 15 to day 5, < 10 after. Bands are [from, to):
    a card collected at exactly 72 h belongs to the band starting at 72 h.
    """

    name = "above_by_age"
    params = AgeBandedParams

    def build(self, params: AgeBandedParams, ctx: KindContext) -> CriterionExprs:
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
            detail=detail(
                params.marker, ctx.shown(params.marker), ctx.unit(params.marker), bracket
            ),
            limits=by_band(texts),
            stratum=stratum,
            markers=(params.marker,),
        )

    def describe(self, params: AgeBandedParams, registry: KindRegistry) -> list[LimitRow]:
        """One row per age band."""
        return [limit_row(params.marker, "≥", b.limits, f"age {b.label}") for b in params.bands]


class Range(KindParams):
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


class Stratum(KindParams):
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


class StratifiedParams(KindParams):
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
            ordered(stratum.limits, "high")
        return self


class AboveByStratum(Kind[StratifiedParams]):
    """A rising marker with limits by gestation / birth weight / age strata; the last
    stratum (no conditions) applies to everyone else, including babies with missing
    covariates, so it holds the most sensitive limits (17-OHP).

    17-OHP runs high in preterm and low-birth-weight babies. The first stratum whose ranges
    all contain the baby's covariates applies; ranges are [from, to). A baby matching none,
    or with a needed covariate missing, gets the last stratum: put the term-baby limits
    there.
    """

    name = "above_by_stratum"
    params = StratifiedParams

    def build(self, params: StratifiedParams, ctx: KindContext) -> CriterionExprs:
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
            detail=detail(
                params.marker, ctx.shown(params.marker), ctx.unit(params.marker), bracket
            ),
            limits=texts,
            stratum=stratum,
            markers=(params.marker,),
        )

    def describe(self, params: StratifiedParams, registry: KindRegistry) -> list[LimitRow]:
        """One row per stratum, in the order they are tried."""
        return [limit_row(params.marker, "≥", s.limits, s.label) for s in params.strata]
