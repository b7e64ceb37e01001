"""A coordinator's morning in a real browser (Debian's chromium through Playwright)
against a real ``nbs serve`` on a real screening database: search a baby from the header,
open its recall, log a call with the next action, print the referral letter (the print
stylesheet leaves the letter alone) and record it as sent, close as confirmed with the
diagnosis and treatment dates (a date before birth is refused on the confirmation page,
nothing closed); then the list's filters, ages and due work; a missed case from the baby's
page; and who may search."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from nbs import store
from nbs.config import load_config
from nbs.run.steps import run_local
from nbs.store import contacts as contact_store
from nbs.store.outcomes import case_outcomes
from nbs.web import users
from nbs.web.process import serving

pytestmark = [pytest.mark.xdist_group("web"), pytest.mark.slow]

ACCOUNTS = {
    "carla": ("coordinator", "coordinator-pw-1"),
    "lars": ("lab", "laboratory-pw-1"),
    "otto": ("official", "official-pw-1"),
}


@dataclass(frozen=True)
class Server:
    url: str
    db: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    import shutil

    from data_samples import SAMPLE_INBOX

    root = tmp_path_factory.mktemp("coordinator-web")
    shutil.copytree(SAMPLE_INBOX, root / "inbox")
    db = root / "nbs.duckdb"
    run_local(root / "inbox", db, load_config())
    for name, (role, password) in ACCOUNTS.items():
        users.add_user(db, name, role, password, "test")
    with serving(db, "test-secret-" + "c" * 32) as served:
        yield Server(served.url, db)


@pytest.fixture
def page(browser, server: Server):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


def login(page, server: Server, name: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(server.url + "/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", ACCOUNTS[name][1])
    page.click("form.login button[type=submit]")
    page.wait_for_selector("header .who")


def _birth(db: Path, specimen: str) -> dt.date:
    born = store.query(db, "SELECT birth_at FROM specimens WHERE specimen_id = ?", [specimen])
    return born.item().date()  # type: ignore[no-any-return]


def test_a_coordinators_morning(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    login(page, server, "carla")
    # search a baby from any page's header, by part of its id
    page.fill("#search-box", "CH1")
    page.press("#search-box", "Enter")
    page.wait_for_url("**/search?q=CH1")
    expect(page.locator("#found-babies")).to_contain_text("BCH1")
    expect(page.locator("#found-cards")).to_contain_text("S-CH1")
    page.click("#found-babies a:text-is('BCH1')")
    page.wait_for_url("**/babies/BCH1")
    expect(page.locator("#baby-cards")).to_contain_text("CH: referral")
    page.click("#baby-recalls a")
    page.wait_for_url(re.compile(r"/recalls/R-[0-9A-F]+$"))
    rid = page.url.rsplit("/", 1)[-1]
    assert store.recall(server.db, rid)["condition"] == "CH"  # type: ignore[index]
    # whom to reach: the maternity of the card and the specialist for CH
    expect(page.locator("#directory")).to_contain_text("Maternité CHL")
    expect(page.locator("#directory")).to_contain_text("paediatric endocrinology")

    # log a call with the next action
    due = (store.utc_now().date() + dt.timedelta(days=1)).isoformat()
    page.select_option("#contact-form select[name=how]", "telephone")
    page.select_option("#contact-form select[name=whom]", "parents")
    page.fill("#contact-form input[name=note]", "mother reached; appointment tomorrow 9:00")
    page.fill("#contact-form input[name=next_action]", "check the baby was seen")
    page.click("#contact-form button")  # a next action without its date: refused, kept
    expect(page.locator("p.error")).to_contain_text("needs its due date")
    assert page.locator("#contact-form input[name=note]").input_value().startswith("mother")
    assert contact_store.recall_contacts(server.db, rid).is_empty()
    page.fill("#contact-form input[name=next_due]", due)
    page.click("#contact-form button")
    expect(page.locator("p.flash")).to_contain_text("telephone with parents logged")
    expect(page.locator("#stage")).to_have_text("contacted")
    expect(page.locator("#next-action")).to_contain_text(f"check the baby was seen by {due}")
    expect(page.locator("#contacts tbody tr").first).to_contain_text("mother reached")

    # print the referral letter: the print stylesheet shows the letter and nothing else
    page.click("#letters a[data-letter='referral']")
    page.wait_for_url(f"**/recalls/{rid}/letters/referral")
    letter = page.locator("#letter")
    expect(letter).to_contain_text("Congenital hypothyroidism")
    expect(letter).to_contain_text("What to do next")
    page.emulate_media(media="print")
    assert not page.locator("header").is_visible()
    assert not page.locator("#letter-sent-form").is_visible()
    assert letter.is_visible()
    assert page.pdf(format="A4").startswith(b"%PDF-")
    page.emulate_media(media="screen")
    page.click("#letter-sent-form button")
    page.wait_for_url(f"**/recalls/{rid}")
    expect(page.locator("p.flash")).to_contain_text("referral letter recorded as sent")
    expect(page.locator("#contacts tbody tr").first).to_contain_text("Referral letter sent")
    # the letter did not clear the planned check
    expect(page.locator("#next-action")).to_contain_text("check the baby was seen")

    # close as confirmed: the confirmation page asks for the diagnosis and its dates
    born = _birth(server.db, "S-CH1")
    page.select_option("#close-form select[name=outcome]", "confirmed")
    page.click("#close-form button")
    page.wait_for_url(f"**/recalls/{rid}/close")
    page.fill("#confirm-form input[name=diagnosis_code]", "ORPHA:442")
    page.fill("#confirm-form input[name=diagnosed_at]", (born - dt.timedelta(1)).isoformat())
    page.click("#confirm-form button")
    page.wait_for_url(f"**/recalls/{rid}/close")  # refused: asked again, nothing closed
    expect(page.locator("p.error")).to_contain_text("before the baby's birth")
    assert store.recall(server.db, rid)["status"] == "open"  # type: ignore[index]
    assert page.locator("#confirm-form input[name=diagnosis_code]").input_value() == "ORPHA:442"
    page.fill("#confirm-form input[name=diagnosed_at]", (born + dt.timedelta(9)).isoformat())
    page.fill(
        "#confirm-form input[name=treatment_started_at]", (born + dt.timedelta(10)).isoformat()
    )
    page.click("#confirm-form button")
    page.wait_for_url(f"**/recalls/{rid}")
    expect(page.locator("#outcome")).to_have_text("confirmed")
    assert page.locator("#details-missing").count() == 0
    kept = case_outcomes(server.db, "BCH1").row(0, named=True)
    assert (kept["kind"], kept["diagnosis_code"], kept["recall_id"]) == (
        "confirmed",
        "ORPHA:442",
        rid,
    )
    assert (kept["diagnosed_at"], kept["treatment_started_at"]) == (
        born + dt.timedelta(9), born + dt.timedelta(10),
    )  # fmt: skip
    log = contact_store.recall_contacts(server.db, rid)
    assert log["how"].to_list() == ["letter", "telephone"]
    assert set(log["contacted_by"]) == {"carla"}


def test_the_list_filters_sorts_and_shows_ages_and_due_work(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    late = str(
        store.query(
            server.db,
            "SELECT recall_id FROM recalls WHERE specimen_id = 'S-PKU2' AND condition = 'PKU'",
        ).item()
    )
    yesterday = store.utc_now().date() - dt.timedelta(days=1)
    contact_store.add_contact(
        server.db,
        {"recall_id": late, "contacted_at": store.utc_now(), "contacted_by": "carla",
         "how": "telephone", "whom": "maternity", "note": "new card promised",
         "next_action": "chase the new card", "next_due": yesterday, "letter": None},
        advance_from=None,
    )  # fmt: skip
    login(page, server, "carla")
    page.goto(server.url + "/recalls")
    first = page.locator("#recall-table tbody tr").first
    expect(first).to_have_attribute("data-recall", late)  # due work before urgent ones
    expect(first.locator("td.next")).to_contain_text("chase the new card")
    expect(first.locator("td.next .flag")).to_have_text("due")
    assert re.fullmatch(r"\d+ d", first.locator("td.age").inner_text())
    page.select_option("select[name=submitter]", "CHL")
    page.wait_for_url(re.compile(r"submitter=CHL"))
    page.select_option("select[name=sort]", "youngest")
    page.wait_for_url(re.compile(r"sort=youngest"))
    births = page.locator("#recall-table tbody td.age").all_inner_texts()
    assert [int(b.split()[0]) for b in births] == sorted(int(b.split()[0]) for b in births)
    page.select_option("select[name=status]", "")
    page.select_option("select[name=stage]", "closed")
    page.wait_for_url(re.compile(r"stage=closed"))
    closed = store.query(server.db, "SELECT count(*) FROM recalls WHERE stage = 'closed'").item()
    expect(page.locator("#recall-table .count")).to_have_text(
        f"{closed} recall{'' if closed == 1 else 's'}"
    )


def test_a_missed_case_is_recorded_from_the_babys_page(page, server: Server) -> None:  # type: ignore[no-untyped-def]
    login(page, server, "carla")
    page.goto(server.url + "/babies/BN02")
    page.select_option("#missed-form select[name=condition]", "CH")
    page.fill("#missed-form input[name=diagnosed_at]", "2026-06-15")
    page.fill("#missed-form input[name=diagnosis_code]", "ORPHA:442")
    page.click("#missed-form button")
    page.wait_for_url("**/babies/BN02")
    expect(page.locator("p.flash")).to_contain_text("Missed case recorded: CH, against card S-N02")
    expect(page.locator("#baby-outcomes")).to_contain_text("missed")
    # a date in the future is refused and what was typed stays
    page.select_option("#missed-form select[name=condition]", "PKU")
    page.fill("#missed-form input[name=diagnosed_at]", "2099-01-01")
    page.click("#missed-form button")
    expect(page.locator("p.error")).to_contain_text("in the future")
    assert page.locator("#missed-form select[name=condition]").input_value() == "PKU"
    assert case_outcomes(server.db, "BN02")["condition"].to_list() == ["CH"]


@contextlib.contextmanager
def _client(server: Server, name: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        signed = client.post(
            "/login",
            data={"username": name, "password": ACCOUNTS[name][1], "csrf_token": token[1]},
        )
        assert signed.status_code == 303
        yield client


def test_who_may_search_and_what_an_exact_id_opens(server: Server) -> None:
    with _client(server, "lars") as lab:
        found = lab.get("/search", params={"q": "s-pku"})
        assert found.status_code == 200 and "S-PKU1" in found.text and "S-PKU2" in found.text
        assert 'href="/recalls/' not in found.text  # the laboratory has no recall pages
        assert "missed-form" not in lab.get("/babies/BPKU1").text
        assert "No baby." in lab.get("/search", params={"q": "%%"}).text  # not a wildcard
    with _client(server, "carla") as coordinator:
        exact = coordinator.get("/search", params={"q": "BN01"})
        assert (exact.status_code, exact.headers["location"]) == (303, "/babies/BN01")
        assert "at least two characters" in coordinator.get("/search", params={"q": "B"}).text
        assert coordinator.get("/babies/NOBODY").status_code == 404
    with _client(server, "otto") as official:
        assert official.get("/search", params={"q": "BN01"}).status_code == 403
        assert official.get("/babies/BN01").status_code == 403
        assert 'id="search-box"' not in official.get("/stats").text
