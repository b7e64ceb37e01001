"""The screening configuration: catalogue, cutoff sets and loaded conditions, checked
together and frozen. Built by :func:`load_config` and passed in; nothing is global."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from analytes import Catalogue, load_catalogue
from cutoffs import CutoffSet, load_cutoff_sets
from nbs.conditions import ConditionRegistry, load_registry
from nbs.rules.registry import KindContext, RuleKind


@dataclass(frozen=True)
class ParsedCriterion:
    """A criterion of a cutoff file checked against its kind."""

    kind: RuleKind
    params: BaseModel


@dataclass(frozen=True)
class ScreeningConfig:
    """Everything a run needs to decide calls, already checked for consistency."""

    catalogue: Catalogue
    cutoff_sets: tuple[CutoffSet, ...]
    registry: ConditionRegistry
    criteria: dict[tuple[str, str], tuple[ParsedCriterion, ...]]  # (version, condition)

    @property
    def kind_context(self) -> KindContext:
        """Units and display precision of every catalogue code."""
        return KindContext(
            units={a.code: a.unit for a in self.catalogue.analytes},
            decimals={a.code: a.decimals for a in self.catalogue.analytes},
        )

    @property
    def conditions(self) -> tuple[str, ...]:
        """Condition codes loaded from plug-ins."""
        return self.registry.codes()


def check_cutoff_set(
    cutoff_set: CutoffSet, registry: ConditionRegistry, catalogue: Catalogue
) -> dict[str, tuple[ParsedCriterion, ...]]:
    """Check one set against the loaded conditions, rule kinds and catalogue.

    Returns the parsed criteria per condition; raises ValueError naming the set, the
    condition and the problem.
    """
    parsed: dict[str, tuple[ParsedCriterion, ...]] = {}
    known = set(catalogue.codes)
    for code, cond in cutoff_set.conditions.items():
        where = f"cutoff set {cutoff_set.version}, condition {code}"
        if code not in registry.conditions:
            raise ValueError(f"{where}: no installed plug-in provides this condition")
        unknown = [m for m in cond.markers if m not in known]
        if unknown:
            raise ValueError(f"{where}: markers not in the analyte catalogue: {unknown}")
        items = []
        for i, raw in enumerate(cond.criteria, start=1):
            try:
                kind, params = registry.kinds.parse(raw)
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{where}, criterion {i}: {exc}") from exc
            items.append(ParsedCriterion(kind, params))
        parsed[code] = tuple(items)
    return parsed


def load_config(
    cutoff_dir: Path | None = None,
    catalogue_path: Path | None = None,
    registry: ConditionRegistry | None = None,
) -> ScreeningConfig:
    """Load catalogue, cutoff sets and plug-ins, and check them against each other."""
    catalogue = load_catalogue(catalogue_path)
    sets = load_cutoff_sets(cutoff_dir)
    reg = registry or load_registry()
    criteria: dict[tuple[str, str], tuple[ParsedCriterion, ...]] = {}
    for cutoff_set in sets:
        for code, items in check_cutoff_set(cutoff_set, reg, catalogue).items():
            criteria[(cutoff_set.version, code)] = items
            # every marker a criterion reads must be declared, so a missing value is seen
            declared = set(cutoff_set.conditions[code].markers)
            for item in items:
                built = item.kind.build(item.params, KindContext({}, {}))
                missing = set(built.markers) - declared
                if missing:
                    raise ValueError(
                        f"cutoff set {cutoff_set.version}, condition {code}: criterion reads "
                        f"{sorted(missing)} which are not in its markers"
                    )
    return ScreeningConfig(catalogue=catalogue, cutoff_sets=sets, registry=reg, criteria=criteria)
