"""The review application's lists and forms in a real browser against ``nbs serve``:
paging with counts, the run history's real recall counts, the outcome control that has no
default and asks for a confirmation, length limits on text, the statistics page's title.

The database holds the sample run, a second run of repeat cards (two recalls answered,
one escalated), and synthetic rows added for paging."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from data_samples.make_sample_inbox import write_repeat_delivery
from nbs import store
from nbs.config import load_config
from nbs.run.steps import run_local
from nbs.web import users
from nbs.web.process import running_server

pytestmark = pytest.mark.xdist_group("web")

ACCOUNTS = {
    "carla": ("coordinator", "coordinator-pw-1"),
    "lars": ("lab", "laboratory-pw-1"),
    "otto": ("official", "official-pw-1"),
}
EXTRA_RECALLS, EXTRA_HELD, EXTRA_RETESTS, EXTRA_RUNS = 230, 250, 150, 120


@dataclass(frozen=True)
class Server:
    url: str
    db: Path


def _add_rows_for_paging(db: Path) -> None:
    """Synthetic rows (no real card behind them) so that every list has several pages."""
    at = dt.datetime(2025, 1, 1)
    with store.connect(db) as con:
        con.execute(
            "INSERT INTO recalls (recall_id, baby_id, specimen_id, condition, action, urgency, "
            "reason, rule_version, created_at, run_id, status, stage) "
            "SELECT printf('R-PAGE%04d', i), printf('B-PAGE%04d', i), printf('S-PAGE%04d', i), "
            "'CH', 'repeat_specimen', 'routine', 'synthetic row for paging', NULL, "
            "?::TIMESTAMP + to_minutes(i), 'run-synthetic', 'open', 'open' "
            "FROM range(?) t(i)",
            [at, EXTRA_RECALLS],
        )
        con.execute(
            "INSERT INTO quarantine SELECT 'sha-paging', 'paging.results.csv', 'results', i, "
            "'value', 'x', 'synthetic held row', 'run-synthetic', ?::TIMESTAMP "
            "FROM range(?) t(i)",
            [at, EXTRA_HELD],
        )
        con.execute(
            "INSERT INTO retests SELECT printf('S-RETEST%04d', i), 'PKU', 'synthetic retest', "
            "'routine', NULL, ?::TIMESTAMP + to_minutes(i), 'run-synthetic', 'open', NULL, NULL "
            "FROM range(?) t(i)",
            [at, EXTRA_RETESTS],
        )
        con.execute(
            "INSERT INTO runs SELECT printf('run-old-%04d', i), -1 - i, ?::TIMESTAMP, "
            "?::TIMESTAMP, 'inbox', 'local', NULL, '{}' FROM range(?) t(i)",
            [at, at, EXTRA_RUNS],
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from data_samples import SAMPLE_INBOX

    root = tmp_path_factory.mktemp("weblists")
    inbox, db = root / "inbox", root / "nbs.duckdb"
    shutil.copytree(SAMPLE_INBOX, inbox)
    config = load_config()
    run_local(inbox, db, config)
    write_repeat_delivery(
        root / "week2",
        [
            ("S-EARLY", "S-EARLY-R", 75, {}, {}),  # answers its recall: negative
            ("S-PKU2", "S-PKU2-R", 170, {}, {"PHE": 70.0}),  # negative
            ("S-CH2", "S-CH2-R", 170, {}, {"TSH": [85.0, 80.0, 90.0]}),  # escalates
        ],
    )
    run_local(root / "week2", db, config)
    _add_rows_for_paging(db)
    for name, (role, password) in ACCOUNTS.items():
        users.add_user(db, name, role, password, "test")
    with running_server(db, "test-secret-" + "l" * 32) as url:
        yield Server(url, db)


@pytest.fixture
def new_page(browser):  # type: ignore[no-untyped-def]
    contexts = []

    def make(address: str):  # type: ignore[no-untyped-def]
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, extra_http_headers={"X-Forwarded-For": address}
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for c in contexts:
        c.close()


def login(page: Any, server: Server, name: str, path: str = "/") -> Any:
    page.goto(server.url + path)
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", ACCOUNTS[name][1])
    page.click("form.login button[type=submit]")
    page.wait_for_selector("header .who")
    return page


def _rid(db: Path, specimen: str, condition: str) -> str:
    return str(
        store.query(
            db,
            "SELECT recall_id FROM recall_list WHERE specimen_id = ? AND condition = ?",
            [specimen, condition],
        ).item()
    )


def test_the_recall_list_is_paged_with_counts_and_keeps_its_filters(
    new_page, server: Server
) -> None:  # type: ignore[no-untyped-def]
    page = login(new_page("10.20.0.1"), server, "carla", "/recalls")
    total = store.query(server.db, "SELECT count(*) FROM recall_list WHERE status = 'open'")
    total_open = int(total.item())
    assert total_open > 2 * 100
    expect(page.locator("#recall-table .count")).to_have_text(f"{total_open} recalls")
    assert page.locator("#recall-table tbody tr").count() == 100
    pager = page.locator("#recall-table nav.pager")
    expect(pager.locator(".range")).to_have_text(f"1–100 of {total_open} recalls")
    first_page = page.locator("#recall-table tbody tr").first.get_attribute("data-recall")
    pager.locator("a[rel=next]").click()
    page.wait_for_url(re.compile(r"page=2"))
    expect(pager.locator(".range")).to_have_text(f"101–200 of {total_open} recalls")
    assert page.locator("#recall-table tbody tr").first.get_attribute("data-recall") != first_page
    page.reload()  # the address holds the page and the filters
    expect(page.locator("#recall-table nav.pager .range")).to_have_text(
        f"101–200 of {total_open} recalls"
    )
    page.select_option("select[name=condition]", "CH")  # a new filter starts at page 1
    page.wait_for_url(re.compile(r"condition=CH"))
    ch = store.query(
        server.db, "SELECT count(*) FROM recall_list WHERE status = 'open' AND condition = 'CH'"
    ).item()
    expect(page.locator("#recall-table .count")).to_have_text(f"{ch} recalls")
    expect(page.locator("#recall-table nav.pager .range")).to_have_text(f"1–100 of {ch} recalls")
    page.locator("#recall-table nav.pager a", has_text="3").click()
    page.wait_for_url(re.compile(r"condition=CH.*page=3"))
    assert page.locator("#recall-table tbody tr").count() == ch - 200
    assert set(page.locator("#recall-table tbody td:nth-child(2)").all_inner_texts()) == {"CH"}


def test_quarantine_worklist_and_runs_are_paged(new_page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page = login(new_page("10.20.0.2"), server, "lars")
    held = int(store.query(server.db, "SELECT count(*) FROM quarantine").item())
    page.goto(server.url + "/quarantine")
    assert page.locator("#held tbody tr").count() == 100
    pagers = page.locator("nav.pager")
    expect(pagers.last.locator(".range")).to_have_text(f"1–100 of {held} rows")
    expect(pagers.first.locator(".range")).to_contain_text("of 1 files")
    page.goto(server.url + "/quarantine?page=3")
    assert page.locator("#held tbody tr").count() == held - 200
    assert page.locator("#files tbody tr").count() == 1  # the other list keeps its page
    response = page.goto(server.url + "/quarantine?page=99999999999&files_page=x")
    assert response is not None and response.status == 200  # out of range: first page

    open_retests = store.query(
        server.db, "SELECT count(*) FROM retest_worklist WHERE status = 'open'"
    ).item()
    page.goto(server.url + "/worklist")
    assert page.locator("main tbody tr").count() == 100
    expect(page.locator("nav.pager .range")).to_have_text(f"1–100 of {open_retests} retests")
    page.locator("nav.pager a[rel=next]").click()
    page.wait_for_url(re.compile(r"status=open&page=2"))
    assert page.locator("main tbody tr").count() == open_retests - 100

    page.goto(server.url + "/runs")
    assert page.locator("#runs tbody tr").count() == 100
    expect(page.locator("nav.pager .range")).to_have_text(f"1–100 of {EXTRA_RUNS + 2} runs")


def test_the_runs_page_shows_each_runs_new_and_answered_recalls(new_page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page = login(new_page("10.20.0.3"), server, "lars", "/runs")
    runs = store.query(server.db, "SELECT run_id FROM runs WHERE run_seq > 0 ORDER BY run_seq")
    first, second = runs["run_id"].to_list()
    created = store.query(
        server.db, "SELECT count(*) FROM recalls WHERE run_id = ?", [first]
    ).item()

    def cells(run_id: str) -> tuple[str, str, str]:
        row = page.locator(f"#runs tr[data-run='{run_id}']")
        return (
            row.locator(".new-recalls").inner_text(),
            row.locator(".answered").inner_text(),
            row.locator(".escalated").inner_text(),
        )

    assert cells(first) == (str(created), "0", "0")
    assert created > 0
    # the second run: S-CH2-R's own referral; S-EARLY and S-PKU2 answered, S-CH2 escalated
    assert cells(second) == ("1", "2", "1")


def test_the_statistics_page_is_titled_statistics(new_page, server: Server) -> None:  # type: ignore[no-untyped-def]
    page = login(new_page("10.20.0.4"), server, "otto")
    assert page.title() == "Statistics · NBS review"


def test_closing_takes_a_deliberate_choice_and_a_diagnosis_a_confirmation(
    new_page, server: Server
) -> None:  # type: ignore[no-untyped-def]
    rid = _rid(server.db, "S-CH1", "CH")  # an urgent referral
    page = login(new_page("10.20.0.5"), server, "carla", f"/recalls/{rid}")
    outcome = page.locator("#close-form select[name=outcome]")
    assert outcome.input_value() == ""  # nothing preselected
    page.click("#close-form button")  # one careless click: the browser asks for a choice
    assert page.url.endswith(f"/recalls/{rid}")
    assert outcome.evaluate("el => el.validity.valueMissing")
    token = page.locator("#close-form input[name=csrf_token]").input_value()
    sent = page.request.post(  # without the browser's check: refused by the server too
        f"{server.url}/recalls/{rid}/close",
        form={"outcome": "", "expected_stage": "open", "csrf_token": token},
    )
    assert sent.ok and "Choose an outcome" in sent.text()
    page.reload()

    page.select_option("#close-form select[name=outcome]", "confirmed")
    page.fill("#close-form input[name=note]", "congenital hypothyroidism confirmed")
    page.click("#close-form button")
    page.wait_for_url(f"**/recalls/{rid}/close")
    assert "confirmed CH" in page.inner_text("section.confirm")
    page.reload()  # the confirmation is a page of its own
    expect(page.locator("#confirm-outcome")).to_have_text("confirmed")
    assert store.recall(server.db, rid)["status"] == "open"  # type: ignore[index]
    page.click("#confirm-cancel")  # thought better of it: back, the choice kept
    page.wait_for_url(f"**/recalls/{rid}")
    assert page.locator("#close-form select[name=outcome]").input_value() == "confirmed"
    assert store.recall(server.db, rid)["status"] == "open"  # type: ignore[index]
    page.click("#close-form button")
    page.wait_for_url(f"**/recalls/{rid}/close")
    page.click("#confirm-form button")
    page.wait_for_selector("#outcome")
    assert page.locator("#outcome").inner_text() == "confirmed"
    assert store.recall(server.db, rid)["outcome"] == "confirmed"  # type: ignore[index]

    routine = _rid(server.db, "S-CAH2", "CAH")  # a routine repeat card: chosen, then closed
    page.goto(f"{server.url}/recalls/{routine}")
    page.select_option("#close-form select[name=outcome]", "repeat_normal")
    page.click("#close-form button")
    page.wait_for_selector("#outcome")
    assert page.url.endswith(f"/recalls/{routine}")


def test_text_fields_have_length_limits(server: Server) -> None:
    rid = _rid(server.db, "S-MCAD1", "MCAD")
    with httpx.Client(
        base_url=server.url, headers={"X-Forwarded-For": "10.20.0.6"}, follow_redirects=True
    ) as c:
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
        assert token is not None
        signed = c.post(
            "/login",
            data={"username": "carla", "password": ACCOUNTS["carla"][1], "csrf_token": token[1]},
        )
        assert "Recall list" in signed.text
        page = c.get(f"/recalls/{rid}").text
        assert 'maxlength="2000"' in page
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf is not None
        long_note = "n" * 2001
        answer = c.post(f"/recalls/{rid}/note", data={"note": long_note, "csrf_token": csrf[1]})
        assert answer.url.path == f"/recalls/{rid}"
        assert "The note is too long (2,001 characters; at most 2,000)" in answer.text
        assert long_note in answer.text  # kept, to be shortened
        fits = c.post(f"/recalls/{rid}/note", data={"note": "n" * 2000, "csrf_token": csrf[1]})
        assert "note added" in fits.text
    events = store.recall_events(server.db, rid)
    assert events["note"].str.len_chars().to_list() == [2000]
