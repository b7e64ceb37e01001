"""The release list a page at a time (:func:`nbs.release.service.cards_of_status`): each
status holds the cards :func:`card_statuses` gives that status, in the same order, with
the same detail; a page works out the status of its own cards only (and of the released
cards a run touched since their release)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from nbs import store
from nbs.release import service
from tests.release.conftest import LAB
from tests.release.synthetic import add_cards


def _release(db: Path, *cards: str) -> None:
    for card in cards:
        service.release_card(db, card, LAB, acknowledge=True)


def _every_page(db: Path, status: str, size: int) -> pl.DataFrame:
    cards = service.cards_of_status(db, status)
    pages = [cards.page(size, offset) for offset in range(0, cards.total, size)]
    assert all(page.height <= size for page in pages)
    together = pl.concat(pages) if pages else service.card_statuses(db).clear()
    assert together.height == cards.total
    return together


def _later_run(db: Path, card: str, call: str | None) -> None:
    """What a run committed now writes of ``card``: its PKU call again (``call``: changed
    to that), as a screening run or a re-evaluation does."""
    now = store.utc_now() + dt.timedelta(seconds=1)
    with store.connect(db) as con:
        seq = con.execute("SELECT max(run_seq) + 1 FROM runs").fetchone()[0]  # type: ignore[index]
        con.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, 'inbox', 'local', NULL, '{}')",
            [f"run-later-{seq}", seq, now, now],
        )
        con.execute(
            "INSERT INTO calls SELECT * REPLACE (coalesce(?, call) AS call, ? AS run_id, "
            "? AS run_seq, ? AS evaluated_at) FROM calls WHERE kind = 'screening' "
            "AND specimen_id = ? AND condition = 'PKU' "
            "QUALIFY row_number() OVER (ORDER BY run_seq DESC, evaluated_at DESC) = 1",
            [call, f"run-later-{seq}", seq, now, card],
        )


@pytest.fixture
def mixed_db(db: Path) -> Path:
    """The sample with cards of every status: released (S-N01 over its acknowledged
    exception), blocked by a pending call, by no call at all, by a plate held or not
    judged, and ready."""
    _release(db, "S-N01", "S-PKU1", "S-PKU2", "S-CH1", "S-NOWT")
    add_cards(db, "S-NOCALL", 7, negative=False)
    add_cards(db, "S-READY", 5, negative=True)
    with store.connect(db) as con:
        con.execute("UPDATE plates SET status = 'held' WHERE plate_id = 'P260302-GSP-01-2'")
        con.execute("DELETE FROM plates WHERE plate_id = 'P260302-GSP-01-3'")
    return db


@pytest.mark.slow
def test_each_status_holds_its_cards_in_order_a_page_at_a_time(mixed_db: Path) -> None:
    whole = service.card_statuses(mixed_db)
    assert set(whole["status"]) == set(service.STATUSES) - {"changed"}
    details = " ".join(whole.filter(status="blocked")["detail"])
    assert "no condition evaluated" in details and "is held" in details
    assert "not judged" in details and "pending" in details
    for status in service.STATUSES:
        expected = whole.filter(status=status)
        assert _every_page(mixed_db, status, 10).equals(expected), status
        assert service.cards_of_status(mixed_db, status).total == expected.height


def test_a_page_works_out_the_statuses_of_its_own_cards_only(
    mixed_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worked: list[str] = []
    real = service._status

    def counted(inputs, specimen_id):  # type: ignore[no-untyped-def]
        worked.append(specimen_id)
        return real(inputs, specimen_id)

    monkeypatch.setattr(service, "_status", counted)
    for status in ("ready", "blocked", "released"):
        worked.clear()
        cards = service.cards_of_status(mixed_db, status)
        page = cards.page(3, 3)
        assert cards.total > 3 and page.height == min(3, cards.total - 3)
        assert worked == page["specimen_id"].to_list(), status  # nothing else


def test_a_card_a_later_run_changed_is_changed_and_no_longer_released(mixed_db: Path) -> None:
    _later_run(mixed_db, "S-PKU1", "negative")  # a re-evaluation that changed the call
    _later_run(mixed_db, "S-PKU2", None)  # the same call again: nothing changed
    changed = service.cards_of_status(mixed_db, "changed").page(100, 0)
    assert changed["specimen_id"].to_list() == ["S-PKU1"]
    assert "condition.PKU" in changed["detail"][0]
    whole = service.card_statuses(mixed_db, "changed")
    assert changed.equals(whole)
    released = service.cards_of_status(mixed_db, "released")
    assert released.total == 4  # of the five released
    ids = set(released.page(100, 0)["specimen_id"])
    assert "S-PKU2" in ids and "S-PKU1" not in ids


def test_a_release_before_the_run_that_changed_nothing_of_the_card_stays_released(
    db: Path,
) -> None:
    _later_run(db, "S-PKU1", "negative")  # changed before the release: the release has it
    _release(db, "S-PKU1")
    assert service.cards_of_status(db, "changed").total == 0
    released = service.cards_of_status(db, "released")
    assert released.total == 1 and released.page(10, 0)["status"].to_list() == ["released"]
