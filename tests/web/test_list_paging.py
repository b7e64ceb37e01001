"""The recall list and the plates read a page at a time in the database: every page
together is the whole list in its order, with the same filters and flags as the list read
whole (:func:`nbs.followup.lifecycle.list_recalls`), and a page reads no more rows than
it shows. The phone round's export still reads every urgent recall."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest

from nbs import store
from nbs.followup.lifecycle import list_recalls, load_followup
from nbs.followup.worklist import SORTS
from nbs.store import plates as plate_store
from nbs.store import recalls as recall_store
from nbs.web import coordinator

FOLLOWUP = load_followup()
#: the list's "now", kept for the whole test (the sample's recalls were made just before)
NOW = store.utc_now() + dt.timedelta(hours=1)
#: minutes open around where a recall turns overdue (2 days urgent, 14 routine, days
#: rounded to a tenth) or not contacted in time (24 hours)
EDGES = [2 * 1440 + d for d in range(68, 77)] + [14 * 1440 + d for d in range(68, 77)]
EDGES += [24 * 60 + d for d in (-1, 0, 1)] + [5, 90, 30 * 1440]


def _web(db: Path, size: int) -> Any:
    """What :func:`coordinator.recall_page` reads of the application."""
    return SimpleNamespace(db=db, settings=SimpleNamespace(followup=FOLLOWUP, page_size=size))


@pytest.fixture
def recall_db(screened_db: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample's recalls and, on its cards, recalls open for minutes around every
    edge, urgent and routine, open and closed, some contacted with a next action."""
    monkeypatch.setattr(store, "utc_now", lambda: NOW)
    cards = store.query(screened_db, "SELECT specimen_id, baby_id FROM specimens ORDER BY 1")
    rows = []
    for i, minutes in enumerate(EDGES * 2):
        card = cards.row(i % cards.height)
        urgency = "urgent" if i % 3 else "routine"
        status = "closed" if i % 7 == 0 else "open"
        created = NOW - dt.timedelta(minutes=minutes, seconds=i % 2 * 30)
        rows.append((f"R-EDGE{i:03d}", card[1], card[0], urgency, created, status))
    with store.connect(screened_db) as con:
        con.executemany(
            "INSERT INTO recalls (recall_id, baby_id, specimen_id, condition, action, urgency, "
            "reason, rule_version, created_at, run_id, status, stage) VALUES (?, ?, ?, 'CH', "
            "'repeat_specimen', ?, 'edge of a flag', NULL, ?, 'run-edges', ?, "
            "CASE WHEN ? = 'open' THEN 'open' ELSE 'closed' END)",
            [[*r, r[-1]] for r in rows],
        )
        for i, row in enumerate(rows[1::4]):
            due = (NOW + dt.timedelta(days=i % 3 - 1)).date()
            con.execute(
                "INSERT INTO recall_contacts (recall_id, contacted_at, recorded_at, "
                "contacted_by, how, whom, note, next_action, next_due) VALUES "
                "(?, ?, ?, 'carla', 'telephone', 'parents', 'called', 'call again', ?)",
                [row[0], NOW, NOW, due],
            )
    return screened_db


SHOWN = ["recall_id", "overdue", "action_due", "not_contacted", "opened", "age", "next_due"]


def _whole(db: Path, wanted: dict[str, str], overdue: bool, sort: str) -> list[tuple[Any, ...]]:
    """The list read whole, as the command line reads it."""
    frame = list_recalls(
        db,
        FOLLOWUP,
        **{k: wanted.get(k) for k in ("status", "condition", "urgency", "stage", "submitter")},
        overdue=overdue,
        sort=sort,
    )
    return frame.select(SHOWN).rows()


def _paged(db: Path, wanted: dict[str, str], overdue: bool, sort: str, size: int) -> list[Any]:
    """Every page of the list read a page at a time, one after the other."""
    rows: list[dict[str, Any]] = []
    number, pages = 1, 1
    while number <= pages:
        page, pager = coordinator.recall_page(_web(db, size), wanted, overdue, sort, str(number))
        assert len(page) <= size and pager.number == number
        rows, number, pages = rows + page, number + 1, pager.pages
    return [tuple(row[c] for c in SHOWN) for row in rows]


@pytest.mark.slow
def test_the_list_is_ordered_in_the_database_as_when_read_whole(recall_db: Path) -> None:
    for sort in SORTS:
        whole = _whole(recall_db, {}, False, sort)
        assert len(whole) > 60
        assert _paged(recall_db, {}, False, sort, 1000) == whole, sort


@pytest.mark.slow
def test_the_filters_are_the_same_as_when_read_whole(recall_db: Path) -> None:
    for wanted, overdue in [
        ({"status": "open"}, True),
        ({"urgency": "urgent"}, False),
        ({"condition": "CH", "status": "closed"}, False),
        ({"stage": "open", "submitter": "CHL"}, False),
    ]:
        whole = _whole(recall_db, wanted, overdue, "priority")
        assert whole
        assert _paged(recall_db, wanted, overdue, "priority", 1000) == whole, wanted


def test_every_page_together_is_the_whole_list(recall_db: Path) -> None:
    whole = _whole(recall_db, {"status": "open"}, False, "priority")
    assert _paged(recall_db, {"status": "open"}, False, "priority", 30) == whole
    assert len(whole) > 60  # three pages


def test_the_flags_switch_at_the_same_minute_as_the_whole_list(recall_db: Path) -> None:
    whole = list_recalls(recall_db, FOLLOWUP, status="open")
    rows, _ = coordinator.recall_page(_web(recall_db, 1000), {"status": "open"}, False, "", "1")
    paged = {r["recall_id"]: r for r in rows}
    for flag, urgency, low, high in [
        ("overdue", "urgent", 2 * 1440, 3 * 1440),
        ("overdue", "routine", 14 * 1440, 15 * 1440),
        ("not_contacted", "urgent", 23 * 60, 25 * 60),
    ]:
        # the recalls open for minutes around the flag's edge: on both sides of it
        edge = whole.filter(
            pl.col("recall_id").str.starts_with("R-EDGE")
            & (pl.col("urgency") == urgency)
            & pl.col("hours_open").is_between(low / 60, high / 60)
        )
        assert set(edge[flag]) == {True, False}, flag
        assert [paged[r][flag] for r in edge["recall_id"]] == edge[flag].to_list(), flag


def test_a_page_of_recalls_reads_only_its_rows(
    recall_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[int] = []
    real = recall_store.query

    def counted(db: Path, sql: str, params: list[object] | None = None) -> pl.DataFrame:
        frame = real(db, sql, params)
        read.append(frame.height)
        return frame

    total = list_recalls(recall_db, FOLLOWUP).height
    assert total > 40
    monkeypatch.setattr(recall_store, "query", counted)
    monkeypatch.setattr(
        "nbs.store.contacts.recall_worklist", lambda db: pytest.fail("the whole list read")
    )
    rows, pager = coordinator.recall_page(_web(recall_db, 10), {}, False, "priority", "3")
    assert len(rows) == 10 and pager.total == total and pager.number == 3
    assert read == [1, 10]  # the count, then the page


def test_the_phone_round_export_still_has_every_urgent_open_recall(recall_db: Path) -> None:
    urgent = store.urgent_recalls(recall_db)
    open_urgent = list_recalls(recall_db, FOLLOWUP, status="open", urgency="urgent")
    assert urgent.height == open_urgent.height > 10
    assert set(urgent["recall_id"]) == set(open_urgent["recall_id"])


def _add_plates(db: Path, count: int) -> None:
    with store.connect(db) as con:
        con.execute(
            "INSERT INTO plates (plate_id, instrument, run_at, kit_lot, status, reason, "
            "qc_version, judged_at, run_id) SELECT printf('P-PAGE%03d', i), 'MS-1', "
            "TIMESTAMP '2026-01-01' + to_hours(i % 40), 'LOT1', "
            "CASE WHEN i % 5 = 0 THEN 'held' WHEN i % 5 = 1 THEN 'rejected' ELSE 'accepted' END, "
            "'synthetic plate for paging', 'qc-1', TIMESTAMP '2026-01-02', 'run-paging' "
            "FROM range(?) t(i)",
            [count],
        )


@pytest.mark.parametrize("status", [None, "held"])
def test_the_plates_are_paged_in_the_database_in_the_lists_order(
    screened_db: Path, status: str | None
) -> None:
    _add_plates(screened_db, 120)
    whole = plate_store.plate_list(screened_db, status)
    assert plate_store.plate_count(screened_db, status) == whole.height > 20
    pages = [
        plate_store.plate_page(screened_db, status, 25, offset)
        for offset in range(0, whole.height, 25)
    ]
    assert all(page.height <= 25 for page in pages)
    assert pl.concat(pages).equals(whole)
    if status is None:  # held first
        statuses = pl.concat(pages)["status"].to_list()
        assert statuses == sorted(statuses, key=lambda s: s != "held")
