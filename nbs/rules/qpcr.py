"""Kinds for qPCR targets: ``absent`` (a target missing in disease) and
``reference_gene`` (the control that shows the punch's DNA amplified)."""

from __future__ import annotations

import polars as pl
from pydantic import Field

from analytes.catalogue import UNDETERMINED
from nbs.rules.limits import KindParams, reaches
from nbs.rules.registry import CriterionExprs, Kind, KindContext, KindRegistry, LimitRow


def _no_amplification(marker: str) -> pl.Expr:
    """The punch did not amplify: every spelling is stored as ``undetermined`` (catalogue's
    ``no_amplification_texts``), and its value is the catalogue's ``evaluated_as``."""
    return pl.col(f"{marker}__flag") == UNDETERMINED


def _shown_ct(marker: str, ctx: KindContext) -> pl.Expr:
    return (
        pl.when(_no_amplification(marker))
        .then(pl.lit("no amplification"))
        .otherwise(pl.concat_str([pl.lit("Ct "), ctx.shown(marker)]))
    )


class AbsentParams(KindParams):
    """A qPCR target that is absent in disease (no amplification, or Ct at/after a limit)."""

    marker: str
    absent_from_ct: float = Field(gt=0, le=50)


class Absent(Kind[AbsentParams]):
    """A qPCR target absent in disease (SMN1: no amplification or late Ct).

    No amplification (empty value flagged ``undetermined``) or a Ct at or after
    ``absent_from_ct`` reaches the referral tier; amplification before it is tier 0. No
    value and no flag: not evaluated. Pair it with ``reference_gene`` so that a failed
    reaction is never read as absence.
    """

    name = "absent"
    params = AbsentParams

    def build(self, params: AbsentParams, ctx: KindContext) -> CriterionExprs:
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
        shown = _shown_ct(params.marker, ctx)
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

    def describe(self, params: AbsentParams, registry: KindRegistry) -> list[LimitRow]:
        """One row: absent at the Ct limit or with no amplification (referral)."""
        rule = "absent (no amplification or Ct ≥)"
        return [LimitRow(params.marker, rule, referral=params.absent_from_ct)]


class ReferenceParams(KindParams):
    """The qPCR reference gene that shows the DNA of the punch amplified."""

    marker: str
    max_ct: float = Field(gt=0, le=50)


class ReferenceGene(Kind[ReferenceParams]):
    """The qPCR reference gene must amplify; otherwise a DNA failure.

    The reference gene (e.g. RPP30) must amplify by ``max_ct`` (inclusive): otherwise the
    punch is a DNA failure (invalid): retest, then a new card; never a referral and never
    negative. A valid reference does not limit the tier (it reaches referral).
    """

    name = "reference_gene"
    params = ReferenceParams

    def build(self, params: ReferenceParams, ctx: KindContext) -> CriterionExprs:
        value = pl.col(params.marker)
        failed = _no_amplification(params.marker) | ~reaches(value, params.max_ct, "low")
        missing = value.is_null() & ~_no_amplification(params.marker)
        text = f"valid at Ct ≤{params.max_ct:g}"
        return CriterionExprs(
            label=params.marker,
            level=pl.when(missing.fill_null(True)).then(None).otherwise(3).cast(pl.Int8),
            value=value,
            detail=pl.concat_str(
                [
                    pl.lit(f"{params.marker} "),
                    _shown_ct(params.marker, ctx).fill_null("no value"),
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

    def describe(self, params: ReferenceParams, registry: KindRegistry) -> list[LimitRow]:
        """One row: the reference gene's validity limit."""
        rule = f"reference valid at Ct ≤{params.max_ct:g}, else DNA failure"
        return [LimitRow(params.marker, rule)]
