"""Plates in the store: a run's verdicts written once, a supervisor's decision audited."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from nbs import store
from nbs.store import plates
from nbs.store.connection import transaction

T0 = dt.datetime(2026, 3, 2, 8, 0)


def _plates(status: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "plate_id": ["P17"],
            "instrument": ["GSP-01"],
            "run_at": [T0],
            "kit_lot": ["7731"],
            "status": [status],
            "reason": ["plate P17 held: 2-2s on TSH NBS-CTRL level 2, lot 4411"],
            "qc_version": ["2026.1"],
        }
    )


def _qc() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "plate_id": ["P17"],
            "well": ["A2"],
            "sample_type": ["control"],
            "analyte": ["TSH"],
            "material": ["NBS-CTRL"],
            "level": ["2"],
            "lot": ["4411"],
            "value": [53.5],
            "value_text": ["53,5"],
            "nominal": [None],
            "ct": [None],
            "measured_at": [T0],
            "z": [2.1],
            "rules": ["2-2s"],
            "file_sha256": ["ab"],
            "row_number": [3],
        },
        schema_overrides={"nominal": pl.Float64, "ct": pl.Float64},
    )


def _write(db: Path, status: str, run_id: str) -> int:
    with store.connect(db) as con, transaction(con):
        con.register("new_plates", _plates(status).to_arrow())
        con.register("new_qc", _qc().to_arrow())
        return plates.write_plates(con, "new_plates", "new_qc", run_id, T0)


def test_a_plate_is_written_once_and_decided_with_an_audit_trail(tmp_path: Path) -> None:
    db = tmp_path / "lab.duckdb"
    store.ensure_schema(db)
    assert _write(db, "held", "run-1") == 1
    assert _write(db, "accepted", "run-2") == 0  # judged once: the second run adds nothing
    assert plates.plate(db, "P17")["status"] == "held"  # type: ignore[index]
    assert plates.plate(db, "P17")["kit_lot"] == "7731"  # type: ignore[index]
    assert plates.plate_qc_results(db, "P17")["rules"].to_list() == ["2-2s"]
    with store.connect(db) as con:
        assert plates.unaccepted_plates(con) == ["P17"]
    with pytest.raises(plates.PlateDecisionError, match="needs a reason"):
        plates.decide_plate(db, "P17", "accepted", "sup", " ")
    plates.decide_plate(db, "P17", "accepted", "sup", "level 2 vial thawed twice; re-run OK")
    with pytest.raises(plates.PlateDecisionError, match="is accepted, not held"):
        plates.decide_plate(db, "P17", "rejected", "sup", "second thoughts")
    events = plates.plate_events(db, "P17")
    assert events.select("actor", "old_status", "new_status").rows() == [
        ("pipeline", None, "held"),
        ("sup", "held", "accepted"),
    ]
    with store.connect(db) as con:
        assert plates.unaccepted_plates(con) == []
        history = plates.control_history(con, ["TSH"])
    assert history["value"].to_list() == [53.5]
