"""The laboratory's card orders, release list and plates, a page at a time, against a real
``nbs serve``: page 2 shows the rows after page 1's, the count is the list's, and the
release list's tabs hold the cards of their status (worked out for the page's cards only:
tests/release/test_release_paging.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from nbs import store
from nbs.release import service
from nbs.store import orders as order_store
from nbs.store import plates as plate_store
from nbs.web import users
from nbs.web.process import serving
from tests.release.synthetic import add_cards
from tests.web import signing

pytestmark = pytest.mark.xdist_group("web")

LAB, PASSWORD = "lars", "laboratory-pw-1"
EXTRA_ORDERS, EXTRA_BLOCKED, EXTRA_READY, EXTRA_PLATES = 130, 120, 110, 140


@dataclass(frozen=True)
class Server:
    url: str
    db: Path


def _add_orders(db: Path, count: int) -> None:
    at = dt.datetime(2026, 1, 5, 9, 0)
    with store.connect(db) as con:
        con.execute(
            "INSERT INTO order_messages (specimen_id, message_control_id, baby_id, birth_at, "
            "collected_at, sex, message_type, ordered_at, file_sha256, file_name, "
            "message_index, run_id, stored_at) SELECT printf('O-PAGE%04d', i), 'MSG-PAGE', "
            "printf('B-OPAGE%04d', i), ?, ?, 'M', 'OML^O21', ? + to_minutes(i), 'sha-orders', "
            "'paging.hl7', i, 'run-synthetic', ? FROM range(?) t(i)",
            [at, at, at, at, count],
        )


def _add_plates(db: Path, count: int) -> None:
    with store.connect(db) as con:
        con.execute(
            "INSERT INTO plates (plate_id, instrument, run_at, status, reason, qc_version, "
            "judged_at, run_id) SELECT printf('P-PAGE%03d', i), 'MS-1', "
            "TIMESTAMP '2025-06-01' + to_hours(i), 'accepted', 'synthetic', 'qc-1', "
            "TIMESTAMP '2025-06-02', 'run-synthetic' FROM range(?) t(i)",
            [count],
        )


@pytest.fixture(scope="module")
def server(screened_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("webpaging") / "nbs.duckdb"
    shutil.copy(screened_sample, db)
    users.add_user(db, LAB, "lab", PASSWORD, "test")
    _add_orders(db, EXTRA_ORDERS)
    _add_plates(db, EXTRA_PLATES)
    add_cards(db, "S-NOCALL", EXTRA_BLOCKED, negative=False)
    add_cards(db, "S-READY", EXTRA_READY, negative=True)
    with serving(db, "test-secret-" + "p" * 32) as served:
        yield Server(served.url, db)


def signed_in(server: Server) -> contextlib.AbstractContextManager[httpx.Client]:
    return signing.signed_in(server.url, LAB, PASSWORD)


def _shown(html: str, attribute: str) -> list[str]:
    return re.findall(rf'<tr {attribute}="([^"]+)"', html)


def _range(html: str) -> str:
    found = re.search(r'<span class="range">([^<]+)</span>', html)
    assert found is not None
    return found[1]


def test_the_orders_are_paged(server: Server) -> None:
    waiting = order_store.card_orders(server.db, received=False)["specimen_id"].to_list()
    assert len(waiting) > 100
    with signed_in(server) as c:
        first, second = c.get("/orders").text, c.get("/orders?show=waiting&page=2").text
    assert _shown(first, "data-card") == waiting[:100]
    assert _shown(second, "data-card") == waiting[100:]
    assert _range(first) == f"1–100 of {len(waiting)} orders"
    assert _range(second) == f"101–{len(waiting)} of {len(waiting)} orders"


@pytest.mark.parametrize("status", ["blocked", "ready"])
def test_the_release_list_is_paged_a_status_at_a_time(server: Server, status: str) -> None:
    expected = service.card_statuses(server.db).filter(status=status)["specimen_id"].to_list()
    assert len(expected) > 100
    with signed_in(server) as c:
        first = c.get(f"/release?show={status}").text
        second = c.get(f"/release?show={status}&page=2").text
    assert _shown(first, "data-card") == expected[:100]
    assert _shown(second, "data-card") == expected[100:]
    assert _range(second) == f"101–{len(expected)} of {len(expected)} cards"


def test_the_plates_are_paged(server: Server) -> None:
    plates = plate_store.plate_list(server.db)["plate_id"].to_list()
    assert len(plates) > 100
    with signed_in(server) as c:
        first, second = c.get("/plates").text, c.get("/plates?status=&page=2").text
    assert _shown(first, "data-plate") == plates[:100]
    assert _shown(second, "data-plate") == plates[100:]
    assert _range(second) == f"101–{len(plates)} of {len(plates)} plates"
