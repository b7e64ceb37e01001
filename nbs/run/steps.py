"""The screening run as plain functions: plan, stage each file, evaluate the batch, commit,
archive. The Prefect flow (``flows/screening.py``) and the local engine call exactly these.

Between steps only paths, ids and small descriptors travel; frames go through Parquet files
in the run's work folder. Nothing touches the inbox or the database until :func:`commit`
(one transaction) and :func:`archive` (file moves after it), so a crash before the commit
leaves both as they were, and a crash between commit and archive is completed by the next
run, which finds the files already recorded.
"""

from __future__ import annotations

import json
import operator
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import reduce
from pathlib import Path
from typing import Literal

import polars as pl

from nbs import store
from nbs.config import ScreeningConfig
from nbs.evaluate.batch import evaluate_batch, load_context
from nbs.followup import answers
from nbs.intake.archive import archive_files
from nbs.intake.discover import (
    COLUMNS,
    InboxFile,
    UnreadableFile,
    discover,
    hold_extra_fields,
    read_raw_blocks,
)
from nbs.run import allocator

# the run's context, lock and work folder, re-exported: the flow and the tests use them here
from nbs.run.context import WORK_DIR as WORK_DIR
from nbs.run.context import RunContext as RunContext
from nbs.run.context import cleanup as cleanup
from nbs.run.context import new_run as new_run
from nbs.run.context import open_run as open_run
from nbs.run.errors import COMMIT_STEP, RunTracker, reported
from nbs.run.faults import crash_point
from nbs.validate.core import (
    QUARANTINE_SCHEMA,
    RESULT_FIELDS,
    RESULT_TYPES,
    SPECIMEN_FIELDS,
    SPECIMEN_TYPES,
    specimen_warnings,
    validate_results,
    validate_specimens,
)

ARCHIVE_DIR = "archive"
QUARANTINE_DIR = "quarantine"

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


@dataclass
class RunSummary:
    """What a run did, for people: printed by the CLI, stored with the run, and left as a
    Prefect artifact."""

    run_id: str
    engine: str
    inbox: str
    db: str
    files: list[dict[str, object]] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    #: files read by this run but left in the inbox (changed since), with the reason
    not_archived: list[str] = field(default_factory=list)
    specimen_rows: int = 0
    result_rows: int = 0
    quarantined_rows: int = 0
    quarantine: list[dict[str, object]] = field(default_factory=list)
    warnings: int = 0
    #: the first card warnings (specimen_id, column_name, reason), as the summary lists them
    warning_rows: list[dict[str, object]] = field(default_factory=list)
    already_known_rows: int = 0
    pending_results: int = 0
    pending_cards: int = 0
    pending_specimens: list[str] = field(default_factory=list)
    cards_evaluated: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    new_calls: int = 0
    new_recalls: int = 0
    urgent_recalls: list[dict[str, object]] = field(default_factory=list)
    retests_opened: int = 0
    retests_done: int = 0
    recalls_answered: int = 0
    recalls_escalated: int = 0
    stats_file: str | None = None
    stats_error: str | None = None
    cutoff_versions: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> str:
        """The summary as JSON (stored in ``runs.summary_json``)."""
        return json.dumps(asdict(self), default=str, sort_keys=True)

    @property
    def files_quarantined(self) -> list[dict[str, object]]:
        """Files that could not be read at all."""
        return [f for f in self.files if f["outcome"] == "unreadable"]


def _free_name(folder: Path, name: str, sha: str, taken: set[str]) -> str:
    candidate = name
    if (folder / candidate).exists() or str(folder / candidate) in taken:
        stem, dot, suffix = name.partition(".")
        candidate = f"{stem}.{sha[:8]}{dot}{suffix}"
    taken.add(str(folder / candidate))
    return candidate


def plan_files(ctx: RunContext) -> tuple[list[PlannedFile], list[str]]:
    """Inbox files with what to do with each, and the names of files left alone."""
    found, ignored, unsettled = discover(ctx.inbox)
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
    return planned, [p.name for p in ignored]


def quarantine_destination(ctx: RunContext, planned: PlannedFile) -> str:
    """Where an unreadable file is kept (next to its error report)."""
    folder = ctx.inbox / QUARANTINE_DIR
    return str(
        Path(QUARANTINE_DIR, _free_name(folder, planned.file.name, planned.file.sha256, set()))
    )


CHANGED_WHILE_READ = "changed while it was read: left in the inbox for the next run"


def stage_file(planned: PlannedFile, work_dir: Path, config: ScreeningConfig) -> StagedFile:
    """Read and validate one new file, a block of rows at a time (memory does not grow with
    the file); write its raw, good and quarantined rows as Parquet parts."""
    f = planned.file
    (work_dir / store.STAGED_DIR).mkdir(parents=True, exist_ok=True)

    def keep(i: int, raw: pl.DataFrame) -> tuple[int, int]:
        """Validate block ``i`` and write its parts; returns (rows, rows quarantined)."""
        rows, held = hold_extra_fields(raw)  # a row longer than the header is held whole
        checked = (
            validate_specimens(rows)
            if f.kind == "specimens"
            else validate_results(rows, config.catalogue)
        )
        quarantine = checked.quarantine
        if held is not None:
            quarantine = pl.concat([held, quarantine]).sort("row_number", maintain_order=True)
        frames = {
            "raw": raw.select(
                pl.lit(f.sha256).alias("file_sha256"), "row_number", *COLUMNS[f.kind]
            ),
            # with its file: the commit can read these parts as they are (build_batch)
            "good": checked.good.with_columns(file_sha256=pl.lit(f.sha256)),
            "quarantine": quarantine,
        }
        for what, frame in frames.items():
            store.write_part(frame, store.staged_part(work_dir, what, f.kind, f.sha256, i))
        return raw.height, quarantine.select(pl.col("row_number").n_unique()).item()

    def discard() -> None:
        """Remove every part of this file, written whole or in part (a failed attempt
        must leave nothing a retry or the batch could pick up)."""
        pattern = store.staged_part(work_dir, "*", f.kind, f.sha256)  # raw, good, quarantine
        for path in pattern.parent.glob(pattern.name):
            if path.is_file():
                path.unlink()

    # a block is validated and written while the next one is read (each alone keeps a
    # core and a half busy); at most one block waits, so memory stays bounded
    counted: list[tuple[int, int]] = []
    pending: list[Future[tuple[int, int]]] = []
    try:
        # leaving the pool waits for every block submitted: cleaning up after it, no
        # part is still being written
        with ThreadPoolExecutor(1) as pool:
            for i, raw in enumerate(read_raw_blocks(f)):
                pending.append(pool.submit(keep, i, raw))
                while len(pending) > 1:
                    counted.append(pending.pop(0).result())
        counted += [p.result() for p in pending]
    except UnreadableFile as exc:
        discard()  # nothing of an unreadable file is kept but its error
        # a block that failed to be written (disk full...) is not the file's fault
        failed = [e for e in (p.exception() for p in pending) if e is not None]
        if failed:
            raise failed[0] from exc
        if not f.unchanged():  # unreadable as it was while being written: read it again
            return StagedFile(planned, False, 0, 0, CHANGED_WHILE_READ, None, None, None, True)
        return StagedFile(planned, False, 0, 0, str(exc), None, None, None)
    except BaseException:
        discard()
        raise
    if not f.unchanged():  # written to while it was read: the rows may not be those hashed
        discard()
        return StagedFile(planned, False, 0, 0, CHANGED_WHILE_READ, None, None, None, True)
    rows = sum(n for n, _ in counted)
    bad = sum(b for _, b in counted)
    return StagedFile(
        planned,
        True,
        rows,
        int(bad),
        None,
        store.staged_part(work_dir, "raw", f.kind, f.sha256),
        store.staged_part(work_dir, "good", f.kind, f.sha256),
        store.staged_part(work_dir, "quarantine", f.kind, f.sha256),
    )


# -- batch: cross-file checks, database context, evaluation ----------------------------


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


def _key_quarantine(rows: pl.DataFrame, key: list[str], reason: pl.Expr) -> pl.DataFrame:
    """Quarantine entries for rows held because of their key (column: the key's first)."""
    return rows.select(
        pl.col("file_sha256", "file_name", "kind").cast(pl.String),
        "row_number",
        column_name=pl.lit(key[0]),
        value=pl.concat_str([pl.col(k).cast(pl.String) for k in key], separator="/"),
        reason=reason,
    )


def _key_hash(key: list[str]) -> pl.Expr:
    """One 64-bit hash of a composite key: each column hashed alone, with its own seed, and
    the hashes combined. Hashing ``pl.struct(key)`` instead took 1.9 s on 11 M result keys
    in a run, this way 0.3 s."""
    hashes = [pl.col(column).hash(seed) for seed, column in enumerate(key)]
    return reduce(operator.xor, hashes)


def _conflicts(
    rows: pl.DataFrame, key: list[str], fields: list[str], what: str
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Within the batch: identical repeats of a key keep the first; differing ones are all
    quarantined. Returns (kept rows, quarantine entries, identical repeats dropped)."""
    # the usual batch has no key twice: shown on 8-byte hashes of the keys (equal keys hash
    # equal; a collision only sends the batch down the full path), not on the keys, and
    # by counting distinct hashes (is_duplicated() on 11 M hashes took 1.5 s, this 0.2 s)
    if rows.select(_key_hash(key).n_unique()).item() == rows.height:
        return rows, pl.DataFrame(), 0
    distinct = rows.unique(subset=[*key, *fields], keep="first", maintain_order=True)
    repeats = rows.height - distinct.height
    # keys with more than one version; where they are is written out for those only
    clashing = distinct.filter(pl.len().over(key) > 1)
    clash = clashing.group_by(key).agg(
        where=pl.concat_str(
            [
                pl.col("file_name").cast(pl.String),
                pl.lit(" row "),
                pl.col("row_number").cast(pl.String),
            ]
        ).str.join(", "),
    )
    bad = clashing.join(clash, on=key, how="inner")
    quarantine = _key_quarantine(
        bad,
        key,
        pl.concat_str(
            [
                pl.lit(f"{what} reused with different data (versions in: "),
                pl.col("where"),
                pl.lit(")"),
            ]
        ),
    )
    kept = distinct.join(clash.select(key), on=key, how="anti")
    return kept, quarantine, repeats


def _against_db(
    new: pl.DataFrame, stored: pl.DataFrame, key: list[str], fields: list[str], what: str
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Rows whose key is already stored: identical -> already known (dropped, not counted
    twice); different -> quarantined. Returns (really new rows, quarantine, known)."""
    if stored.is_empty():
        return new, pl.DataFrame(), 0
    stored = stored.rename({c: f"{c}__db" for c in stored.columns if c not in key})
    joined = new.join(stored, on=key, how="left")
    present = pl.col("__stored__db")
    same = pl.all_horizontal([pl.col(c).eq_missing(pl.col(f"{c}__db")) for c in fields])
    joined = joined.with_columns(__present=present.fill_null(False), __same=same)
    known = joined.filter(pl.col("__present") & pl.col("__same"))
    clash = joined.filter(pl.col("__present") & ~pl.col("__same"))
    quarantine = _key_quarantine(
        clash,
        key,
        pl.concat_str(
            [
                pl.lit(f"{what} already received with different data (file "),
                pl.col("file_name__db"),
                pl.lit(" row "),
                pl.col("row_number__db").cast(pl.String),
                pl.lit(")"),
            ]
        ),
    )
    fresh = joined.filter(~pl.col("__present")).select(new.columns)
    return fresh, quarantine, known.height


def _ids_frame(values: pl.Series, name: str) -> pl.DataFrame:
    """The distinct ``values`` as a one-column frame. A card's results mostly arrive
    together, so a run of equal ids is cut to one first (halves the time at 11 M)."""
    frame = values.rename(name).to_frame()
    runs = frame.filter(pl.col(name).ne_missing(pl.col(name).shift(1)))
    return runs.unique().cast({name: pl.String})


SPECIMEN_COMPARE = [c for c in SPECIMEN_FIELDS if c != "specimen_id"]
RESULT_COMPARE = ["value", "unit", "flag", "censored"]


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

    def load(kind: str, attr: str, dtype: type[pl.DataType] = pl.String) -> list[pl.DataFrame]:
        return [
            _tag(pl.read_parquet(getattr(s, attr)), s, dtype)
            for s in readable
            if s.planned.file.kind == kind
        ]

    # the raw rows stay in the staged parts (the commit reads them); an empty part of each
    # kind makes the commit's patterns match when a run has no file of that kind
    (ctx.work_dir / store.STAGED_DIR).mkdir(exist_ok=True)
    for kind in ("specimens", "results"):
        empty = pl.DataFrame(
            schema={
                "file_sha256": pl.String(),
                "row_number": pl.Int64(),
                **dict.fromkeys(COLUMNS[kind], pl.String()),
            }
        )
        store.write_part(empty, store.staged_part(ctx.work_dir, "raw", kind, "none", 0))

    q_schema = pl.Schema(
        {
            "file_sha256": pl.String(),
            "file_name": pl.String(),
            "kind": pl.String(),
            **QUARANTINE_SCHEMA,
        }
    )
    quarantine = [
        f.select(list(q_schema))
        for f in load("specimens", "quarantine_path") + load("results", "quarantine_path")
    ]

    tags = dict.fromkeys(["file_sha256", "file_name", "kind"], pl.Categorical())
    specimens = _concat(
        load("specimens", "good_path", pl.Categorical),
        pl.Schema({"row_number": pl.Int64(), **SPECIMEN_TYPES, **tags}),
    )
    results = _concat(
        load("results", "good_path", pl.Categorical),
        pl.Schema({"row_number": pl.Int64(), **RESULT_TYPES, **tags}),
    )
    staged_rows = (specimens.height, results.height)  # the checks below only drop rows
    known_rows = 0
    if not specimens.is_empty():
        specimens, q, repeats = _conflicts(
            specimens, ["specimen_id"], SPECIMEN_COMPARE, "specimen_id"
        )
        quarantine.append(q)
        known_rows += repeats
        stored = store.stored_cards_to_compare(
            ctx.db_path, _ids_frame(specimens["specimen_id"], "specimen_id")
        ).select("specimen_id", *SPECIMEN_COMPARE, "__stored", "file_name", "row_number")
        specimens, q, known = _against_db(
            specimens, stored, ["specimen_id"], SPECIMEN_COMPARE, "specimen_id"
        )
        quarantine.append(q)
        known_rows += known
    if not results.is_empty():
        key = ["specimen_id", "analyte", "replicate"]
        results, q, repeats = _conflicts(results, key, RESULT_COMPARE, "result")
        quarantine.append(q)
        known_rows += repeats
        stored = store.stored_results_to_compare(
            ctx.db_path, _ids_frame(results["specimen_id"], "specimen_id")
        )
        results, q, known = _against_db(results, stored, key, RESULT_COMPARE, "result")
        quarantine.append(q)
        known_rows += known

    q_all = _concat(
        [q.select(list(q_schema)) for q in quarantine if not q.is_empty()], q_schema
    ).cast(q_schema)
    store.write_part(q_all, out.quarantine)
    summary.quarantined_rows = (
        q_all.select("file_sha256", "row_number").n_unique() if not q_all.is_empty() else 0
    )
    summary.quarantine = q_all.head(200).drop("file_sha256").to_dicts()
    summary.already_known_rows = known_rows
    summary.specimen_rows = specimens.height
    summary.result_rows = results.height

    out = replace(
        out,
        specimens=_checked_part(ctx, out, "specimens", specimens, staged_rows[0], SPECIMEN_FIELDS),
        results=_checked_part(ctx, out, "results", results, staged_rows[1], RESULT_FIELDS),
    )
    # the evaluation keeps only its columns (the others are freed with the frame; reading
    # them back from the parts instead took 0.4 s at a million cards). Handed over in a
    # list that the evaluation empties: no reference here then keeps the frame alive (nor,
    # when the evaluation sorts it, the unsorted original) while the chunks run
    evaluated = [results.select(EVALUATED_RESULT_COLUMNS)]
    del results
    warnings = specimen_warnings(specimens)
    _evaluate_touched(ctx, config, specimens, evaluated, warnings, out, summary)
    store.write_part(_files_table(ctx, planned, staged, q_all), out.files)
    summary.files = [
        {
            "name": p.file.name,
            "kind": p.file.kind,
            "outcome": _file_outcome(p, staged),
            "rows": next((s.rows_read for s in staged if s.planned == p), 0),
            "rows_quarantined": int(
                q_all.filter(pl.col("file_sha256") == p.file.sha256)
                .select(pl.col("row_number").n_unique())
                .item()
            )
            if not q_all.is_empty()
            else 0,
            "error": next((s.error for s in staged if s.planned == p and s.error), None),
        }
        for p in planned
    ]
    return Batch(out, summary)


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
    which carry their file's hash (writing 11 M results again took 2 s); otherwise the
    checked rows are written as the run's part of that kind."""
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


def _files_table(
    ctx: RunContext, planned: list[PlannedFile], staged: list[StagedFile], q_all: pl.DataFrame
) -> pl.DataFrame:
    rows = []
    for s in staged:
        if s.changed:  # not recorded: the next run reads it as it is then
            continue
        f = s.planned.file
        n_q = (
            q_all.filter(pl.col("file_sha256") == f.sha256)
            .select(pl.col("row_number").n_unique())
            .item()
            if not q_all.is_empty()
            else 0
        )
        dest = s.planned.destination if s.readable else quarantine_destination(ctx, s.planned)
        rows.append(
            {
                "file_sha256": f.sha256,
                "file_name": f.name,
                "kind": f.kind,
                "status": "ingested" if s.readable else "unreadable",
                "rows_read": s.rows_read,
                "rows_quarantined": int(n_q),
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


#: the columns of results the evaluation reads
EVALUATED_RESULT_COLUMNS = ("specimen_id", "analyte", "replicate", "value", "flag", "censored")


def _evaluate_touched(
    ctx: RunContext,
    config: ScreeningConfig,
    specimens: pl.DataFrame,
    handed: list[pl.DataFrame],
    warnings: pl.DataFrame,
    out: store.RunFiles,
    summary: RunSummary,
) -> None:
    """Evaluate every card that has a new card row or new results, with all its results.
    ``handed``: the batch's checked results (``EVALUATED_RESULT_COLUMNS``), taken out of
    the list (the caller then holds no reference to them); ``warnings``: the new cards'
    warnings from validation, written with the evaluation's."""
    results = handed.pop()
    touched = _ids_frame(
        pl.concat([specimens["specimen_id"], results["specimen_id"]]), "specimen_id"
    )
    # one read-only connection for what the evaluation needs from the database
    with store.connect(ctx.db_path, read_only=True) as con:
        stored_cards = store.cards_by_id(con, touched, SPECIMEN_FIELDS)
        cards = pl.concat([specimens.select(SPECIMEN_FIELDS), stored_cards.cast(SPECIMEN_TYPES)])
        # the baby's first card: none of its other cards (stored or new) was collected earlier
        earlier = store.cards_of_babies(
            con, _ids_frame(cards["baby_id"], "baby_id"), ["specimen_id", "baby_id", "collected_at"]
        )
        stored_results = store.results_by_card(con, touched, EVALUATED_RESULT_COLUMNS)
        context = load_context(con, config, cards, earlier.select("specimen_id"))
    all_cards = pl.concat(
        [
            earlier.cast({"collected_at": pl.Datetime("us")}),
            cards.select("specimen_id", "baby_id", "collected_at"),
        ]
    ).unique()
    firsts = all_cards.sort("collected_at", "specimen_id").group_by("baby_id").first()
    cards = cards.with_columns(
        is_first_card=pl.col("specimen_id").is_in(firsts["specimen_id"].implode())
    )
    # the commit groups only these babies' calls to find their first card per condition,
    # and looks up the latest call only of these cards
    store.write_part(
        cards.group_by("baby_id").len().filter(pl.col("len") > 1).select("baby_id"),
        out.multi_card_babies,
    )
    store.write_part(stored_cards.select("specimen_id"), out.reevaluated_cards)
    all_results = pl.concat([stored_results, results], how="vertical_relaxed")

    pending = results.join(cards.select("specimen_id"), on="specimen_id", how="anti")
    summary.pending_results = pending.height
    summary.pending_cards = pending["specimen_id"].n_unique()
    summary.pending_specimens = sorted(pending["specimen_id"].unique().to_list())[:100]

    del results, pending, stored_results
    # sorted here, not in the batch evaluation: this scope would keep the unsorted copy
    if not all_results["specimen_id"].is_sorted():
        all_results = all_results.sort("specimen_id")
    done = evaluate_batch(cards, all_results, config, context, Path(str(out.calls)).parent)
    store.write_part(done.worklist, out.worklist)
    store.write_part(done.recalls, out.recalls)
    store.write_part(done.findings, out.findings)
    all_warnings = pl.concat([warnings, done.warnings])
    store.write_part(all_warnings, out.warnings)
    summary.warnings = all_warnings.height
    summary.warning_rows = all_warnings.sort("specimen_id", "column_name").head(200).to_dicts()
    summary.cards_evaluated = cards.height
    summary.calls = done.calls
    summary.cutoff_versions = done.versions
    urgent = done.recalls.filter(pl.col("urgency") == "urgent")
    summary.urgent_recalls = urgent.select(
        "specimen_id", "condition", "action", "reason"
    ).to_dicts()


def commit(ctx: RunContext, batch: Batch) -> RunSummary:
    """Write the computed run in one database transaction (with the repeat-card recalls
    its cards answer); returns the final summary."""
    counts = store.commit_run(
        ctx.db_path,
        batch.files,
        store.RunRecord(
            run_id=ctx.run_id,
            started_at=ctx.started_at,
            inbox=str(ctx.inbox),
            engine=ctx.engine,
            cutoff_versions=",".join(batch.summary.cutoff_versions),
            summary_json=batch.summary.to_json(),
        ),
        answers.verdicts,
    )
    summary = batch.summary
    summary.new_calls = counts.calls
    summary.new_recalls = counts.recalls
    summary.retests_opened = counts.retests_opened
    summary.retests_done = counts.retests_done
    summary.recalls_answered = counts.recalls_answered
    summary.recalls_escalated = counts.recalls_escalated
    return summary


def archive(ctx: RunContext, planned: list[PlannedFile]) -> list[str]:
    """Move every handled file out of the inbox (after the commit; see
    :func:`nbs.intake.archive.archive_files`); returns the files left there, with the reason."""
    return archive_files(ctx.inbox, ctx.db_path, ctx.run_id, planned)


def export_statistics(ctx: RunContext, summary: RunSummary) -> None:
    """Renew the officials' identifier-free statistics file beside the database.

    After the commit and the archiving: the run's data are safe whatever happens here, so
    a failure is reported in the summary (``stats_error``) and does not fail the run.
    """
    from nbs.stats import statistics

    target = statistics.default_stats_path(ctx.db_path)
    try:
        statistics.export_stats(ctx.db_path, target)
    except Exception as exc:  # the run is committed; say so, do not undo it
        summary.stats_error = f"{type(exc).__name__}: {exc}"
    else:
        summary.stats_file = str(target)


def run_local(
    inbox: Path,
    db_path: Path,
    config: ScreeningConfig,
    progress: Callable[[str], None] | None = None,
) -> RunSummary:
    """The whole run in-process, without Prefect: the same steps as the flow.

    ``progress`` receives a short message at each step (the CLI shows it). A failure is
    raised as :class:`nbs.run.errors.RunFailed`, saying whether the run's data were committed.
    """
    say = progress or (lambda message: None)
    t0 = time.perf_counter()
    with reported(RunTracker()) as tracker, open_run(inbox, db_path, "local") as ctx:
        tracker.started(ctx.db_path, ctx.run_id)

        def step(message: str) -> None:
            tracker.at(message)
            say(message)

        step("finding the inbox files")
        planned, ignored = plan_files(ctx)
        new = [p for p in planned if p.status == "new"]
        staged = []
        for i, p in enumerate(new, start=1):
            step(f"reading and validating file {i}/{len(new)}: {p.file.name}")
            staged.append(stage_file(p, ctx.work_dir, config))
        crash_point("after-staging")
        step("checking against the database and evaluating")
        batch = build_batch(ctx, planned, staged, config, ignored)
        crash_point("after-evaluation")
        step(COMMIT_STEP)
        summary = commit(ctx, batch)
        crash_point("after-commit")
        step("archiving files")
        summary.not_archived = archive(ctx, planned)
        crash_point("before-export")
        step("writing the officials' statistics file")
        export_statistics(ctx, summary)
    summary.seconds = round(time.perf_counter() - t0, 3)
    return summary
