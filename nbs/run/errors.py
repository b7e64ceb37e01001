"""What a failed screening run tells the laboratory: one line saying what failed and whether
the run's data were committed, and an exit status for each case.

Whether the data were committed is not guessed from where the failure happened: it is
read from the database (the run's ``runs`` row is written in the run's one transaction),
so a failure inside or right after the COMMIT is reported as what it really left.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: exit statuses of ``nbs`` (README "Exit status" and ``nbs run --help``)
EXIT_OK = 0
EXIT_USAGE = 2  # bad arguments or configuration, a --db that is not a screening database
EXIT_BUSY = 3  # the database is locked by another process (another run)
EXIT_NOT_COMMITTED = 4  # the run failed and nothing was committed
EXIT_COMMITTED = 5  # the run's data were committed; archiving (or what followed) failed
EXIT_UNKNOWN = 6  # the database could not be read to tell whether the run was committed

EXIT_STATUS_HELP = (
    "Exit status: 0 done (also when input was quarantined); 2 bad arguments or "
    "configuration, or --db is not a screening database; 3 the database is locked by "
    "another run; 4 the run failed and nothing was committed (database and inbox as "
    "before); 5 the run's data were committed but archiving failed (the next run finishes "
    "it); 6 the database could not be read to tell whether the run was committed (a rerun "
    "is safe either way)."
)


#: the step of the run's one transaction (a failure in it may come after the COMMIT)
COMMIT_STEP = "writing to the database (one transaction)"


class InboxNotFound(FileNotFoundError):
    """The inbox folder does not exist (a wrong argument, not a failure of the run)."""


class RunFailed(RuntimeError):
    """A run that failed, with whether its data were committed (None: not known)."""

    def __init__(self, step: str, cause: str, committed: bool | None) -> None:
        super().__init__(step, cause, committed)
        self.step, self.cause, self.committed = step, cause, committed

    @property
    def exit_code(self) -> int:
        """The exit status that says what the run left."""
        if self.committed is None:
            return EXIT_UNKNOWN
        return EXIT_COMMITTED if self.committed else EXIT_NOT_COMMITTED

    def __str__(self) -> str:
        if self.committed is None:
            return (
                f"{self.step} failed: {self.cause}; the database could not be read to tell "
                "whether the run was committed (a rerun is safe either way)"
            )
        if self.committed:
            return f"committed; {self.step} failed: {self.cause}; the next run finishes it"
        return f"nothing was committed: {self.step} failed: {self.cause}"


_ERRNO_TEXT = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EIO: "input/output error (a failing disk?)",
}
#: words of an error's text (DuckDB's, or a library's around an operating-system error)
#: and what they tell the laboratory
_TEXT_MEANINGS = (
    ("no space left on device", "no space left on the device"),
    ("os error 28", "no space left on the device"),
    ("read-only file system", "read-only file system"),
    ("permission denied", "permission denied"),
    ("could not read enough bytes", "the database file is truncated or damaged"),
    ("corrupt database file", "the database file is damaged"),
    ("checksum", "the database file is damaged"),
    ("not a valid duckdb database file", "not a DuckDB database file"),
)


def one_line(text: str) -> str:
    """A message on one line (an exception's text may span several)."""
    return " ".join(str(text).split())


def describe(exc: BaseException) -> str:
    """What went wrong, in one line a laboratory can act on (no traceback)."""
    from nbs import store

    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl+C or SIGTERM)"
    if isinstance(exc, OSError) and exc.errno is not None:
        what = _ERRNO_TEXT.get(exc.errno, exc.strerror or type(exc).__name__)
        return f"{what}: {exc.filename}" if exc.filename else what
    text = one_line(str(exc)) or type(exc).__name__
    lower = text.lower()
    for words, meaning in _TEXT_MEANINGS:
        if words in lower:
            return f"{meaning} ({text})"
    if isinstance(exc, store.DatabaseError):
        return f"database error ({text})"
    return f"{type(exc).__name__}: {text}"


@dataclass
class RunTracker:
    """Where a run is: the step it is in, and its database and run id once it has them."""

    step: str = "opening the database"
    db_path: Path | None = None
    run_id: str | None = None
    #: the run has begun its commit: from then on, only the database can say whether
    #: the data are in (before, nothing can be)
    committing: bool = False

    def at(self, step: str) -> None:
        """The run enters ``step`` (its failure message names it)."""
        self.step = step
        self.committing = self.committing or step == COMMIT_STEP

    def started(self, db_path: Path, run_id: str) -> None:
        """The run has its id (from now on a failure checks whether it committed)."""
        self.db_path, self.run_id = db_path, run_id

    def committed(self) -> bool | None:
        """Whether the run's data are in the database (None: it cannot be read)."""
        if self.db_path is None or self.run_id is None or not self.committing:
            return False
        from nbs import store

        try:  # the run's runs row is written in its one transaction
            return store.run_committed(self.db_path, self.run_id)
        except (store.DatabaseError, OSError, store.DatabaseBusy):
            return None


def _refused_before_the_run() -> tuple[type[BaseException], ...]:
    """Errors that keep their own message and exit status while nothing was committed."""
    from nbs import store

    return (
        store.DatabaseBusy,
        store.RunInProgress,
        store.MigrationFailed,
        store.NotAScreeningDatabase,
        InboxNotFound,
    )


@contextlib.contextmanager
def reported(tracker: RunTracker) -> Iterator[RunTracker]:
    """Turn any failure of the run inside the block into :class:`RunFailed` (what failed,
    and whether the run's data were committed), except the refusals that have their own
    message (another run, a locked file, not a screening database, no such inbox)."""
    try:
        yield tracker
    except (RunFailed, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:
        committed = tracker.committed()
        if committed is False and isinstance(exc, _refused_before_the_run()):
            raise
        # a failure in the commit step after the COMMIT (an interruption as it returned)
        step = "the run after its commit" if committed and tracker.step == COMMIT_STEP else None
        raise RunFailed(step or tracker.step, describe(exc), committed) from exc
