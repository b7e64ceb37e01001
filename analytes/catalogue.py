"""Typed model and loader of ``catalogue.yaml``.

The catalogue is data the laboratory reviews; this module only reads it into frozen objects
and offers the lookup tables the validator joins against (alias -> code, unit -> factor).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from nbs.yamlfile import load_yaml

DEFAULT_CATALOGUE = Path(__file__).with_name("catalogue.yaml")


def unit_key(unit: str) -> str:
    """Normalise a unit as instruments print it, for matching.

    Folds the micro sign and Greek mu to ``u``, case and white space, so ``µmol/L``,
    ``μmol/l`` and ``umol / L`` all match.
    """
    text = unicodedata.normalize("NFKC", unit).replace("μ", "u").replace("µ", "u")
    return "".join(text.split()).lower()


def alias_key(name: str) -> str:
    """Normalise an analyte name for alias matching (case and white space folded)."""
    return " ".join(unicodedata.normalize("NFKC", name).split()).lower()


def is_qpcr_unit(unit: str) -> bool:
    """Whether a unit is a qPCR marker's: a cycle threshold (Ct, Cq) or a concentration of
    copies (``copies/µL``; a copy number such as SMN2's ``copies`` is a count, not a well)."""
    key = unit_key(unit)
    return key in ("ct", "cq") or key.startswith("copies/")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Conversion(_Frozen):
    """A unit the laboratory meets for an analyte: catalogue value = value x factor."""

    unit: str
    factor: float = Field(gt=0)


class Plausible(_Frozen):
    """The physically possible range, inclusive at both ends."""

    min: float
    max: float


class MeasuringRange(_Frozen):
    """What the laboratory's method measures, inclusive: a result reported only as above
    (or below) the range, with no number, is evaluated as at least ``max`` (at most
    ``min``)."""

    min: float = Field(ge=0)
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> MeasuringRange:
        if self.max <= self.min:
            raise ValueError(f"measuring range max {self.max} is not above min {self.min}")
        return self


class NoAmplification(_Frozen):
    """What a qPCR punch with no amplification (no value, flagged ``undetermined``) means:
    the target is absent, and the punch is evaluated as ``evaluated_as`` (0 copies for a
    copy-number marker, the last cycle for a Ct). Whether that is abnormal is the rule's
    business: an absent TREC or SMN1 is the most abnormal value, an absent reference gene
    is a failed reaction."""

    evaluated_as: float


class Analyte(_Frozen):
    """One analyte code of the catalogue."""

    code: str
    name: str
    unit: str
    tier: int = Field(ge=1, le=3)
    loinc: str | None = None
    aliases: tuple[str, ...] = ()
    plausible: Plausible
    decimals: int = Field(ge=0, le=6)
    conversions: tuple[Conversion, ...] = ()
    measuring_range: MeasuringRange | None = None
    no_amplification: NoAmplification | None = None

    @model_validator(mode="after")
    def _qpcr_declares_no_amplification(self) -> Analyte:
        # without the declaration an "Undetermined" well of the marker would be a missing
        # value, and an absent TREC or SMN1 never reach referral
        if self.no_amplification is None and is_qpcr_unit(self.unit):
            raise ValueError(
                f"{self.code}: a qPCR marker (unit {self.unit}) must declare "
                "no_amplification (what a well with no amplification is evaluated as)"
            )
        return self

    def censored_bounds(self) -> tuple[float, float]:
        """(lower, upper) bound of a result reported only as below / above the range: the
        measuring range where the catalogue gives one, else the plausible range."""
        span = self.measuring_range or self.plausible
        return span.min, span.max

    def factor_for(self, unit: str) -> float | None:
        """The factor converting ``unit`` into the catalogue unit, or None if unknown."""
        key = unit_key(unit)
        if key == unit_key(self.unit):
            return 1.0
        for conv in self.conversions:
            if unit_key(conv.unit) == key:
                return conv.factor
        return None


#: the flag every no-amplification spelling is stored as
UNDETERMINED = "undetermined"


class Catalogue(_Frozen):
    """The whole catalogue; build it with :func:`load_catalogue`."""

    catalogue_version: str
    #: the texts instruments print for a qPCR well with no amplification, in the value or
    #: the flag column (compared folded, as :func:`alias_key`); stored as ``undetermined``
    no_amplification_texts: tuple[str, ...] = (UNDETERMINED,)
    analytes: tuple[Analyte, ...]

    @model_validator(mode="after")
    def _unique_names(self) -> Catalogue:
        seen: dict[str, str] = {}
        for analyte in self.analytes:
            for name in (analyte.code, *analyte.aliases):
                key = alias_key(name)
                if key in seen and seen[key] != analyte.code:
                    raise ValueError(f"alias {name!r} names both {seen[key]} and {analyte.code}")
                seen[key] = analyte.code
        return self

    @property
    def codes(self) -> tuple[str, ...]:
        """All analyte codes in catalogue order."""
        return tuple(a.code for a in self.analytes)

    def get(self, code: str) -> Analyte:
        """The analyte with this code (KeyError if there is none)."""
        for analyte in self.analytes:
            if analyte.code == code:
                return analyte
        raise KeyError(code)

    def code_for(self, name: str) -> str | None:
        """The catalogue code for a code or alias as an instrument prints it."""
        key = alias_key(name)
        for analyte in self.analytes:
            if key in {alias_key(n) for n in (analyte.code, *analyte.aliases)}:
                return analyte.code
        return None

    def to_catalogue_unit(self, code: str, value: float, unit: str) -> float:
        """Convert one value into the catalogue unit (ValueError for an unknown unit)."""
        factor = self.get(code).factor_for(unit)
        if factor is None:
            raise ValueError(f"{code}: unknown unit {unit!r}")
        return value * factor

    def from_catalogue_unit(self, code: str, value: float, unit: str) -> float:
        """Convert one value from the catalogue unit into ``unit``."""
        factor = self.get(code).factor_for(unit)
        if factor is None:
            raise ValueError(f"{code}: unknown unit {unit!r}")
        return value / factor

    def alias_frame(self) -> pl.DataFrame:
        """``alias_key -> analyte`` for a vectorised join (codes included as aliases)."""
        keys: list[str] = []
        codes: list[str] = []
        for analyte in self.analytes:
            for name in dict.fromkeys(alias_key(n) for n in (analyte.code, *analyte.aliases)):
                keys.append(name)
                codes.append(analyte.code)
        return pl.DataFrame({"alias_key": keys, "analyte": codes})

    def unit_frame(self) -> pl.DataFrame:
        """``(analyte, unit_key) -> factor, unit`` for a vectorised join."""
        rows: list[tuple[str, str, float, str]] = []
        for a in self.analytes:
            rows.append((a.code, unit_key(a.unit), 1.0, a.unit))
            rows.extend((a.code, unit_key(c.unit), c.factor, a.unit) for c in a.conversions)
        return pl.DataFrame(
            rows,
            schema={
                "analyte": pl.String,
                "unit_key": pl.String,
                "factor": pl.Float64,
                "unit": pl.String,
            },
            orient="row",
        ).unique(subset=["analyte", "unit_key"], keep="first", maintain_order=True)

    def plausible_frame(self) -> pl.DataFrame:
        """``analyte -> plausible_min, plausible_max, censored_min, censored_max,
        no_amplification_as`` in the catalogue unit (the bounds of a result reported only as
        below / above the range, and the value of a punch with no amplification)."""
        bounds = [a.censored_bounds() for a in self.analytes]
        return pl.DataFrame(
            {
                "analyte": [a.code for a in self.analytes],
                "plausible_min": [a.plausible.min for a in self.analytes],
                "plausible_max": [a.plausible.max for a in self.analytes],
                "censored_min": [lo for lo, _ in bounds],
                "censored_max": [hi for _, hi in bounds],
                "no_amplification_as": [
                    a.no_amplification.evaluated_as if a.no_amplification else None
                    for a in self.analytes
                ],
            },
            schema_overrides={"no_amplification_as": pl.Float64},
        )

    def no_amplification_values(self) -> dict[str, float]:
        """Analyte code -> the value a punch with no amplification is evaluated as."""
        return {
            a.code: a.no_amplification.evaluated_as for a in self.analytes if a.no_amplification
        }

    def no_amplification_keys(self) -> tuple[str, ...]:
        """The folded spellings of no amplification (see ``no_amplification_texts``)."""
        return tuple(
            dict.fromkeys(alias_key(t) for t in (UNDETERMINED, *self.no_amplification_texts))
        )


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Read and check the analyte catalogue (the packaged ``catalogue.yaml`` by default)."""
    source = path or DEFAULT_CATALOGUE
    data = load_yaml(source)
    return Catalogue.model_validate(data)
