"""A run's work parts: the Parquet files a computed run leaves in its work folder for the
commit to read (the staged files' rows, the calls, the worklist, the recalls...)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

#: where staged files leave their Parquet parts, inside a run's work folder
STAGED_DIR = "staged"


def staged_part(
    work_dir: Path, what: str, kind: str, sha256: str = "*", index: int | None = None
) -> Path:
    """A Parquet part a staged file leaves in the run's work folder (``what``: raw, good
    or quarantine; block ``index``), or with the defaults a glob pattern of such parts."""
    block = "*" if index is None else f"{index:05d}"
    return work_dir / STAGED_DIR / f"{what}-{kind}-{sha256}-{block}.parquet"


def write_part(frame: pl.DataFrame, path: Path) -> None:
    """Write a run's work part. Without column statistics: the commit reads every row of
    a part, so no reader skips anything by them, and computing them costs a quarter of
    the write. Snappy, not zstd: a part is read once, soon after, from memory; zstd's
    smaller file costs about 40 % more CPU to write and 20 % more to insert."""
    frame.write_parquet(path, statistics=False, compression="snappy")


@dataclass(frozen=True)
class RunFiles:
    """Parquet files of a computed run, written by the pipeline and read by the commit."""

    files: Path
    raw_specimens: Path
    raw_results: Path
    quarantine: Path
    specimens: Path
    warnings: Path
    results: Path
    calls: Path  # the calls, each with its card's collected_at (the commit joins nothing for it)
    worklist: Path
    recalls: Path
    findings: Path  # cards with a specimen problem or that break a rule (answer_blocker)
    markers: Path  # (condition, marker) of the configuration, for the statistics views
    multi_card_babies: Path  # babies with more than one card among the cards evaluated
    reevaluated_cards: Path  # cards stored before the run and evaluated again
    plates: Path  # the plates the run reads first, with their verdicts
    qc: Path  # those plates' control, calibrator and blank wells, scored
    released: Path  # accepted plates whose cards the run evaluates again

    @classmethod
    def in_dir(cls, folder: Path) -> RunFiles:
        """The standard file names inside a run's work folder. ``calls`` and the raw rows
        are patterns: the calls are written in parts, a chunk of cards at a time, and the
        raw rows as each file was staged, a block of rows at a time (bounded memory)."""
        files = {name: folder / f"{name}.parquet" for name in cls.__dataclass_fields__}
        files["calls"] = folder / "calls" / "part-*.parquet"
        files["raw_specimens"] = staged_part(folder, "raw", "specimens")
        files["raw_results"] = staged_part(folder, "raw", "results")
        return cls(**files)


def read_parquet(path: Path) -> str:
    """SQL reading a Parquet file (or a pattern of parts) of the run's work folder."""
    return "read_parquet('" + str(path).replace("'", "''") + "')"
