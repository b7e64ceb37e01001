"""Named points where a run can be made to die, as ``kill -9`` would, for the crash-safety
tests (``NBS_CRASH_AT=<point>``). Without that variable nothing happens; the product never
sets it."""

from __future__ import annotations

import os
import signal

#: every point, in the order a run passes them
CRASH_POINTS = (
    "after-staging",  # files read and validated, nothing written
    "after-evaluation",  # calls computed in the work folder, nothing written
    "inside-commit",  # every row written in the transaction, not yet committed
    "after-commit",  # committed, no file archived yet
    "mid-archive",  # committed, one file archived, the others still in the inbox
    "before-export",  # committed and archived, officials' file not renewed
)


def crash_point(name: str) -> None:
    """Kill this process at once (SIGKILL: no cleanup, no finally) if asked to die here."""
    if os.environ.get("NBS_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
