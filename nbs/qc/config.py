"""The laboratory's quality-control configuration (``analytes/qc.yaml``), typed.

Every analyte named must be in the catalogue; a control lot is declared once.
"""

from __future__ import annotations

from pathlib import Path

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


class QcConfig(BaseModel):
    """Control rules, declared control targets, and calibration limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    qc_version: str
    establish_from: int = Field(default=20, ge=2)
    rules: dict[str, Severity] = Field(default_factory=lambda: dict(DEFAULT_RULES))
    analyte_rules: dict[str, dict[str, Severity]] = Field(default_factory=dict)
    control_lots: list[ControlLot] = Field(default_factory=list)
    qpcr_curves: dict[str, CurveLimits] = Field(default_factory=dict)
    calibrator_recovery: dict[str, RecoveryLimits] = Field(default_factory=dict)

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
        )


def load_qc(path: Path | None = None) -> QcConfig:
    """The QC configuration at ``path`` (default: the shipped ``analytes/qc.yaml``)."""
    return QcConfig.model_validate(load_yaml(path or DEFAULT_FILE))
