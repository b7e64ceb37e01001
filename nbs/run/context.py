"""One run's identity, lock and work folder: from the database's run lock to the removal
of the work folder, however the run ends. The steps themselves are :mod:`nbs.run.steps`'s."""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nbs import store
from nbs.run import allocator
from nbs.run.errors import InboxNotFound

WORK_DIR = ".nbs-work"


@dataclass(frozen=True)
class RunContext:
    """Identity and places of one run."""

    run_id: str
    inbox: Path
    db_path: Path
    work_dir: Path
    engine: str
    started_at: dt.datetime


def new_run(inbox: Path, db_path: Path, engine: str) -> RunContext:
    """Start a run: check the inbox, bring the database schema up to date, make a work folder."""
    if not inbox.is_dir():
        raise InboxNotFound(f"inbox {inbox} is not a folder")
    store.migrate(db_path)
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    run_id = f"run-{started:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    work = work_root(db_path) / run_id
    # the parts hold babies' data: readable by the run's user only
    work.mkdir(parents=True, exist_ok=False, mode=0o700)
    return RunContext(run_id, inbox.resolve(), db_path.resolve(), work, engine, started)


def work_root(db_path: Path) -> Path:
    """The folder of the work folders of runs on this database, named by its real path:
    runs reaching one database through different names (a link) share it, and so does
    their lock; runs on two databases in one folder never touch each other's."""
    real = db_path.resolve()
    return real.parent / WORK_DIR / real.name


def cleanup(ctx: RunContext) -> None:
    """Remove the run's work folder (derived data only; inputs are never deleted), and
    the database's folder of work folders once empty."""
    shutil.rmtree(ctx.work_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        ctx.work_dir.parent.rmdir()


@contextlib.contextmanager
def open_run(inbox: Path, db_path: Path, engine: str) -> Iterator[RunContext]:
    """A run from start to cleanup: the database's run lock (a second run at the same time
    is refused), a new run context, and removal of its work folder however it ends."""
    # the run's process reuses the memory of its 64 MiB read blocks (see nbs.run.allocator)
    allocator.keep_freed_memory()
    with store.run_lock(db_path):
        # holding the lock, any work folder left of this database is from a run that
        # died: derived data only (another database's runs have their own folder)
        stale = work_root(db_path)
        if stale.is_dir():
            for folder in stale.iterdir():
                shutil.rmtree(folder, ignore_errors=True)
        ctx = new_run(inbox, db_path, engine)
        try:
            yield ctx
        finally:
            cleanup(ctx)
