"""Card orders (HL7 newborn-screening orders) in the database: the run's commit of the
accepted messages, the laboratory's receipt of a card, the lists, and the received
orders a run turns into cards.

The relations are ``order_messages`` and ``order_receipts`` (migration 019) and the view
``card_orders`` (one current order per card, ``views/013_card_orders.sql``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from nbs.store.connection import Connection, connect, query, transaction, utc_now
from nbs.store.parts import read_parquet, staged_part

#: the staged part of an HL7 file's accepted orders (nbs/intake/orders.py writes them)
ORDER_PART = "orders"

#: the columns of an order part (nbs/intake/orders.py writes them), in the table's order
ORDER_COLUMNS = (
    "specimen_id",
    "message_control_id",
    "baby_id",
    "birth_at",
    "collected_at",
    "sex",
    "birth_weight_g",
    "gestational_age_weeks",
    "transfusion",
    "parenteral_nutrition",
    "nicu",
    "antibiotics",
    "last_transfusion_at",
    "plurality",
    "birth_order",
    "submitter",
    "provider_name",
    "provider_phone",
    "placer_order_id",
    "message_type",
    "ordered_at",
    "file_sha256",
    "file_name",
    "message_index",
)


class OrderError(ValueError):
    """A receipt that cannot be recorded (no such order, a time before collection...)."""


def write_orders(con: Connection, parts: list[Path], run_id: str, now: dt.datetime) -> int:
    """Inside the run's commit: the accepted order messages of its files. A message
    stored before (same card and control id) is not added again; returns those added."""
    if not parts:
        return 0
    before = con.execute("SELECT count(*) FROM order_messages").fetchone()
    columns = ", ".join(ORDER_COLUMNS)
    for part in parts:
        con.execute(
            f"INSERT OR IGNORE INTO order_messages ({columns}, run_id, stored_at) "
            f"SELECT {columns}, ?, ? FROM {read_parquet(part)}",
            [run_id, now],
        )
    after = con.execute("SELECT count(*) FROM order_messages").fetchone()
    return int(after[0] if after else 0) - int(before[0] if before else 0)


def order_parts(work_dir: Path) -> list[Path]:
    """The order parts a run's staged HL7 files left in its work folder."""
    pattern = staged_part(work_dir, ORDER_PART, "*")
    return sorted(pattern.parent.glob(pattern.name)) if pattern.parent.is_dir() else []


def card_order(db_path: Path, specimen_id: str) -> dict[str, object] | None:
    """The current order of a card (``card_orders``), or None."""
    found = query(db_path, "SELECT * FROM card_orders WHERE specimen_id = ?", [specimen_id])
    return found.row(0, named=True) if found.height else None


def card_orders(
    db_path: Path,
    *,
    received: bool | None = None,
    overdue_before: dt.datetime | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> pl.DataFrame:
    """Current orders, oldest first. ``received``: only received (True) or not (False);
    ``overdue_before``: only cards not received whose order (else collection) is older."""
    where, params = _where(received, overdue_before)
    page = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else ""
    return query(
        db_path,
        f"SELECT * FROM card_orders {where} "
        f"ORDER BY coalesce(ordered_at, collected_at), specimen_id{page}",
        params,
    )


def card_orders_count(
    db_path: Path, *, received: bool | None = None, overdue_before: dt.datetime | None = None
) -> int:
    """How many orders :func:`card_orders` lists with the same filters."""
    where, params = _where(received, overdue_before)
    return int(query(db_path, f"SELECT count(*) FROM card_orders {where}", params).item())


def _where(received: bool | None, overdue_before: dt.datetime | None) -> tuple[str, list[object]]:
    terms: list[str] = []
    params: list[object] = []
    if received is True:
        terms.append("(received_at IS NOT NULL OR card_stored)")
    elif received is False:
        terms.append("received_at IS NULL AND NOT card_stored")
    if overdue_before is not None:
        terms.append("received_at IS NULL AND NOT card_stored")
        terms.append("coalesce(ordered_at, collected_at) < ?")
        params.append(overdue_before)
    return ("WHERE " + " AND ".join(terms) if terms else ""), params


def receive_order(
    db_path: Path,
    specimen_id: str,
    received_at: dt.datetime,
    actor: str,
    specimen_quality: str = "ok",
    consent_cf: bool | None = None,
) -> dict[str, object]:
    """Record that a card arrived; returns its order as it is now. Refused (nothing
    changed): no order for the card, a time before its collection, or a card already
    received or stored (its receipt stands)."""
    with connect(db_path) as con, transaction(con):
        found = con.execute(
            "SELECT collected_at, received_at, card_stored FROM card_orders WHERE specimen_id = ?",
            [specimen_id],
        ).fetchone()
        if found is None:
            raise OrderError(f"no order for card {specimen_id}")
        collected, already, stored = found
        if already is not None:
            raise OrderError(f"card {specimen_id} was received already ({already:%Y-%m-%d %H:%M})")
        if stored:
            raise OrderError(f"card {specimen_id} is stored already (it came in a cards file)")
        if received_at < collected:
            raise OrderError(
                f"received {received_at:%Y-%m-%d %H:%M} is before the card's collection "
                f"({collected:%Y-%m-%d %H:%M})"
            )
        con.execute(
            "INSERT INTO order_receipts VALUES (?, ?, ?, ?, ?, ?)",
            [specimen_id, received_at, specimen_quality, consent_cf, actor, utc_now()],
        )
    order = card_order(db_path, specimen_id)
    assert order is not None
    return order


def received_without_card(db_path: Path) -> pl.DataFrame:
    """Received orders whose card is not stored yet, as the card format's columns (times
    as ISO text): what a run takes in as cards (nbs/intake/orders.py)."""
    return query(
        db_path,
        "SELECT specimen_id, baby_id, strftime(birth_at, '%Y-%m-%dT%H:%M:%S') AS birth_at, "
        "strftime(collected_at, '%Y-%m-%dT%H:%M:%S') AS collected_at, "
        "strftime(received_at, '%Y-%m-%dT%H:%M:%S') AS received_at, sex, birth_weight_g, "
        "gestational_age_weeks, transfusion, parenteral_nutrition, consent_cf, "
        "specimen_quality, submitter, "
        "strftime(last_transfusion_at, '%Y-%m-%dT%H:%M:%S') AS last_transfusion_at "
        "FROM card_orders WHERE received_at IS NOT NULL AND NOT card_stored "
        "ORDER BY specimen_id",
    )
