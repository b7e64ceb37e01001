"""Calibration of a plate: a qPCR standard curve, its no-template controls, and an
immunoassay's calibrator recovery. Each check returns the problems that reject the plate
(an empty list: the calibration holds), in words that name the plate's numbers.

Sources: the qPCR curve's efficiency E = 10^(-1/slope) - 1 and the usual acceptance of
90-110 % (slope -3.59 to -3.10) with R² >= 0.98 (MIQE, Bustin et al., Clin Chem
2009;55:611-622, asks that they be reported; the limits are the kits' and Thermo Fisher's
standard-curve guide's); calibrator recovery limits from CLSI C24 and the kit's insert.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class CurveLimits(BaseModel):
    """Acceptance of a qPCR standard curve (per assay, in the QC configuration)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    r2_min: float = Field(default=0.98, gt=0, le=1)
    """Lowest coefficient of determination of Ct against log10(quantity)."""
    slope_min: float = -3.59
    """Steepest slope accepted (efficiency 90 %)."""
    slope_max: float = -3.10
    """Flattest slope accepted (efficiency 110 %)."""
    standards_min: int = Field(default=3, ge=2)
    """Fewest standards with a Ct the curve needs."""
    ntc_ct_min: float | None = None
    """A no-template control may amplify only at or after this Ct (None: never)."""


class RecoveryLimits(BaseModel):
    """Acceptance of an immunoassay's calibrators: measured / nominal within the range."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low_pct: float = Field(default=80.0, gt=0)
    """Lowest recovery, in % of the calibrator's nominal value."""
    high_pct: float = Field(default=120.0, gt=0)
    """Highest recovery, in % of the calibrator's nominal value."""


@dataclass(frozen=True)
class Standard:
    """A standard well: its known quantity and its Ct (None: no amplification)."""

    quantity: float
    ct: float | None


@dataclass(frozen=True)
class Curve:
    """A fitted standard curve: Ct = slope * log10(quantity) + intercept."""

    slope: float
    intercept: float
    r2: float
    n: int

    @property
    def efficiency_pct(self) -> float:
        return (10 ** (-1 / self.slope) - 1) * 100

    def quantity(self, ct: float) -> float:
        """The quantity a Ct stands for on this curve."""
        return float(10 ** ((ct - self.intercept) / self.slope))


def fit(standards: Sequence[Standard]) -> Curve | None:
    """The least-squares line through the standards that amplified (None: fewer than two,
    or all at one quantity)."""
    points = [(math.log10(s.quantity), s.ct) for s in standards if s.ct is not None]
    n = len(points)
    if n < 2:
        return None
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    syy = sum((y - my) ** 2 for _, y in points)
    if sxx == 0:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in points)
    slope = sxy / sxx
    r2 = 1.0 if syy == 0 else sxy * sxy / (sxx * syy)
    return Curve(slope, my - slope * mx, r2, n)


def curve_problems(
    standards: Sequence[Standard], ntc_cts: Sequence[float | None], limits: CurveLimits
) -> list[str]:
    """Why the plate's standard curve or its no-template controls reject it."""
    problems = []
    curve = fit(standards)
    if curve is None or curve.n < limits.standards_min:
        found = 0 if curve is None else curve.n
        problems.append(
            f"standard curve from {found} standard(s) with a Ct; at least "
            f"{limits.standards_min} needed"
        )
    else:
        # compared as the instrument software reports them (slope to 3 decimals, R² to 4)
        slope, r2 = round(curve.slope, 3), round(curve.r2, 4)
        if r2 < limits.r2_min:
            problems.append(f"standard curve R² {curve.r2:.3f} below {limits.r2_min}")
        if not limits.slope_min <= slope <= limits.slope_max:
            problems.append(
                f"standard curve slope {curve.slope:.2f} (efficiency "
                f"{curve.efficiency_pct:.0f} %) outside {limits.slope_min} to {limits.slope_max}"
            )
    for ct in ntc_cts:
        if ct is not None and (limits.ntc_ct_min is None or ct < limits.ntc_ct_min):
            allowed = "" if limits.ntc_ct_min is None else f" (allowed from Ct {limits.ntc_ct_min})"
            problems.append(f"no-template control amplified at Ct {ct:g}{allowed}")
    return problems


def recovery_problems(
    calibrators: Sequence[tuple[str, float, float]], limits: RecoveryLimits
) -> list[str]:
    """Why the calibrators (name, nominal, measured) reject the plate. A zero calibrator
    has no recovery (nothing to recover) and is not judged by it."""
    problems = []
    for name, nominal, measured in calibrators:
        if nominal <= 0:
            continue
        recovery = measured / nominal * 100
        if not limits.low_pct <= recovery <= limits.high_pct:
            problems.append(
                f"calibrator {name}: {measured:g} for {nominal:g} ({recovery:.0f} %, "
                f"accepted {limits.low_pct:g}-{limits.high_pct:g} %)"
            )
    return problems
