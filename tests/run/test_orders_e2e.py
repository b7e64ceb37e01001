"""End to end: HL7 orders in, the cards received, their results in: each card is
evaluated with its order's data (a transfused, preterm baby on parenteral nutrition gets
its specimen-level repeat card), and nothing is taken in twice."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from nbs import store
from nbs.config import ScreeningConfig
from nbs.run.steps import run_local
from nbs.store import orders
from tests.helpers import write_card

SAMPLES = Path(__file__).resolve().parents[2] / "data_samples" / "hl7"

pytestmark = pytest.mark.slow  # three screening runs


def _results_only(inbox: Path, specimen: str, collected: dt.datetime) -> None:
    """The card's first punch (normal values) as a results file, without a cards file."""
    write_card(inbox, specimen, "ignored", collected)
    (inbox / f"{specimen}.specimens.csv").unlink()


def test_an_order_received_then_its_results_make_an_evaluated_card(
    tmp_path: Path, config: ScreeningConfig
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    db = tmp_path / "nbs.duckdb"
    for name in ("oml_o21_order.hl7", "transfusion_tpn.hl7"):
        shutil.copy(SAMPLES / name, inbox / name)
    run_local(inbox, db, config)
    assert store.query(db, "SELECT count(*) FROM specimens").item() == 0  # orders, no cards

    orders.receive_order(db, "HL7C0001", dt.datetime(2026, 1, 6, 9, 0), "lars", consent_cf=True)
    orders.receive_order(db, "HL7C0020", dt.datetime(2026, 1, 5, 9, 0), "lars")
    _results_only(inbox, "HL7C0001", dt.datetime(2026, 1, 5, 10, 0))
    _results_only(inbox, "HL7C0020", dt.datetime(2026, 1, 4, 10, 0))
    summary = run_local(inbox, db, config)
    assert summary.quarantined_rows == 0, summary.quarantine

    cards = store.query(
        db,
        "SELECT specimen_id, baby_id, birth_at, collected_at, received_at, birth_weight_g, "
        "gestational_age_weeks, transfusion, parenteral_nutrition, consent_cf, "
        "specimen_quality, submitter, last_transfusion_at FROM specimens ORDER BY specimen_id",
    ).rows()
    assert cards == [
        ("HL7C0001", "NB-HL7-001^^^CHL", dt.datetime(2026, 1, 3, 8, 15),
         dt.datetime(2026, 1, 5, 10, 0), dt.datetime(2026, 1, 6, 9, 0), 3250, 39, False, False,
         True, "ok", "CHL NEONATOLOGIE", None),
        ("HL7C0020", "NB-HL7-020^^^CHL", dt.datetime(2026, 1, 1, 4, 0),
         dt.datetime(2026, 1, 4, 10, 0), dt.datetime(2026, 1, 5, 9, 0), 1320, 30, True, True,
         None, "ok", "CHL NEONATOLOGIE", dt.datetime(2026, 1, 2, 23, 59)),
    ]  # fmt: skip
    calls = dict(
        store.query(
            db,
            "SELECT condition, call FROM screening_calls WHERE specimen_id = 'HL7C0001'",
        ).rows()
    )
    assert calls["PKU"] == "negative" and calls["CF"] == "negative"  # consent from receipt
    # the order's transfusion date and prematurity reach the specimen rules
    recalls = store.query(
        db,
        "SELECT specimen_id, action, reason FROM recall_list WHERE condition IS NULL",
    ).rows()
    assert [r[:2] for r in recalls] == [("HL7C0020", "repeat_specimen")]
    assert "transfusion" in recalls[0][2]
    assert all(o["card_stored"] for o in orders.card_orders(db).to_dicts())

    # the next run takes nothing in again (the cards are stored)
    again = run_local(inbox, db, config)
    assert again.specimen_rows == 0 and not again.files
    archived = sorted(p.name for p in (inbox / "archive").rglob("*") if p.is_file())
    assert "received-orders.specimens.csv" in archived
    assert "transfusion_tpn.hl7" in archived
