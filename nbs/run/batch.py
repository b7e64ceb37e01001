"""The run's batch: the staged files put together, checked across files and against the
database (:mod:`nbs.run.checks`), and every card they touch evaluated
(:mod:`nbs.run.evaluation`); written as the Parquet files the commit reads."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import polars as pl

from nbs import store
from nbs.config import ScreeningConfig
from nbs.intake.discover import COLUMNS
from nbs.intake.files import PlannedFile, StagedFile
from nbs.run import allocator
from nbs.run.checks import check_results, check_specimens, number_export_punches
from nbs.run.context import RunContext
from nbs.run.evaluation import EVALUATED_RESULT_COLUMNS, evaluate_touched
from nbs.run.plan import quarantine_destination
from nbs.run.plates import gate_plates
from nbs.run.summary import RunSummary
from nbs.validate.core import (
    QUARANTINE_SCHEMA,
    RESULT_FIELDS,
    RESULT_TYPES,
    SPECIMEN_FIELDS,
    SPECIMEN_TYPES,
    result_warnings,
    specimen_warnings,
)

#: a quarantine entry with the file it came from
QUARANTINE_ENTRY = pl.Schema(
    {"file_sha256": pl.String(), "file_name": pl.String(), "kind": pl.String(), **QUARANTINE_SCHEMA}
)
_TAGS = dict.fromkeys(["file_sha256", "file_name", "kind"], pl.Categorical())


@dataclass(frozen=True)
class Batch:
    """A computed run, ready to commit: its Parquet files and the summary so far."""

    files: store.RunFiles
    summary: RunSummary


def build_batch(
    ctx: RunContext,
    planned: list[PlannedFile],
    staged: list[StagedFile],
    config: ScreeningConfig,
    ignored: list[str],
) -> Batch:
    """Cross-file and database checks, then evaluation of every card the batch touches."""
    allocator.give_back()  # the staging's read blocks are not needed any more
    out = store.RunFiles.in_dir(ctx.work_dir)
    store.write_part(
        pl.DataFrame(config.condition_markers(), schema=["condition", "marker"], orient="row"),
        out.markers,
    )
    summary = RunSummary(
        ctx.run_id, ctx.engine, str(ctx.inbox), str(ctx.db_path), ignored_files=ignored
    )
    readable = [s for s in staged if s.readable]
    _write_empty_raw_parts(ctx.work_dir)
    quarantine = [
        f.select(list(QUARANTINE_ENTRY))
        for kind in ("specimens", "results")
        for f in _load(readable, kind, "quarantine_path")
    ]
    specimens = _stacked(readable, "specimens", SPECIMEN_TYPES)
    results = _stacked(readable, "results", RESULT_TYPES)
    staged_rows = (specimens.height, results.height)  # the checks below only drop rows
    specimens, q_specimens, known_specimens = check_specimens(ctx.db_path, specimens)
    exports = [s.planned.file.sha256 for s in readable if s.planned.file.fmt == "export"]
    results = number_export_punches(ctx.db_path, results, exports)
    results, q_results, known_results = check_results(ctx.db_path, results)
    q_all = _quarantine_table(quarantine + q_specimens + q_results)
    store.write_part(q_all, out.quarantine)
    summary.quarantined_rows = (
        q_all.select("file_sha256", "row_number").n_unique() if not q_all.is_empty() else 0
    )
    summary.quarantine = q_all.head(200).drop("file_sha256").to_dicts()
    summary.already_known_rows = known_specimens + known_results
    summary.specimen_rows = specimens.height
    summary.result_rows = results.height

    out = replace(
        out,
        specimens=_checked_part(ctx, out, "specimens", specimens, staged_rows[0], SPECIMEN_FIELDS),
        results=_checked_part(ctx, out, "results", results, staged_rows[1], RESULT_FIELDS),
    )
    # the evaluation keeps only its columns (the others are freed with the frame, cheaper
    # than reading them back from the parts). Handed over in a list that the evaluation
    # empties: no reference here then keeps the frame alive (nor, when the evaluation
    # sorts it, the unsorted original) while the chunks run
    gate = gate_plates(ctx, config, readable, results, out)
    summary.plates_held = gate.held_reasons
    warnings = pl.concat([specimen_warnings(specimens), result_warnings(results, config.catalogue)])
    evaluated = [results.select(EVALUATED_RESULT_COLUMNS)]
    del results
    evaluate_touched(ctx, config, specimens, evaluated, warnings, out, summary, gate)
    store.write_part(_files_table(ctx, staged, q_all), out.files)
    summary.files = _files_summary(planned, staged, q_all)
    return Batch(out, summary)


def _tag(frame: pl.DataFrame, staged: StagedFile, dtype: type[pl.DataType]) -> pl.DataFrame:
    """The rows with the file they came from. Millions of result rows carry the same few
    files: as ``pl.Categorical`` the tags take 4 bytes a row instead of ~100."""
    return frame.with_columns(
        file_sha256=pl.lit(staged.planned.file.sha256, dtype=dtype),
        file_name=pl.lit(staged.planned.file.name, dtype=dtype),
        kind=pl.lit(staged.planned.file.kind, dtype=dtype),
    )


def _concat(frames: list[pl.DataFrame], schema: pl.Schema) -> pl.DataFrame:
    """Frames stacked, or an empty frame of ``schema`` when there are none."""
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames, how="vertical_relaxed")


def _load(
    readable: list[StagedFile], kind: str, attr: str, dtype: type[pl.DataType] = pl.String
) -> list[pl.DataFrame]:
    """One part (``attr``: good rows or quarantine) of each readable file of ``kind``, tagged."""
    return [
        _tag(pl.read_parquet(getattr(s, attr)), s, dtype)
        for s in readable
        if s.planned.file.kind == kind
    ]


def _stacked(readable: list[StagedFile], kind: str, types: dict[str, pl.DataType]) -> pl.DataFrame:
    """The good rows of every readable file of ``kind``, tagged with their file."""
    return _concat(
        _load(readable, kind, "good_path", pl.Categorical),
        pl.Schema({"row_number": pl.Int64(), **types, **_TAGS}),
    )


def _write_empty_raw_parts(work_dir: Path) -> None:
    """The raw rows stay in the staged parts (the commit reads them); an empty part of
    each kind makes the commit's patterns match when a run has no file of that kind."""
    (work_dir / store.STAGED_DIR).mkdir(exist_ok=True)
    for kind in ("specimens", "results"):
        empty = pl.DataFrame(
            schema={
                "file_sha256": pl.String(),
                "row_number": pl.Int64(),
                **dict.fromkeys(COLUMNS[kind], pl.String()),
            }
        )
        store.write_part(empty, store.staged_part(work_dir, "raw", kind, "none", 0))


def _quarantine_table(entries: list[pl.DataFrame]) -> pl.DataFrame:
    """Every quarantine entry of the batch, from validation and from the key checks."""
    return _concat(
        [q.select(list(QUARANTINE_ENTRY)) for q in entries if not q.is_empty()], QUARANTINE_ENTRY
    ).cast(QUARANTINE_ENTRY)


def _checked_part(
    ctx: RunContext,
    out: store.RunFiles,
    kind: Literal["specimens", "results"],
    rows: pl.DataFrame,
    staged_rows: int,
    fields: tuple[str, ...],
) -> Path:
    """Where the commit reads a kind's checked rows. The checks only ever drop rows, so
    when every staged row passed (the usual run) they are the staged parts as they are,
    which carry their file's hash (no second write of millions of results); otherwise
    the checked rows are written as the run's part of that kind."""
    if staged_rows and rows.height == staged_rows:
        return store.staged_part(ctx.work_dir, "good", kind)
    path: Path = getattr(out, kind)
    store.write_part(rows.select(*fields, "file_sha256", "row_number"), path)
    return path


def _file_outcome(p: PlannedFile, staged: list[StagedFile]) -> str:
    if p.status == "known":
        return "already ingested"
    if p.status == "repeat":
        return "duplicate in this run"
    s = next(s for s in staged if s.planned == p)  # equal, not identical: tasks may run elsewhere
    if s.changed:
        return "changed while read: not ingested"
    return "ingested" if s.readable else "unreadable"


def _rows_quarantined(q_all: pl.DataFrame, sha256: str) -> int:
    """Rows of the file quarantined (a row held for several reasons counts once)."""
    if q_all.is_empty():
        return 0
    found = q_all.filter(pl.col("file_sha256") == sha256)
    return int(found.select(pl.col("row_number").n_unique()).item())


def _files_summary(
    planned: list[PlannedFile], staged: list[StagedFile], q_all: pl.DataFrame
) -> list[dict[str, object]]:
    """Each inbox file's outcome, as the summary lists them."""
    return [
        {
            "name": p.file.name,
            "kind": p.file.kind,
            "outcome": _file_outcome(p, staged),
            "rows": next((s.rows_read for s in staged if s.planned == p), 0),
            "rows_quarantined": _rows_quarantined(q_all, p.file.sha256),
            "error": next((s.error for s in staged if s.planned == p and s.error), None),
        }
        for p in planned
    ]


def _files_table(ctx: RunContext, staged: list[StagedFile], q_all: pl.DataFrame) -> pl.DataFrame:
    """The files the run records (``ingested_files``): every staged file not changed while
    it was read (the next run reads that one as it is then)."""
    rows = []
    for s in staged:
        if s.changed:
            continue
        f = s.planned.file
        dest = s.planned.destination if s.readable else quarantine_destination(ctx, s.planned)
        rows.append(
            {
                "file_sha256": f.sha256,
                "file_name": f.name,
                "kind": f.kind,
                "status": "ingested" if s.readable else "unreadable",
                "rows_read": s.rows_read,
                "rows_quarantined": _rows_quarantined(q_all, f.sha256),
                "archived_as": dest,
                "error": s.error,
            }
        )
    schema = {
        "file_sha256": pl.String,
        "file_name": pl.String,
        "kind": pl.String,
        "status": pl.String,
        "rows_read": pl.Int64,
        "rows_quarantined": pl.Int64,
        "archived_as": pl.String,
        "error": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)
