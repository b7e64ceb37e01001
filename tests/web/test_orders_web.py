"""Card orders in the review application, against a real ``nbs serve``: the lab sees the
cards ordered (overdue flagged) and records that a card arrived; a wrong time changes
nothing; other roles are refused the page and the action."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from nbs.config import ScreeningConfig
from nbs.run.steps import run_local
from nbs.store import orders
from nbs.web import users
from nbs.web.process import serving
from tests.web import signing

pytestmark = pytest.mark.xdist_group("web")

SAMPLES = Path(__file__).resolve().parents[2] / "data_samples" / "hl7"
ACCOUNTS = {"lars": ("lab", "laboratory-pw-1"), "carla": ("coordinator", "coordinator-pw-1")}


@dataclass(frozen=True)
class Server:
    url: str
    db: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, config: ScreeningConfig) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("weborders")
    inbox = tmp / "inbox"
    inbox.mkdir()
    for name in ("twins.hl7", "oml_o21_order.hl7"):
        shutil.copy(SAMPLES / name, inbox / name)
    db = tmp / "nbs.duckdb"
    run_local(inbox, db, config)
    for name, (role, password) in ACCOUNTS.items():
        users.add_user(db, name, role, password, "test")
    with serving(db, "test-secret-" + "o" * 32) as served:
        yield Server(served.url, db)


def signed_in(server: Server, name: str) -> contextlib.AbstractContextManager[httpx.Client]:
    return signing.signed_in(server.url, name, ACCOUNTS[name][1])


def test_the_lab_records_a_cards_arrival(server: Server) -> None:
    with signed_in(server, "lars") as c:
        page = c.get("/orders")
        assert page.status_code == 200
        assert "HL7C0011" in page.text and "HL7C0012" in page.text
        assert "overdue" in page.text  # ordered in January 2026, long ago
        token = signing.csrf_token(page.text)
        wrong = c.post(
            "/orders/HL7C0011/receive",
            data={"csrf_token": token, "received_at": "yesterday", "specimen_quality": "ok"},
        )
        assert wrong.status_code == 303
        assert "nothing was changed" in c.get("/orders").text
        assert orders.card_order(server.db, "HL7C0011")["received_at"] is None  # type: ignore[index]
        done = c.post(
            "/orders/HL7C0011/receive",
            data={
                "csrf_token": token,
                "received_at": "2026-01-06T09:30",
                "specimen_quality": "insufficient",
                "consent_cf": "yes",
            },
        )
        assert done.status_code == 303 and done.headers["location"] == "/orders"
        assert "HL7C0011 received 2026-01-06 09:30" in c.get("/orders?show=received").text
    order = orders.card_order(server.db, "HL7C0011")
    assert order is not None
    assert (order["received_by"], order["specimen_quality"], order["consent_cf"]) == (
        "lars",
        "insufficient",
        True,
    )


def test_other_roles_are_refused(server: Server) -> None:
    with signed_in(server, "carla") as c:
        assert c.get("/orders").status_code == 403
        token = signing.csrf_token(c.get("/", follow_redirects=True).text)
        answer = c.post(
            "/orders/HL7C0012/receive",
            data={"csrf_token": token, "received_at": "2026-01-06T09:30"},
        )
        assert answer.status_code == 403
    assert orders.card_order(server.db, "HL7C0012")["received_at"] is None  # type: ignore[index]
