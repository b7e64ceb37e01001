"""``card_orders`` in a real database: HL7 files through a screening run (accepted orders
stored, quarantined and refused messages in ``quarantine`` with their file and place),
re-reading never counting twice, a later message superseding an earlier one, the
laboratory's receipt, and the overdue list (store, CLI)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from nbs import store
from nbs.cli import app
from nbs.config import ScreeningConfig
from nbs.intake.orders import ORDER_SCHEMA, read_messages
from nbs.run.steps import run_local
from nbs.store import orders

SAMPLES = Path(__file__).resolve().parents[2] / "data_samples" / "hl7"


def _inbox(tmp_path: Path, *names: str) -> Path:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(SAMPLES / name, inbox / name)
    return inbox


def _count(db: Path, sql: str) -> int:
    return int(store.query(db, f"SELECT count(*) FROM {sql}").item())


@pytest.fixture(scope="module")
def ordered(tmp_path_factory: pytest.TempPathFactory, config: ScreeningConfig) -> Path:
    """A database after one run over every sample HL7 file."""
    tmp = tmp_path_factory.mktemp("orders")
    inbox = _inbox(tmp, *(p.name for p in sorted(SAMPLES.glob("*.hl7"))))
    db = tmp / "nbs.duckdb"
    summary = run_local(inbox, db, config)
    assert summary.quarantined_rows == 5  # 3 wrong values + 2 refused messages
    return db


def test_accepted_orders_are_card_orders_and_received_at_stays_empty(ordered: Path) -> None:
    frame = orders.card_orders(ordered)
    assert frame.height == 13  # OML, ORM, 2 twins, TPN, 5 several, 2 framed, 1 LF-only
    assert frame["received_at"].null_count() == frame.height
    contract = ["specimen_id", "baby_id", "birth_at", "collected_at", "sex", "birth_weight_g",
                "gestational_age_weeks", "transfusion", "parenteral_nutrition", "submitter",
                "received_at"]  # fmt: skip
    assert set(contract) <= set(frame.columns)
    tpn = orders.card_order(ordered, "HL7C0020")
    assert tpn is not None
    assert (tpn["transfusion"], tpn["parenteral_nutrition"], tpn["birth_weight_g"]) == (
        True,
        True,
        1320,
    )
    assert tpn["last_transfusion_at"] == dt.datetime(2026, 1, 2, 23, 59)


def test_quarantined_and_refused_messages_are_kept_with_file_and_place(ordered: Path) -> None:
    rows = store.query(
        ordered,
        "SELECT file_name, row_number, column_name, value, reason FROM quarantine "
        "ORDER BY file_name, row_number",
    ).rows()
    assert [r[:4] for r in rows] == [
        ("not_screening.hl7", 1, "MSH-9", "ADT^A01^ADT_A01"),
        ("not_screening.hl7", 2, "OBR-4", "57698-3"),
        ("wrong_units.hl7", 1, "OBX-5 of 8339-4 (birth weight)", "2100"),
        ("wrong_units.hl7", 2, "OBX-5 of 57714-8 (gestational age)", "9"),
        ("wrong_units.hl7", 3, "PID-7", "third of January"),
    ]
    # nothing of a quarantined message is an order
    assert orders.card_order(ordered, "HL7C0030") is None
    files = store.query(
        ordered,
        "SELECT file_name, status, rows_read, rows_quarantined FROM ingested_files "
        "WHERE file_name = 'wrong_units.hl7'",
    ).rows()
    assert files == [("wrong_units.hl7", "ingested", 3, 3)]


@pytest.mark.slow
def test_the_same_message_again_in_another_file_adds_nothing(
    tmp_path: Path, config: ScreeningConfig
) -> None:
    db = tmp_path / "nbs.duckdb"
    run_local(_inbox(tmp_path, "twins.hl7"), db, config)
    again = tmp_path / "inbox" / "twins-resent.hl7"
    # another file (another hash): the same messages with an empty line after them
    again.write_bytes((SAMPLES / "twins.hl7").read_bytes() + b"\r")
    run_local(tmp_path / "inbox", db, config)
    assert _count(db, "order_messages") == 2
    assert _count(db, "card_orders") == 2
    assert _count(db, "ingested_files") == 2  # both files kept


def _with(text: str, **replace: str) -> str:
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


#: a correction sent a day later (new control id), and a message sent before the first
LATER = {"202601051015+0100||OML": "202601061015+0100||OML", "OML-0001": "OML-0002",
         "||3250|": "||3350|"}  # fmt: skip
OLDER = {"202601051015+0100||OML": "202601050915+0100||OML", "OML-0001": "OML-0000",
         "||3250|": "||3150|"}  # fmt: skip


@pytest.mark.slow
def test_a_later_order_supersedes_and_an_older_one_does_not(
    tmp_path: Path, config: ScreeningConfig
) -> None:
    db = tmp_path / "nbs.duckdb"
    first = (SAMPLES / "oml_o21_order.hl7").read_text()
    inbox = _inbox(tmp_path)
    (inbox / "a.hl7").write_text(first)
    run_local(inbox, db, config)
    (inbox / "b.hl7").write_text(_with(first, **LATER))
    run_local(inbox, db, config)
    assert orders.card_order(db, "HL7C0001")["birth_weight_g"] == 3350  # type: ignore[index]
    # sent before both, arriving last: kept, but it does not replace the order
    (inbox / "c.hl7").write_text(_with(first, **OLDER))
    run_local(inbox, db, config)
    current = orders.card_order(db, "HL7C0001")
    assert current is not None
    assert (current["birth_weight_g"], current["order_messages"]) == (3350, 3)


def test_receipt_is_recorded_once_and_refused_when_it_cannot_be(ordered: Path) -> None:
    with pytest.raises(orders.OrderError, match="no order for card NOPE"):
        orders.receive_order(ordered, "NOPE", dt.datetime(2026, 1, 6), "lars")
    with pytest.raises(orders.OrderError, match="before the card's collection"):
        orders.receive_order(ordered, "HL7C0001", dt.datetime(2026, 1, 5, 9, 0), "lars")
    done = orders.receive_order(ordered, "HL7C0001", dt.datetime(2026, 1, 6, 9, 0), "lars")
    assert (done["received_at"], done["received_by"]) == (dt.datetime(2026, 1, 6, 9, 0), "lars")
    with pytest.raises(orders.OrderError, match="received already"):
        orders.receive_order(ordered, "HL7C0001", dt.datetime(2026, 1, 7, 9, 0), "lena")
    assert orders.card_order(ordered, "HL7C0001")["received_by"] == "lars"  # type: ignore[index]


def test_the_overdue_list_and_the_cli(ordered: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = ordered
    # the twins were ordered 2026-01-05 10:15: overdue once the limit passes that
    waiting = orders.card_orders(db, overdue_before=dt.datetime(2026, 1, 5, 10, 0))
    assert "HL7C0011" not in waiting["specimen_id"].to_list()
    late = orders.card_orders(db, overdue_before=dt.datetime(2026, 1, 8))["specimen_id"]
    assert {"HL7C0011", "HL7C0012"} <= set(late.to_list())
    runner = CliRunner()
    receive = ["orders", "receive", "HL7C0011", "--db", str(db), "--at", "2026-01-06T09:30"]
    received = runner.invoke(app, [*receive, "--by", "lars"])
    assert received.exit_code == 0, received.output
    assert "HL7C0011 received 2026-01-06 09:30" in received.output
    monkeypatch.setenv("NBS_ORDERS_OVERDUE_DAYS", "1")
    shown = runner.invoke(app, ["orders", "list", "--overdue", "--db", str(db), "--format", "json"])
    assert shown.exit_code == 0, shown.output
    listed = {r["specimen_id"] for r in json.loads(shown.output)}
    assert "HL7C0012" in listed and "HL7C0011" not in listed
    waiting = orders.card_orders(db, received=False)["specimen_id"].to_list()
    assert "HL7C0012" in waiting and "HL7C0011" not in waiting
    assert "HL7C0011" in orders.card_orders(db, received=True)["specimen_id"].to_list()
    bad = runner.invoke(app, ["orders", "receive", "HL7C0012", "--db", str(db), "--at", "soon"])
    assert bad.exit_code != 0
    assert orders.card_order(db, "HL7C0012")["received_at"] is None  # type: ignore[index]


def _part(tmp_path: Path, name: str, text: str) -> Path:
    """An order part as a staged HL7 file leaves it."""
    rows = [
        {**o.order, "file_sha256": name, "file_name": name, "message_index": o.index}
        for o in read_messages(text.encode())
        if o.order
    ]
    path = tmp_path / f"orders-{name}.parquet"
    pl.DataFrame(rows, schema=ORDER_SCHEMA).write_parquet(path)
    return path


def _write(db: Path, *parts: Path) -> int:
    with store.connect(db) as con:
        return orders.write_orders(con, list(parts), "run-test", dt.datetime(2026, 1, 6))


def test_orders_written_twice_count_once_and_the_latest_message_is_the_order(
    tmp_path: Path,
) -> None:
    db = tmp_path / "nbs.duckdb"
    store.migrate(db)
    first = (SAMPLES / "oml_o21_order.hl7").read_text()
    assert _write(db, _part(tmp_path, "a", first)) == 1
    assert _write(db, _part(tmp_path, "a", first), _part(tmp_path, "b", first)) == 0
    later = _with(first, **LATER)
    older = _with(first, **OLDER)
    assert _write(db, _part(tmp_path, "c", later), _part(tmp_path, "d", older)) == 2
    current = orders.card_order(db, "HL7C0001")
    assert current is not None
    assert (current["birth_weight_g"], current["message_control_id"]) == (3350, "OML-0002")
    assert current["order_messages"] == 3
