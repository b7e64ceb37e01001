"""The laboratory's plates in the review application, against a real ``nbs serve``: the
list (held first), a plate's page with its wells, charts and audit trail, and a decision
signed by re-entering the password (a wrong one changes nothing; the right one records the
decision with the signed-in user and the reason). Only the lab role sees or decides.

The plates are those of ``tests/cli/test_qc_cli.py`` (P17 held: 2-2s on TSH level 2),
plus P18 and P19 held the same way."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from nbs import store
from nbs.store import plates
from nbs.web import users
from nbs.web.process import serving
from tests.cli.test_qc_cli import HELD_REASON, T0, add_plates, qc_database
from tests.web import signing

pytestmark = pytest.mark.xdist_group("web")

ACCOUNTS = {
    "lars": ("lab", "laboratory-pw-1"),
    "lena": ("lab", "laboratory-pw-2"),
    "carla": ("coordinator", "coordinator-pw-1"),
    "otto": ("official", "official-pw-1"),
}


@dataclass(frozen=True)
class Server:
    url: str
    db: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("webplates") / "nbs.duckdb"
    qc_database(db)
    later = [
        (f"P{n}", "held", T0 + dt.timedelta(days=n), HELD_REASON.replace("P17", f"P{n}"))
        for n in (18, 19)
    ]
    add_plates(db, later, [(p[0], "A2", "TSH", "NBS-CTRL", "2", "4411", 54.0, 2.25, "2-2s")
                           for p in later])  # fmt: skip
    for name, (role, password) in ACCOUNTS.items():
        users.add_user(db, name, role, password, "test")
    with serving(db, "test-secret-" + "p" * 32) as served:
        yield Server(served.url, db)


def signed_in_client(
    server: Server, name: str, address: str
) -> contextlib.AbstractContextManager[httpx.Client]:
    return signing.signed_in(server.url, name, ACCOUNTS[name][1], address)


def _decide(c: httpx.Client, plate_id: str, token: str, **fields: str) -> httpx.Response:
    return c.post(f"/plates/{plate_id}/decide", data={"csrf_token": token, **fields})


def test_a_supervisor_accepts_a_held_plate_with_the_password(browser, server: Server) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(extra_http_headers={"X-Forwarded-For": "10.30.0.1"})
    context.set_default_timeout(60_000)
    try:
        page = context.new_page()
        page.goto(server.url + "/login")
        page.fill("input[name=username]", "lars")
        page.fill("input[name=password]", ACCOUNTS["lars"][1])
        page.click("form.login button[type=submit]")
        page.wait_for_selector("header .who")
        page.click("#nav-plates")
        page.wait_for_url("**/plates")
        rows = page.locator("#plates tbody tr")
        assert rows.count() == 8
        assert rows.first.get_attribute("data-plate") in {"P17", "P18", "P19"}  # held first
        expect(page.locator("nav.pager .range")).to_have_text("1–8 of 8 plates")
        page.click("#plates a:text-is('P17')")
        page.wait_for_url("**/plates/P17")
        expect(page.locator("#status")).to_have_text("held")
        assert "2-2s" in page.inner_text("#wells")
        charts = page.locator("figure.chart svg")
        assert charts.count() == 2 and charts.first.is_visible()  # the lot 9999: a note only
        assert "no target yet" in page.inner_text("figure[data-series$='lot 9999']")
        reason = "level 2 vial thawed twice; fresh vial within limits"
        page.fill("#accept-form input[name=reason]", reason)
        page.fill("#accept-form input[name=password]", "not-my-password")
        page.click("#accept-form button")
        expect(page.locator("p.error")).to_have_text("The password was wrong: nothing was changed.")
        assert page.url.endswith("/plates/P17")  # answered with a redirect (PRG)
        expect(page.locator("#status")).to_have_text("held")
        assert page.locator("#accept-form input[name=reason]").input_value() == reason
        assert plates.plate(server.db, "P17")["status"] == "held"  # type: ignore[index]
        page.fill("#accept-form input[name=password]", ACCOUNTS["lars"][1])
        page.click("#accept-form button")
        expect(page.locator("p.flash")).to_contain_text("Plate P17 accepted")
        expect(page.locator("#status")).to_have_text("accepted")
        assert page.locator("#decision").count() == 0
        last = page.locator("#events tbody tr").last.inner_text()
        assert "lars" in last and reason in last
    finally:
        context.close()
    row = plates.plate(server.db, "P17")
    assert row is not None
    assert (row["status"], row["decided_by"], row["reason"]) == ("accepted", "lars", reason)
    events = plates.plate_events(server.db, "P17").select("actor", "new_status", "reason")
    assert events.rows() == [("pipeline", "held", HELD_REASON), ("lars", "accepted", reason)]


def test_a_decision_needs_the_token_a_reason_and_a_held_plate(server: Server) -> None:
    with signed_in_client(server, "lena", "10.30.0.2") as c:
        token = signing.csrf_token(c.get("/plates/P18").text)
        password = ACCOUNTS["lena"][1]
        forged = _decide(c, "P18", "forged", decision="rejected", reason="x", password=password)
        assert forged.status_code == 403
        blank = _decide(c, "P18", token, decision="rejected", reason="  ", password=password)
        assert blank.status_code == 303 and blank.headers["location"] == "/plates/P18"
        assert "Give the reason: nothing was changed." in c.get("/plates/P18").text
        assert plates.plate_events(server.db, "P18").height == 1
        done = _decide(c, "P18", token, decision="rejected", reason="re-run failed too",
                       password=password)  # fmt: skip
        assert done.status_code == 303
        page = c.get("/plates/P18").text
        assert "rejection confirmed" in page and 'id="decision"' not in page
        again = _decide(c, "P18", token, decision="accepted", reason="oops", password=password)
        assert again.status_code == 303
        assert "P18 is rejected, not held: nothing was changed." in c.get("/plates/P18").text
    row = plates.plate(server.db, "P18")
    assert row is not None and (row["status"], row["decided_by"]) == ("rejected", "lena")
    assert plates.plate_events(server.db, "P18")["actor"].to_list() == ["pipeline", "lena"]
    # every password checked is in the sign-in audit (written about once a second); the
    # blank reason was refused before any hashing
    deadline = time.monotonic() + 10
    while True:
        attempts = store.query(
            server.db,
            "SELECT outcome FROM login_attempts WHERE username = 'lena' AND detail LIKE '%P18%'",
        )["outcome"].to_list()
        if len(attempts) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert attempts == ["signed_in", "signed_in"]


@pytest.mark.parametrize(("name", "page"), [("carla", "/recalls"), ("otto", "/stats")])
def test_other_roles_neither_see_nor_decide_plates(server: Server, name: str, page: str) -> None:
    address = "10.30.0.3" if name == "carla" else "10.30.0.4"
    with signed_in_client(server, name, address) as c:
        shown: Any = c.get(page)
        assert shown.status_code == 200 and 'id="nav-plates"' not in shown.text
        for path in ("/plates", "/plates/P19"):
            answer = c.get(path)
            assert answer.status_code == 403, path
            assert "P19" not in answer.text
        posted = _decide(c, "P19", signing.csrf_token(shown.text), decision="accepted", reason="x",
                         password=ACCOUNTS[name][1])  # fmt: skip
        assert posted.status_code == 403
    assert plates.plate(server.db, "P19")["status"] == "held"  # type: ignore[index]
    assert plates.plate_events(server.db, "P19").height == 1
