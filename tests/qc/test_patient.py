"""Patient-based QC, the pure logic: moving medians against limits from history."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbs.qc.config import PatientQcConfig
from nbs.qc.patient import (
    Alarm,
    Series,
    check,
    check_series,
    limits,
    moving_medians,
    number,
)

DEFAULT = PatientQcConfig()


def _lognormal(seed: int, n: int, median: float = 2.0, sigma: float = 0.25) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(np.log(median), sigma, n)


def _series(history: np.ndarray, new: np.ndarray, analyte: str = "TSH") -> Series:
    start = dt.datetime(2026, 3, 2, 8, 0)
    return Series(
        instrument="GSP-01",
        analyte=analyte,
        unit="mU/L",
        history=history.tolist(),
        new=new.tolist(),
        new_plates=[f"P{i // 96:04d}" for i in range(new.size)],
        new_times=[start + dt.timedelta(minutes=i) for i in range(new.size)],
    )


def test_moving_medians_close_one_window_per_value() -> None:
    values = np.array([1.0, 5.0, 2.0, 8.0, 3.0])
    assert moving_medians(values, 3).tolist() == [2.0, 5.0, 3.0]
    assert moving_medians(values[:2], 3).size == 0


def test_a_stable_series_raises_nothing() -> None:
    values = _lognormal(1, 5100)
    assert check_series(_series(values[:5000], values[5000:]), DEFAULT) is None


@pytest.mark.parametrize(("factor", "side"), [(1.3, "above"), (0.7, "below")])
def test_a_shift_of_30_percent_in_the_last_100_values_alarms_on_its_side(
    factor: float, side: str
) -> None:
    values = _lognormal(2, 5100)
    found = check_series(_series(values[:5000], values[5000:] * factor), DEFAULT)
    assert isinstance(found, Alarm)
    assert found.side == side
    assert (found.value > found.high) if side == "above" else (found.value < found.low)
    assert found.low < found.reference < found.high
    assert found.n == DEFAULT.block and found.windows == 100 and found.beyond > 0
    assert found.statistic == "moving_median"
    assert found.plate_id is not None and found.plate_id.startswith("P")
    assert found.measured_at is not None
    assert found.text.startswith(
        f"TSH on GSP-01: moving median of the last 50 screen-negative first punches "
        f"{number(found.value)} mU/L {side} the alarm limit "
    )
    assert f"(reference {number(found.reference)}; last on plate {found.plate_id}" in found.text


def test_without_enough_history_a_note_and_no_alarm() -> None:
    values = _lognormal(3, 400)
    outcome = check([_series(values[:300], values[300:] * 3)], DEFAULT)
    assert outcome.alarms == []
    assert outcome.notes == [
        "TSH on GSP-01: not enough history for patient-based QC (300 of 2000 screen-negative "
        "first punches)"
    ]


def test_a_series_without_new_values_is_not_checked() -> None:
    assert check_series(_series(_lognormal(4, 3000), np.empty(0)), DEFAULT) is None


def test_the_percent_method_puts_the_limits_around_the_historical_median() -> None:
    chosen = PatientQcConfig(method="percent", limit_pct=20, analyte_limit_pct={"PHE": 10})
    history = _lognormal(5, 3000, median=50)
    found = limits(history, chosen, "TSH")
    assert found.reference == pytest.approx(float(np.median(history)))
    assert (found.low, found.high) == pytest.approx((0.8 * found.reference, 1.2 * found.reference))
    assert limits(history, chosen, "PHE").high == pytest.approx(1.1 * found.reference)
    alarm = check_series(_series(history, history[-60:] * 1.5), chosen)
    assert isinstance(alarm, Alarm) and alarm.side == "above"


def test_the_percentile_limits_are_those_of_the_historical_moving_medians() -> None:
    history = _lognormal(6, 3000)
    medians = moving_medians(history, 50)
    found = limits(history, DEFAULT, "TSH")
    assert (found.low, found.high) == pytest.approx(tuple(np.percentile(medians, [0.1, 99.9])))


def test_the_configuration_refuses_too_little_history() -> None:
    with pytest.raises(ValueError, match="min_history"):
        PatientQcConfig(block=50, min_history=20)
    with pytest.raises(ValueError, match="history"):
        PatientQcConfig(history=1000, min_history=2000)


@pytest.mark.parametrize(
    ("value", "text"), [(4.928, "4.93"), (55.34, "55.3"), (0.05123, "0.0512"), (1234.0, "1234")]
)
def test_numbers_are_shown_with_three_significant_digits(value: float, text: str) -> None:
    assert number(value) == text


@settings(max_examples=25, derandomize=True, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    median=st.floats(0.05, 500),
    sigma=st.floats(0.1, 0.8),
)
def test_a_series_from_one_stable_distribution_rarely_alarms(
    seed: int, median: float, sigma: float
) -> None:
    """Ten runs of 30 results after a history of 5,000, all from one log-normal
    distribution: at most two of them alarm (about one run in 40 does, in simulation)."""
    values = _lognormal(seed, 5300, median, sigma)
    alarmed = 0
    for run in range(10):
        end = 5000 + 30 * run
        history, new = values[end - DEFAULT.history : end], values[end : end + 30]
        alarmed += check_series(_series(history, new), DEFAULT) is not None
    assert alarmed <= 2


@settings(max_examples=25, derandomize=True, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(0.01, 100))
def test_alarms_do_not_depend_on_the_unit(seed: int, scale: float) -> None:
    """Values in another unit (all multiplied by one factor) alarm alike."""
    values = _lognormal(seed, 2100)
    values[-100:] *= 1.25
    plain = check_series(_series(values[:2000], values[2000:]), DEFAULT)
    scaled = check_series(_series(values[:2000] * scale, values[2000:] * scale), DEFAULT)
    assert (plain is None) == (scaled is None)
    if isinstance(plain, Alarm) and isinstance(scaled, Alarm):
        assert scaled.value == pytest.approx(plain.value * scale)
        assert scaled.side == plain.side
