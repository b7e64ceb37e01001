"""The run's first step: the inbox files found, and what the run does with each (ingest a
new file, archive again a file an earlier run recorded, set aside a second copy)."""

from __future__ import annotations

from pathlib import Path

from nbs import store
from nbs.config import ScreeningConfig
from nbs.intake.discover import discover
from nbs.intake.exports import readers, recogniser
from nbs.intake.files import PlannedFile
from nbs.intake.orders import received_cards_file
from nbs.run.context import RunContext

ARCHIVE_DIR = "archive"
QUARANTINE_DIR = "quarantine"


def _free_name(folder: Path, name: str, sha: str, taken: set[str]) -> str:
    candidate = name
    if (folder / candidate).exists() or str(folder / candidate) in taken:
        stem, dot, suffix = name.partition(".")
        candidate = f"{stem}.{sha[:8]}{dot}{suffix}"
    taken.add(str(folder / candidate))
    return candidate


def plan_files(ctx: RunContext, config: ScreeningConfig) -> tuple[list[PlannedFile], list[str]]:
    """Inbox files with what to do with each, and the names of files left alone (an
    instrument export is recognised by its content, :mod:`nbs.intake.exports`)."""
    recognise = recogniser(readers(config.instruments))
    found, ignored, unsettled = discover(ctx.inbox, recognise=recognise)
    ignored = ignored + [
        p.with_name(p.name + " (still being written: left for the next run)") for p in unsettled
    ]
    known = store.known_files(ctx.db_path, [f.sha256 for f in found])
    recorded = {r["file_sha256"]: r for r in known.iter_rows(named=True)}
    day = ctx.started_at.strftime("%Y-%m-%d")
    taken: set[str] = set()
    seen: set[str] = set()
    planned: list[PlannedFile] = []
    for f in found:
        if f.sha256 in recorded:
            rec = recorded[f.sha256]
            dest = rec["archived_as"]
            if (ctx.inbox / dest).exists():
                folder = ctx.inbox / ARCHIVE_DIR / "duplicates"
                dest = str(
                    Path(ARCHIVE_DIR, "duplicates", _free_name(folder, f.name, f.sha256, taken))
                )
            planned.append(PlannedFile(f, "known", dest, rec["status"]))
        elif f.sha256 in seen:
            folder = ctx.inbox / ARCHIVE_DIR / "duplicates"
            dest = str(Path(ARCHIVE_DIR, "duplicates", _free_name(folder, f.name, f.sha256, taken)))
            planned.append(PlannedFile(f, "repeat", dest))
        else:
            seen.add(f.sha256)
            # destination decided now (archive); a file found unreadable goes to quarantine
            folder = ctx.inbox / ARCHIVE_DIR / day
            dest = str(Path(ARCHIVE_DIR, day, _free_name(folder, f.name, f.sha256, taken)))
            planned.append(PlannedFile(f, "new", dest))
    planned += _received_orders(ctx, recorded.keys() | seen, day, taken)
    return planned, [p.name for p in ignored]


def _received_orders(
    ctx: RunContext, known: set[str], day: str, taken: set[str]
) -> list[PlannedFile]:
    """Received orders without a stored card, as one more new cards file (read and
    archived like an inbox file; :func:`nbs.intake.orders.received_cards_file`)."""
    f = received_cards_file(ctx.work_dir, ctx.db_path)
    if f is None or f.sha256 in known or store.known_files(ctx.db_path, [f.sha256]).height:
        return []
    folder = ctx.inbox / ARCHIVE_DIR / day
    dest = str(Path(ARCHIVE_DIR, day, _free_name(folder, f.name, f.sha256, taken)))
    return [PlannedFile(f, "new", dest)]


def quarantine_destination(ctx: RunContext, planned: PlannedFile) -> str:
    """Where an unreadable file is kept (next to its error report)."""
    folder = ctx.inbox / QUARANTINE_DIR
    return str(
        Path(QUARANTINE_DIR, _free_name(folder, planned.file.name, planned.file.sha256, set()))
    )
