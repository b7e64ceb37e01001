"""Westgard multirules on control results.

Each rule is one small object: its name, what it looks at (the run, or the material's
series across runs) and its docstring, the text a laboratory reads when a plate is held.
:func:`judge` applies the configured rules to every control result of a series of plates in
time order and returns the violations; a violation of a rule configured as ``reject``
rejects the plate that holds the result.

Sources: Westgard JO et al., Clin Chem 1981;27:493-501 (the multirule procedure); CLSI C24
4th ed. (2016) for targets; rule scopes as in Westgard's "Westgard Rules" pages: R-4s
within a run only, 2-2s within a run across levels and across runs within a material.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

Severity = Literal["reject", "warning"]


@dataclass(frozen=True)
class Control:
    """One control result: its plate (the analytical run), when, which material."""

    plate_id: str
    run_at: dt.datetime
    analyte: str
    material: str
    level: str
    lot: str
    value: float
    #: the caller's handle on the row it came from (not compared)
    ref: int = field(default=-1, compare=False)

    @property
    def series(self) -> tuple[str, str, str, str]:
        """The results that share one target: analyte, material, level and lot."""
        return (self.analyte, self.material, self.level, self.lot)


@dataclass(frozen=True)
class Target:
    """A lot's target mean and SD, and where they come from."""

    mean: float
    sd: float
    source: Literal["declared", "established"]


@dataclass(frozen=True)
class Scored:
    """A control result with its z-score against its lot's target."""

    control: Control
    z: float


@dataclass(frozen=True)
class Violation:
    """A rule a control result broke, in the words a plate's status shows."""

    rule: str
    severity: Severity
    control: Control
    z: float

    def text(self) -> str:
        c = self.control
        return (
            f"{self.rule} on {c.analyte} {c.material} level {c.level}, lot {c.lot} "
            f"(value {c.value:g}, {self.z:+.1f} SD)"
        )


class Rule:
    """A multirule: ``check`` looks at the newest result of a series (``history``: the
    series up to and including it, oldest first) and at the other controls of its run."""

    name: ClassVar[str]

    def check(self, history: Sequence[Scored], run: Sequence[Scored]) -> bool:
        raise NotImplementedError


class OneThreeS(Rule):
    """1-3s: one control beyond 3 SD of its target (random error)."""

    name = "1-3s"

    def check(self, history: Sequence[Scored], run: Sequence[Scored]) -> bool:
        return abs(history[-1].z) > 3


class OneTwoS(Rule):
    """1-2s: one control beyond 2 SD (a warning: look at the other rules)."""

    name = "1-2s"

    def check(self, history: Sequence[Scored], run: Sequence[Scored]) -> bool:
        return abs(history[-1].z) > 2


class TwoTwoS(Rule):
    """2-2s: two controls beyond the same 2 SD limit, either two levels in the same run or
    the same material in two successive runs (systematic error)."""

    name = "2-2s"

    def check(self, history: Sequence[Scored], run: Sequence[Scored]) -> bool:
        newest = history[-1]
        side = _side(newest.z, 2)
        if side == 0:
            return False
        others = [s for s in run if s.control != newest.control]
        if any(_side(s.z, 2) == side for s in others):
            return True
        return len(history) >= 2 and _side(history[-2].z, 2) == side


class RFourS(Rule):
    """R-4s: within one run, one control above +2 SD and another below -2 SD (random
    error; never applied across runs)."""

    name = "R-4s"

    def check(self, history: Sequence[Scored], run: Sequence[Scored]) -> bool:
        newest = history[-1]
        side = _side(newest.z, 2)
        return side != 0 and any(_side(s.z, 2) == -side for s in run if s.control != newest.control)


class FourOneS(Rule):
    """4-1s: four successive results of a material beyond the same 1 SD limit
    (systematic error)."""

    name = "4-1s"

    def check(self, history: Sequence[Scored], run: Sequence[Scored]) -> bool:
        return _same_side(history[-4:], 4, 1)


class TenX(Rule):
    """10-x: ten successive results of a material on the same side of the mean
    (systematic error, a shift)."""

    name = "10-x"

    def check(self, history: Sequence[Scored], run: Sequence[Scored]) -> bool:
        return _same_side(history[-10:], 10, 0)


RULES: dict[str, Rule] = {
    rule.name: rule for rule in (OneTwoS(), OneThreeS(), TwoTwoS(), RFourS(), FourOneS(), TenX())
}

#: the classic reject rules, and the two across-run rules as warnings (configurable)
DEFAULT_RULES: dict[str, Severity] = {
    "1-3s": "reject",
    "2-2s": "reject",
    "R-4s": "reject",
    "4-1s": "warning",
    "10-x": "warning",
}


def _side(z: float, limit: float) -> int:
    """+1 beyond +limit SD, -1 beyond -limit SD, else 0."""
    return 1 if z > limit else -1 if z < -limit else 0


def _same_side(scored: Sequence[Scored], n: int, limit: float) -> bool:
    if len(scored) < n:
        return False
    sides = {_side(s.z, limit) for s in scored}
    return len(sides) == 1 and 0 not in sides


def established_target(values: Sequence[float], needed: int = 20) -> Target | None:
    """The target of a lot without declared values: mean and SD of its first ``needed``
    accepted results (CLSI C24), or None while there are fewer."""
    if len(values) < needed:
        return None
    first = values[:needed]
    mean = sum(first) / needed
    sd = (sum((v - mean) ** 2 for v in first) / (needed - 1)) ** 0.5
    return Target(mean, sd, "established") if sd > 0 else None


@dataclass(frozen=True)
class Judgement:
    """What the rules say of the controls of a series of plates."""

    violations: list[Violation]
    #: controls that could not be judged: their lot has no target yet
    untargeted: list[Control]
    #: every control judged, with its z-score
    scored: list[Scored] = field(default_factory=list)

    def rejected(self, plate_id: str) -> list[Violation]:
        return [
            v for v in self.violations if v.severity == "reject" and v.control.plate_id == plate_id
        ]


def judge(
    controls: Iterable[Control],
    targets: dict[tuple[str, str, str, str], Target],
    rules: dict[str, Severity] | None = None,
) -> Judgement:
    """Apply ``rules`` (rule name -> severity) to ``controls`` in run order. ``targets``
    holds each series' target; a control of a series without one is ``untargeted``."""
    chosen = [(RULES[name], severity) for name, severity in (rules or DEFAULT_RULES).items()]
    ordered = sorted(controls, key=lambda c: (c.run_at, c.plate_id, c.series))
    scored: list[Scored] = []
    untargeted: list[Control] = []
    for control in ordered:
        target = targets.get(control.series)
        if target is None:
            untargeted.append(control)
        else:
            scored.append(Scored(control, (control.value - target.mean) / target.sd))
    runs: dict[tuple[str, str], list[Scored]] = defaultdict(list)
    for s in scored:
        runs[(s.control.plate_id, s.control.analyte)].append(s)
    history: dict[tuple[str, str, str, str], list[Scored]] = defaultdict(list)
    violations = []
    for s in scored:
        series = history[s.control.series]
        series.append(s)
        run = runs[(s.control.plate_id, s.control.analyte)]
        for rule, severity in chosen:
            if rule.check(series, run):
                violations.append(Violation(rule.name, severity, s.control, s.z))
    return Judgement(violations, untargeted, scored)
