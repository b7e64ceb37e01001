"""The ``reprocess_run`` Prefect flow: stored cards re-evaluated under another cutoff
version (see :mod:`nbs.run.reprocess`). One task; the comparison becomes an artifact."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from flows.notify import notify_failure
from nbs import store
from nbs.config import load_config
from nbs.run.reprocess import ReprocessSummary, reprocess


@task(name="reprocess cards", cache_policy=NONE)
def reprocess_task(
    db: Path,
    cutoffs_dir: str | None,
    cutoff_version: str,
    specimen_ids: list[str] | None,
    collected_from: dt.date | None,
    collected_to: dt.date | None,
) -> ReprocessSummary:
    """Evaluate and write the new calls (one transaction)."""
    config = load_config(Path(cutoffs_dir) if cutoffs_dir else None)
    return reprocess(db, config, cutoff_version, specimen_ids, collected_from, collected_to)


@flow(name="reprocess_run", log_prints=True, on_failure=[notify_failure])
def reprocess_run(
    db: str,
    cutoff_version: str,
    specimen_ids: list[str] | None = None,
    collected_from: dt.date | None = None,
    collected_to: dt.date | None = None,
    cutoffs_dir: str | None = None,
) -> ReprocessSummary:
    """Re-evaluate stored cards under ``cutoff_version``, keeping the calls made before.

    Args:
        db: the screening DuckDB file.
        cutoff_version: the cutoff set to judge by (e.g. a proposed ``LNS-2027.1``).
        specimen_ids: the cards to re-evaluate, or none to use the dates.
        collected_from: first collection date (inclusive).
        collected_to: last collection date (inclusive).
        cutoffs_dir: folder of cutoff set YAML files (default: the packaged sets).
    """
    summary = reprocess_task(
        Path(db), cutoffs_dir, cutoff_version, specimen_ids, collected_from, collected_to
    )
    create_markdown_artifact(
        markdown=(
            f"# Reprocessing `{summary.run_id}`\n\n{summary.cards} card(s) re-evaluated under "
            f"`{summary.cutoff_version}`; {summary.calls_added} new call(s); "
            f"**{summary.changed}** differ from the screening call. Details: "
            f"`{store.reprocess_comparison_query(summary.run_id)}`."
        ),
        key="reprocess-summary",
        description=f"Reprocessing under {summary.cutoff_version}",
    )
    return summary
