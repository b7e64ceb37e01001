"""The coordinators' contact log (``recall_contacts``; views ``recall_contact_state`` and
``recall_worklist``) and the card's ordering provider from HL7 orders. What a contact may
say is :mod:`nbs.followup.contacts`'s; here is only how it is kept and read."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from nbs.store.connection import connect, query, transaction, utc_now

#: the columns a contact gives (``recall_contacts`` but its sequence and recording time)
CONTACT_COLUMNS = (
    "recall_id", "contacted_at", "contacted_by", "how", "whom", "note", "next_action",
    "next_due", "letter",
)  # fmt: skip


def add_contact(db_path: Path, fields: dict[str, object], advance_from: str | None) -> bool:
    """Append one contact (``fields``: :data:`CONTACT_COLUMNS`). When the recall is still
    at stage ``advance_from``, it moves to ``contacted`` in the same transaction, with its
    audit event. Returns whether it moved."""
    now = utc_now()
    columns = ", ".join(CONTACT_COLUMNS)
    marks = ", ".join("?" for _ in CONTACT_COLUMNS)
    recall_id, actor = fields["recall_id"], fields["contacted_by"]
    with connect(db_path) as con, transaction(con):
        con.execute(
            f"INSERT INTO recall_contacts ({columns}, recorded_at) VALUES ({marks}, ?)",
            [*(fields.get(c) for c in CONTACT_COLUMNS), now],
        )
        if advance_from is None:
            return False
        moved = con.execute(
            "UPDATE recalls SET stage = 'contacted' WHERE recall_id = ? AND stage = ? "
            "RETURNING recall_id",
            [recall_id, advance_from],
        ).fetchall()
        if moved:
            con.execute(
                "INSERT INTO recall_events VALUES (?, ?, ?, 'stage', ?, 'contacted', ?, "
                "nextval('recall_event_seq'))",
                [recall_id, now, actor, advance_from, f"{fields['how']}: {fields['whom']}"],
            )
        return bool(moved)


def recall_contacts(db_path: Path, recall_id: str) -> pl.DataFrame:
    """A recall's contacts, latest first."""
    return query(
        db_path,
        "SELECT contacted_at, contacted_by, how, whom, note, next_action, next_due, letter, "
        "recorded_at FROM recall_contacts WHERE recall_id = ? "
        "ORDER BY contacted_at DESC, seq DESC",
        [recall_id],
    )


def recall_worklist(db_path: Path) -> pl.DataFrame:
    """Every recall with its card's birth and submitter and its contact state."""
    return query(
        db_path,
        "SELECT recall_id, baby_id, specimen_id, condition, action, urgency, status, stage, "
        "outcome, created_at, closed_at, closed_by, rule_version, reason, "
        "answered_by_specimen_id, note, held_by, birth_at, submitter, contacts, "
        "first_contact_at, last_contact_at, next_action, next_due FROM recall_worklist "
        "ORDER BY recall_id",
    )


def recall_submitters(db_path: Path) -> list[str]:
    """The submitting units the recall list names, in order (a filter's choices)."""
    return query(
        db_path,
        "SELECT DISTINCT submitter FROM recall_worklist WHERE submitter IS NOT NULL ORDER BY 1",
    )["submitter"].to_list()


def card_provider(db_path: Path, specimen_id: str) -> dict[str, object] | None:
    """The ordering provider an HL7 order named for the card (``card_orders``: name and
    telephone), or None: no order, or a database without orders."""
    with connect(db_path, read_only=True) as con:
        present = con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE view_name = 'card_orders' "
            "AND database_name = current_database()"
        ).fetchone()
        if not present or not present[0]:
            return None
        row = con.execute(
            "SELECT provider_name, provider_phone, submitter FROM card_orders "
            "WHERE specimen_id = ? AND (provider_name IS NOT NULL OR provider_phone IS NOT NULL)",
            [specimen_id],
        ).fetchone()
    if row is None:
        return None
    return {"name": row[0], "telephone": row[1], "submitter": row[2]}
