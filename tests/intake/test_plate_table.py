"""MS/MS and immunoassay plate exports read through their YAML profiles."""

from __future__ import annotations

import datetime as dt

import pytest

from data_samples.instrument_exports import msms_wide, trfia_long
from nbs.intake import plate_table
from nbs.intake.profiles import Profile, load_profiles
from nbs.intake.quantstudio import ExportError

AT = dt.datetime(2026, 3, 3, 10, 15)


def _profile(name: str) -> Profile:
    return next(p for p in load_profiles() if p.name == name)


def test_a_wide_msms_export_gives_a_row_per_analyte_with_its_role() -> None:
    text = msms_wide(
        [
            ("A01", "S-0001", "Patient", {"Phe": 52.3, "Tyr": 61.0, "C2": 18.2, "C8": 0.08}),
            ("A02", "QC-MS-L1-LOT889", "QC", {"Phe": 80.4, "Tyr": 90.1}),
            ("A03", "", "Blank", {}),
        ],
        "MS-260303-02",
        AT,
    )
    profile = _profile("msms-plate-wide")
    assert plate_table.recognise(text[:4096], profile)
    rows = plate_table.read(text, profile, "x.csv")
    s1 = rows.filter(rows["specimen_id"] == "S-0001")
    assert dict(zip(s1["analyte"], s1["value"], strict=True))["PHE"] == "52,30"
    assert set(s1["unit"]) == {"µmol/L"} and set(s1["measured_at"]) == {"2026-03-03T10:15:00"}
    assert s1.filter(s1["analyte"] == "C10")["value"].to_list() == [None]
    qc = rows.filter(rows["sample_type"] == "control", rows["analyte"] == "PHE").row(0, named=True)
    assert (qc["material"], qc["material_level"], qc["material_lot"]) == ("QC-MS", "L1", "889")
    assert set(rows["plate_id"]) == {"MS-260303-02"} and set(rows["instrument"]) == {"TQD-0417"}
    assert set(rows["kit_lot"]) == {"NB2-2611"}  # the assay kit's lot, for patient-based QC


def test_a_long_immunoassay_export_keeps_calibrators_nominal_and_the_kits_control_lot() -> None:
    text = trfia_long(
        [
            ("A1", "CAL-A", "Calibrator", "hTSH", 0.1, "mU/L", 0.0),
            ("A3", "CAL-C", "Calibrator", "hTSH", 24.6, "mU/L", 25.0),
            ("B1", "CTRL-2", "Control", "hTSH", 44.2, "mU/L", None),
            ("C1", "S-0001", "Sample", "hTSH", 3.4, "mU/L", None),
        ],
        "GSP-260303-07",
        AT,
    )
    profile = _profile("trfia-plate-long")
    assert plate_table.recognise(text[:4096], profile)
    assert not plate_table.recognise(text[:4096], _profile("msms-plate-wide"))
    rows = {r["well"]: r for r in plate_table.read(text, profile, "x.txt").iter_rows(named=True)}
    assert (rows["A3"]["sample_type"], rows["A3"]["nominal"], rows["A3"]["value"]) == (
        "calibrator",
        "25,00",
        "24,60",
    )
    ctrl = rows["B1"]
    assert (ctrl["material"], ctrl["material_level"], ctrl["material_lot"]) == (
        "NBS-CTRL",
        "2",
        "4411",
    )
    assert rows["C1"]["specimen_id"] == "S-0001" and rows["C1"]["material_lot"] is None
    assert rows["C1"]["kit_lot"] == "4411"


def test_an_export_missing_its_plate_line_is_refused_by_name() -> None:
    text = trfia_long([], "P", AT).replace("Plate\tP", "Platte\tP")
    with pytest.raises(ExportError, match=r"x\.txt: the header does not give plate_id"):
        plate_table.read(text, _profile("trfia-plate-long"), "x.txt")
