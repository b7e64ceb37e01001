"""The ``annual_report`` Prefect flow: the officials' yearly report and statistics file.

Thin: one task renders the report (HTML + CSV, :func:`nbs.stats.report.write_report`), one
renews the officials' file; the report's summary table becomes a Prefect artifact.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from flows.notify import notify_failure
from nbs.config import load_config
from nbs.stats import statistics
from nbs.stats.report import previous_year, write_report


@task(name="render report", cache_policy=NONE)
def report_task(
    db: Path, year: int, out: Path, conditions: list[str], suppress_below: int | None
) -> str:
    """Write the report; returns its summary as markdown."""
    return write_report(db, year, out, conditions, suppress_below).markdown


@task(name="export statistics", cache_policy=NONE)
def export_task(db: Path) -> str:
    """Renew the officials' identifier-free statistics file; returns its path."""
    return str(statistics.export_stats(db, statistics.default_stats_path(db)).path)


@flow(name="annual_report", log_prints=True, on_failure=[notify_failure])
def annual_report(
    db: str,
    out_dir: str,
    year: int | None = None,
    suppress_below: int | None = None,
    cutoffs_dir: str | None = None,
) -> str:
    """The year's report for the Directorate of Health.

    Args:
        db: the screening DuckDB file.
        out_dir: folder that receives a sub-folder per year (HTML page and CSV files).
        year: the year reported (default: last year, for a January schedule).
        suppress_below: for publication, counts below this are shown as ``<N``.
        cutoffs_dir: folder of cutoff set YAML files (default: the packaged sets).
    """
    chosen = year or previous_year()
    conditions = list(load_config(Path(cutoffs_dir) if cutoffs_dir else None).conditions)
    markdown = report_task(
        Path(db), chosen, Path(out_dir) / str(chosen), conditions, suppress_below
    )
    stats_file = export_task(Path(db))
    create_markdown_artifact(
        markdown=markdown + f"\n\nOfficials' statistics file: `{stats_file}`",
        key="annual-report",
        description=f"Newborn screening annual report {chosen}",
    )
    return markdown
