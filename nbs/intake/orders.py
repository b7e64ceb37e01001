"""Orders in a screening run: an ``*.hl7`` inbox file staged (its accepted orders, its
quarantined and refused messages), and the received orders that have no stored card yet
taken in as cards.

An HL7 file rides the run as a file of the ``specimens`` kind with the format ``hl7``: its
messages are its rows (``row_number`` = the message's place in the file), so a
quarantined or refused message reaches the ``quarantine`` relation, the run summary and
``ingested_files`` the way a bad row of a cards file does, and the file is archived like
every inbox file. Its accepted orders are a part of their own (``orders-...``), which
the commit writes to ``order_messages`` (:func:`nbs.store.orders.write_orders`). An order
is not a card: no card row comes from the file itself.

A received order becomes a card the way a cards file's row does: the run writes the
received orders without a stored card as a cards CSV in its work folder (the card
format's columns, :func:`received_cards_file`) and reads it as one more new file, with
the same validation and cross-checks; it is archived with the inbox's files, as a record
of what the run took from the orders.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from nbs import store
from nbs.intake.discover import InboxFile, UnreadableFile, hash_unchanged
from nbs.intake.files import PlannedFile, StagedFile
from nbs.intake.hl7_orders import Outcome, read_order
from nbs.intake.hl7_read import parse, split_messages
from nbs.store import orders as order_store
from nbs.store.orders import ORDER_PART
from nbs.validate.contract import QUARANTINE_SCHEMA, SPECIMEN_TYPES

#: the file name of an HL7 inbox file (any case)
HL7_SUFFIX = ".hl7"
#: the (empty) card rows of an HL7 file: apart from the cards files' ``good-`` parts
NO_CARDS_PART = "ordercards"
#: the name the run gives the cards it takes from received orders
RECEIVED_FILE = "received-orders.specimens.csv"

ORDER_SCHEMA = pl.Schema(
    {
        "specimen_id": pl.String(),
        "message_control_id": pl.String(),
        "baby_id": pl.String(),
        "birth_at": pl.Datetime("us"),
        "collected_at": pl.Datetime("us"),
        "sex": pl.String(),
        "birth_weight_g": pl.Int64(),
        "gestational_age_weeks": pl.Int64(),
        "transfusion": pl.Boolean(),
        "parenteral_nutrition": pl.Boolean(),
        "nicu": pl.Boolean(),
        "antibiotics": pl.Boolean(),
        "last_transfusion_at": pl.Datetime("us"),
        "plurality": pl.Int64(),
        "birth_order": pl.Int64(),
        "submitter": pl.String(),
        "provider_name": pl.String(),
        "provider_phone": pl.String(),
        "placer_order_id": pl.String(),
        "message_type": pl.String(),
        "ordered_at": pl.Datetime("us"),
        "file_sha256": pl.String(),
        "file_name": pl.String(),
        "message_index": pl.Int64(),
    }
)


def is_hl7(name: str) -> bool:
    """Whether an inbox file's name makes it an HL7 file."""
    return name.lower().endswith(HL7_SUFFIX)


def read_messages(data: bytes) -> list[Outcome]:
    """What becomes of each message of a file (or an MLLP stream), in order."""
    return [read_order(parse(raw)) for raw in split_messages(data)]


def _frames(outcomes: list[Outcome], sha256: str, name: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accepted orders, quarantine entries) of a file's messages. A message repeated in
    the file (same card, same control id) is one order."""
    orders = [
        {**o.order, "file_sha256": sha256, "file_name": name, "message_index": o.index}
        for o in outcomes
        if o.order is not None
    ]
    order_frame = pl.DataFrame(orders, schema=ORDER_SCHEMA).unique(
        ["specimen_id", "message_control_id"], keep="first", maintain_order=True
    )
    held = [
        {"row_number": o.index, "column_name": p.place, "value": p.value, "reason": p.reason}
        for o in outcomes
        for p in o.problems
    ]
    quarantine = pl.DataFrame(held, schema=QUARANTINE_SCHEMA).unique(
        ["row_number", "column_name", "reason"], keep="first", maintain_order=True
    )
    return order_frame, quarantine


def stage_orders(planned: PlannedFile, work_dir: Path) -> StagedFile:
    """Read an HL7 inbox file's messages into the run's work folder: its orders, its
    quarantine entries and an empty part of cards (an order is not a card)."""
    f = planned.file
    (work_dir / store.STAGED_DIR).mkdir(parents=True, exist_ok=True)
    outcomes = read_messages(f.path.read_bytes())
    if not outcomes:
        raise UnreadableFile("no HL7 message in the file")
    orders, quarantine = _frames(outcomes, f.sha256, f.name)
    paths = {
        what: store.staged_part(work_dir, what, f.kind, f.sha256, 0)
        for what in (ORDER_PART, NO_CARDS_PART, "quarantine")
    }
    store.write_part(orders, paths[ORDER_PART])
    no_cards = pl.DataFrame(
        schema={"row_number": pl.Int64(), **SPECIMEN_TYPES, "file_sha256": pl.String()}
    )
    store.write_part(no_cards, paths[NO_CARDS_PART])
    store.write_part(quarantine, paths["quarantine"])
    held = quarantine.select(pl.col("row_number").n_unique()).item()
    return StagedFile(
        planned,
        True,
        len(outcomes),
        int(held),
        None,
        None,
        paths[NO_CARDS_PART],
        paths["quarantine"],
    )


def received_cards_file(work_dir: Path, db_path: Path) -> InboxFile | None:
    """The received orders without a stored card as a cards CSV in the run's work folder
    (None: there are none). Its content decides its identity, as for any inbox file: a
    run that failed before its commit writes the same file again."""
    rows = order_store.received_without_card(db_path)
    if rows.is_empty():
        return None
    folder = work_dir / ORDER_PART
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RECEIVED_FILE
    rows.write_csv(path)
    hashed = hash_unchanged(path)
    assert hashed is not None  # written by this process just now
    sha, sig = hashed
    return InboxFile(path, "specimens", "csv", sha, sig[1], sig)
