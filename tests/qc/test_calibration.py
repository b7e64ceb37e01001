"""Plate calibration: a qPCR standard curve and calibrator recovery accept or reject."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbs.qc.calibration import (
    CurveLimits,
    RecoveryLimits,
    Standard,
    curve_problems,
    fit,
    recovery_problems,
)

QUANTITIES = (1e5, 1e4, 1e3, 1e2)


def _standards(slope: float, intercept: float = 38.0) -> list[Standard]:
    return [Standard(q, slope * math.log10(q) + intercept) for q in QUANTITIES]


def test_a_perfect_curve_has_its_slope_and_efficiency() -> None:
    curve = fit(_standards(-3.32))
    assert curve is not None
    assert curve.slope == pytest.approx(-3.32) and curve.r2 == pytest.approx(1.0)
    assert curve.efficiency_pct == pytest.approx(100.0, abs=0.2)
    assert curve.quantity(38.0 - 3.32 * 3) == pytest.approx(1000)


def test_a_good_curve_and_silent_ntc_accept_the_plate() -> None:
    assert curve_problems(_standards(-3.3), [None, None], CurveLimits()) == []


def test_a_flat_curve_a_poor_fit_and_an_amplified_ntc_each_reject() -> None:
    limits = CurveLimits()
    assert "slope -2.80 (efficiency 128 %)" in curve_problems(_standards(-2.8), [], limits)[0]
    scattered = [
        Standard(q, ct) for q, ct in zip(QUANTITIES, (21.5, 26.9, 27.0, 32.1), strict=True)
    ]
    assert any("R²" in p for p in curve_problems(scattered, [], limits))
    assert curve_problems(_standards(-3.3), [34.2], limits) == [
        "no-template control amplified at Ct 34.2"
    ]
    late = CurveLimits(ntc_ct_min=38)
    assert curve_problems(_standards(-3.3), [39.0], late) == []


def test_too_few_standards_reject() -> None:
    two = [Standard(1e5, 21.4), Standard(1e4, None), Standard(1e3, 28.0)]
    assert curve_problems(two, [], CurveLimits()) == [
        "standard curve from 2 standard(s) with a Ct; at least 3 needed"
    ]


def test_calibrator_recovery_outside_its_range_rejects() -> None:
    limits = RecoveryLimits(low_pct=85, high_pct=115)
    assert recovery_problems([("C1", 10.0, 10.9), ("C2", 50.0, 44.0)], limits) == []
    assert recovery_problems([("C3", 100.0, 130.0)], limits) == [
        "calibrator C3: 130 for 100 (130 %, accepted 85-115 %)"
    ]


@given(st.floats(-3.59, -3.10), st.floats(30, 42))
def test_every_exact_curve_within_the_slope_limits_is_accepted(slope: float, icept: float) -> None:
    assert curve_problems(_standards(slope, icept), [None], CurveLimits()) == []
