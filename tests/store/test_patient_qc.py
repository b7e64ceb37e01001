"""Patient-based QC on a real database: two real runs, the second with its TSH drifted
upward; the check after it raises a TSH alarm and writes it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from data_samples.generator import generate_cohort, write_inbox
from nbs import store
from nbs.config import ScreeningConfig
from nbs.qc.config import PatientQcConfig
from nbs.run.patient_qc import check_patient_qc, patient_qc_outcome
from nbs.run.steps import run_local

#: small enough for a test: 700 cards of history, a run of 160
SMALL = PatientQcConfig(block=20, history=1000, min_history=300)


pytestmark = pytest.mark.slow  # several real runs per test


@pytest.fixture(scope="module")
def small_config(config: ScreeningConfig) -> ScreeningConfig:
    return dataclasses.replace(config, qc=config.qc.model_copy(update={"patient_qc": SMALL}))


def _last_run(db: Path) -> str:
    return str(store.query(db, "SELECT run_id FROM runs ORDER BY run_seq DESC LIMIT 1")[0, 0])


@pytest.fixture(scope="module")
def drifted(tmp_path_factory: pytest.TempPathFactory, small_config: ScreeningConfig) -> Path:
    """A database of 700 cards, then a run of 160 whose TSH reads 80 % high."""
    root = tmp_path_factory.mktemp("patient-qc")
    db = root / "nbs.duckdb"
    write_inbox(generate_cohort(700, seed=11), root / "inbox-1")
    run_local(root / "inbox-1", db, small_config)
    later = generate_cohort(160, seed=12, start=dt.date(2026, 3, 2), first_number=100_000)
    tsh = pl.col("analyte") == "TSH"
    results = later.results.with_columns(
        value=pl.when(tsh).then((pl.col("value") * 1.8).round(2)).otherwise(pl.col("value"))
    )
    write_inbox(dataclasses.replace(later, results=results), root / "inbox-2")
    run_local(root / "inbox-2", db, small_config)
    return db


def test_a_tsh_drift_raises_an_alarm_and_writes_it(
    drifted: Path, small_config: ScreeningConfig
) -> None:
    run_id = _last_run(drifted)
    texts = check_patient_qc(drifted, run_id, small_config)
    tsh = [t for t in texts if t.startswith("TSH on GSP-01: ")]
    assert len(tsh) == 1, texts
    assert "moving median of the last 20 screen-negative first punches" in tsh[0]
    assert " mU/L above the alarm limit " in tsh[0]
    stored = store.patient_qc_alarms(drifted, run_id).filter(pl.col("analyte") == "TSH")
    row = stored.row(0, named=True)
    assert (row["instrument"], row["statistic"], row["side"], row["n"]) == (
        "GSP-01",
        "moving_median",
        "above",
        20,
    )
    assert row["value"] > row["high"] > row["reference"] > row["low"]
    assert row["text"] == tsh[0] and row["raised_at"] is not None
    assert row["plate_id"].startswith("P") and row["measured_at"] is not None
    # checked again: the run's alarms are replaced, not repeated
    check_patient_qc(drifted, run_id, small_config)
    assert store.patient_qc_alarms(drifted, run_id).height == len(texts)


def test_the_first_run_has_no_history_to_judge_by(
    drifted: Path, small_config: ScreeningConfig
) -> None:
    first = str(store.query(drifted, "SELECT run_id FROM runs ORDER BY run_seq LIMIT 1")[0, 0])
    outcome = patient_qc_outcome(drifted, first, small_config)
    assert outcome.alarms == []
    assert "TSH on GSP-01: not enough history for patient-based QC (0 of 300 " in "\n".join(
        outcome.notes
    )


def test_a_run_without_first_punches_checks_nothing(
    drifted: Path, small_config: ScreeningConfig
) -> None:
    assert check_patient_qc(drifted, "run-without-results", small_config) == []


def test_the_reads_take_screen_negative_first_punches_as_the_view_says(drifted: Path) -> None:
    """The store spells ``screening_calls`` out over the candidate cards: the same cards."""
    run_id = _last_run(drifted)
    analytes = list(SMALL.analytes)
    with store.connect(drifted, read_only=True) as con:
        new = store.run_first_punches(con, run_id, analytes)
        keys = new.select("instrument", "kit_lot", "analyte").unique()
        history = store.history_first_punches(con, run_id, keys, 100_000)
    expected = store.query(
        drifted,
        "SELECT d.instrument, d.analyte, d.run_id = ? AS new, count(*) AS n "
        "FROM result_details d SEMI JOIN (SELECT specimen_id FROM screening_calls "
        "GROUP BY specimen_id HAVING bool_and(call = 'negative')) c USING (specimen_id) "
        "WHERE d.replicate = 1 AND d.value IS NOT NULL AND list_contains(?, d.analyte) "
        "GROUP BY ALL",
        [run_id, analytes],
    )
    got = (
        pl.concat([new.with_columns(new=pl.lit(True)), history.with_columns(new=pl.lit(False))])
        .group_by("instrument", "analyte", "new")
        .len("n")
    )
    key = ["instrument", "analyte", "new"]
    assert got.sort(key).rows() == expected.sort(key).select(*key, "n").rows()
    # in time order within each series, the most recent N when fewer are asked for
    tsh = history.filter(pl.col("analyte") == "TSH")
    assert tsh["measured_at"].is_sorted()
    with store.connect(drifted, read_only=True) as con:
        last = store.history_first_punches(con, run_id, keys, 50)
    last_tsh = last.filter(pl.col("analyte") == "TSH")
    assert last_tsh.height == 50
    assert last_tsh["measured_at"].to_list() == tsh["measured_at"].tail(50).to_list()


def test_a_new_kit_lot_starts_its_own_series(tmp_path: Path, small_config: ScreeningConfig) -> None:
    """The same TSH shift, measured with a new kit lot (the results file's kit_lot column):
    it is judged against that lot's own history (none yet), not the old lot's."""
    db = tmp_path / "nbs.duckdb"
    write_inbox(generate_cohort(700, seed=11), tmp_path / "inbox-1")
    run_local(tmp_path / "inbox-1", db, small_config)
    later = generate_cohort(160, seed=12, start=dt.date(2026, 3, 2), first_number=100_000)
    results = later.results.with_columns(
        value=pl.when(pl.col("analyte") == "TSH")
        .then((pl.col("value") * 1.8).round(2))
        .otherwise(pl.col("value")),
        plate_id=pl.concat_str([pl.lit("K2-"), pl.col("plate_id")]),
        kit_lot=pl.lit("7731"),
    )
    write_inbox(dataclasses.replace(later, results=results), tmp_path / "inbox-2")
    run_local(tmp_path / "inbox-2", db, small_config)
    stored = store.query(db, "SELECT DISTINCT kit_lot FROM plates WHERE plate_id LIKE 'K2-%'")
    assert stored["kit_lot"].to_list() == ["7731"]
    outcome = patient_qc_outcome(db, _last_run(db), small_config)
    assert not [a for a in outcome.alarms if a.analyte == "TSH"], outcome.alarms
    assert "TSH on GSP-01, kit lot 7731: not enough history for patient-based QC (0 of 300 " in (
        "\n".join(outcome.notes)
    )
