"""The run's patient-based QC, after its commit: the moving median of the screen-negative
first punches it stored, per instrument and analyte, against limits from each series'
history (:mod:`nbs.qc.patient`); the alarms are written to ``patient_qc_alarms`` and
returned for the run summary. An alarm holds nothing.

Cheap after every run: a run without a new first punch of a watched analyte costs one
query on its own results; otherwise one more reads the last ``history`` results of the
run's series (and, rarely, one more when a series must look further back).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from nbs.config import ScreeningConfig
from nbs.qc.patient import Alarm, Outcome, Series, check
from nbs.store import connect, utc_now
from nbs.store import patient_qc as qc_store


def _series(history: pl.DataFrame, new: pl.DataFrame) -> list[Series]:
    """One :class:`Series` per instrument, kit lot and analyte of the run's values."""
    key_columns = qc_store.SERIES_KEY
    past = {
        key: frame["value"].to_list()
        for key, frame in history.partition_by(
            key_columns, as_dict=True, maintain_order=True
        ).items()
    }
    found = []
    for key, frame in new.partition_by(key_columns, as_dict=True, maintain_order=True).items():
        instrument, kit_lot, analyte = (str(part) for part in key)
        found.append(
            Series(
                instrument=instrument,
                kit_lot=kit_lot,
                analyte=analyte,
                unit=str(frame["unit"][0] or ""),
                history=past.get(key, []),
                new=frame["value"].to_list(),
                new_plates=frame["plate_id"].to_list(),
                new_times=frame["measured_at"].to_list(),
            )
        )
    return found


def _alarm_frame(alarms: list[Alarm]) -> pl.DataFrame:
    return pl.DataFrame(
        [{name: getattr(alarm, name) for name in qc_store.ALARM_COLUMNS} for alarm in alarms],
        schema={
            "instrument": pl.String,
            "kit_lot": pl.String,
            "analyte": pl.String,
            "statistic": pl.String,
            "value": pl.Float64,
            "unit": pl.String,
            "side": pl.String,
            "low": pl.Float64,
            "high": pl.Float64,
            "reference": pl.Float64,
            "n": pl.Int32,
            "plate_id": pl.String,
            "measured_at": pl.Datetime("us"),
            "text": pl.String,
        },
    )


def patient_qc_outcome(
    db_path: Path, run_id: str, config: ScreeningConfig, now: dt.datetime | None = None
) -> Outcome:
    """Check the moving medians of run ``run_id`` and write its alarms (replacing any an
    earlier check of the run wrote); the alarms and the notes (series without enough
    history to judge)."""
    settings = config.qc.patient_qc
    if not settings.enabled or not settings.analytes:
        return Outcome()
    with connect(db_path) as con:
        stored = qc_store.run_first_punch_count(con, run_id)
        if stored > settings.max_run_results:
            note = (
                f"patient-based QC not checked: the run stored {stored:,} first punches, a "
                f"bulk import (max_run_results {settings.max_run_results:,})"
            )
            return Outcome(notes=[note])
        new = qc_store.run_first_punches(con, run_id, list(settings.analytes))
        if new.is_empty():
            return Outcome()
        keys = new.select(qc_store.SERIES_KEY).unique()
        history = qc_store.history_first_punches(con, run_id, keys, settings.history)
        outcome = check(_series(history, new), settings)
        if outcome.alarms:
            qc_store.write_alarms(con, _alarm_frame(outcome.alarms), run_id, now or utc_now())
    return outcome


def check_patient_qc(db_path: Path, run_id: str, config: ScreeningConfig) -> list[str]:
    """The step after a run's commit: check its moving medians, write its alarms, return
    their texts (one line each, for the run summary). [] when nothing alarms."""
    return [alarm.text for alarm in patient_qc_outcome(db_path, run_id, config).alarms]
