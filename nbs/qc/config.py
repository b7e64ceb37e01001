"""The laboratory's quality-control configuration (``analytes/qc.yaml``), typed.

Every analyte named must be in the catalogue; a control lot is declared once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from analytes.catalogue import DEFAULT_CATALOGUE
from nbs.qc.calibration import CurveLimits, RecoveryLimits
from nbs.qc.westgard import DEFAULT_RULES, RULES, Severity, Target
from nbs.yamlfile import load_yaml

#: the shipped configuration, beside the catalogue
DEFAULT_FILE = DEFAULT_CATALOGUE.with_name("qc.yaml")


class ControlLot(BaseModel):
    """A control material's lot at one level, with its declared target."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    analyte: str
    material: str
    level: str
    lot: str
    mean: float
    sd: float = Field(gt=0)

    @property
    def series(self) -> tuple[str, str, str, str]:
        return (self.analyte, self.material, self.level, self.lot)


#: the first-tier screening markers whose moving median is watched by default (TREC is a
#: copy number, right-skewed like the others)
PATIENT_QC_ANALYTES = ("TSH", "PHE", "OHP17", "C8", "IRT", "TREC")


class PatientQcConfig(BaseModel):
    """Patient-based real-time QC (:mod:`nbs.qc.patient`): a moving median of screen-negative
    first punches per instrument and analyte, against limits set from the series' history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    """Whether a run checks the moving medians at all."""
    block: int = Field(default=50, ge=5)
    """Results per moving median: each new result closes a window of the last ``block``."""
    history: int = Field(default=5000, ge=50)
    """The most recent screen-negative first punches per series that set its limits."""
    min_history: int = Field(default=2000, ge=10)
    """Historical results a series needs before it may alarm (else a note says so)."""
    method: Literal["percentile", "percent"] = "percentile"
    """``percentile``: limits are percentiles of the historical moving medians; ``percent``:
    the historical median ± ``limit_pct``."""
    low_percentile: float = Field(default=0.1, ge=0, lt=50)
    """Method ``percentile``: the lower limit, a percentile of the historical moving medians."""
    high_percentile: float = Field(default=99.9, gt=50, le=100)
    """Method ``percentile``: the upper limit, a percentile of the historical moving medians."""
    limit_pct: float = Field(default=25.0, gt=0, lt=100)
    """Method ``percent``: the allowed deviation from the historical median, in %."""
    analyte_limit_pct: dict[str, float] = Field(default_factory=dict)
    """Method ``percent``: an analyte's own allowed deviation, in % (replaces ``limit_pct``)."""
    analytes: tuple[str, ...] = PATIENT_QC_ANALYTES
    """The analytes (catalogue codes) whose moving medians are watched."""
    max_run_results: int = Field(default=200_000, ge=1)
    """A run that stores more first punches than this is a bulk import, not a day's flow:
    not checked (a note says so)."""

    @model_validator(mode="after")
    def _check(self) -> PatientQcConfig:
        if self.min_history < self.block:
            raise ValueError(f"patient_qc: min_history must be at least block ({self.block})")
        if self.history < self.min_history:
            raise ValueError("patient_qc: history must be at least min_history")
        bad = {a: p for a, p in self.analyte_limit_pct.items() if not 0 < p < 100}
        if bad:
            raise ValueError(f"patient_qc: analyte_limit_pct must lie between 0 and 100: {bad}")
        return self

    def pct_for(self, analyte: str) -> float:
        """The allowed deviation (%) of ``analyte``'s moving median (method ``percent``)."""
        return self.analyte_limit_pct.get(analyte, self.limit_pct)


class QcConfig(BaseModel):
    """Control rules, declared control targets, and calibration limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    qc_version: str
    establish_from: int = Field(default=20, ge=2)
    plates_without_qc: Literal["accept", "hold"] = "accept"
    """A plate whose file carries no control, calibrator or blank well: ``accept`` (the
    instrument's software or the LIMS judged it before the export) or ``hold``."""
    rules: dict[str, Severity] = Field(default_factory=lambda: dict(DEFAULT_RULES))
    analyte_rules: dict[str, dict[str, Severity]] = Field(default_factory=dict)
    control_lots: list[ControlLot] = Field(default_factory=list)
    qpcr_curves: dict[str, CurveLimits] = Field(default_factory=dict)
    calibrator_recovery: dict[str, RecoveryLimits] = Field(default_factory=dict)
    patient_qc: PatientQcConfig = Field(default_factory=PatientQcConfig)
    """Patient-based QC: moving medians of screen-negative first punches and their limits."""

    @model_validator(mode="after")
    def _check(self) -> QcConfig:
        for rules in (self.rules, *self.analyte_rules.values()):
            unknown = sorted(set(rules) - set(RULES))
            if unknown:
                raise ValueError(f"unknown control rule(s) {unknown}; known: {sorted(RULES)}")
        seen: set[tuple[str, str, str, str]] = set()
        for lot in self.control_lots:
            if lot.series in seen:
                raise ValueError(f"control lot declared twice: {' / '.join(lot.series)}")
            seen.add(lot.series)
        return self

    def rules_for(self, analyte: str) -> dict[str, Severity]:
        """The rules that judge ``analyte``'s controls."""
        return self.analyte_rules.get(analyte, self.rules)

    def declared_targets(self) -> dict[tuple[str, str, str, str], Target]:
        return {lot.series: Target(lot.mean, lot.sd, "declared") for lot in self.control_lots}

    def analytes(self) -> set[str]:
        """Every analyte code the configuration names (checked against the catalogue)."""
        return (
            set(self.analyte_rules)
            | {lot.analyte for lot in self.control_lots}
            | set(self.qpcr_curves)
            | set(self.calibrator_recovery)
            | set(self.patient_qc.analytes)
            | set(self.patient_qc.analyte_limit_pct)
        )


def load_qc(path: Path | None = None) -> QcConfig:
    """The QC configuration at ``path`` (default: the shipped ``analytes/qc.yaml``)."""
    return QcConfig.model_validate(load_yaml(path or DEFAULT_FILE))
