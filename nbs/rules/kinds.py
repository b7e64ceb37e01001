"""The built-in rule kinds, and the names a plug-in's kind needs, in one import.

Each family of kinds lives in its own module (:mod:`nbs.rules.threshold`,
:mod:`~nbs.rules.strata`, :mod:`~nbs.rules.percentile`, :mod:`~nbs.rules.combine`,
:mod:`~nbs.rules.qpcr`), each kind one :class:`~nbs.rules.registry.Kind` subclass whose
docstring is its documentation; what they share (reaching a limit, tier levels, limits as
text) is in :mod:`nbs.rules.limits`.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from types import ModuleType

from nbs.rules import combine, percentile, qpcr, strata, threshold
from nbs.rules.combine import AllOf, AllOfParams, AnyOf, AnyOfParams, all_reach
from nbs.rules.limits import (
    FLOAT_NOISE,
    LIMIT_NOISE_ULPS,
    KindParams,
    Limit,
    limits_text,
    parse_limits_text,
    reaches,
    tier_level,
)
from nbs.rules.percentile import AbovePercentile, PercentileParams, percentile_limits
from nbs.rules.qpcr import Absent, AbsentParams, ReferenceGene, ReferenceParams
from nbs.rules.registry import (
    CriterionExprs,
    Kind,
    KindContext,
    KindRegistry,
    LimitRow,
    RuleKind,
)
from nbs.rules.strata import (
    STRATUM_COVARIATES,
    AboveByAge,
    AboveByStratum,
    AgeBand,
    AgeBandedParams,
    Range,
    StratifiedParams,
    Stratum,
)
from nbs.rules.threshold import (
    Above,
    AboveParams,
    Below,
    BelowParams,
    RatioAbove,
    RatioParams,
    ThresholdParams,
)

#: the modules of built-in kinds, in the order the README lists them
FAMILIES: tuple[ModuleType, ...] = (threshold, strata, percentile, combine, qpcr)


def kinds_in(module: ModuleType) -> list[type[Kind]]:
    """The concrete kinds a module defines, in the order it defines them."""
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Kind)
        and obj.__module__ == module.__name__
        and not inspect.isabstract(obj)
    ]


def builtin_kinds() -> tuple[RuleKind, ...]:
    """The kinds the core provides; conditions' plug-ins may add more."""
    return tuple(kind.rule() for module in FAMILIES for kind in kinds_in(module))


def kinds_markdown(kinds: Iterable[RuleKind]) -> str:
    """The README's table of rule kinds: each kind's name and the first paragraph of its
    documentation."""
    lines = ["| kind | for |", "|---|---|"]
    for kind in kinds:
        text = kind.summary.replace("|", "\\|")  # a bar would end the cell
        lines.append(f"| `{kind.name}` | {text} |")
    return "\n".join(lines) + "\n"


__all__ = [
    "FAMILIES",
    "FLOAT_NOISE",
    "LIMIT_NOISE_ULPS",
    "STRATUM_COVARIATES",
    "Above",
    "AboveByAge",
    "AboveByStratum",
    "AboveParams",
    "AbovePercentile",
    "Absent",
    "AbsentParams",
    "AgeBand",
    "AgeBandedParams",
    "AllOf",
    "AllOfParams",
    "AnyOf",
    "AnyOfParams",
    "Below",
    "BelowParams",
    "CriterionExprs",
    "Kind",
    "KindContext",
    "KindParams",
    "KindRegistry",
    "Limit",
    "LimitRow",
    "PercentileParams",
    "Range",
    "RatioAbove",
    "RatioParams",
    "ReferenceGene",
    "ReferenceParams",
    "RuleKind",
    "StratifiedParams",
    "Stratum",
    "ThresholdParams",
    "all_reach",
    "builtin_kinds",
    "kinds_in",
    "kinds_markdown",
    "limits_text",
    "parse_limits_text",
    "percentile_limits",
    "reaches",
    "tier_level",
]
