"""A batch's plates judged: calibration and control rules hold a plate, history counts."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl

from nbs.qc.config import ControlLot, QcConfig, load_qc
from nbs.qc.plates import QC_COLUMNS, judge_plates

T0 = dt.datetime(2026, 3, 2, 8, 0)


def _row(plate: str, hour: int, sample_type: str, analyte: str, **kw: object) -> dict[str, object]:
    return {
        "plate_id": plate,
        "instrument": "QS7-01" if analyte == "TREC" else "GSP-01",
        "well": kw.get("well", "A1"),
        "sample_type": sample_type,
        "analyte": analyte,
        "material": kw.get("material"),
        "level": kw.get("level"),
        "lot": kw.get("lot"),
        "value": kw.get("value"),
        "nominal": kw.get("nominal"),
        "ct": kw.get("ct"),
        "measured_at": T0 + dt.timedelta(hours=hour),
    }


def _frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=QC_COLUMNS)


def _tsh(plate: str, hour: int, level1: float, level2: float) -> list[dict[str, object]]:
    common = {"material": "NBS-CTRL", "lot": "4411"}
    return [
        _row(plate, hour, "control", "TSH", level="1", value=level1, well="A1", **common),
        _row(plate, hour, "control", "TSH", level="2", value=level2, well="A2", **common),
    ]


def _trec_standards(plate: str, slope: float) -> list[dict[str, object]]:
    return [
        _row(plate, 0, "calibrator", "TREC", nominal=q, ct=slope * math.log10(q) + 38, well=w)
        for q, w in ((1e5, "A1"), (1e4, "A2"), (1e3, "A3"), (1e2, "A4"))
    ] + [_row(plate, 0, "blank", "TREC", well="A5")]


EMPTY = pl.DataFrame(schema=QC_COLUMNS)


def test_controls_in_range_accept_and_a_two_two_s_holds_naming_rule_and_lot() -> None:
    qc = load_qc()  # TSH level 1: 6.0 ± 0.6, level 2: 45.0 ± 4.0
    rows = _frame(_tsh("P16", 1, 6.1, 44.0) + _tsh("P17", 2, 7.3, 53.5))
    verdicts = {v.plate_id: v for v in judge_plates(rows, EMPTY, qc)}
    assert verdicts["P16"].status == "accepted"
    held = verdicts["P17"]
    assert held.status == "held"
    assert held.reason.startswith("plate P17 held: 2-2s on TSH NBS-CTRL level")
    assert "lot 4411" in held.reason


def test_across_runs_the_history_of_accepted_plates_counts() -> None:
    qc = load_qc()
    history = _frame(_tsh("P01", 0, 7.3, 45.0))  # level 1 at +2.2 SD, accepted before
    verdicts = judge_plates(_frame(_tsh("P02", 5, 7.25, 45.5)), history, qc)
    assert verdicts[0].status == "held" and "2-2s" in verdicts[0].reason


def test_a_failing_standard_curve_or_amplified_ntc_holds_the_qpcr_plate() -> None:
    qc = load_qc()
    good = judge_plates(_frame(_trec_standards("Q1", -3.32)), EMPTY, qc)[0]
    assert good.status == "accepted"
    flat = judge_plates(_frame(_trec_standards("Q2", -2.7)), EMPTY, qc)[0]
    assert flat.status == "held" and "TREC standard curve slope -2.70" in flat.reason
    ntc = _trec_standards("Q3", -3.32)
    ntc[-1]["ct"] = 33.0
    amplified = judge_plates(_frame(ntc), EMPTY, qc)[0]
    assert "no-template control amplified at Ct 33" in amplified.reason


def test_a_lot_without_declared_values_is_established_from_twenty_accepted_results() -> None:
    qc = QcConfig(qc_version="t", establish_from=20)
    common = {"material": "M", "level": "1", "lot": "L9"}
    first = [
        _row(f"P{i:02d}", i, "control", "PHE", value=100 + (i % 3 - 1) * 5, **common)
        for i in range(20)
    ]
    verdicts = judge_plates(_frame(first), EMPTY, qc)
    assert all(v.status == "held" and "no target for PHE" in v.reason for v in verdicts)
    # the supervisor accepted them: they are the lot's history; now the target exists
    later = _frame([_row("P30", 30, "control", "PHE", value=140, **common)])
    assert judge_plates(later, _frame(first), qc)[0].status == "held"  # 1-3s
    fine = _frame([_row("P31", 31, "control", "PHE", value=101, **common)])
    assert judge_plates(fine, _frame(first), qc)[0].status == "accepted"


def test_declared_targets_win_over_established_ones() -> None:
    lot = ControlLot(analyte="PHE", material="M", level="1", lot="L9", mean=200, sd=10)
    qc = QcConfig(qc_version="t", control_lots=[lot])
    row = _frame([_row("P1", 1, "control", "PHE", material="M", level="1", lot="L9", value=205)])
    assert judge_plates(row, EMPTY, qc)[0].status == "accepted"
