"""The contact log of a recall: who reached whom, how, what happened, and the next action
with its due date.

A contact is checked before it is kept: ``how`` and ``whom`` from the configuration
(``followup.yaml``, ``contacts``), a note that says what happened, a time not in the
future, a next action with a due date (neither without the other). A recall whose card
waits for a held plate refuses contacts as it refuses every other step (nothing about
the card leaves the laboratory). The first contact of an ``open`` recall moves it to
``contacted`` in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path

from nbs import store
from nbs.followup.lifecycle import FollowUpConfig, RecallError, recall_row, refuse_if_held
from nbs.store import contacts as contact_store

#: longest note and next action kept (a longer one is refused, not cut)
NOTE_MAX = 2_000
ACTION_MAX = 300


@dataclass(frozen=True)
class Contact:
    """One contact about a recall."""

    recall_id: str
    how: str
    whom: str
    note: str
    contacted_by: str
    contacted_at: dt.datetime | None = None  # naive UTC; None: now
    next_action: str | None = None
    next_due: dt.date | None = None
    letter: str | None = None


def _check(contact: Contact, config: FollowUpConfig, now: dt.datetime) -> None:
    allowed = config.contacts
    if contact.how not in allowed.how:
        raise RecallError(f"how must be one of {', '.join(allowed.how)}; not {contact.how!r}")
    if contact.whom not in allowed.whom:
        raise RecallError(f"whom must be one of {', '.join(allowed.whom)}; not {contact.whom!r}")
    if not contact.note.strip():
        raise RecallError("say what happened (the note is empty)")
    if len(contact.note) > NOTE_MAX or len(contact.next_action or "") > ACTION_MAX:
        raise RecallError(
            f"the note (at most {NOTE_MAX:,} characters) or the next action (at most "
            f"{ACTION_MAX}) is too long"
        )
    if contact.contacted_at is not None and contact.contacted_at > now + dt.timedelta(minutes=5):
        raise RecallError(f"the contact's time ({contact.contacted_at:%Y-%m-%d %H:%M}) is ahead")
    if bool((contact.next_action or "").strip()) != (contact.next_due is not None):
        raise RecallError("a next action needs its due date, and a due date its action")


def record_contact(db: Path, contact: Contact, config: FollowUpConfig) -> bool:
    """Check and keep a contact; returns whether the recall moved to ``contacted``."""
    now = store.utc_now()
    _check(contact, config, now)
    row = recall_row(db, contact.recall_id)
    refuse_if_held(row)
    fields = asdict(contact)
    fields["contacted_at"] = contact.contacted_at or now
    fields["note"] = contact.note.strip()
    fields["next_action"] = (contact.next_action or "").strip() or None
    advance = "open" if row["stage"] == "open" else None
    return contact_store.add_contact(db, fields, advance)


def parse_due(text: str) -> dt.date | None:
    """A due date as typed (``YYYY-MM-DD``; empty: none)."""
    text = text.strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise RecallError(f"a date is written YYYY-MM-DD; not {text!r}") from None


def parse_when(text: str) -> dt.datetime | None:
    """A contact's time as typed (``YYYY-MM-DDTHH:MM`` or with a space; empty: now)."""
    text = text.strip()
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        raise RecallError(f"a time is written YYYY-MM-DD HH:MM; not {text!r}") from None
