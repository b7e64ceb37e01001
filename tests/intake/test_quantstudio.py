"""The QuantStudio Results export read as the software writes it: wells to canonical rows."""

from __future__ import annotations

import datetime as dt

import pytest

from data_samples.instrument_exports import (
    Well,
    quantstudio_da_csv,
    quantstudio_v1_text,
    standard_curve,
)
from nbs.intake.profiles import load_profiles
from nbs.intake.quantstudio import ExportError, parse_text, recognise, run_time, to_results

RUN_END = dt.datetime(2026, 3, 3, 14, 5, 9)


def _profile():  # type: ignore[no-untyped-def]
    return next(p for p in load_profiles() if p.name == "quantstudio-scid-sma")


def _plate() -> list[Well]:
    return [
        *standard_curve("TREC"),
        Well("B1", "S-0001", "TREC", ct=27.1, quantity=1234.5),
        Well("B2", "S-0001", "TREC", ct=27.3, quantity=1100.0),
        Well("B3", "S-0001", "RNase P", ct=24.02),
        Well("B4", "S-0002", "TREC"),  # nothing amplified: no TREC
        Well("B5", "S-0002", "RNase P", ct=23.9),
        Well("B6", "QC-TREC-L1-LOT2207", "TREC", ct=30.2, quantity=150.0),
        Well("B7", "S-0003", "TREC", ct=26.0, quantity=2000.0, omit=True),
    ]


@pytest.mark.parametrize("writer", [quantstudio_v1_text, quantstudio_da_csv])
def test_both_layouts_give_the_same_canonical_rows(writer) -> None:  # type: ignore[no-untyped-def]
    text = writer(_plate(), RUN_END, "TREC-260303-01")
    assert recognise(text[:4096])
    rows = to_results(parse_text(text), _profile(), "export.txt")
    by_well = {r["well"]: r for r in rows.iter_rows(named=True)}
    assert rows.height == len(_plate())
    s1 = by_well["B1"]
    assert (s1["specimen_id"], s1["analyte"], s1["unit"], s1["sample_type"]) == (
        "S-0001",
        "TREC",
        "copies/µL",
        "specimen",
    )
    assert float(s1["value"]) == pytest.approx(1234.5 * 0.3226)
    assert (by_well["B1"]["replicate"], by_well["B2"]["replicate"]) == ("1", "2")
    assert by_well["B3"]["analyte"] == "RPP30" and by_well["B3"]["value"] == "24.020"
    assert by_well["B4"]["value"] == "Undetermined" and by_well["B4"]["ct"] is None
    qc = by_well["B6"]
    assert (qc["sample_type"], qc["material"], qc["material_level"], qc["material_lot"]) == (
        "control",
        "QC-TREC",
        "L1",
        "2207",
    )
    assert qc["specimen_id"] is None
    std = by_well["A1"]
    assert (std["sample_type"], std["nominal"], std["ct"]) == ("calibrator", "100000.000", "21.400")
    assert by_well["A5"]["sample_type"] == "blank" and by_well["A5"]["ct"] is None
    assert by_well["B7"]["flag"] == "omitted" and by_well["B7"]["value"] is None
    assert {r["plate_id"] for r in by_well.values()} == {"TREC-260303-01"}
    assert {r["measured_at"] for r in by_well.values()} == {"2026-03-03T14:05:09+01:00"}


def test_run_times_with_zones_and_without() -> None:
    assert run_time("2010-10-01 01:44:54 AM EDT") == "2010-10-01T01:44:54-04:00"
    assert run_time("2026-03-03 14:05:09") == "2026-03-03T14:05:09"
    with pytest.raises(ExportError, match="not a date"):
        run_time("Not Started yet")


def test_an_export_without_a_run_time_is_refused_naming_what_is_missing() -> None:
    text = quantstudio_v1_text(_plate(), RUN_END, "P1").replace("Experiment Run End Time", "X")
    with pytest.raises(ExportError, match="no run time in the header"):
        to_results(parse_text(text), _profile(), "export.txt")


def test_a_plain_results_csv_is_not_taken_for_an_export() -> None:
    assert not recognise("specimen_id,analyte,value,unit\nS-1,TSH,3.1,mU/L\n")


def test_the_excel_export_reads_like_the_text_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from data_samples.instrument_exports import quantstudio_xlsx
    from nbs.intake.exports import decode, readers, recogniser

    data = quantstudio_xlsx(_plate(), RUN_END, "TREC-260303-01")
    path = tmp_path / "run.xlsx"
    path.write_bytes(data)
    found = readers(load_profiles())
    assert recogniser(found)(path) == "quantstudio-scid-sma"
    from_excel = to_results(parse_text(decode(data)), _profile(), "run.xlsx")
    text = quantstudio_v1_text(_plate(), RUN_END, "TREC-260303-01")
    from_text = to_results(parse_text(text), _profile(), "run.txt")
    columns = ["well", "specimen_id", "analyte", "sample_type", "material", "replicate"]
    assert from_excel.select(columns).equals(from_text.select(columns))
    values = dict(zip(from_excel["well"] + from_excel["analyte"], from_excel["value"], strict=True))
    assert float(values["B1TREC"]) == pytest.approx(1234.5 * 0.3226)
    assert values["B4TREC"] == "Undetermined"
    assert from_excel.filter(from_excel["well"] == "A1")["nominal"].to_list() == ["100000"]
