"""The programme's yearly figures, read from the statistics views, and the officials'
identifier-free statistics file.

Definitions (also in the README and the annual report):

* screened: babies (not cards) whose first evaluated card for the condition was collected
  that year; every other count is of babies of that cohort;
* recall rate = referrals / screened; PPV = confirmed / referrals (undefined without
  referrals); incidence = confirmed / screened (per 100,000).
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from nbs import settings, store
from nbs.run.faults import crash_point
from nbs.stats import registry
from nbs.stats.registry import STATISTICS, Statistic
from nbs.store import stats as stats_store

#: yield's counts and rates (kept here by name for the report and the tests)
YIELD_COUNTS = registry.YIELD_COUNTS
YIELD_RATES = registry.YIELD_RATES
#: the terms officials read, with their definitions
DEFINITIONS = registry.definitions()


def years_between(first: int, last: int) -> list[int]:
    """The years asked for, in order; refuses an empty range."""
    if last < first:
        raise ValueError(f"the range {first}-{last} is empty")
    return list(range(first, last + 1))


def read(
    statistic: Statistic, db: Path, first: int, last: int, conditions: list[str] | None = None
) -> pl.DataFrame:
    """The statistic for the years ``first`` to ``last``, read by its store function; a
    zero-filled one gets a row for every year and condition (``conditions`` and those
    found), with zeros and undefined (null) rates, rather than no row."""
    reader: Callable[[Path, int, int], pl.DataFrame] = getattr(stats_store, statistic.source)
    found = reader(db, first, last)
    if not statistic.zero_filled:
        return found
    codes = sorted(set(conditions or ()) | set(found["condition"].to_list()))
    grid = pl.DataFrame({"year": years_between(first, last)}, schema={"year": pl.Int64}).join(
        pl.DataFrame({"condition": codes}, schema={"condition": pl.String}), how="cross"
    )
    table = grid.join(found.cast({"year": pl.Int64}), on=["year", "condition"], how="left")
    counts = [c for c in table.columns if c in YIELD_COUNTS]
    return table.with_columns(pl.col(counts).fill_null(0).cast(pl.Int64)).sort("year", "condition")


def yield_table(db: Path, first: int, last: int, conditions: list[str]) -> pl.DataFrame:
    """``yield_by_year`` for every year and condition asked for (:func:`read`)."""
    return read(registry.YIELD, db, first, last, conditions)


def quality_table(db: Path, first: int, last: int) -> pl.DataFrame:
    """``quality_indicators`` for the years (long form: one row per year and indicator)."""
    return read(registry.QUALITY, db, first, last)


def unsatisfactory_table(db: Path, first: int, last: int) -> pl.DataFrame:
    """Cards by quality code and year (``ok`` included, as the denominator)."""
    return read(registry.UNSATISFACTORY, db, first, last)


def marker_table(db: Path, first: int, last: int) -> pl.DataFrame:
    """Monthly percentiles of screen-negative first punches per condition and marker."""
    return read(registry.MARKERS, db, first, last)


def page_tables(db: Path) -> list[tuple[Statistic, list[dict[str, object]]]]:
    """The statistics page: each statistic shown there, with every year's rows (newest
    first)."""
    shown = []
    for statistic in STATISTICS:
        if statistic.page_source:
            reader: Callable[[Path], pl.DataFrame] = getattr(stats_store, statistic.page_source)
            shown.append((statistic, reader(db).rows(named=True)))
    return shown


def suppress_small(
    frame: pl.DataFrame,
    counts: list[str],
    rates: list[str],
    threshold: int,
    marks: tuple[str, str] | None = None,
    only_where_set: str | None = None,
) -> pl.DataFrame:
    """Counts from 1 to ``threshold - 1`` become null, and so does every rate of a row with
    a suppressed count; ``suppressed`` says which rows were touched. Zero stays zero. With
    ``marks`` (for publication) the hidden cells show those texts instead, e.g. ``<5`` for a
    count and ``s`` for a rate (the columns become text). ``only_where_set``: only rows
    where that column is set are touched."""
    if frame.is_empty() or threshold <= 1:
        return frame.with_columns(suppressed=pl.lit(False))
    count_mark, rate_mark = marks or (None, None)
    subject = pl.lit(True) if only_where_set is None else pl.col(only_where_set).is_not_null()

    def is_small(column: str) -> pl.Expr:
        return subject & (pl.col(column) > 0) & (pl.col(column) < threshold)

    def hide(when: pl.Expr, column: str, mark: str | None) -> pl.Expr:
        value = pl.col(column) if mark is None else pl.col(column).cast(pl.String)
        return pl.when(when).then(pl.lit(mark)).otherwise(value).alias(column)

    small = pl.any_horizontal([is_small(c) for c in counts])
    return frame.with_columns(
        *[hide(is_small(c), c, count_mark) for c in counts],
        *[hide(small, r, rate_mark) for r in rates],
        suppressed=small,
    )


@dataclass(frozen=True)
class StatsExport:
    """What the officials' file holds."""

    path: Path
    years: tuple[int, int] | None
    tables: dict[str, int]


def default_stats_path(db: Path) -> Path:
    """Where the officials' file is written by default: ``NAME.stats.duckdb`` beside ``db``."""
    return db.with_name(db.stem + ".stats.duckdb")


def export_stats(db: Path, out: Path, min_cell: int | None = None) -> StatsExport:
    """Write the identifier-free statistics file for health officials.

    Aggregates only: every statistic of the registry, small cells suppressed where the
    registry says so (``min_cell``, by default the setting ``NBS_MIN_CELL``). No baby or
    specimen id, no date of birth, no free text from a card. Written to a temporary file
    and renamed into place, so an official who has the previous file open keeps reading
    it undisturbed.
    """
    min_cell = settings.current().min_cell if min_cell is None else min_cell
    read = store.export_reads(db, min_cell)
    tables = {s.name: _exported(s, read.table(s.name), min_cell) for s in STATISTICS}
    tables |= {
        "definitions": pl.DataFrame(
            {"term": list(DEFINITIONS), "definition": list(DEFINITIONS.values())}
        ),
        "about": pl.DataFrame(
            {
                "generated_at": [store.utc_now()],
                "source_schema_version": [read.schema_version],
                "min_cell": [min_cell],
                "note": [
                    "aggregated statistics only: no baby or specimen identifiers, no dates "
                    f"of birth; submitter-level counts below {min_cell} suppressed; marker "
                    f"months with fewer than {min_cell} babies left out"
                ],
            }
        ),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_temporaries(out)
    tmp = _temporary(out, "tmp")
    _remove_temporary(tmp)
    try:
        store.write_tables(tmp, tables, store.PORTABLE_STORAGE_VERSION)
        crash_point("inside-export")
        os.replace(tmp, out)
    except BaseException:  # a full disk, an interruption: no half-written file is left
        _remove_temporary(tmp)
        raise
    _write_parquet(parquet_folder(out), tables)
    return StatsExport(out, read.years, {name: frame.height for name, frame in tables.items()})


def _exported(statistic: Statistic, frame: pl.DataFrame, min_cell: int) -> pl.DataFrame:
    """A statistic as the officials' file holds it: small counts suppressed where the
    registry says so (rows below ``min_cell`` babies are left out by the store's read)."""
    rule = statistic.suppression
    if rule is None or not rule.always or not rule.counts:
        return frame
    return suppress_small(
        frame, list(rule.counts), list(rule.rates), min_cell, None, rule.only_where_set
    )


def parquet_folder(out: Path) -> Path:
    """The same statistics as Parquet files, one per table: ``NAME.stats.parquet/``."""
    return out.with_name(out.name.removesuffix(".duckdb") + ".parquet")


def _write_parquet(folder: Path, tables: dict[str, pl.DataFrame]) -> None:
    """The tables as Parquet in a new folder, swapped in for the previous one. A reader
    sees the old folder or the new one whole: on Linux the two are exchanged in one step;
    elsewhere the folder is missing for the instant between two renames."""
    fresh = _temporary(folder, "tmp")
    shutil.rmtree(fresh, ignore_errors=True)
    try:
        fresh.mkdir(parents=True)
        for name, frame in tables.items():
            frame.write_parquet(fresh / f"{name}.parquet")
        crash_point("inside-parquet")
        _swap_in(fresh, folder)
    finally:  # the new folder if it was not swapped in, else the previous one
        shutil.rmtree(fresh, ignore_errors=True)


def _swap_in(fresh: Path, folder: Path) -> None:
    """``fresh`` becomes ``folder``; where the two were exchanged, ``fresh`` then holds the
    previous tables."""
    if folder.exists() and _exchange(fresh, folder):
        return
    old = _temporary(folder, "old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    try:
        os.replace(fresh, folder)
    except BaseException:  # the previous tables back rather than none
        if old.exists():
            os.replace(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Exchange two folders in one step (Linux's ``renameat2`` with ``RENAME_EXCHANGE``,
    which Python does not offer); False where the C library, the kernel or the file system
    cannot, and the caller renames twice."""
    if sys.platform != "linux":
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a C library without it (glibc before 2.28, musl)
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _temporary(path: Path, suffix: str) -> Path:
    """This process's temporary beside ``path``: ``.NAME.PID.SUFFIX``."""
    return path.with_name(f".{path.name}.{os.getpid()}.{suffix}")


def _remove_temporary(tmp: Path) -> None:
    """A temporary statistics file and DuckDB's write-ahead log of it."""
    tmp.unlink(missing_ok=True)
    tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)


def _remove_dead_temporaries(out: Path) -> None:
    """Temporaries of exports killed before they could remove them (``kill -9``, a power
    cut): those of a process that is no longer running. A previous Parquet folder set
    aside by an export killed before it renamed the new one in is put back."""
    for tmp in _dead(out, "tmp"):
        _remove_temporary(tmp)
    folder = parquet_folder(out)
    for tmp in _dead(folder, "tmp"):
        shutil.rmtree(tmp, ignore_errors=True)
    for old in _dead(folder, "old"):
        if folder.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, folder)


def _dead(path: Path, suffix: str) -> list[Path]:
    """The temporaries ``.NAME.PID.SUFFIX`` of ``path`` whose process is gone."""
    found = []
    for tmp in path.parent.glob(f".{path.name}.*.{suffix}"):
        pid = tmp.name[len(path.name) + 2 : -len(suffix) - 1]
        if pid.isdigit() and not _running(int(pid)):
            found.append(tmp)
    return found


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def report_year_range(db: Path, year: int, back: int) -> tuple[int, int]:
    """The trend's range: ``back`` years before ``year`` (not before the first data)."""
    first_data = store.first_collection_year(db)
    start = year - back
    if first_data is not None:
        start = max(start, min(first_data, year))
    return start, year
