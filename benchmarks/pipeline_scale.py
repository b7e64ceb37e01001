"""End-to-end screening runs at national scale, against the floor and a naive baseline.

    python -m benchmarks.pipeline_scale [--sizes 10000 100000] [--days 365] [--day]
                                        [--prefect-day] [--repeat 1] [--pandas-path DIR]

For each size: a synthetic inbox from :mod:`data_samples.generator` (CSV, ~11 results per
card, births spread over ``--days``: a programme's year by default), then, each in its own
process (wall time and peak memory of that process):

* ``nbs run --engine local`` end to end;
* the floor: read the same files with polars and write the same number of rows to a
  DuckDB file (cards, raw rows, results, one call per card and condition), no logic;
  and the floor with all the rows a run writes: also ``screened``'s first card per baby
  and condition (one more row per card and condition); and the floor again with the
  allocator setting ``nbs`` gives polars (keep freed memory 5 s), which speeds it too;
* a row-wise pandas script of the first-tier rules (``iterrows``, what a lab script
  would be), writing its calls to DuckDB; its pandas comes from ``--pandas-path`` (see
  :func:`pandas_environment`).

Prints the figures and the ratios run/floor and pandas/run; with ``--repeat N`` the run and
the floor are timed N times back to back and the median pair is printed, with the range.
Also the CPU seconds (user and system, every thread) of the run and the floor: a second
view of the same pair, which a busy neighbour on a shared machine moves differently from
the wall time.
``--day`` times a Luxembourg day (30 cards) on the local engine; ``--prefect-day`` the same
through a running Prefect server (started here, on loopback). Asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from nbs.console import command as nbs
from nbs.run import allocator

CONDITIONS = 7

FLOOR = r"""
import sys, duckdb, polars as pl
inbox, db = sys.argv[1], sys.argv[2]
cards = pl.read_csv(f"{inbox}/batch.specimens.csv", infer_schema=False)
results = pl.read_csv(f"{inbox}/batch.results.csv", infer_schema=False)
calls = cards.select("specimen_id", "baby_id").join(
    pl.DataFrame({"condition": [f"C{i}" for i in range(7)]}), how="cross"
).with_columns(call=pl.lit("negative"), reason=pl.lit("floor"))
tables = [("raw_cards", cards), ("raw_results", results), ("cards", cards),
          ("results", results), ("calls", calls)]
if sys.argv[3:] == ["all"]:  # and the first card per baby and condition, as the run keeps
    tables.append(("screened", calls.join(cards.select("specimen_id", "collected_at"),
                                          on="specimen_id").drop("call", "reason")))
con = duckdb.connect(db)
for name, frame in tables:
    con.register("f", frame.to_arrow())
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM f")
    con.unregister("f")
con.close()
"""

PANDAS = r"""
import sys, duckdb, pandas as pd
inbox, db = sys.argv[1], sys.argv[2]
cards = pd.read_csv(f"{inbox}/batch.specimens.csv")
results = pd.read_csv(f"{inbox}/batch.results.csv")
first = results[results["replicate"] == 1]
values = {}
for _, r in first.iterrows():  # what a lab script does: one row at a time
    values.setdefault(r["specimen_id"], {})[r["analyte"]] = r["value"]
calls = []
def tier(v, retest, repeat, referral, high=True):
    if v is None or v != v:
        return None
    if high:
        return 3 if v >= referral else 2 if v >= repeat else 1 if v >= retest else 0
    return 3 if v <= referral else 2 if v <= repeat else 1 if v <= retest else 0
NAMES = {0: "negative", 1: "retest", 2: "repeat_specimen", 3: "referral"}
for _, c in cards.iterrows():
    v = values.get(c["specimen_id"], {})
    age = (pd.Timestamp(c["collected_at"]) - pd.Timestamp(c["birth_at"])).total_seconds() / 3600
    ga = c["gestational_age_weeks"]
    bw = c["birth_weight_g"]
    phe, tyr = v.get("PHE"), v.get("TYR")
    t = [tier(phe, 120, 150, 240)]
    if phe == phe and tyr and tyr == tyr:
        t.append(tier(phe / tyr, 1.5, 1.7, 1.7))
    pku = min(x for x in t if x is not None) if all(x is not None for x in t) else None
    tsh = v.get("TSH")
    lim = (15, 20, 40) if age < 72 else (12, 15, 20) if age < 120 else (8, 10, 20)
    ch = tier(tsh, *lim)
    ohp = v.get("OHP17")
    if ga == ga and ga < 32:
        lim = (90, 110, 200)
    elif bw == bw and bw < 2500:
        lim = (45, 55, 100)
    else:
        lim = (25, 30, 60)
    cah = tier(ohp, *lim)
    c8, c10, c2 = v.get("C8"), v.get("C10"), v.get("C2")
    mcad = tier(c8, 0.25, 0.32, 0.5)
    if mcad and c10 and c2:
        ratio = max(tier(c8 / c10, 1.6, 1.6, 1.6) or 0, tier(c8 / c2, 0.02, 0.02, 0.02) or 0)
        mcad = min(mcad, ratio)
    cf = tier(v.get("IRT"), 50, 60, 124) if str(c["consent_cf"]).lower() == "true" else None
    smn1, rpp30 = v.get("SMN1"), v.get("RPP30")
    present = smn1 is not None and smn1 == smn1 and smn1 < 36
    sma = 0 if present else (3 if rpp30 and rpp30 <= 30 else None)
    scid = tier(v.get("TREC"), 25, 15, 6, high=False)
    for cond, level in (("PKU", pku), ("CH", ch), ("CAH", cah), ("MCAD", mcad), ("CF", cf),
                        ("SMA", sma), ("SCID", scid)):
        calls.append((c["specimen_id"], c["baby_id"], cond,
                      "not_evaluated" if level is None else NAMES[level]))
out = pd.DataFrame(calls, columns=["specimen_id", "baby_id", "condition", "call"])
con = duckdb.connect(db)
for name, frame in (("cards", cards), ("results", results), ("calls", out)):
    con.register("f", frame)
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM f")
    con.unregister("f")
con.close()
"""


class Timing(NamedTuple):
    """A child process: wall seconds, peak resident memory (GiB), CPU seconds (user and
    system, all its threads and its own children)."""

    wall: float
    peak: float
    cpu: float


def timed(args: list[str], env: dict[str, str] | None = None) -> Timing:
    """Wall seconds, peak resident memory and CPU seconds of a child process."""
    wrapper = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter()\n"
        "r = subprocess.run(sys.argv[1:])\n"
        "w = time.perf_counter() - t\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps({'wall': w, 'peak': u.ru_maxrss / 2**20,\n"
        "                  'cpu': u.ru_utime + u.ru_stime, 'rc': r.returncode}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *args],
        env=env or os.environ.copy(),
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    if figures["rc"] != 0:
        raise RuntimeError(f"{args[:4]} failed: {out.stderr[-2000:]}")
    return Timing(figures["wall"], figures["peak"], figures["cpu"])


#: how to give the row-wise baseline its pandas without slowing the run measured
PANDAS_HINT = "pip install --target DIR pandas, then --pandas-path DIR"


def pandas_environment(path: Path | None) -> dict[str, str] | None:
    """The environment the row-wise baseline runs in: with ``path`` (pandas installed there
    alone, ``pip install --target``) on its ``PYTHONPATH``, else this environment's own
    pandas if it has one; None when neither has pandas.

    pandas is kept out of the environment ``nbs`` runs in because pandera imports it
    whenever it is installed: every ``nbs`` process would then start ~0.3 s slower than a
    laboratory's install, which has no pandas."""
    env = os.environ.copy()
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(path.resolve()), env.get("PYTHONPATH")) if p
        )
    found = subprocess.run([sys.executable, "-c", "import pandas"], env=env, capture_output=True)
    if found.returncode == 0:
        return env
    if path is not None:
        raise SystemExit(f"--pandas-path {path}: no pandas there ({PANDAS_HINT})")
    return None


def floor(inbox: Path, db: Path, *rows: str) -> list[str]:
    """The floor's command: read ``inbox``, write to ``db`` (``"all"``: every row a run
    writes)."""
    return [sys.executable, "-c", FLOOR, str(inbox), str(db), *rows]


def median_and_range(ratios: list[float]) -> str:
    """``median 1.83x, range 1.74-1.96x`` of some ratios (the median of an even count is
    the upper middle one, as the median pair is)."""
    ordered = sorted(ratios)
    return f"median {ordered[len(ordered) // 2]:.2f}x, range {ordered[0]:.2f}-{ordered[-1]:.2f}x"


class Pair(NamedTuple):
    """A run and its floor, timed back to back; then the floor again with the allocator
    setting the ``nbs`` command gives polars (``nbs.run.allocator.tune_polars_allocator``),
    which the floor gains from too."""

    run: Timing
    floor: Timing
    floor_tuned: Timing

    @property
    def ratio(self) -> float:
        return self.run.wall / self.floor.wall

    @property
    def tuned_ratio(self) -> float:
        return self.run.wall / self.floor_tuned.wall

    @property
    def cpu_ratio(self) -> float:
        return self.run.cpu / self.floor.cpu


def run_and_floor(inbox: Path, root: Path, size: int, env: dict[str, str]) -> Pair:
    """One run and one floor, one after the other, each on fresh files."""
    copy = root / f"copy-{size}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(inbox, copy)
    dbs = [root / f"run-{size}.duckdb", root / f"floor-{size}.duckdb"]
    for db in dbs:
        db.unlink(missing_ok=True)
    # the copy's gigabyte goes to disk now, not during the timed run (it slowed the run's
    # first database access by up to 7 s at a million cards)
    os.sync()
    run = timed(nbs("run", str(copy), "--db", str(dbs[0]),
                    "--engine", "local", "--format", "json"), env)  # fmt: skip
    stock = timed(floor(inbox, dbs[1]))
    dbs[1].unlink()
    tuned = {**os.environ, allocator.JEMALLOC_CONF_VARIABLE: allocator.POLARS_JEMALLOC_CONF}
    floor_tuned = timed(floor(inbox, dbs[1]), tuned)
    return Pair(run, stock, floor_tuned)


def scale(
    size: int,
    root: Path,
    days: int | None,
    repeat: int = 1,
    pandas_env: dict[str, str] | None = None,
) -> None:
    """Time one cohort size (``pandas_env``: the environment the row-wise baseline runs in,
    None to skip it)."""
    inbox = root / f"inbox-{size}"
    t0 = time.perf_counter()
    spread = ["--days", str(days)] if days else []
    subprocess.run(
        [sys.executable, "-m", "data_samples.generator", "--cards", str(size), "--out",
         str(inbox), *spread],
        check=True,
        capture_output=True,
    )  # fmt: skip
    generated = time.perf_counter() - t0
    mb = sum(p.stat().st_size for p in inbox.iterdir()) / 2**20
    env = {**os.environ, "NBS_INBOX_SETTLE_S": "0"}
    # the machine is shared: one pair can be a tenth off either way, so a run and its floor
    # are timed back to back, ``repeat`` times, and the median pair's figures are printed
    pairs = sorted((run_and_floor(inbox, root, size, env) for _ in range(repeat)),
                   key=lambda p: p.ratio)  # fmt: skip
    median = pairs[len(pairs) // 2]
    (run_s, run_gib, run_cpu), (floor_s, floor_gib, floor_cpu), _ = median
    all_s, all_gib, _ = timed(floor(inbox, root / f"floor-all-{size}.duckdb", "all"))
    span = f"over {days} days" if days else "at Luxembourg's 18 a day"
    print(
        f"{size:>9,} cards {span} ({mb:,.0f} MB CSV, generated in {generated:.1f} s)\n"
        f"    nbs run (local)  {run_s:8.2f} s  peak {run_gib:5.2f} GiB\n"
        f"    floor            {floor_s:8.2f} s  peak {floor_gib:5.2f} GiB   "
        f"run/floor {median.ratio:5.1f}x\n"
        f"    floor, all rows  {all_s:8.2f} s  peak {all_gib:5.2f} GiB   "
        f"run/floor {run_s / all_s:5.1f}x  (and screened's row per card and condition)\n"
        f"    CPU seconds      run {run_cpu:.1f}, floor {floor_cpu:.1f}   "
        f"run/floor {median.cpu_ratio:5.2f}x  (user + system, all threads)"
    )
    if repeat > 1:
        print(
            f"    {repeat} pairs, back to back (run/floor s): "
            + ", ".join(f"{p.run.wall:.1f}/{p.floor.wall:.1f}" for p in pairs)
            + f"\n    run/floor: {median_and_range([p.ratio for p in pairs])} "
            "(the median pair is printed above)"
            + "\n    CPU run/floor of the pairs: "
            + ", ".join(f"{p.cpu_ratio:.2f}x" for p in pairs)
        )
    print(
        "    floor with nbs's polars allocator setting: "
        + ", ".join(f"{p.floor_tuned.wall:.1f}" for p in pairs)
        + f" s; run/floor {median_and_range([p.tuned_ratio for p in pairs])}"
    )
    if pandas_env is None:
        print(f"    pandas row-wise  skipped: {PANDAS_HINT}")
        return
    if size <= 200_000:
        pandas_s, pandas_gib, _ = timed(
            [sys.executable, "-c", PANDAS, str(inbox), str(root / f"pandas-{size}.duckdb")],
            pandas_env,
        )
        print(
            f"    pandas row-wise  {pandas_s:8.2f} s  peak {pandas_gib:5.2f} GiB   "
            f"pandas/run {pandas_s / run_s:5.2f}x  pandas/floor {pandas_s / floor_s:5.1f}x"
        )
    else:
        print("    pandas row-wise  skipped above 200,000 cards (minutes of iterrows)")


def day(root: Path, prefect: bool) -> None:
    inbox = root / "day"
    subprocess.run(
        [sys.executable, "-m", "data_samples.generator", "--cards", "30", "--out", str(inbox)],
        check=True,
        capture_output=True,
    )
    db = root / "day.duckdb"
    env = {**os.environ, "NBS_INBOX_SETTLE_S": "0"}
    env.pop("PREFECT_API_URL", None)
    # a lab database that already holds earlier days
    first = root / "earlier"
    subprocess.run(
        [sys.executable, "-m", "data_samples.generator", "--cards", "6500", "--out", str(first),
         "--first-number", "900000"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(nbs("run", str(first), "--db", str(db), "--engine", "local"), env=env,
                   check=True, capture_output=True)  # fmt: skip
    wall, peak, _ = timed(nbs("run", str(inbox), "--db", str(db), "--engine", "local"), env)
    print(f"Luxembourg day (30 cards into a year of 6,500): local {wall:.2f} s, {peak:.2f} GiB")
    if not prefect:
        return
    from nbs.integrations.prefect.ops import PrefectSite, start_server, stop
    from nbs.web.process import free_port

    site = PrefectSite(home=root / "prefect", port=free_port())
    server = start_server(site)
    try:
        # the first flow against a freshly started server pays its warm-up; a lab's daily
        # run meets a server that has been running for days: both are printed
        for label, number in (("first run after server start", 950_000), ("next day", 960_000)):
            again = root / f"day-{number}"
            subprocess.run(
                [sys.executable, "-m", "data_samples.generator", "--cards", "30", "--out",
                 str(again), "--first-number", str(number)],
                check=True, capture_output=True,
            )  # fmt: skip
            wall, _, _ = timed(
                nbs("run", str(again), "--db", str(db), "--engine", "prefect"),
                {**site.env(), "NBS_INBOX_SETTLE_S": "0"},
            )
            print(f"Luxembourg day through a running Prefect server ({label}): {wall:.2f} s")
    finally:
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--day", action="store_true", help="time a 30-card day (local)")
    parser.add_argument("--prefect-day", action="store_true", help="and through Prefect")
    parser.add_argument(
        "--days",
        type=int,
        default=365,
        help="days the cohort's births are spread over (default: a programme's year; "
        "0: the generator's 18 cards a day, which puts a million cards over 152 years)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="time each size's run and floor this many times, back to back, and print the "
        "median pair (the ratio moves by a tenth from one pair to the next on a shared machine)",
    )
    parser.add_argument("--keep", type=Path)
    parser.add_argument(
        "--pandas-path",
        type=Path,
        help="a folder holding pandas for the row-wise baseline alone (pip install --target); "
        "installed where nbs runs, pandas slows every nbs start-up (pandera imports it)",
    )
    args = parser.parse_args()
    pandas_env = pandas_environment(args.pandas_path)
    if importlib.util.find_spec("pandas") is not None:
        print(
            "note: pandas is installed where nbs runs; pandera then imports it and every nbs "
            f"start-up is ~0.3 s slower than a laboratory's install ({PANDAS_HINT})"
        )
    root = args.keep or Path(tempfile.mkdtemp(prefix="nbs-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        for size in args.sizes:
            scale(size, root, args.days, args.repeat, pandas_env)
        if args.day or args.prefect_day:
            day(root, args.prefect_day)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
