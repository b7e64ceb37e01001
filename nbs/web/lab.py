"""The laboratory's pages (retest worklist, quarantine, run history) and the statistics.

Every list is read one page at a time (``LIMIT``/``OFFSET`` with a count): a national
programme's quarantine can hold millions of rows, hundreds of megabytes as one page.
"""

import json
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from nbs import store
from nbs.stats import statistics
from nbs.web import users
from nbs.web.common import Pager, page_number, role_page, web_of

router = APIRouter()


@router.get("/worklist", name="worklist")
def worklist(
    request: Request,
    user: Annotated[users.User, role_page("worklist")],
    status: str = "open",
    page: str = "1",
) -> HTMLResponse:
    web = web_of(request)
    total = store.worklist_count(web.db, status)
    pager = Pager.of(page_number(page), web.settings.page_size, total)
    rows = store.worklist_page(web.db, status, pager.size, pager.offset).rows(named=True)
    return web.render(request, "worklist.html", user, rows=rows, status=status, pager=pager)


@router.get("/quarantine", name="quarantine")
def quarantine(
    request: Request,
    user: Annotated[users.User, role_page("quarantine")],
    page: str = "1",
    files_page: str = "1",
) -> HTMLResponse:
    web = web_of(request)
    size = web.settings.page_size
    held = Pager.of(page_number(page), size, store.quarantine_count(web.db))
    rows = store.quarantine_page(web.db, held.size, held.offset).rows(named=True)
    files_pager = Pager.of(page_number(files_page), size, store.unreadable_count(web.db))
    files = store.unreadable_page(web.db, files_pager.size, files_pager.offset).rows(named=True)
    return web.render(
        request,
        "quarantine.html",
        user,
        rows=rows,
        files=files,
        pager=held,
        files_pager=files_pager,
        params={"page": str(held.number), "files_page": str(files_pager.number)},
    )


@router.get("/runs", name="runs")
def runs(
    request: Request, user: Annotated[users.User, role_page("runs")], page: str = "1"
) -> HTMLResponse:
    web = web_of(request)
    pager = Pager.of(page_number(page), web.settings.page_size, store.runs_count(web.db))
    rows = store.runs_page(web.db, pager.size, pager.offset).rows(named=True)
    for row in rows:
        summary = json.loads(row.pop("summary_json"))
        row.update(
            cards=summary.get("cards_evaluated", 0),
            quarantined=summary.get("quarantined_rows", 0),
            urgent=len(summary.get("urgent_recalls") or []),
            files=len(summary.get("files") or []),
        )
    return web.render(request, "runs.html", user, rows=rows, pager=pager)


@router.get("/stats", name="stats")
def stats(request: Request, user: Annotated[users.User, role_page("stats")]) -> HTMLResponse:
    # the registry's statistics shown here: aggregated counts only, no name, id or date of
    # birth can appear on this page (a row per year and condition: small without paging)
    web = web_of(request)
    shown = statistics.page_tables(web.db)
    return web.render(request, "stats.html", user, statistics=shown)
