"""Staging a new inbox file: read and validated a block of rows at a time into the run's
work folder as Parquet parts (raw rows, good rows, quarantined rows).

Nothing of a file that turns out unreadable, or that changes while it is read, is kept but
its error: the batch never picks up part of a file.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path

import polars as pl

from nbs import store
from nbs.config import ScreeningConfig
from nbs.intake.discover import (
    COLUMNS,
    InboxFile,
    UnreadableFile,
    hold_extra_fields,
    read_raw_blocks,
)
from nbs.intake.exports import read_export_blocks, readers
from nbs.intake.files import PlannedFile, StagedFile
from nbs.intake.orders import stage_orders
from nbs.validate.core import validate_specimens
from nbs.validate.wells import QC_TYPES, validate_block

CHANGED_WHILE_READ = "changed while it was read: left in the inbox for the next run"


def _keep_block(
    f: InboxFile, work_dir: Path, config: ScreeningConfig, i: int, raw: pl.DataFrame
) -> tuple[int, int]:
    """Validate block ``i`` of file ``f`` and write its parts; returns (rows, rows
    quarantined)."""
    rows, held = hold_extra_fields(raw)  # a row longer than the header is held whole
    wells = QC_TYPES.to_frame()
    if f.kind == "specimens":
        checked = validate_specimens(rows)
    else:
        # a plate's control, calibrator and blank wells become QC rows (no card)
        checked, good_wells = validate_block(rows, config.catalogue)
        wells = good_wells.with_columns(file_sha256=pl.lit(f.sha256))
    quarantine = checked.quarantine
    if held is not None:
        quarantine = pl.concat([held, quarantine]).sort("row_number", maintain_order=True)
    frames = {
        "raw": raw.select(pl.lit(f.sha256).alias("file_sha256"), "row_number", *COLUMNS[f.kind]),
        # with its file: the commit can read these parts as they are (build_batch)
        "good": checked.good.with_columns(file_sha256=pl.lit(f.sha256)),
        "quarantine": quarantine,
    }
    if f.kind == "results":
        frames["qc"] = wells
        kit = pl.col("kit_lot") if "kit_lot" in raw.columns else pl.lit(None, pl.String)
        frames["plates"] = raw.group_by("plate_id").agg(
            pl.col("instrument").drop_nulls().first(),
            kit.drop_nulls().first().alias("kit_lot"),
            first_text=pl.col("measured_at").drop_nulls().min(),
            rows=pl.len(),
        )
    for what, frame in frames.items():
        store.write_part(frame, store.staged_part(work_dir, what, f.kind, f.sha256, i))
    return raw.height, quarantine.select(pl.col("row_number").n_unique()).item()


def _discard(f: InboxFile, work_dir: Path) -> None:
    """Remove every part of this file, written whole or in part (a failed attempt must
    leave nothing a retry or the batch could pick up)."""
    pattern = store.staged_part(work_dir, "*", f.kind, f.sha256)  # every part of the file
    for path in pattern.parent.glob(pattern.name):
        if path.is_file():
            path.unlink()


def _not_kept(planned: PlannedFile, error: str, changed: bool = False) -> StagedFile:
    return StagedFile(planned, False, 0, 0, error, None, None, None, changed)


def _stage_orders(planned: PlannedFile, work_dir: Path) -> StagedFile:
    """An HL7 file's orders and messages held, or its error; kept whole or not at all."""
    try:
        staged = stage_orders(planned, work_dir)
    except UnreadableFile as exc:
        _discard(planned.file, work_dir)
        return _not_kept(planned, str(exc))
    except BaseException:
        _discard(planned.file, work_dir)
        raise
    if not planned.file.unchanged():
        _discard(planned.file, work_dir)
        return _not_kept(planned, CHANGED_WHILE_READ, changed=True)
    return staged


def stage_file(planned: PlannedFile, work_dir: Path, config: ScreeningConfig) -> StagedFile:
    """Read and validate one new file, a block of rows at a time (memory does not grow with
    the file); write its raw, good and quarantined rows as Parquet parts."""
    f = planned.file
    if f.fmt == "hl7":  # orders: messages, not rows (nbs.intake.orders)
        return _stage_orders(planned, work_dir)
    (work_dir / store.STAGED_DIR).mkdir(parents=True, exist_ok=True)
    keep = partial(_keep_block, f, work_dir, config)
    # a block is validated and written while the next one is read (each alone keeps a
    # core and a half busy); at most one block waits, so memory stays bounded
    counted: list[tuple[int, int]] = []
    pending: list[Future[tuple[int, int]]] = []
    try:
        # leaving the pool waits for every block submitted: cleaning up after it, no
        # part is still being written
        with ThreadPoolExecutor(1) as pool:
            blocks = (
                read_export_blocks(f, readers(config.instruments))
                if f.fmt == "export"
                else read_raw_blocks(f)
            )
            for i, raw in enumerate(blocks):
                pending.append(pool.submit(keep, i, raw))
                while len(pending) > 1:
                    counted.append(pending.pop(0).result())
        counted += [p.result() for p in pending]
    except UnreadableFile as exc:
        _discard(f, work_dir)  # nothing of an unreadable file is kept but its error
        # a block that failed to be written (disk full...) is not the file's fault
        failed = [e for e in (p.exception() for p in pending) if e is not None]
        if failed:
            raise failed[0] from exc
        if not f.unchanged():  # unreadable as it was while being written: read it again
            return _not_kept(planned, CHANGED_WHILE_READ, changed=True)
        return _not_kept(planned, str(exc))
    except BaseException:
        _discard(f, work_dir)
        raise
    if not f.unchanged():  # written to while it was read: the rows may not be those hashed
        _discard(f, work_dir)
        return _not_kept(planned, CHANGED_WHILE_READ, changed=True)
    return StagedFile(
        planned,
        True,
        sum(n for n, _ in counted),
        int(sum(b for _, b in counted)),
        None,
        store.staged_part(work_dir, "raw", f.kind, f.sha256),
        store.staged_part(work_dir, "good", f.kind, f.sha256),
        store.staged_part(work_dir, "quarantine", f.kind, f.sha256),
    )
