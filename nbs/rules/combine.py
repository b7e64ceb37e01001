"""Kinds that combine nested criteria: ``any_of`` (OR) and ``all_of`` (AND)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import polars as pl
from pydantic import Field

from nbs.rules.limits import KindParams
from nbs.rules.registry import CriterionExprs, Kind, KindContext, KindRegistry, LimitRow


def all_reach(levels: Sequence[pl.Expr]) -> pl.Expr:
    """The tier ALL criteria reach (their lowest); null when any input is missing."""
    return (
        pl.when(pl.any_horizontal([lv.is_null() for lv in levels]))
        .then(None)
        .otherwise(pl.min_horizontal(levels))
        .cast(pl.Int8)
    )


class AnyOfParams(KindParams):
    """Sub-criteria of which ANY may reach a tier (the highest tier any reaches)."""

    criteria: tuple[dict[str, Any], ...] = Field(min_length=2)


class AllOfParams(KindParams):
    """Sub-criteria that must ALL reach a tier (used inside ``any_of``)."""

    criteria: tuple[dict[str, Any], ...] = Field(min_length=2)


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


def _describe_group(
    params: AnyOfParams | AllOfParams, word: str, registry: KindRegistry
) -> list[LimitRow]:
    rows = []
    for i, criterion in enumerate(params.criteria, start=1):
        for row in registry.describe(criterion):
            prefix = f"{word} {i}"
            rows.append(replace(row, stratum=f"{prefix}: {row.stratum}" if row.stratum else prefix))
    return rows


class AnyOf(Kind[AnyOfParams]):
    """OR of nested criteria (MCAD: C8/C10 or C8/C2).

    The tier is the highest tier any sub-criterion reaches; null only when every
    sub-criterion lacks its input.
    """

    name = "any_of"
    params = AnyOfParams

    def build(self, params: AnyOfParams, ctx: KindContext) -> CriterionExprs:
        subs, common = _group(params, ctx, "any of", " | ")
        return CriterionExprs(
            level=pl.max_horizontal([sub.level for sub in subs]).cast(pl.Int8), **common
        )

    def describe(self, params: AnyOfParams, registry: KindRegistry) -> list[LimitRow]:
        """The rows of every alternative, labelled ``either 1``, ``either 2``..."""
        return _describe_group(params, "either", registry)


class AllOf(Kind[AllOfParams]):
    """AND of nested criteria (Dutch CF: IRT >= 60 and PAP >= 3.0).

    The tier is the lowest tier all sub-criteria reach; null when any input is missing.
    """

    name = "all_of"
    params = AllOfParams

    def build(self, params: AllOfParams, ctx: KindContext) -> CriterionExprs:
        subs, common = _group(params, ctx, "all of", " & ")
        return CriterionExprs(level=all_reach([sub.level for sub in subs]), **common)

    def describe(self, params: AllOfParams, registry: KindRegistry) -> list[LimitRow]:
        """The rows of every part, labelled ``and 1``, ``and 2``..."""
        return _describe_group(params, "and", registry)
