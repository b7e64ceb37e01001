"""Time the statistics views over ten synthetic years of a million babies each.

    python -m benchmarks.stats_views [--years 10] [--babies 1000000] [--keep DIR]

Builds the history with :mod:`data_samples.stats_cohort` (inside DuckDB), then times each
view (best and median of three, each on a fresh connection as ``nbs stats`` would open
it), the officials' export, and ``marker_percentiles`` on one year with marker values.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics as stats
import tempfile
import time
from pathlib import Path

from data_samples.stats_cohort import PANEL, Cohort, RecallPlan, write_cohort
from nbs import store
from nbs.stats import statistics

VIEWS = {
    "yield_by_year": "SELECT * FROM yield_by_year",
    "quality_indicators": "SELECT * FROM quality_indicators",
    "unsatisfactory_by_reason": "SELECT * FROM unsatisfactory_by_reason",
}


def plans(years: list[int], babies: int) -> dict[tuple[int, str], RecallPlan]:
    """About 0.2 % referred and 0.3 % asked for a repeat card per condition and year,
    with a few confirmed cases (orders of magnitude of European programmes)."""
    scale = babies / 1_000_000
    out = {}
    for year in years:
        for k, condition in enumerate(PANEL):
            out[(year, condition)] = RecallPlan(
                confirmed=int((20 + 10 * k) * scale),
                false_positive=int((300 + 50 * k) * scale),
                open_referrals=int(5 * scale),
                repeat_requests=int((400 + 100 * k) * scale),
            )
    return out


def timed(db: Path, sql: str, repeat: int = 3) -> tuple[float, float, int]:
    """Best and median wall seconds of a query, and its row count."""
    times, rows = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = store.query(db, sql).height
        times.append(time.perf_counter() - t0)
    return min(times), stats.median(times), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--babies", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="keep the databases in this folder")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="nbs-bench-stats-"))
    root.mkdir(parents=True, exist_ok=True)
    years = list(range(2025 - args.years + 1, 2026))
    try:
        db = root / "history.duckdb"
        db.unlink(missing_ok=True)
        t0 = time.perf_counter()
        cohort = Cohort(years=dict.fromkeys(years, args.babies), plans=plans(years, args.babies))
        write_cohort(db, cohort, with_markers=False)
        built = time.perf_counter() - t0
        size = db.stat().st_size / 2**30
        print(
            f"history: {args.years} years x {args.babies:,} babies "
            f"({args.years * args.babies:,} cards, {args.years * args.babies * len(PANEL):,} "
            f"screened rows) built in {built:.1f} s, {size:.2f} GiB"
        )
        for name, sql in VIEWS.items():
            best, median, rows = timed(db, sql)
            print(f"  {name:<26} best {best:.3f} s  median {median:.3f} s  ({rows} rows)")
        best, median, rows = timed(db, "SELECT * FROM yield_by_year WHERE year = 2025")
        print(f"  {'yield_by_year, one year':<26} best {best:.3f} s  median {median:.3f} s")
        t0 = time.perf_counter()
        statistics.export_stats(db, root / "history.stats.duckdb")
        print(f"  officials' export (all tables)  {time.perf_counter() - t0:.2f} s")

        one = root / "one-year.duckdb"
        one.unlink(missing_ok=True)
        t0 = time.perf_counter()
        write_cohort(one, Cohort(years={2025: args.babies}, plans=plans([2025], args.babies)))
        print(
            f"one year with marker values ({args.babies:,} babies, "
            f"{args.babies * len(PANEL):,} calls and first punches) built in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        best, median, rows = timed(one, "SELECT * FROM marker_percentiles")
        print(
            f"  {'marker_percentiles':<26} best {best:.3f} s  median {median:.3f} s  ({rows} rows)"
        )
        month = "SELECT * FROM marker_month_stats(DATE '2025-06-01', DATE '2025-06-01')"
        best, median, rows = timed(one, month)
        print(f"  {'one month recomputed (run)':<26} best {best:.3f} s  median {median:.3f} s")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"peak memory of this process: {peak:.2f} GiB")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
