"""The laboratory's pages (retest worklist, quarantine, run history) and the statistics.

Every list is read one page at a time (``LIMIT``/``OFFSET`` with a count): the quarantine
page once built 419 MB of HTML for 1.8 million held rows.
"""

import json
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from nbs import store
from nbs.web import users
from nbs.web.common import Pager, page_number, role_page, web_of

router = APIRouter()

#: the counts a run's stored summary cannot hold (it is written before the commit counts
#: them): recalls the run created, and repeat-card recalls its cards closed or escalated
#: (the pipeline's audit events end with "(run RUN_ID)")
_RUNS_SQL = """
WITH shown AS (
    SELECT run_id, run_seq, started_at, committed_at, engine, cutoff_versions, summary_json
    FROM runs ORDER BY run_seq DESC LIMIT ? OFFSET ?
),
created AS (
    SELECT run_id, count(*) AS new_recalls FROM recalls
    WHERE run_id IN (SELECT run_id FROM shown) GROUP BY run_id
),
answers AS (
    SELECT s.run_id,
           count(*) FILTER (WHERE e.note LIKE '%screened negative%') AS answered,
           count(*) FILTER (WHERE e.note LIKE '%still abnormal%') AS escalated
    FROM shown s JOIN recall_events e
      ON e.actor = ? AND e.field = 'answered_by_specimen_id'
     AND ends_with(e.note, '(run ' || s.run_id || ')')
    GROUP BY s.run_id
)
SELECT s.*, coalesce(c.new_recalls, 0) AS new_recalls, coalesce(a.answered, 0) AS answered,
       coalesce(a.escalated, 0) AS escalated
FROM shown s LEFT JOIN created c USING (run_id) LEFT JOIN answers a USING (run_id)
ORDER BY s.run_seq DESC
"""


def _count(db: Path, sql: str, params: list[object] | None = None) -> int:
    return int(store.query(db, f"SELECT count(*) FROM {sql}", params).item())


@router.get("/worklist", name="worklist")
def worklist(
    request: Request,
    user: Annotated[users.User, role_page("worklist")],
    status: str = "open",
    page: str = "1",
) -> HTMLResponse:
    web = web_of(request)
    where, params = ("WHERE status = ?", [status]) if status else ("", [])
    total = _count(web.db, f"retest_worklist {where}", list(params))
    pager = Pager.of(page_number(page), web.settings.page_size, total)
    rows = store.query(
        web.db,
        f"SELECT specimen_id, condition, priority, reason, created_at, status, done_at, "
        f"rule_version FROM retest_worklist {where} "
        f"ORDER BY status = 'open' DESC, priority = 'urgent' DESC, created_at, specimen_id "
        f"LIMIT ? OFFSET ?",
        [*params, pager.size, pager.offset],
    ).rows(named=True)
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
    held = Pager.of(page_number(page), size, _count(web.db, "quarantine"))
    rows = store.query(
        web.db,
        "SELECT file_name, kind, row_number, column_name, value, reason, quarantined_at, "
        "run_id FROM quarantine ORDER BY quarantined_at DESC, file_name, row_number "
        "LIMIT ? OFFSET ?",
        [held.size, held.offset],
    ).rows(named=True)
    unreadable = "ingested_files WHERE status = 'unreadable'"
    files_pager = Pager.of(page_number(files_page), size, _count(web.db, unreadable))
    files = store.query(
        web.db,
        f"SELECT file_name, kind, ingested_at, error, archived_as FROM {unreadable} "
        f"ORDER BY ingested_at DESC, file_name LIMIT ? OFFSET ?",
        [files_pager.size, files_pager.offset],
    ).rows(named=True)
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
    pager = Pager.of(page_number(page), web.settings.page_size, _count(web.db, "runs"))
    rows = store.query(web.db, _RUNS_SQL, [pager.size, pager.offset, store.PIPELINE_ACTOR]).rows(
        named=True
    )
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
    # aggregated counts only: no name, id or date of birth can appear on this page (a
    # row per year and condition: small enough without paging)
    web = web_of(request)
    rows = store.query(web.db, "SELECT * FROM yield_by_year ORDER BY year DESC, condition").rows(
        named=True
    )
    quality = store.query(
        web.db,
        "SELECT year, indicator, value, unit, numerator, denominator "
        "FROM quality_indicators ORDER BY year DESC, seq",
    ).rows(named=True)
    return web.render(request, "stats.html", user, rows=rows, quality=quality)
