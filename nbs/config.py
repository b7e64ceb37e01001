"""The screening configuration: catalogue, cutoff sets and loaded conditions, checked
together and frozen. Built by :func:`load_config` and passed in; nothing is global."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from analytes import Catalogue, load_catalogue
from cutoffs import LEVELS, ConditionCutoffs, CutoffSet, load_cutoff_sets
from nbs.conditions import ConditionRegistry, load_registry
from nbs.intake.profiles import Profile, load_profiles
from nbs.qc.config import QcConfig, load_qc
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
    #: control rules, control targets and calibration limits (analytes/qc.yaml)
    qc: QcConfig = field(default_factory=load_qc)
    #: the instrument exports the inbox reads (analytes/instruments/*.yaml)
    instruments: tuple[Profile, ...] = field(default_factory=lambda: tuple(load_profiles()))

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


class CutoffSetError(ValueError):
    """A cutoff set that does not fit the loaded conditions, rule kinds or catalogue; every
    problem is in ``problems`` (the message joins them)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _parse_all(
    raws: tuple[Mapping[str, Any], ...],
    declared: set[str],
    registry: ConditionRegistry,
    ctx: KindContext,
    where: str,
    problems: list[str],
) -> tuple[ParsedCriterion, ...]:
    """The criteria that check, each problem of the others appended to ``problems``."""
    items = []
    for i, raw in enumerate(raws, start=1):
        try:
            kind, params = registry.kinds.parse(raw)
            built = kind.build(params, ctx)
        except (KeyError, ValueError) as exc:
            problems.append(f"{where}, criterion {i}: {str(exc).strip(chr(39))}")
            continue
        # every marker a criterion reads must be declared, so that a missing value is seen
        undeclared = set(built.markers) - declared
        if undeclared:
            problems.append(
                f"{where}, criterion {i} reads {sorted(undeclared)} not listed in its markers"
            )
            continue
        items.append(ParsedCriterion(kind, params))
    return tuple(items)


def _check_condition(
    code: str,
    cond: ConditionCutoffs,
    where: str,
    registry: ConditionRegistry,
    catalogue: Catalogue,
    problems: list[str],
) -> ConditionRules:
    ctx = kind_context(catalogue, registry)
    if code not in registry.conditions:
        problems.append(f"{where}: no installed plug-in provides this condition")
    tier2 = cond.second_tier
    all_markers = [*cond.markers, *cond.report_markers, *(tier2.markers if tier2 else ())]
    unknown = [m for m in all_markers if m not in set(catalogue.codes)]
    if unknown:
        problems.append(f"{where}: markers not in the analyte catalogue: {unknown}")
    first = _parse_all(cond.criteria, set(cond.markers), registry, ctx, where, problems)
    second = (
        _parse_all(
            tier2.criteria,
            set(tier2.markers),
            registry,
            ctx,
            f"{where}, second tier {tier2.name}",
            problems,
        )
        if tier2
        else ()
    )
    failsafe = tuple(
        FailsafeRules(
            LEVELS.index(f.at_least) + 1,
            _parse_all(
                f.criteria, set(cond.markers), registry, ctx, f"{where}, failsafe {i}", problems
            ),
        )
        for i, f in enumerate(cond.failsafe, start=1)
    )
    return ConditionRules(first, second, failsafe)


def check_cutoff_set(
    cutoff_set: CutoffSet, registry: ConditionRegistry, catalogue: Catalogue
) -> dict[str, ConditionRules]:
    """Check one set against the loaded conditions, rule kinds and catalogue.

    Returns the checked rules per condition; raises :class:`CutoffSetError` naming, for
    every problem found (not only the first), the set, the condition, the criterion and
    what is wrong.
    """
    problems: list[str] = []
    rules = {
        code: _check_condition(
            code,
            cond,
            f"cutoff set {cutoff_set.version}, condition {code}",
            registry,
            catalogue,
            problems,
        )
        for code, cond in cutoff_set.conditions.items()
    }
    if problems:
        raise CutoffSetError(problems)
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
    qc, instruments = load_qc(), tuple(load_profiles())
    problems = instrument_problems(catalogue, qc, instruments)
    if problems:
        raise CutoffSetError(problems)
    return ScreeningConfig(
        catalogue=catalogue,
        cutoff_sets=sets,
        registry=reg,
        rules=rules,
        qc=qc,
        instruments=instruments,
    )


def instrument_problems(
    catalogue: Catalogue, qc: QcConfig, instruments: tuple[Profile, ...]
) -> list[str]:
    """Analyte names of the QC configuration and the instrument profiles that the
    catalogue does not know (a typing error would hold or misread every plate)."""
    problems = [
        f"qc.yaml: analyte {code!r} is not in the catalogue"
        for code in sorted(qc.analytes())
        if catalogue.code_for(code) is None
    ]
    for profile in instruments:
        names = [t.analyte or name for name, t in profile.targets.items()]
        names += list(profile.analyte_columns.values())
        problems += [
            f"instrument profile {profile.name}: analyte {name!r} is not in the catalogue"
            for name in names
            if catalogue.code_for(name) is None
        ]
    return problems
