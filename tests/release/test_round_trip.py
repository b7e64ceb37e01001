"""Round trip: an HL7 order in, the card received, its results in, released; the ORU^R01
out names the same card, baby (with the order's assigning authority) and birth time."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from nbs.config import ScreeningConfig
from nbs.release import export, service
from nbs.run.steps import run_local
from nbs.store import orders
from nbs.web import users
from tests.helpers import NORMAL_PUNCH
from tests.release.conftest import LAB, PASSWORD

SAMPLES = Path(__file__).resolve().parents[2] / "data_samples" / "hl7"
UNITS = {
    "PHE": "µmol/L", "TYR": "µmol/L", "C2": "µmol/L", "C8": "µmol/L", "C10": "µmol/L",
    "TSH": "mU/L", "OHP17": "nmol/L", "IRT": "ng/mL", "SMN1": "Ct", "RPP30": "Ct",
    "TREC": "copies/µL",
}  # fmt: skip


def _results(inbox: Path, card: str) -> None:
    n = len(NORMAL_PUNCH)
    pl.DataFrame(
        {
            "specimen_id": [card] * n,
            "analyte": list(NORMAL_PUNCH),
            "value": list(NORMAL_PUNCH.values()),
            "unit": [UNITS[a] for a in NORMAL_PUNCH],
            "measured_at": ["2026-01-07T09:00:00"] * n,
            "instrument": ["MSMS-01"] * n,
            "plate_id": ["P260107-1"] * n,
            "replicate": ["1"] * n,
        }
    ).write_csv(inbox / "20260107.results.csv")


@pytest.mark.slow
def test_an_order_in_gives_an_oru_out_naming_the_same_card_baby_and_birth(
    tmp_path: Path, config: ScreeningConfig
) -> None:
    db = tmp_path / "lab.duckdb"
    ordered = tmp_path / "orders"
    ordered.mkdir()
    shutil.copy(SAMPLES / "oml_o21_order.hl7", ordered / "oml_o21_order.hl7")
    run_local(ordered, db, config)
    orders.receive_order(db, "HL7C0001", dt.datetime(2026, 1, 6, 9, 0), LAB)
    measured = tmp_path / "results"
    measured.mkdir()
    _results(measured, "HL7C0001")
    run_local(measured, db, config)
    users.add_user(db, LAB, "lab", PASSWORD, "test")
    service.verify_signer(db, LAB, PASSWORD, "HL7C0001")
    service.release_card(db, "HL7C0001", LAB, acknowledge=True)  # CF consent not given
    (path,) = export.write_hl7(db, tmp_path / "out").files
    text = path.read_bytes().decode().rstrip("\r")
    message = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert message.validate()
    # the order: PID-3 NB-HL7-001^^^CHL&...^MR, PID-7 202601030815+0100, card HL7C0001
    pid = next(s for s in text.split("\r") if s.startswith("PID|")).split("|")
    assert pid[3] == "NB-HL7-001^^^CHL^MR"
    assert pid[7] == "20260103081500" and pid[8] == "F"
    assert "|57723-9^Unique bar code number of Current sample^LN||HL7C0001|" in text
    assert "|3250|g^gram^UCUM|" in text  # the order's birth weight
