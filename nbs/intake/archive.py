"""Moving a run's files out of the inbox, after its commit.

A file is moved only when it is still the file the run read: an inbox file overwritten by
a corrected copy, or appended to by a writer that paused longer than the settle time,
after it was read would otherwise be archived with content the database never saw. Such
a file stays in the inbox, named in the summary, and the next run reads it as it is then.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from nbs import store
from nbs.intake.discover import InboxFile
from nbs.intake.files import PlannedFile
from nbs.run.faults import crash_point

CHANGED_SINCE_READ = "changed after it was read: left in the inbox for the next run"
NOT_RECORDED = "changed while it was read, not ingested: left in the inbox for the next run"


def archive_files(
    inbox: Path, db_path: Path, run_id: str, planned: Sequence[PlannedFile]
) -> list[str]:
    """Move every handled file to where the database says it is kept; returns the files
    left in the inbox, each with the reason (``name (reason)``).

    Run after the commit: a file is never moved before its rows are safely stored. Files
    recorded as unreadable get their error report beside them."""
    recorded = store.known_files(db_path, [p.file.sha256 for p in planned])
    by_sha = {r["file_sha256"]: r for r in recorded.iter_rows(named=True)}
    left: list[str] = []
    for p in planned:
        if not os.path.lexists(p.file.path):
            continue  # moved already (this rerun finishes an interrupted archiving)
        rec = by_sha.get(p.file.sha256)
        if p.status == "new" and rec is None:
            left.append(f"{p.file.name} ({NOT_RECORDED})")
            continue
        if not p.file.unchanged():
            left.append(f"{p.file.name} ({CHANGED_SINCE_READ})")
            continue
        dest = inbox / (rec["archived_as"] if p.status == "new" and rec else p.destination)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if rec is not None and rec["status"] == "unreadable":
            _error_report(db_path, run_id, p.file, dest.with_name(dest.name + ".error.txt"))
        if not _move(p.file, dest):
            left.append(f"{p.file.name} ({CHANGED_SINCE_READ})")
            continue
        crash_point("mid-archive")
    return left


def _error_report(db_path: Path, run_id: str, file: InboxFile, report: Path) -> None:
    """The error report of an unreadable file, written whole or not at all: a disk that
    fills up while it is written leaves no empty or cut report that a rerun would keep."""
    if report.exists() and report.stat().st_size > 0:
        return
    error = store.file_error(db_path, file.sha256)
    text = (
        f"file: {file.name}\nsha256: {file.sha256}\nrun: {run_id}\n"
        f"kind: {file.kind}\nerror: {error}\n\n"
        "The file was not ingested. Correct it and drop the corrected file in the "
        "inbox; this copy is kept as it arrived.\n"
    )
    tmp = report.with_name(f".{report.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, report)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _move(file: InboxFile, dest: Path) -> bool:
    """Move the file to ``dest``; a link is archived as a copy of its target's content
    and removed, the target left where it is (it may be another folder's file). False:
    the target changed while it was copied (nothing moved)."""
    if not file.link:
        shutil.move(str(file.path), str(dest))
        return True
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(file.path, tmp)
        if not file.unchanged():
            tmp.unlink()
            return False
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    file.path.unlink()
    return True
