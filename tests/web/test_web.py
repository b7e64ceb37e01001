"""The review application, driven in a real headless browser (Debian's chromium through
Playwright's Python client; no browser download) against a real ``nbs serve`` process and
a real DuckDB file written by a real screening run."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import pytest
from playwright.sync_api import expect

from nbs import store
from nbs.config import load_config
from nbs.run.steps import run_local
from nbs.web import users
from nbs.web.process import running_server

pytestmark = pytest.mark.xdist_group("web")

PASSWORDS = {"carla": "coordinator-pw-1", "dora": "coordinator-pw-2", "otto": "official-pw-1"}
PASSWORDS["lars"] = "laboratory-pw-1"
ROLES = {"carla": "coordinator", "dora": "coordinator", "otto": "official", "lars": "lab"}


@dataclass(frozen=True)
class Server:
    url: str
    db: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from data_samples import SAMPLE_INBOX

    root = tmp_path_factory.mktemp("web")
    inbox, db = root / "inbox", root / "nbs.duckdb"
    shutil.copytree(SAMPLE_INBOX, inbox)
    run_local(inbox, db, load_config())
    for name, password in PASSWORDS.items():
        users.add_user(db, name, ROLES[name], password, "test")
    with running_server(db, "test-secret-" + "x" * 32) as url:
        yield Server(url, db)


@pytest.fixture
def new_page(browser):  # type: ignore[no-untyped-def]
    contexts = []

    def make():  # type: ignore[no-untyped-def]
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for c in contexts:
        c.close()


def login(page, server: Server, name: str, path: str = "/"):  # type: ignore[no-untyped-def]
    page.goto(server.url + path)
    assert "/login" in page.url  # everything but the login page needs a session
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("form.login button[type=submit]")
    page.wait_for_selector("header .who")
    return page


def recall_id(db: Path, specimen: str, condition: str | None) -> str:
    where = "condition IS NULL" if condition is None else f"condition = '{condition}'"
    return str(
        store.query(
            db, f"SELECT recall_id FROM recall_list WHERE specimen_id = ? AND {where}", [specimen]
        ).item()
    )


def _count(page) -> int:  # type: ignore[no-untyped-def]
    return int(page.locator("#recall-table .count").inner_text().split()[0])


def test_coordinator_filters_opens_closes_and_sees_the_audit(new_page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page = login(new_page(), server, "carla", "/recalls")
    assert page.url.endswith("/recalls")
    open_total = store.query(server.db, "SELECT count(*) FROM recall_list WHERE status = 'open'")
    assert _count(page) == open_total.item()
    # urgent first
    urgencies = page.locator("#recall-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.classList.contains('urgent'))"
    )
    assert urgencies == sorted(urgencies, reverse=True) and urgencies[0]

    page.select_option("select[name=condition]", "PKU")  # htmx swaps the table only
    page.wait_for_url(re.compile(r"condition=PKU"))
    pku = store.query(
        server.db, "SELECT count(*) FROM recall_list WHERE status = 'open' AND condition = 'PKU'"
    ).item()
    assert pku == 2
    expect(page.locator("#recall-table .count")).to_have_text("2 recalls")
    assert set(page.locator("#recall-table tbody td:nth-child(2)").all_inner_texts()) == {"PKU"}
    page.select_option("select[name=urgency]", "urgent")
    expect(page.locator("#recall-table .count")).to_have_text("1 recall")

    rid = recall_id(server.db, "S-PKU1", "PKU")
    page.click(f"tr[data-recall='{rid}'] a")
    page.wait_for_url(f"**/recalls/{rid}")
    assert "PHE" in page.locator("table.criteria").inner_text()
    gauge = page.locator("svg.gauge").first
    assert gauge.get_attribute("data-value") == "706"  # the mean of the duplicates
    assert "referral" in page.locator("section.explanation").inner_text()

    page.select_option("#stage-form select[name=stage]", "contacted")
    page.fill("#stage-form input[name=note]", "maternity reached")
    page.click("#stage-form button")
    page.wait_for_selector("p.flash")
    assert page.locator("#stage").inner_text() == "contacted"

    page.select_option("#close-form select[name=outcome]", "confirmed")
    page.fill("#close-form input[name=note]", "classic PKU confirmed at the metabolic clinic")
    page.click("#close-form button")
    page.wait_for_url(f"**/recalls/{rid}/close")  # a diagnosis is confirmed on its own page
    expect(page.locator("#confirm-outcome")).to_have_text("confirmed")
    page.click("#confirm-form button")
    page.wait_for_selector("#outcome")
    assert page.locator("#outcome").inner_text() == "confirmed"
    history = page.locator("#history tbody tr").all_inner_texts()
    assert [h.split("\t")[1:5] for h in history] == [
        ["carla", "stage", "open", "contacted"],
        ["carla", "stage", "contacted", "closed"],
        ["carla", "outcome", "", "confirmed"],
    ]
    # the same in the database, written by the server with no connection kept open
    row = store.recall(server.db, rid)
    assert row is not None
    assert (row["status"], row["outcome"], row["closed_by"]) == ("closed", "confirmed", "carla")
    assert store.recall_events(server.db, rid)["note"][1].startswith("classic PKU")


def test_official_sees_statistics_only(new_page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page = login(new_page(), server, "otto")
    assert page.url.endswith("/stats")
    assert [a.inner_text() for a in page.locator("header nav a").all()] == ["Statistics"]
    assert "unsatisfactory specimens pct" in page.inner_text("#quality")
    text = page.content()
    ids = store.query(server.db, "SELECT specimen_id, baby_id FROM specimens")
    assert not any(i in text for i in ids["specimen_id"].to_list() + ids["baby_id"].to_list())
    rid = recall_id(server.db, "S-CH1", "CH")
    response = page.goto(f"{server.url}/recalls/{rid}")
    assert response is not None and response.status == 403
    assert "cannot open this page" in page.inner_text("main")
    assert "S-CH1" not in page.content()
    for path in ("/recalls", "/worklist", "/quarantine", "/runs"):
        response = page.goto(server.url + path)
        assert response is not None and response.status == 403, path


def test_lab_sees_worklist_quarantine_and_runs_not_recalls(new_page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page = login(new_page(), server, "lars")
    page.click("#nav-worklist")
    page.wait_for_url("**/worklist")
    open_retests = store.query(
        server.db, "SELECT specimen_id FROM retest_worklist WHERE status = 'open'"
    )["specimen_id"].to_list()
    table = page.inner_text("main table")
    assert open_retests and all(s in table for s in open_retests)
    page.click("#nav-quarantine")
    page.wait_for_url("**/quarantine")
    main = page.inner_text("main")
    assert "collection before birth" in main and "20260302-broken.results.csv" in main
    page.click("#nav-runs")
    page.wait_for_url("**/runs")
    assert page.locator("main tbody tr").count() == 1
    response = page.goto(server.url + "/recalls")
    assert response is not None and response.status == 403


def test_requests_without_a_session_or_token_are_refused(server: Server) -> None:
    rid = recall_id(server.db, "S-SMA1", "SMA")
    with httpx.Client(base_url=server.url, follow_redirects=False) as anon:
        for path in ("/", "/recalls", f"/recalls/{rid}", "/stats", "/worklist"):
            response = anon.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login")
        posted = anon.post(f"/recalls/{rid}/close", data={"outcome": "confirmed"})
        assert posted.status_code == 401
    with httpx.Client(base_url=server.url, follow_redirects=True) as client:
        form = client.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token is not None
        bad = client.post(
            "/login",
            data={"username": "carla", "password": "wrong-password", "csrf_token": token[1]},
        )
        assert bad.status_code == 401 and "wrong password" in bad.text
        no_token = client.post("/login", data={"username": "carla", "password": PASSWORDS["carla"]})
        assert no_token.status_code == 403
        ok = client.post(
            "/login",
            data={"username": "carla", "password": PASSWORDS["carla"], "csrf_token": token[1]},
        )
        assert ok.status_code == 200 and "Recall list" in ok.text
        forged = client.post(
            f"/recalls/{rid}/close", data={"outcome": "confirmed", "csrf_token": "forged"}
        )
        assert forged.status_code == 403
    assert store.recall(server.db, rid)["status"] == "open"  # type: ignore[index]
    assert store.recall_events(server.db, rid).height == 0


def test_a_stale_view_is_refused_and_the_input_kept(new_page, server: Server) -> None:  # type: ignore[no-untyped-def]
    rid = recall_id(server.db, "S-CF1", "CF")
    carla = login(new_page(), server, "carla", f"/recalls/{rid}")
    dora = login(new_page(), server, "dora", f"/recalls/{rid}")
    carla.select_option("#stage-form select[name=stage]", "referred")
    carla.click("#stage-form button")
    carla.wait_for_selector("p.flash")
    # dora still sees 'open' and closes it: refused, her note is kept in the form
    dora.select_option("#close-form select[name=outcome]", "false_positive")
    dora.fill("#close-form input[name=note]", "sweat test normal")
    dora.click("#close-form button")
    dora.wait_for_url(f"**/recalls/{rid}/close")  # an urgent recall: confirm first
    dora.click("#confirm-form button")
    dora.wait_for_selector("p.error")
    assert "changed meanwhile" in dora.inner_text("p.error")
    assert dora.locator("#close-form input[name=note]").input_value() == "sweat test normal"
    assert dora.locator("#stage").inner_text() == "referred"
    # the refusal answered with a redirect: the address is the recall's page, and reloading
    # it neither sends the change again nor loses what she typed
    assert dora.url.endswith(f"/recalls/{rid}")
    dora.reload()
    assert dora.locator("#close-form input[name=note]").input_value() == "sweat test normal"
    assert dora.locator("#close-form select[name=outcome]").input_value() == "false_positive"
    assert "changed meanwhile" in dora.inner_text("p.error")
    dora.go_back()  # to the confirmation she saw (a page of its own, not a form resent)
    dora.wait_for_url(re.compile(rf"/recalls/{rid}(/close)?$"))
    assert "Method Not Allowed" not in dora.content()
    row = store.recall(server.db, rid)
    assert row is not None and (row["stage"], row["outcome"]) == ("referred", None)
    assert store.recall_events(server.db, rid).height == 1  # carla's change only


def _hold(db: Path) -> duckdb.DuckDBPyConnection:
    """Take the database as a run does: waiting while the server's own short write (a
    session or an audit row, flushed about once a second) holds it."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return duckdb.connect(str(db))
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_while_a_run_holds_the_database_the_change_waits_and_is_not_lost(
    new_page, server: Server
) -> None:  # type: ignore[no-untyped-def]
    rid = recall_id(server.db, "S-SCID1", "SCID")
    page = login(new_page(), server, "carla", f"/recalls/{rid}")
    page.fill("#note-form input[name=note]", "parents called back, appointment Monday")
    writer = _hold(server.db)  # what a committing run does: hold the file
    try:
        started = time.monotonic()
        page.click("#note-form button")
        page.wait_for_selector("p.busy")
        waited = time.monotonic() - started
        assert "a run is writing" in page.inner_text("p.busy").lower()
        assert "not been saved yet" in page.inner_text("main")
        assert waited < 10  # it retried briefly, then said so (no error page)
        assert page.locator("#resend-form input[name=note]").input_value() == (
            "parents called back, appointment Monday"
        )
        response = page.request.get(f"{server.url}/recalls")
        assert response.status == 503 and "A run is writing" in response.text()
        # redirect after post: the address is the recall's; reloading asks the database
        # again and still offers the unsaved note
        assert page.url.endswith(f"/recalls/{rid}")
        page.reload()
        page.wait_for_selector("p.busy")
        assert page.locator("#resend-form input[name=note]").input_value() == (
            "parents called back, appointment Monday"
        )
    finally:
        writer.close()
    page.reload()  # the run is done: the recall, with the note still in its form
    page.wait_for_selector("#note-form")
    assert "not been saved yet" in page.inner_text("p.error")
    assert page.locator("#note-form input[name=note]").input_value() == (
        "parents called back, appointment Monday"
    )
    assert store.recall_events(server.db, rid).height == 0
    page.click("#note-form button")
    page.wait_for_selector("p.flash")
    assert "parents called back" in page.inner_text("#history")
    assert store.recall(server.db, rid)["note"] == (  # type: ignore[index]
        "parents called back, appointment Monday"
    )
