"""The ``screening_run`` Prefect flow.

Thin on purpose: the run's sequence is :func:`nbs.run.steps.run_steps`; this module
supplies how its steps execute, one task per step and one per inbox file (one for all
files of a small inbox), each wrapping a plain function of :mod:`nbs.run.steps` that the
tests also call directly. Tasks pass paths and small descriptors, never big frames. Only
the database commit retries, and only when the file is locked by another process; a
validation problem is data, never a retry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, Self, TypeVar, cast

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.task_runners import ThreadPoolTaskRunner

from flows.notify import notify_failure
from nbs import settings, store
from nbs.config import ScreeningConfig, load_config
from nbs.run import steps as pipeline
from nbs.run.summary import summary_markdown

P = ParamSpec("P")
R = TypeVar("R")


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
def plan_task(
    ctx: pipeline.RunContext, config: ScreeningConfig
) -> tuple[list[pipeline.PlannedFile], list[str]]:
    """Find the inbox files and decide what to do with each."""
    return pipeline.plan_files(ctx, config)


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


@task(name="patient-based QC", cache_policy=NONE)
def watch_task(
    ctx: pipeline.RunContext, config: ScreeningConfig, summary: pipeline.RunSummary
) -> pipeline.RunSummary:
    """Moving medians of the run's screen-negative first punches (alarms in the summary)."""
    pipeline.watch_patients(ctx, config, summary)
    return summary


@task(name="archive files", cache_policy=NONE)
def archive_task(ctx: pipeline.RunContext, planned: list[pipeline.PlannedFile]) -> list[str]:
    """Move handled files out of the inbox (after the commit); the files left there."""
    return pipeline.archive(ctx, planned)


@task(name="export statistics", cache_policy=NONE)
def export_stats_task(ctx: pipeline.RunContext, summary: pipeline.RunSummary) -> None:
    """Renew the officials' statistics file (a failure is reported, the run stands)."""
    pipeline.export_statistics(ctx, summary)


#: the task that runs each step of :func:`nbs.run.steps.run_steps`
TASKS: dict[Callable[..., Any], Any] = {
    pipeline.plan_files: plan_task,
    pipeline.build_batch: evaluate_task,
    pipeline.commit: commit_task,
    pipeline.watch_patients: watch_task,
    pipeline.archive: archive_task,
    pipeline.export_statistics: export_stats_task,
}


class PrefectExecutor:
    """The run's steps as Prefect tasks of the flow run. The new files are staged by one
    task when they are few and small together (a task run's bookkeeping through the server
    would cost more than reading them), else a task per file, run by the flow's task
    runner: in threads, or on Dask (on several hosts)."""

    planning = "finding and reading the inbox files"

    def call(self, step: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        return cast(R, TASKS[step](*args, **kwargs))

    def stage(
        self,
        new: list[pipeline.PlannedFile],
        work_dir: Path,
        config: ScreeningConfig,
        report: Callable[[str], None],
    ) -> list[pipeline.StagedFile]:
        if sum(p.file.size for p in new) < settings.current().small_inbox_bytes:
            return stage_small_task(new, work_dir, config)
        futures = [stage_task.submit(p, work_dir, config) for p in new]
        return [f.result() for f in futures]


class StagingThreads(ThreadPoolTaskRunner[Any]):
    """The flow's task runner: threads, at most ``staging_threads`` (a setting) at once.

    A big file's staging alone keeps ~1.5-1.8 cores busy and holds up to ~1.8 GiB, and
    Prefect's thread pool has no bound of its own: an inbox of ten big files would be
    staged all at once. Prefect builds each flow run's runner with :meth:`duplicate`, so
    the setting is read when the flow runs."""

    def duplicate(self) -> Self:
        return type(self)(max_workers=settings.current().staging_threads)


@flow(
    name="screening_run",
    log_prints=True,
    on_failure=[notify_failure],
    task_runner=cast(Any, StagingThreads()),  # prefect types the runner by its futures
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
    config = load_config(Path(cutoffs_dir) if cutoffs_dir else None)
    summary = pipeline.run_steps(Path(inbox), Path(db), config, engine, PrefectExecutor())
    create_markdown_artifact(
        markdown=summary_markdown(summary),
        key="screening-run-summary",
        description=f"Screening run {summary.run_id}",
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
