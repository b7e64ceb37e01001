"""An inbox file as a run handles it: planned (what the run does with it), then staged
(read and validated into the run's work folder).

Below both the run's steps (:mod:`nbs.run`) and the archiving (:mod:`nbs.intake.archive`),
which share these descriptors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nbs.intake.discover import InboxFile

FileStatus = Literal["new", "known", "repeat"]


@dataclass(frozen=True)
class PlannedFile:
    """An inbox file and what the run will do with it."""

    file: InboxFile
    status: FileStatus  # new: to ingest; known: recorded by an earlier run; repeat: twice here
    destination: str  # inbox-relative path where the file ends up
    recorded_status: str | None = None


@dataclass(frozen=True)
class StagedFile:
    """A new file after reading and validation (frames are in the work folder)."""

    planned: PlannedFile
    readable: bool
    rows_read: int
    rows_quarantined: int
    error: str | None
    raw_path: Path | None
    good_path: Path | None
    quarantine_path: Path | None
    #: the file changed while it was read: nothing of it is kept, it stays in the inbox
    changed: bool = False
