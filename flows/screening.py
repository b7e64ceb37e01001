"""The ``screening_run`` Prefect flow.

Thin on purpose: one task per step and one per inbox file (one for all files of a small
inbox), each wrapping a plain function of
:mod:`nbs.run.steps` that the tests also call directly. Tasks pass paths and small
descriptors, never big frames. Only the database commit retries, and only when the file
is locked by another process; a validation problem is data, never a retry.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.task_runners import ThreadPoolTaskRunner

from flows.notify import notify_failure
from nbs import store
from nbs.config import ScreeningConfig, load_config
from nbs.run import steps as pipeline
from nbs.run.errors import COMMIT_STEP, RunTracker, reported
from nbs.run.faults import crash_point
from nbs.run.summary import summary_markdown


def _only_when_busy(task: Any, task_run: Any, state: Any) -> bool:
    """Retry condition: the database was locked (transient), nothing else."""
    try:
        state.result()
    except store.DatabaseBusy:
        return True
    except Exception:
        return False
    return False


@task(name="plan files", cache_policy=NONE)
def plan_task(ctx: pipeline.RunContext) -> tuple[list[pipeline.PlannedFile], list[str]]:
    """Find the inbox files and decide what to do with each."""
    return pipeline.plan_files(ctx)


@task(name="stage file", cache_policy=NONE, task_run_name="stage {planned.file.path.name}")
def stage_task(
    planned: pipeline.PlannedFile, work_dir: Path, config: ScreeningConfig
) -> pipeline.StagedFile:
    """Read and validate one file."""
    return pipeline.stage_file(planned, work_dir, config)


@task(name="stage files", cache_policy=NONE)
def stage_small_task(
    planned: list[pipeline.PlannedFile], work_dir: Path, config: ScreeningConfig
) -> list[pipeline.StagedFile]:
    """Read and validate several small files in one task."""
    return [pipeline.stage_file(p, work_dir, config) for p in planned]


#: new files smaller than this all together are staged by one task: for a day's few small
#: files a task run's bookkeeping through the server costs more than reading them
SMALL_INBOX_BYTES = 32 << 20


@task(name="evaluate batch", cache_policy=NONE)
def evaluate_task(
    ctx: pipeline.RunContext,
    planned: list[pipeline.PlannedFile],
    staged: list[pipeline.StagedFile],
    config: ScreeningConfig,
    ignored: list[str],
) -> pipeline.Batch:
    """Cross-file checks and evaluation of every touched card."""
    return pipeline.build_batch(ctx, planned, staged, config, ignored)


@task(
    name="commit",
    cache_policy=NONE,
    retries=3,
    retry_delay_seconds=[2, 5, 15],
    retry_condition_fn=_only_when_busy,
)
def commit_task(ctx: pipeline.RunContext, batch: pipeline.Batch) -> pipeline.RunSummary:
    """The run's single database transaction."""
    return pipeline.commit(ctx, batch)


@task(name="archive files", cache_policy=NONE)
def archive_task(ctx: pipeline.RunContext, planned: list[pipeline.PlannedFile]) -> list[str]:
    """Move handled files out of the inbox (after the commit); the files left there."""
    return pipeline.archive(ctx, planned)


@task(name="export statistics", cache_policy=NONE)
def export_stats_task(ctx: pipeline.RunContext, summary: pipeline.RunSummary) -> None:
    """Renew the officials' statistics file (a failure is reported, the run stands)."""
    pipeline.export_statistics(ctx, summary)


#: files the flow stages at once (its tasks run in threads, at most this many at once). A
#: big file's staging alone keeps ~1.5-1.8 cores busy and holds up to ~1.8 GiB, and
#: Prefect's thread pool has no bound of its own: an inbox of ten big files would be staged
#: all at once. (The local engine stages one file at a time: two at once staged a million
#: cards' two files 0.5 s faster on their own, but made the whole run 1 s slower.)
STAGING_THREADS = 2
#: typed Any: prefect types the runner by its futures
_STAGING_RUNNER: Any = ThreadPoolTaskRunner(max_workers=STAGING_THREADS)


@flow(
    name="screening_run",
    log_prints=True,
    on_failure=[notify_failure],
    task_runner=_STAGING_RUNNER,
)
def screening_run(
    inbox: str, db: str, cutoffs_dir: str | None = None, engine: str = "prefect"
) -> pipeline.RunSummary:
    """One screening run over an inbox folder into a DuckDB file.

    Args:
        inbox: folder with ``*.specimens.*`` and ``*.results.*`` files (CSV or Parquet).
        db: the DuckDB file (created and migrated if new).
        cutoffs_dir: folder of cutoff set YAML files (default: the packaged sets).
        engine: the name the run is recorded under (``dask`` when its tasks run on Dask).
    """
    t0 = time.perf_counter()
    config = load_config(Path(cutoffs_dir) if cutoffs_dir else None)
    # a failure is raised as RunFailed: what failed, and whether the data were committed
    with (
        reported(RunTracker()) as tracker,
        pipeline.open_run(Path(inbox), Path(db), engine) as ctx,
    ):
        tracker.started(ctx.db_path, ctx.run_id)
        tracker.at("finding and reading the inbox files")
        planned, ignored = plan_task(ctx)
        new = [p for p in planned if p.status == "new"]
        if sum(p.file.size for p in new) < SMALL_INBOX_BYTES:
            staged = stage_small_task(new, ctx.work_dir, config)
        else:  # a task per file: big files are read in parallel (on Dask: on several hosts)
            futures = [stage_task.submit(p, ctx.work_dir, config) for p in new]
            staged = [f.result() for f in futures]
        crash_point("after-staging")
        tracker.at("checking against the database and evaluating")
        batch = evaluate_task(ctx, planned, staged, config, ignored)
        crash_point("after-evaluation")
        tracker.at(COMMIT_STEP)
        summary = commit_task(ctx, batch)
        crash_point("after-commit")
        tracker.at("archiving files")
        summary.not_archived = archive_task(ctx, planned)
        crash_point("before-export")
        tracker.at("writing the officials' statistics file")
        export_stats_task(ctx, summary)
    summary.seconds = round(time.perf_counter() - t0, 3)
    create_markdown_artifact(
        markdown=summary_markdown(summary),
        key="screening-run-summary",
        description=f"Screening run {ctx.run_id}",
    )
    return summary


def with_dask(address: str | None = None, workers: int = 2) -> Any:
    """The same flow with its per-file tasks on Dask (prefect-dask): an existing cluster
    at ``address`` (``tcp://scheduler:8786``, workers on several hosts), or else a local
    cluster of ``workers`` processes started for the run. Results are identical."""
    from prefect_dask import DaskTaskRunner

    runner: Any = (  # prefect-dask's runner is typed for its own futures
        DaskTaskRunner(address=address)
        if address
        else DaskTaskRunner(
            cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True}
        )
    )
    return screening_run.with_options(name="screening_run_dask", task_runner=runner)
