"""Patient-based real-time quality control (PBRTQC): the moving median of screen-negative
first punches per instrument and analyte, against alarm limits set from the series' own
history. It sees a drift of the assay (a calibration, a kit lot, a punch size) that the
controls, a few wells a plate, may miss.

* **Statistic.** The median of the last ``block`` results: each new result closes a window
  of the ``block`` results before it (history included), so a run of ``k`` new results
  gives ``k`` moving medians. The median needs no truncation of the abnormal results and no
  transform of these right-skewed markers (Badrick T et al., IFCC Working Group on PBRTQC,
  "Patient-Based Real-Time Quality Control: Review and Recommendations", Clin Chem
  2019;65(8):962-971).
* **Limits** (one documented method, chosen in ``analytes/qc.yaml``):
  ``percentile`` (default): the ``low_percentile`` and ``high_percentile`` of the moving
  medians of the series' history, its last ``history`` results: the limits come from the
  distribution of the statistic itself on historical data, so the false-alarm rate is the
  one chosen (Bietenbeck A et al., "Understanding Patient-Based Real-Time Quality Control
  Using Simulation Modeling", Clin Chem 2020;66(8):1072-1083); ``percent``: the historical
  median ± ``limit_pct`` % (e.g. an allowable bias).
* **History.** A series with fewer than ``min_history`` historical results raises no alarm
  but a note saying how many it has.

A series raises at most one alarm per run: the run's moving median furthest beyond its
limit, with the plate and time of the window's last result. An alarm holds nothing: it
asks the laboratory to look at the assay.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nbs.qc.config import PatientQcConfig

STATISTIC = "moving_median"


@dataclass(frozen=True)
class Series:
    """One instrument's results of one analyte with one kit lot: the history (oldest
    first) and the run's new results (in measurement order) with the plate and time of
    each. A new kit lot starts its own series (its patients' median may differ)."""

    instrument: str
    analyte: str
    unit: str
    history: Sequence[float]
    new: Sequence[float]
    new_plates: Sequence[str | None] = ()
    new_times: Sequence[dt.datetime | None] = ()
    kit_lot: str = ""

    @property
    def name(self) -> str:
        """How texts name the series: ``TSH on GSP-01`` (``, kit lot 7731``)."""
        lot = f", kit lot {self.kit_lot}" if self.kit_lot else ""
        return f"{self.analyte} on {self.instrument}{lot}"


@dataclass(frozen=True)
class Limits:
    """A series' alarm limits and its reference (the median of its history)."""

    low: float
    high: float
    reference: float


@dataclass(frozen=True)
class Alarm:
    """A moving median beyond its alarm limit."""

    instrument: str
    analyte: str
    unit: str
    value: float
    low: float
    high: float
    reference: float
    #: results in the window (``block``)
    n: int
    side: Literal["above", "below"]
    #: the plate and measurement time of the window's last result
    plate_id: str | None
    measured_at: dt.datetime | None
    #: the run's moving medians beyond a limit (of ``windows``)
    beyond: int
    windows: int
    text: str
    statistic: str = STATISTIC
    kit_lot: str = ""


@dataclass(frozen=True)
class Outcome:
    """What the check found: alarms, and notes (series without enough history)."""

    alarms: list[Alarm] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def moving_medians(values: np.ndarray, block: int) -> np.ndarray:
    """The median of every window of ``block`` consecutive values (none if fewer)."""
    if values.size < block:
        return np.empty(0)
    return np.median(sliding_window_view(values, block), axis=1)


def limits(history: np.ndarray, settings: PatientQcConfig, analyte: str) -> Limits:
    """The alarm limits of a series from its history (at least ``block`` values)."""
    reference = float(np.median(history))
    if settings.method == "percent":
        pct = settings.pct_for(analyte) / 100
        return Limits(reference * (1 - pct), reference * (1 + pct), reference)
    medians = moving_medians(history, settings.block)
    low, high = np.percentile(medians, [settings.low_percentile, settings.high_percentile])
    return Limits(float(low), float(high), reference)


def number(value: float) -> str:
    """Three significant digits, never in exponent form (4.93, 55.3, 0.0512, 1230)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def not_enough_history(series: Series, settings: PatientQcConfig) -> str:
    return (
        f"{series.name}: not enough history for patient-based QC "
        f"({len(series.history)} of {settings.min_history} screen-negative first punches)"
    )


def _text(series: Series, alarm: Limits, value: float, side: str, n: int, where: str) -> str:
    limit = alarm.high if side == "above" else alarm.low
    return (
        f"{series.name}: moving median of the last {n} "
        f"screen-negative first punches {number(value)} {series.unit} {side} the alarm limit "
        f"{number(limit)} (reference {number(alarm.reference)}{where})"
    )


def _where(plate: str | None, time: dt.datetime | None) -> str:
    parts = [f"plate {plate}" if plate else "", f"{time:%Y-%m-%d %H:%M}" if time else ""]
    shown = ", ".join(p for p in parts if p)
    return f"; last on {shown}" if shown else ""


def check_series(series: Series, settings: PatientQcConfig) -> Alarm | str | None:
    """The series' alarm (the run's moving median furthest beyond a limit), a note when its
    history is too short to judge, or None (nothing new, or every median within limits)."""
    if not series.new:
        return None
    if len(series.history) < settings.min_history:
        return not_enough_history(series, settings)
    block = settings.block
    history = np.asarray(series.history, dtype=float)
    new = np.asarray(series.new, dtype=float)
    bounds = limits(history, settings, series.analyte)
    medians = moving_medians(np.concatenate([history[-(block - 1) :], new]), block)
    # how far beyond its limit each median lies, relative to the limit (0: within)
    above = np.maximum(medians - bounds.high, 0) / max(abs(bounds.high), 1e-12)
    below = np.maximum(bounds.low - medians, 0) / max(abs(bounds.low), 1e-12)
    excess = np.maximum(above, below)
    beyond = int(np.count_nonzero(excess > 0))
    if beyond == 0:
        return None
    i = int(np.argmax(excess))
    side: Literal["above", "below"] = "above" if above[i] > 0 else "below"
    plate = series.new_plates[i] if i < len(series.new_plates) else None
    time = series.new_times[i] if i < len(series.new_times) else None
    value = float(medians[i])
    return Alarm(
        instrument=series.instrument,
        kit_lot=series.kit_lot,
        analyte=series.analyte,
        unit=series.unit,
        value=value,
        low=bounds.low,
        high=bounds.high,
        reference=bounds.reference,
        n=block,
        side=side,
        plate_id=plate,
        measured_at=time,
        beyond=beyond,
        windows=len(medians),
        text=_text(series, bounds, value, side, block, _where(plate, time)),
    )


def check(series: Sequence[Series], settings: PatientQcConfig) -> Outcome:
    """Every series' alarm or note, in the order given."""
    outcome = Outcome()
    for one in series:
        found = check_series(one, settings)
        if isinstance(found, Alarm):
            outcome.alarms.append(found)
        elif found is not None:
            outcome.notes.append(found)
    return outcome
