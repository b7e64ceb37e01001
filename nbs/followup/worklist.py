"""The recall list as a coordinator works it: each recall's age of the baby and time open
as a person reads them, its next action and whether it is due, the urgent recalls nobody
has contacted in time, and the orders the list can be sorted in.

Due work comes first: a recall whose next action is due today or overdue, then an urgent
recall not contacted within the configured hours, then urgent before routine, overdue
before not, oldest first.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

#: the orders the list can be sorted in: name -> (columns, descending)
SORTS: dict[str, tuple[list[str], list[bool]]] = {
    "priority": (
        ["action_due", "not_contacted", "is_urgent", "overdue", "created_at", "recall_id"],
        [True, True, True, True, False, False],
    ),
    "oldest": (["created_at", "recall_id"], [False, False]),
    "newest": (["created_at", "recall_id"], [True, False]),
    "youngest": (["birth_at", "recall_id"], [True, False]),
    "due": (["next_due", "recall_id"], [False, False]),
    "condition": (["condition", "created_at", "recall_id"], [False, False, False]),
    "submitter": (["submitter", "created_at", "recall_id"], [False, False, False]),
}


def span_text(hours: float | None, hours_until_days: float) -> str:
    """A span as a person reads it: hours below ``hours_until_days``, else whole days."""
    if hours is None:
        return ""
    if hours < hours_until_days:
        return f"{max(0, int(hours))} h"
    return f"{int(hours // 24)} d"


def annotate(
    frame: pl.DataFrame,
    now: dt.datetime,
    overdue_days: dict[str, int],
    first_contact_hours: float,
) -> pl.DataFrame:
    """Add ``days_open``, ``opened`` (text), ``age`` (the baby's age: hours in the first
    week, then days), ``overdue``, ``action_due`` and ``not_contacted`` to the worklist."""
    limit = pl.col("urgency").replace_strict(overdue_days, default=None, return_dtype=pl.Int64)
    hours_open = (pl.lit(now) - pl.col("created_at")).dt.total_minutes() / 60
    age_hours = (pl.lit(now) - pl.col("birth_at")).dt.total_minutes() / 60
    is_open = pl.col("status") == "open"
    frame = frame.with_columns(
        days_open=(hours_open / 24).round(1),
        hours_open=hours_open,
        age_hours=age_hours,
        is_urgent=pl.col("urgency") == "urgent",
    )
    return frame.with_columns(
        overdue=is_open & (pl.col("days_open") > limit).fill_null(False),
        action_due=is_open & (pl.col("next_due") <= pl.lit(now.date())).fill_null(False),
        not_contacted=is_open
        & pl.col("is_urgent")
        & pl.col("contacts").is_null()
        & (pl.col("hours_open") > first_contact_hours),
        opened=pl.col("hours_open").map_elements(
            lambda h: span_text(h, 48), return_dtype=pl.String
        ),
        age=pl.col("age_hours").map_elements(
            lambda h: span_text(h, 7 * 24), return_dtype=pl.String
        ),
    )


def select(frame: pl.DataFrame, wanted: dict[str, str | None]) -> pl.DataFrame:
    """Keep the rows whose columns equal the wanted values (None: any)."""
    for column, value in wanted.items():
        if value is not None:
            frame = frame.filter(pl.col(column) == value)
    return frame


def sort(frame: pl.DataFrame, order: str) -> pl.DataFrame:
    """The list in one of :data:`SORTS` (unknown: ``priority``)."""
    columns, descending = SORTS.get(order, SORTS["priority"])
    return frame.sort(columns, descending=descending, nulls_last=True)
