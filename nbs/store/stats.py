"""The statistics views' reads (the yearly figures, the officials' export, the report and
the statistics page), and new DuckDB files written from frames."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from nbs.store.connection import Connection, connect, fetch, query, transaction


def yield_by_year(db_path: Path, first: int, last: int) -> pl.DataFrame:
    """``yield_by_year`` for the years ``first`` to ``last``."""
    return query(db_path, "SELECT * FROM yield_by_year WHERE year BETWEEN ? AND ?", [first, last])


def quality_indicators(db_path: Path, first: int, last: int) -> pl.DataFrame:
    """``quality_indicators`` for the years, by year and indicator."""
    return query(
        db_path,
        "SELECT year, indicator, condition, value, numerator, denominator, unit, qi "
        "FROM quality_indicators WHERE year BETWEEN ? AND ? "
        "ORDER BY year, seq, condition NULLS FIRST",
        [first, last],
    )


def unsatisfactory_by_reason(db_path: Path, first: int, last: int) -> pl.DataFrame:
    """``unsatisfactory_by_reason`` for the years, by year and reason."""
    return query(
        db_path,
        "SELECT * FROM unsatisfactory_by_reason WHERE year BETWEEN ? AND ? ORDER BY year, reason",
        [first, last],
    )


def marker_percentiles(db_path: Path, first: int, last: int) -> pl.DataFrame:
    """``marker_percentiles`` of the months of the years, by month, condition and marker."""
    return query(
        db_path,
        "SELECT * FROM marker_percentiles WHERE year(month) BETWEEN ? AND ? "
        "ORDER BY month, condition, marker",
        [first, last],
    )


def yield_newest_first(db_path: Path) -> pl.DataFrame:
    """Every row of ``yield_by_year``, the latest year first (the statistics page)."""
    return query(db_path, "SELECT * FROM yield_by_year ORDER BY year DESC, condition")


def quality_newest_first(db_path: Path) -> pl.DataFrame:
    """Every quality indicator, the latest year first (the statistics page)."""
    return query(
        db_path,
        "SELECT year, indicator, condition, value, unit, numerator, denominator, qi "
        "FROM quality_indicators ORDER BY year DESC, seq, condition NULLS FIRST",
    )


def missed_cases(db_path: Path, first: int, last: int) -> pl.DataFrame:
    """``missed_cases`` (QI 8, sensitivity) for the years of birth, by year and condition."""
    return query(
        db_path,
        "SELECT * FROM missed_cases WHERE year BETWEEN ? AND ? ORDER BY year, condition",
        [first, last],
    )


def missed_newest_first(db_path: Path) -> pl.DataFrame:
    """Every row of ``missed_cases``, the latest year first (the statistics page)."""
    return query(db_path, "SELECT * FROM missed_cases ORDER BY year DESC, condition")


def submitter_month(db_path: Path, month: dt.date) -> pl.DataFrame:
    """``submitter_months`` of one month: each submitting unit's row and the programme's
    (``submitter`` NULL), the programme first."""
    return query(
        db_path,
        "SELECT * FROM submitter_months WHERE month = ? ORDER BY submitter NULLS FIRST",
        [month],
    )


def first_collection_year(db_path: Path) -> int | None:
    """The year the first stored card was collected (None without cards)."""
    first = query(db_path, "SELECT min(year(collected_at)) FROM specimens").item()
    return None if first is None else int(first)


def timeliness_hours(db_path: Path, year: int) -> pl.DataFrame:
    """Hours only, no card: each card of the year's age at collection (``age_h``) and
    transit time (``transit_h``)."""
    return query(
        db_path,
        "SELECT date_diff('minute', birth_at, collected_at) / 60.0 AS age_h, "
        "date_diff('minute', collected_at, received_at) / 60.0 AS transit_h "
        "FROM specimens WHERE year(collected_at) = ?",
        [year],
    )


def submitter_counts(con: Connection, first: int, last: int) -> pl.DataFrame:
    """Cards and unsatisfactory cards per submitting unit and year (not suppressed)."""
    return fetch(
        con,
        "SELECT year(collected_at) AS year, coalesce(submitter, 'unknown') AS submitter, "
        "count(*) AS cards, count(*) FILTER (WHERE specimen_quality <> 'ok' "
        "OR t.specimen_id IS NOT NULL) AS unsatisfactory "
        "FROM specimens LEFT JOIN too_old_cards t USING (specimen_id) "
        "WHERE year(collected_at) BETWEEN ? AND ? GROUP BY ALL ORDER BY 1, 2",
        [first, last],
    )


def submitters_by_year(db_path: Path, first: int, last: int) -> pl.DataFrame:
    """:func:`submitter_counts` of the years, in a connection of its own."""
    with connect(db_path, read_only=True) as con:
        return submitter_counts(con, first, last)


@dataclass(frozen=True)
class ExportReads:
    """What the officials' export reads, in one read-only connection."""

    years: tuple[int, int] | None
    yield_by_year: pl.DataFrame
    quality_indicators: pl.DataFrame
    unsatisfactory_by_reason: pl.DataFrame
    marker_percentiles: pl.DataFrame  # months with at least ``min_babies`` babies
    submitters: pl.DataFrame  # :func:`submitter_counts` of the years
    missed_cases: pl.DataFrame
    schema_version: int

    def table(self, statistic: str) -> pl.DataFrame:
        """What was read for the statistic of that name (``nbs.stats.registry``)."""
        return {
            "yield_by_year": self.yield_by_year,
            "quality_indicators": self.quality_indicators,
            "unsatisfactory_by_reason": self.unsatisfactory_by_reason,
            "marker_percentiles": self.marker_percentiles,
            "submitter_quality": self.submitters,
            "missed_cases": self.missed_cases,
        }[statistic]


def export_reads(db_path: Path, min_babies: int) -> ExportReads:
    """The statistics views whole, and the submitters' counts of every year with cards."""
    # one read-only connection for every read: each opening of the file costs time
    with connect(db_path, read_only=True) as con:
        span = fetch(
            con,
            "SELECT min(year(collected_at)) AS lo, max(year(collected_at)) AS hi FROM specimens",
        ).row(0)
        years = None if span[0] is None else (int(span[0]), int(span[1]))
        first, last = years or (0, -1)
        return ExportReads(
            years=years,
            yield_by_year=fetch(con, "SELECT * FROM yield_by_year"),
            quality_indicators=fetch(con, "SELECT * FROM quality_indicators"),
            unsatisfactory_by_reason=fetch(con, "SELECT * FROM unsatisfactory_by_reason"),
            marker_percentiles=fetch(
                con, "SELECT * FROM marker_percentiles WHERE babies >= ?", [min_babies]
            ),
            submitters=submitter_counts(con, first, last),
            missed_cases=fetch(con, "SELECT * FROM missed_cases"),
            schema_version=fetch(
                con, "SELECT coalesce(max(version), 0) FROM schema_migrations"
            ).item(),
        )


#: the storage format of files other programs open (the officials' statistics file): the
#: DuckDB 1.x command-line tool a new user installs reads it; the default of DuckDB 2 it
#: refuses ("can only read versions between 64 and 68")
PORTABLE_STORAGE_VERSION = "v1.2.0"


def write_tables(
    db_path: Path, tables: dict[str, pl.DataFrame], storage_version: str | None = None
) -> None:
    """Create a new DuckDB file holding the given frames as tables (one transaction), in
    the given storage format (default: this DuckDB's own)."""
    if storage_version is None:
        with connect(db_path) as con, transaction(con):
            _create_tables(con, tables, "")
        return
    # in memory: the file is attached in the chosen format
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    try:
        quoted = str(db_path).replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS out (STORAGE_VERSION '{storage_version}')")
        with transaction(con):
            _create_tables(con, tables, "out.")
        con.execute("DETACH out")
    finally:
        con.close()


def _create_tables(con: Connection, tables: dict[str, pl.DataFrame], at: str) -> None:
    for name, frame in tables.items():
        con.register("_frame", frame.to_arrow())
        con.execute(f'CREATE TABLE {at}"{name}" AS SELECT * FROM _frame')
        con.unregister("_frame")


def load_generated(db_path: Path, frames: dict[str, pl.DataFrame], sql: str) -> None:
    """Run a generating SQL script with the given frames registered, in one transaction
    (synthetic cohorts for tests and benchmarks; never used on a laboratory's data)."""
    with connect(db_path) as con:
        for name, frame in frames.items():
            con.register(name, frame.to_arrow())
        with transaction(con):
            con.execute(sql)
