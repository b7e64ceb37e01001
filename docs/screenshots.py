"""Write the README's screenshots (docs/img/) from the embedded sample data.

Runs the sample inbox into a temporary database, starts ``nbs serve`` and photographs the
pages in Debian's chromium. Synthetic data only. Run: ``python docs/screenshots.py``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from data_samples import SAMPLE_INBOX
from data_samples.stats_cohort import PANEL, write_cohort
from nbs.config import load_config
from nbs.run.steps import run_local
from nbs.stats.report import write_report
from nbs.stats.report_cards import write_report_cards
from nbs.web import users
from nbs.web.process import running_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests/
from tests.helpers import STATS_COHORT

OUT = Path(__file__).parent / "img"


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="nbs-shots-"))
    db = root / "nbs.duckdb"
    shutil.copytree(SAMPLE_INBOX, root / "inbox")
    run_local(root / "inbox", db, load_config())
    users.add_user(db, "carla", "coordinator", "coordinator-pw", "docs")
    try:
        with (
            running_server(db, "screenshots-only-secret-0123456789") as url,
            sync_playwright() as p,
        ):
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                args=["--no-sandbox"],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 760})
            page.goto(url + "/recalls")
            page.fill("input[name=username]", "carla")
            page.fill("input[name=password]", "coordinator-pw")
            page.click("form.login button[type=submit]")
            page.wait_for_selector("#recall-table")
            OUT.mkdir(exist_ok=True)
            page.screenshot(path=OUT / "recall-list.png")
            page.click("tr[data-recall] a >> nth=0")
            page.wait_for_selector("#history")
            page.screenshot(path=OUT / "recall.png", full_page=True)
            recall_url = page.url
            # a coordinator's search from the header, and a referral letter to print
            page.goto(url + "/search?q=PKU")
            page.screenshot(path=OUT / "search.png")
            page.goto(recall_url + "/letters/referral")
            page.screenshot(path=OUT / "letter.png", full_page=True)
            # the annual report, from a synthetic history with known figures
            cohort_db = root / "cohort.duckdb"
            write_cohort(cohort_db, STATS_COHORT)
            files = write_report(cohort_db, 2025, root / "report", list(PANEL))
            report = browser.new_page(viewport={"width": 1100, "height": 1400})
            report.goto(files.html.as_uri())
            report.screenshot(path=OUT / "annual-report.png")
            # a maternity's report card for the month of the sample inbox
            cards = write_report_cards(db, dt.date(2026, 3, 1), root / "cards")
            report.goto(cards[0].html.as_uri())
            report.screenshot(path=OUT / "report-card.png", full_page=True)
            browser.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
