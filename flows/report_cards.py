"""The ``report_cards`` Prefect flow: the maternities' monthly report cards.

Thin: one task writes one HTML and one PDF file per submitting unit for the month
(:func:`nbs.stats.report_cards.write_report_cards`); the list becomes a Prefect artifact.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from flows.notify import notify_failure
from nbs.stats.report_cards import parse_month, write_report_cards


@task(name="write report cards", cache_policy=NONE)
def cards_task(db: Path, month: str | None, out: Path) -> str:
    """Write the month's report cards; returns their list as markdown."""
    chosen = parse_month(month)
    written = write_report_cards(db, chosen, out / f"{chosen:%Y-%m}")
    lines = [f"# Report cards {chosen:%Y-%m}", "", "| submitter | HTML | PDF |", "|---|---|---|"]
    lines += [f"| {c.submitter} | `{c.html}` | `{c.pdf}` |" for c in written]
    if not written:
        lines.append("| (no card collected this month) | | |")
    return "\n".join(lines)


@flow(name="report_cards", log_prints=True, on_failure=[notify_failure])
def report_cards(db: str, out_dir: str, month: str | None = None) -> str:
    """The month's report card of every submitting unit (maternity).

    Args:
        db: the screening DuckDB file.
        out_dir: folder that receives a sub-folder per month (one HTML and one PDF per unit).
        month: ``YYYY-MM`` (default: the month before this one, for a monthly schedule).
    """
    markdown = cards_task(Path(db), month, Path(out_dir))
    create_markdown_artifact(
        markdown=markdown, key="report-cards", description="Maternities' report cards"
    )
    return markdown
