"""Named points where a run can be made to die or fail, for the crash-safety and fault tests.

* ``NBS_CRASH_AT=<point>``: the process kills itself there, as ``kill -9`` would;
* ``NBS_FAIL_AT=<point>:<what>``: an exception is raised there instead, as the machine would
  raise it: ``<what>`` an errno name (``ENOSPC``: disk full, ``EIO``, ``EROFS``...) raises
  that ``OSError``, ``INT`` a ``KeyboardInterrupt`` (Ctrl+C, or SIGTERM in ``nbs run``);
* :func:`hook` (in-process tests): a function called there, e.g. to overwrite an inbox file
  between the staging and the archiving, or to fill the disk before the archiving.

Without those nothing happens; the product never sets them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from collections.abc import Callable, Iterator

#: every point, in the order a run passes them
CRASH_POINTS = (
    "after-staging",  # files read and validated, nothing written
    "after-evaluation",  # calls computed in the work folder, nothing written
    "inside-commit",  # every row written in the transaction, not yet committed
    "after-commit",  # committed, no file archived yet
    "mid-archive",  # committed, one file archived, the others still in the inbox
    "before-export",  # committed and archived, officials' file not renewed
)
#: points only the fault tests use (not worth a kill: a killed export is swept by the
#: next one): the officials' file, or its Parquet folder, written and not yet in place
FAULT_POINTS = ("inside-export", "inside-parquet")

_HOOKS: dict[str, list[Callable[[], None]]] = {}


@contextlib.contextmanager
def hook(point: str, func: Callable[[], None]) -> Iterator[None]:
    """Call ``func`` each time the run passes ``point`` inside the block (tests only)."""
    if point not in CRASH_POINTS + FAULT_POINTS:
        raise ValueError(f"no fault point {point!r}")
    _HOOKS.setdefault(point, []).append(func)
    try:
        yield
    finally:
        _HOOKS[point].remove(func)


def _fail(what: str) -> None:
    if what == "INT":
        raise KeyboardInterrupt
    code = getattr(errno, what)
    raise OSError(code, os.strerror(code))


def crash_point(name: str) -> None:
    """Kill this process at once (SIGKILL: no cleanup, no finally) if asked to die here;
    raise the asked failure; call the hooks of this point."""
    if os.environ.get("NBS_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
    point, _, what = os.environ.get("NBS_FAIL_AT", "").partition(":")
    if point == name:
        _fail(what)
    for func in list(_HOOKS.get(name, ())):
        func()
