"""The steps that write, after the batch: the database commit (one transaction), the
archiving of the inbox files (after it), and the officials' statistics file (last)."""

from __future__ import annotations

from nbs import store
from nbs.config import ScreeningConfig
from nbs.followup import answers
from nbs.intake.archive import archive_files
from nbs.intake.files import PlannedFile
from nbs.run.batch import Batch
from nbs.run.context import RunContext
from nbs.run.patient_qc import patient_qc_outcome
from nbs.run.summary import RunSummary


def commit(ctx: RunContext, batch: Batch) -> RunSummary:
    """Write the computed run in one database transaction (with the repeat-card recalls
    its cards answer); returns the final summary."""
    counts = store.commit_run(
        ctx.db_path,
        batch.files,
        store.RunRecord(
            run_id=ctx.run_id,
            started_at=ctx.started_at,
            inbox=str(ctx.inbox),
            engine=ctx.engine,
            cutoff_versions=",".join(batch.summary.cutoff_versions),
            summary_json=batch.summary.to_json(),
        ),
        answers.verdicts,
    )
    summary = batch.summary
    summary.new_calls = counts.calls
    summary.new_recalls = counts.recalls
    summary.retests_opened = counts.retests_opened
    summary.retests_done = counts.retests_done
    summary.recalls_answered = counts.recalls_answered
    summary.recalls_escalated = counts.recalls_escalated
    return summary


def archive(ctx: RunContext, planned: list[PlannedFile]) -> list[str]:
    """Move every handled file out of the inbox (after the commit; see
    :func:`nbs.intake.archive.archive_files`); returns the files left there, with the reason."""
    return archive_files(ctx.inbox, ctx.db_path, ctx.run_id, planned)


def watch_patients(ctx: RunContext, config: ScreeningConfig, summary: RunSummary) -> None:
    """Patient-based QC after the commit: the moving medians of the run's screen-negative
    first punches against their history (:mod:`nbs.run.patient_qc`). Its alarms hold
    nothing; a failure is reported in the summary and does not fail the committed run."""
    try:
        outcome = patient_qc_outcome(ctx.db_path, ctx.run_id, config)
    except Exception as exc:  # the run is committed; say so, do not undo it
        summary.patient_qc_error = f"{type(exc).__name__}: {exc}"
    else:
        summary.patient_qc_alarms = [alarm.text for alarm in outcome.alarms]


def export_statistics(ctx: RunContext, summary: RunSummary) -> None:
    """Renew the officials' identifier-free statistics file beside the database.

    After the commit and the archiving: the run's data are safe whatever happens here, so
    a failure is reported in the summary (``stats_error``) and does not fail the run.
    """
    from nbs.stats import statistics

    target = statistics.default_stats_path(ctx.db_path)
    try:
        statistics.export_stats(ctx.db_path, target)
    except Exception as exc:  # the run is committed; say so, do not undo it
        summary.stats_error = f"{type(exc).__name__}: {exc}"
    else:
        summary.stats_file = str(target)
