"""Small builders shared by tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from data_samples.stats_cohort import Cohort, RecallPlan
from nbs import store

BIRTH = dt.datetime(2026, 3, 1, 8, 0)

RESULT_SCHEMA = {
    "specimen_id": pl.String,
    "analyte": pl.String,
    "replicate": pl.Int64,
    "value": pl.Float64,
    "flag": pl.String,
}


def cards(*rows: dict[str, object]) -> pl.DataFrame:
    """Typed cards; each row gives ``specimen_id`` and may override any field."""
    out = []
    for i, row in enumerate(rows):
        age = float(row.pop("age_hours", 52.0))  # type: ignore[arg-type]
        base: dict[str, object] = {
            "specimen_id": f"S{i}",
            "baby_id": f"B{i}",
            "birth_at": BIRTH,
            "collected_at": BIRTH + dt.timedelta(hours=age),
            "received_at": BIRTH + dt.timedelta(hours=age + 20),
            "sex": "F",
            "birth_weight_g": 3300,
            "gestational_age_weeks": 39,
            "transfusion": False,
            "parenteral_nutrition": False,
            "consent_cf": True,
            "specimen_quality": "ok",
            "submitter": "CHL",
            "is_first_card": True,
        }
        base.update(row)
        out.append(base)
    return pl.DataFrame(
        out, schema_overrides={"birth_weight_g": pl.Int64, "gestational_age_weeks": pl.Int64}
    )


def results(*rows: tuple[str, str, float | None, int]) -> pl.DataFrame:
    """Canonical results from (specimen_id, analyte, value, replicate)."""
    return pl.DataFrame(
        [
            {"specimen_id": s, "analyte": a, "value": v, "replicate": r, "flag": None}
            for s, a, v, r in rows
        ],
        schema=RESULT_SCHEMA,
    )


STATE_TABLES = (
    "ingested_files",
    "raw_specimen_rows",
    "raw_result_rows",
    "quarantine",
    "specimens",
    "specimen_warnings",
    "results",
    "calls",
    "retests",
    "recalls",
    "recall_events",
    "screened",
    "condition_markers",
    "marker_month_percentiles",
)


def db_state(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every data table, without run ids and timestamps, sorted."""
    state = {}
    volatile = {
        "run_id",
        "run_seq",
        "evaluated_at",
        "created_at",
        "ingested_at",
        "quarantined_at",
        "done_at",
        "done_run_id",
        "archived_as",
        "reported_at",
        "closed_at",
        "event_at",
        "event_seq",
    }
    for table in STATE_TABLES:
        frame = store.query(db, f"SELECT * FROM {table}")
        frame = frame.select([c for c in frame.columns if c not in volatile])
        state[table] = sorted(frame.rows(), key=repr)
    return state


#: a synthetic history whose statistics are known (see data_samples/stats_cohort.py)
STATS_COHORT = Cohort(
    years={2023: 1200, 2024: 0, 2025: 1500},
    plans={
        (2023, "PKU"): RecallPlan(
            confirmed=1, false_positive=2, open_referrals=1, repeat_requests=3
        ),
        (2025, "CH"): RecallPlan(confirmed=2, false_positive=5, repeat_requests=4),
        (2025, "CF"): RecallPlan(false_positive=2),  # referrals, none confirmed: PPV 0
        (2025, "SCID"): RecallPlan(repeat_requests=2),  # repeat cards only: PPV undefined
    },
)


def write_pku3_retests(
    inbox: Path, phe: tuple[str, str], tyr: tuple[str, str], card: str = "S-PKU3"
) -> None:
    """Deliver the two retest punches (replicates 2 and 3) of a sample card whose first
    punch called a PKU retest: S-PKU3 (first punch at referral) or S-PKU5 (at the retest
    limits)."""
    pl.DataFrame(
        {
            "specimen_id": [card] * 4,
            "analyte": ["PHE", "PHE", "TYR", "TYR"],
            "value": [*phe, *tyr],
            "unit": ["µmol/L"] * 4,
            "measured_at": ["2026-03-07T09:00:00"] * 4,
            "instrument": ["MSMS-01"] * 4,
            "plate_id": ["P260307-1"] * 4,
            "replicate": ["2", "3", "2", "3"],
        }
    ).write_csv(inbox / "20260307-retests.results.csv")


#: a normal first punch of every first-tier marker (catalogue units)
NORMAL_PUNCH = {
    "PHE": "55", "TYR": "75", "C2": "22", "C8": "0.05", "C10": "0.06", "TSH": "2.0",
    "OHP17": "6", "IRT": "22", "SMN1": "27", "RPP30": "25", "TREC": "120",
}  # fmt: skip


def write_card(
    inbox: Path,
    specimen: str,
    baby: str,
    collected: dt.datetime,
    values: dict[str, str] | None = None,
    **fields: str,
) -> None:
    """One card born at ``BIRTH`` with its first punch (normal values unless ``values``
    says otherwise), as an inbox's two canonical CSV files named after the card."""
    inbox.mkdir(parents=True, exist_ok=True)
    card = {
        "specimen_id": specimen, "baby_id": baby, "birth_at": BIRTH.isoformat(),
        "collected_at": collected.isoformat(),
        "received_at": (collected + dt.timedelta(days=1)).isoformat(), "sex": "F",
        "birth_weight_g": "3300", "gestational_age_weeks": "39", "transfusion": "false",
        "parenteral_nutrition": "false", "consent_cf": "true", "specimen_quality": "ok",
    } | fields  # fmt: skip
    pl.DataFrame([card]).write_csv(inbox / f"{specimen}.specimens.csv")
    punch = NORMAL_PUNCH | (values or {})
    units = {"TSH": "mU/L", "OHP17": "nmol/L", "IRT": "ng/mL", "SMN1": "Ct", "RPP30": "Ct",
             "TREC": "copies/µL"}  # fmt: skip
    pl.DataFrame(
        [
            {
                "specimen_id": specimen,
                "analyte": a,
                "value": v,
                "unit": units.get(a, "µmol/L"),
                "measured_at": collected.isoformat(),
                "instrument": "LAB-01",
                "plate_id": "P1",
                "replicate": "1",
            }
            for a, v in punch.items()
        ]
    ).write_csv(inbox / f"{specimen}.results.csv")
