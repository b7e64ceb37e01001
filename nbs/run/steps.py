"""The screening run's steps, in order, defined once: plan, stage each new file, build and
evaluate the batch, commit, archive, export the officials' statistics.

:func:`run_steps` is the sequence; an :class:`Executor` supplies only how a step runs: the
local engine calls it directly (:class:`LocalExecutor`), the Prefect flow
(``flows/screening.py``) as a Prefect task, on threads or on Dask.

Between steps only paths, ids and small descriptors travel; frames go through Parquet files
in the run's work folder. Nothing touches the inbox or the database until :func:`commit`
(one transaction) and :func:`archive` (file moves after it), so a crash before the commit
leaves both as they were, and a crash between commit and archive is completed by the next
run, which finds the files already recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, Protocol, TypeVar

from nbs.config import ScreeningConfig
from nbs.intake.files import PlannedFile as PlannedFile
from nbs.intake.files import StagedFile as StagedFile
from nbs.run.batch import Batch as Batch
from nbs.run.batch import build_batch
from nbs.run.commit import archive, commit, export_statistics, watch_patients
from nbs.run.context import WORK_DIR as WORK_DIR
from nbs.run.context import RunContext as RunContext
from nbs.run.context import open_run
from nbs.run.errors import COMMIT_STEP, RunTracker, reported
from nbs.run.faults import crash_point
from nbs.run.plan import plan_files
from nbs.run.stage import stage_file
from nbs.run.summary import RunSummary
from nbs.store.connection import held_open

__all__ = [
    "WORK_DIR",
    "Batch",
    "Executor",
    "LocalExecutor",
    "PlannedFile",
    "RunContext",
    "RunSummary",
    "StagedFile",
    "archive",
    "build_batch",
    "commit",
    "export_statistics",
    "open_run",
    "plan_files",
    "run_local",
    "run_steps",
    "stage_file",
    "watch_patients",
]

P = ParamSpec("P")
R = TypeVar("R")

#: what a run reports as its step while it is in it (a failure names it)
EVALUATING = "checking against the database and evaluating"
WATCHING = "checking the patient-based QC"
ARCHIVING = "archiving files"
EXPORTING = "writing the officials' statistics file"


class Executor(Protocol):
    """How the run's steps execute; which steps, in which order, is :func:`run_steps`'s."""

    #: the step a run reports while it finds the inbox files (and, when the staging runs
    #: apart from the run's process and names no file, while it reads them)
    planning: str

    def call(self, step: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run one step (one of this module's step functions) and return its result."""
        ...

    def stage(
        self,
        new: list[PlannedFile],
        work_dir: Path,
        config: ScreeningConfig,
        report: Callable[[str], None],
    ) -> list[StagedFile]:
        """Stage every new file (:func:`stage_file`), in their order; ``report`` says
        which step the run is in."""
        ...


class LocalExecutor:
    """Every step called in this process, the files staged one after the other (their
    reading keeps a core and a half busy already)."""

    planning = "finding the inbox files"

    def call(self, step: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        return step(*args, **kwargs)

    def stage(
        self,
        new: list[PlannedFile],
        work_dir: Path,
        config: ScreeningConfig,
        report: Callable[[str], None],
    ) -> list[StagedFile]:
        staged = []
        for i, p in enumerate(new, start=1):
            report(f"reading and validating file {i}/{len(new)}: {p.file.name}")
            staged.append(stage_file(p, work_dir, config))
        return staged


def run_steps(
    inbox: Path,
    db_path: Path,
    config: ScreeningConfig,
    engine: str,
    executor: Executor,
    progress: Callable[[str], None] | None = None,
) -> RunSummary:
    """One screening run, its steps run by ``executor`` and recorded under ``engine``.

    ``progress`` receives a short message at each step. A failure is raised as
    :class:`nbs.run.errors.RunFailed`, saying whether the run's data were committed; the
    run's crash and fault points (:mod:`nbs.run.faults`) lie between the steps.
    """
    say = progress or (lambda message: None)
    t0 = time.perf_counter()
    with (
        reported(RunTracker()) as tracker,
        open_run(inbox, db_path, engine) as ctx,
        held_open(ctx.db_path),
    ):
        tracker.started(ctx.db_path, ctx.run_id)

        def step(message: str) -> None:
            tracker.at(message)
            say(message)

        step(executor.planning)
        planned, ignored = executor.call(plan_files, ctx, config)
        new = [p for p in planned if p.status == "new"]
        staged = executor.stage(new, ctx.work_dir, config, step)
        crash_point("after-staging")
        step(EVALUATING)
        batch = executor.call(build_batch, ctx, planned, staged, config, ignored)
        crash_point("after-evaluation")
        step(COMMIT_STEP)
        summary = executor.call(commit, ctx, batch)
        crash_point("after-commit")
        step(WATCHING)
        executor.call(watch_patients, ctx, config, summary)
        step(ARCHIVING)
        summary.not_archived = executor.call(archive, ctx, planned)
        crash_point("before-export")
        step(EXPORTING)
        executor.call(export_statistics, ctx, summary)
    summary.seconds = round(time.perf_counter() - t0, 3)
    return summary


def run_local(
    inbox: Path,
    db_path: Path,
    config: ScreeningConfig,
    progress: Callable[[str], None] | None = None,
) -> RunSummary:
    """The whole run in this process, without Prefect (engine ``local``).

    ``progress`` receives a short message at each step (the CLI shows it). A failure is
    raised as :class:`nbs.run.errors.RunFailed`, saying whether the run's data were committed.
    """
    return run_steps(inbox, db_path, config, "local", LocalExecutor(), progress)
