"""The registry of rule kinds.

A rule kind turns one criterion of a cutoff file (``kind: above``, ``marker: PHE``,
``limits: ...``) into polars expressions over a wide frame with one row per punch (or per
aggregated specimen) and one column per marker code. The evaluator combines the
criteria of a condition; kinds never see rows one at a time.

A kind is written as a :class:`Kind` subclass; the registry keeps each as a
:class:`RuleKind` record, which a plug-in may also build from plain functions.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
import polars as pl
from pydantic import BaseModel, ValidationError

from analytes.catalogue import UNDETERMINED


@dataclass(frozen=True)
class KindContext:
    """What a kind may know beyond its parameters: units and display precision."""

    units: Mapping[str, str]
    decimals: Mapping[str, int]
    #: builds a nested criterion mapping (for composite kinds such as ``any_of``)
    build: Callable[[Mapping[str, Any]], CriterionExprs] | None = None
    #: the reference distribution of a marker: (marker, "run" | "window", window days)
    #: -> first-punch values, for limits set as percentiles
    sample: Callable[[str, str, int], np.ndarray] | None = None
    #: the markers whose values may be censored or flagged (None: any): the others are
    #: shown as plain numbers, sparing every row a test that is false on nearly all
    annotated: frozenset[str] | None = None

    def unit(self, marker: str) -> str:
        """Catalogue unit of a marker ('' if unknown)."""
        return self.units.get(marker, "")

    def fmt(self, expr: pl.Expr, marker: str | None = None, decimals: int | None = None) -> pl.Expr:
        """A number as text, rounded to the marker's catalogue precision."""
        places = decimals if decimals is not None else self.decimals.get(marker or "", 2)
        return expr.round(places).cast(pl.String)

    def shown(self, marker: str) -> pl.Expr:
        """A marker's value as a reason shows it: rounded to its precision, ``>300`` or
        ``<0.5`` where the instrument reported it censored (``__cens``), "above range (as
        >2000)" where it gave no number (the bound is the range's), and "no amplification
        (as 0)" for a qPCR punch that did not amplify (``__flag``)."""
        number = self.fmt(pl.col(marker), marker)
        if self.annotated is not None and marker not in self.annotated:
            return number
        sign = pl.col(f"{marker}__cens")
        flag = pl.col(f"{marker}__flag")
        return (
            pl.when(flag == UNDETERMINED)
            .then(pl.concat_str([pl.lit("no amplification (as "), number, pl.lit(")")]))
            .when(flag.is_in(["above range", "below range"]) & sign.is_not_null())
            .then(pl.concat_str([flag, pl.lit(" (as "), sign, number, pl.lit(")")]))
            .when(sign.is_not_null())
            .then(pl.concat_str([sign, number]))
            .otherwise(number)
        )


@dataclass(frozen=True)
class CriterionExprs:
    """The expressions one criterion contributes.

    ``level``: Int8 tier reached (0 none, 1 retest, 2 repeat_specimen, 3 referral), null
    when an input is missing. ``value``: the number compared. ``detail``: text naming the
    value with its unit, the limits and the stratum applied. ``markers``: inputs used.
    ``invalid``: true where the measurement itself failed (e.g. the qPCR reference gene did
    not amplify: a DNA failure). An invalid punch is never a referral and never negative.
    """

    label: str
    level: pl.Expr
    value: pl.Expr
    detail: pl.Expr
    limits: pl.Expr
    stratum: pl.Expr
    markers: tuple[str, ...]
    invalid: pl.Expr = field(default_factory=lambda: pl.lit(False))


Builder = Callable[[Any, KindContext], CriterionExprs]


def validation_problems(exc: ValidationError) -> list[str]:
    """Each problem of a pydantic validation as ``where: what``, without the library's
    boilerplate (error type, input echo, documentation link, "Value error, ")."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(x) for x in error["loc"])
        what = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {what}" if where else what)
    return problems


@dataclass(frozen=True)
class LimitRow:
    """One line of the resolved cutoff table: a marker's limits in one stratum."""

    marker: str
    rule: str  # e.g. ">=" (rising), "<=" (falling), or a text for qualitative rules
    stratum: str = ""
    retest: float | None = None
    repeat_specimen: float | None = None
    referral: float | None = None


Describer = Callable[[Any, "KindRegistry"], list[LimitRow]]


def describe_as_json(params: BaseModel, registry: KindRegistry) -> list[LimitRow]:
    """Fallback for kinds without a describer: the parameters as JSON."""
    return [LimitRow(marker="", rule=params.model_dump_json())]


@dataclass(frozen=True)
class RuleKind:
    """A named rule kind as the registry keeps it: its parameter model, the function that
    builds expressions, the one that describes its limits, and its documentation (by
    default the builder's docstring)."""

    name: str
    params: type[BaseModel]
    build: Builder
    describe: Describer = describe_as_json
    doc: str = ""

    def __post_init__(self) -> None:
        if not self.doc:
            object.__setattr__(self, "doc", inspect.cleandoc(self.build.__doc__ or ""))

    @property
    def summary(self) -> str:
        """The first paragraph of the documentation, on one line."""
        return " ".join(self.doc.split("\n\n")[0].split())


P = TypeVar("P", bound=BaseModel)


class Kind(ABC, Generic[P]):
    """A rule kind as one object: its ``name`` in the cutoff files, its ``params`` model,
    the expressions it builds and the rows it adds to the resolved cutoff table.

    The class docstring is the user's text: its first paragraph is the kind's line in the
    README's table of rule kinds, the rest the details. Kinds hold no state: every
    instance of a kind is the same kind.
    """

    name: ClassVar[str]
    params: type[P]

    @abstractmethod
    def build(self, params: P, ctx: KindContext) -> CriterionExprs:
        """The criterion's expressions over the wide frame."""

    def describe(self, params: P, registry: KindRegistry) -> list[LimitRow]:
        """The criterion's rows of the resolved cutoff table (default: its parameters)."""
        return describe_as_json(params, registry)

    @classmethod
    def rule(cls) -> RuleKind:
        """The registry's record of this kind."""
        for attribute in ("name", "params"):
            if not hasattr(cls, attribute):
                raise TypeError(f"rule kind {cls.__qualname__} sets no {attribute!r}")
        kind = cls()
        doc = inspect.cleandoc(cls.__doc__ or "")
        return RuleKind(cls.name, cls.params, kind.build, kind.describe, doc=doc)

    # equal by class, so that two loads of the same configuration compare equal
    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


#: what a plug-in may hand over as a rule kind: a Kind subclass (or instance), or a record
AnyKind = RuleKind | Kind[Any] | type[Kind[Any]]


def as_rule(kind: AnyKind) -> RuleKind:
    """The registry's record of a kind given in any accepted form."""
    return kind if isinstance(kind, RuleKind) else kind.rule()


class UnknownRuleKind(KeyError):
    """A rule kind no plug-in registered. A KeyError (a lookup that failed) whose text is
    its message as written: a plain KeyError prints its message quoted, as a key."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass
class KindRegistry:
    """Rule kinds by name. Registering a name twice is an error, never an override."""

    _kinds: dict[str, RuleKind] = field(default_factory=dict)

    def register(self, kind: AnyKind) -> None:
        """Add a kind; a duplicate name raises ValueError."""
        rule = as_rule(kind)
        if rule.name in self._kinds:
            raise ValueError(f"rule kind {rule.name!r} is already registered")
        self._kinds[rule.name] = rule

    def register_all(self, kinds: Iterable[AnyKind]) -> None:
        """Add several kinds (each checked for duplicates)."""
        for kind in kinds:
            self.register(kind)

    def get(self, name: str) -> RuleKind:
        """The kind with this name (:class:`UnknownRuleKind` naming the known kinds if
        absent)."""
        try:
            return self._kinds[name]
        except KeyError:
            known = ", ".join(sorted(self._kinds))
            raise UnknownRuleKind(f"unknown rule kind {name!r} (known: {known})") from None

    def names(self) -> tuple[str, ...]:
        """Registered kind names, sorted."""
        return tuple(sorted(self._kinds))

    def build(self, criterion: Mapping[str, Any], ctx: KindContext) -> CriterionExprs:
        """Parse a criterion mapping and build its expressions (nested criteria too)."""
        kind, params = self.parse(criterion)
        nested = replace(ctx, build=lambda inner: self.build(inner, ctx))
        return kind.build(params, nested)

    def describe(self, criterion: Mapping[str, Any]) -> list[LimitRow]:
        """The limit rows of a criterion mapping (nested criteria too)."""
        kind, params = self.parse(criterion)
        return kind.describe(params, self)

    def parse(self, criterion: Mapping[str, Any]) -> tuple[RuleKind, BaseModel]:
        """Check a criterion mapping against its kind's parameter model."""
        kind = self.get(str(criterion.get("kind")))
        params = {k: v for k, v in criterion.items() if k != "kind"}
        try:
            return kind, kind.params.model_validate(params)
        except ValidationError as exc:
            raise ValueError(
                f"criterion of kind {kind.name!r}: {'; '.join(validation_problems(exc))}"
            ) from exc
