"""The screening configuration: catalogue, cutoff sets and loaded conditions, checked
together and frozen. Built by :func:`load_config` and passed in; nothing is global."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from analytes import Catalogue, load_catalogue
from cutoffs import LEVELS, CutoffSet, load_cutoff_sets
from nbs.conditions import ConditionRegistry, load_registry
from nbs.rules.registry import CriterionExprs, KindContext, RuleKind

Sampler = Callable[[str, str, int], np.ndarray]


@dataclass(frozen=True)
class ParsedCriterion:
    """A criterion of a cutoff file checked against its kind."""

    kind: RuleKind
    params: BaseModel


@dataclass(frozen=True)
class FailsafeRules:
    """A failsafe's checked criteria and the tier level (2 or 3) it guarantees."""

    level: int
    criteria: tuple[ParsedCriterion, ...]


@dataclass(frozen=True)
class ConditionRules:
    """A condition's checked criteria: first tier, the second tier and the failsafes if
    configured."""

    first: tuple[ParsedCriterion, ...]
    second: tuple[ParsedCriterion, ...] = ()
    failsafe: tuple[FailsafeRules, ...] = ()


def kind_context(
    catalogue: Catalogue,
    registry: ConditionRegistry,
    sample: Sampler | None = None,
    annotated: frozenset[str] | None = None,
) -> KindContext:
    """Units and display precision of every catalogue code, nested-criterion building, the
    reference distributions of percentile limits (``sample``) and the markers whose values
    may carry a censoring or a flag (``annotated``; None: any)."""
    ctx = KindContext(
        units={a.code: a.unit for a in catalogue.analytes},
        decimals={a.code: a.decimals for a in catalogue.analytes},
        sample=sample,
        annotated=annotated,
    )
    return replace(ctx, build=lambda inner: registry.kinds.build(inner, ctx))


@dataclass(frozen=True)
class ScreeningConfig:
    """Everything a run needs to decide calls, already checked for consistency."""

    catalogue: Catalogue
    cutoff_sets: tuple[CutoffSet, ...]
    registry: ConditionRegistry
    rules: dict[tuple[str, str], ConditionRules]  # (cutoff version, condition)

    @property
    def kind_context(self) -> KindContext:
        """Units, display precision and nested building for the rule kinds."""
        return kind_context(self.catalogue, self.registry)

    def build(
        self,
        criterion: ParsedCriterion,
        sample: Sampler | None = None,
        annotated: frozenset[str] | None = None,
    ) -> CriterionExprs:
        """The polars expressions of a checked criterion (nested criteria included);
        ``annotated``: the markers whose values may be censored or flagged in the frames it
        is evaluated on (the others are shown as plain numbers; None: any)."""
        ctx = kind_context(self.catalogue, self.registry, sample, annotated)
        return criterion.kind.build(criterion.params, ctx)

    def condition_markers(self) -> list[tuple[str, str]]:
        """(condition, first-tier marker) of every cutoff set, for the statistics views."""
        pairs = {
            (code, marker)
            for cutoff_set in self.cutoff_sets
            for code, cond in cutoff_set.conditions.items()
            for marker in cond.markers
        }
        return sorted(pairs)

    def percentile_markers(self) -> dict[str, int]:
        """Markers with percentile limits, and the longest window (days) any of them uses."""
        found: dict[str, int] = {}

        def walk(criterion: Mapping[str, Any]) -> None:
            if criterion.get("kind") == "above_percentile":
                days = int(criterion.get("window_days", 90))
                marker = str(criterion["marker"])
                found[marker] = max(found.get(marker, 0), days)
            for inner in criterion.get("criteria", ()):
                walk(inner)

        for s in self.cutoff_sets:
            for cond in s.conditions.values():
                tier2 = cond.second_tier.criteria if cond.second_tier else ()
                for criterion in (*cond.criteria, *tier2):
                    walk(criterion)
        return found

    @property
    def conditions(self) -> tuple[str, ...]:
        """Condition codes loaded from plug-ins."""
        return self.registry.codes()


def _parse_all(
    raws: tuple[Mapping[str, Any], ...],
    declared: set[str],
    registry: ConditionRegistry,
    ctx: KindContext,
    where: str,
) -> tuple[ParsedCriterion, ...]:
    items = []
    for i, raw in enumerate(raws, start=1):
        try:
            kind, params = registry.kinds.parse(raw)
            built = kind.build(params, ctx)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{where}, criterion {i}: {exc}") from exc
        # every marker a criterion reads must be declared, so that a missing value is seen
        undeclared = set(built.markers) - declared
        if undeclared:
            raise ValueError(
                f"{where}, criterion {i} reads {sorted(undeclared)} not listed in its markers"
            )
        items.append(ParsedCriterion(kind, params))
    return tuple(items)


def check_cutoff_set(
    cutoff_set: CutoffSet, registry: ConditionRegistry, catalogue: Catalogue
) -> dict[str, ConditionRules]:
    """Check one set against the loaded conditions, rule kinds and catalogue.

    Returns the checked rules per condition; raises ValueError naming the set, the
    condition, the criterion and the problem.
    """
    rules: dict[str, ConditionRules] = {}
    known = set(catalogue.codes)
    ctx = kind_context(catalogue, registry)
    for code, cond in cutoff_set.conditions.items():
        where = f"cutoff set {cutoff_set.version}, condition {code}"
        if code not in registry.conditions:
            raise ValueError(f"{where}: no installed plug-in provides this condition")
        tier2 = cond.second_tier
        all_markers = [*cond.markers, *cond.report_markers, *(tier2.markers if tier2 else ())]
        unknown = [m for m in all_markers if m not in known]
        if unknown:
            raise ValueError(f"{where}: markers not in the analyte catalogue: {unknown}")
        first = _parse_all(cond.criteria, set(cond.markers), registry, ctx, where)
        second = (
            _parse_all(
                tier2.criteria,
                set(tier2.markers),
                registry,
                ctx,
                f"{where}, second tier {tier2.name}",
            )
            if tier2
            else ()
        )
        failsafe = tuple(
            FailsafeRules(
                LEVELS.index(f.at_least) + 1,
                _parse_all(f.criteria, set(cond.markers), registry, ctx, f"{where}, failsafe {i}"),
            )
            for i, f in enumerate(cond.failsafe, start=1)
        )
        rules[code] = ConditionRules(first, second, failsafe)
    return rules


def load_config(
    cutoff_dir: Path | None = None,
    catalogue_path: Path | None = None,
    registry: ConditionRegistry | None = None,
) -> ScreeningConfig:
    """Load catalogue, cutoff sets and plug-ins, and check them against each other."""
    catalogue = load_catalogue(catalogue_path)
    sets = load_cutoff_sets(cutoff_dir)
    reg = registry or load_registry()
    rules: dict[tuple[str, str], ConditionRules] = {}
    for cutoff_set in sets:
        for code, checked in check_cutoff_set(cutoff_set, reg, catalogue).items():
            rules[(cutoff_set.version, code)] = checked
    return ScreeningConfig(catalogue=catalogue, cutoff_sets=sets, registry=reg, rules=rules)
