"""What the recall page shows beside the recall itself (its contact log, whom to reach,
its letters, whether its next action is due), the parsing of a close's case details, and
the recall list a page at a time; shared by the routers ``recalls`` and ``followup`` (no
routes here)."""

import datetime as dt
from typing import Any

import polars as pl

from nbs import store
from nbs.followup import worklist
from nbs.followup.closing import Details
from nbs.followup.contacts import parse_due
from nbs.followup.directory import load_directory, recall_addressees
from nbs.followup.letters import LETTERS, default_letter
from nbs.followup.lifecycle import RecallError
from nbs.store import contacts as contact_store
from nbs.store import recalls as recall_store
from nbs.web.common import Pager, Web, page_number

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


def recall_page(
    web: Web, wanted: dict[str, str], overdue_only: bool, sort: str, page: str
) -> tuple[list[dict[str, Any]], Pager]:
    """A page of the recall list, with its pager: the filters (``wanted``: column: value,
    empty for any), the order (a name of ``worklist.SORTS``) and the flags of
    :func:`nbs.followup.lifecycle.list_recalls`, chosen and ordered in the database."""
    config = web.settings.followup
    now = store.utc_now()
    overdue_days = {str(k): v for k, v in config.overdue_days.items()}
    hours = config.contacts.urgent_first_contact_hours

    def last_minute_without(flag: str, urgency: str, minutes: float) -> int:
        return _last_minute_without(flag, urgency, minutes, now, overdue_days, hours)

    columns, descending = worklist.SORTS.get(sort, worklist.SORTS["priority"])
    view = recall_store.WorklistView(
        now=now,
        equal={column: value for column, value in wanted.items() if value},
        overdue_after={
            urgency: last_minute_without("overdue", urgency, days * 24 * 60)
            for urgency, days in overdue_days.items()
        },
        uncontacted_after=last_minute_without("not_contacted", "urgent", hours * 60),
        overdue_only=overdue_only,
        order=tuple(zip(columns, descending, strict=True)),
    )
    total = recall_store.recall_worklist_count(web.db, view)
    pager = Pager.of(page_number(page), web.settings.page_size, total)
    frame = recall_store.recall_worklist_page(web.db, view, pager.size, pager.offset)
    return worklist.annotate(frame, now, overdue_days, hours).rows(named=True), pager


def _last_minute_without(
    flag: str,
    urgency: str,
    limit_minutes: float,
    now: dt.datetime,
    overdue_days: dict[str, int],
    first_contact_hours: float,
) -> int:
    """The most whole minutes an open ``urgency`` recall nobody contacted is open before
    :func:`worklist.annotate` raises ``flag`` on it (once raised it stays). Asked of
    annotate itself, so that the list chosen and ordered in SQL and the flags shown agree
    to the minute: annotate rounds the days open to a tenth, so the flag rises within a
    tenth of a day (144 minutes) after its limit."""
    first = int(limit_minutes) - 2
    minutes = list(range(first, first + 150))
    probe = pl.DataFrame(
        {
            "urgency": urgency,
            "status": "open",
            "created_at": [now - dt.timedelta(minutes=m) for m in minutes],
            "birth_at": now,
            "next_due": pl.Series([None] * len(minutes), dtype=pl.Date),
            "contacts": pl.Series([None] * len(minutes), dtype=pl.Int64),
        }
    )
    raised = worklist.annotate(probe, now, overdue_days, first_contact_hours)[flag].to_list()
    return minutes[raised.index(True)] - 1 if True in raised else minutes[-1]
