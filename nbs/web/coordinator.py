"""What the recall page shows beside the recall itself (its contact log, whom to reach,
its letters, whether its next action is due) and the parsing of a close's case details;
shared by the routers ``recalls`` and ``followup`` (no routes here)."""

from typing import Any

from nbs import store
from nbs.followup.closing import Details
from nbs.followup.contacts import parse_due
from nbs.followup.directory import load_directory, recall_addressees
from nbs.followup.letters import LETTERS, default_letter
from nbs.followup.lifecycle import RecallError
from nbs.store import contacts as contact_store
from nbs.web.common import Web

#: longest diagnosis code kept
CODE_MAX = 100


def recall_context(web: Web, row: dict[str, Any], card: dict[str, Any] | None) -> dict[str, Any]:
    """The recall page's contact log, addressees, letters and due-work flags."""
    contacts = contact_store.recall_contacts(web.db, str(row["recall_id"])).rows(named=True)
    now = store.utc_now()
    config = web.settings.followup.contacts
    # a letter recorded as sent leaves the next action as it was (view recall_contact_state)
    latest = next((c for c in contacts if c["letter"] is None), None)
    due = latest["next_due"] if latest else None
    hours_open = (now - row["created_at"]).total_seconds() / 3600
    is_open = row["status"] == "open"
    first = default_letter(row)
    return {
        "contacts": contacts,
        "contact_how": config.how,
        "contact_whom": config.whom,
        "next_action": latest["next_action"] if latest else None,
        "next_due": due,
        "action_due": bool(is_open and due is not None and due <= now.date()),
        "not_contacted": bool(
            is_open
            and row["urgency"] == "urgent"
            and not contacts
            and hours_open > config.urgent_first_contact_hours
        ),
        "first_contact_hours": config.urgent_first_contact_hours,
        "addressees": recall_addressees(
            web.db, load_directory(), row, card["submitter"] if card else None
        ),
        "letters": [(first, LETTERS[first].title)]
        + [(name, letter.title) for name, letter in LETTERS.items() if name != first],
    }


def details_of(given: dict[str, str]) -> Details:
    """A close's case details as typed (dates ``YYYY-MM-DD``; empty: not given)."""
    code = given.get("diagnosis_code", "").strip()
    if len(code) > CODE_MAX:
        raise RecallError(f"the diagnosis code is too long (at most {CODE_MAX} characters)")
    return Details(
        diagnosis_code=code or None,
        diagnosed_at=parse_due(given.get("diagnosed_at", "")),
        treatment_started_at=parse_due(given.get("treatment_started_at", "")),
        ruled_out_at=parse_due(given.get("ruled_out_at", "")),
    )
