"""Instrument exports: a laboratory day read from three instruments' own files, and what
reading an export costs against the canonical CSV of the same rows.

    python -m benchmarks.instrument_day [--repeat 3] [--keep DIR]

1. A year of 6,500 cards (canonical CSV) goes into a database first; then, each time on a
   copy of that database, a 30-card day arrives as a specimens CSV plus a QuantStudio
   Results export (TREC, RNase P, SMN1, with standards, NTC and a control), an MS/MS plate
   export and an immunoassay result list (with calibrators and controls): ``nbs run``
   (local engine) is timed end to end, and the same day as canonical CSV beside it.
2. A full 384-well QuantStudio export (three targets a well) and its canonical CSV: each
   staged (read, converted, validated, written as parts) twenty times in this process;
   the medians are compared.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.pipeline_scale import nbs, timed
from data_samples.generator import generate_cohort, write_inbox
from data_samples.instrument_exports import Well, cohort_exports, quantstudio_v1_text

MEASURED = dt.datetime(2026, 1, 12, 9, 0)


def _year(root: Path, env: dict[str, str]) -> Path:
    """A database holding a year of 6,500 first cards."""
    year = root / "year"
    subprocess.run(
        [sys.executable, "-m", "data_samples.generator", "--cards", "6500", "--out", str(year),
         "--first-number", "900000"],
        check=True, capture_output=True,
    )  # fmt: skip
    db = root / "year.duckdb"
    subprocess.run(nbs("run", str(year), "--db", str(db), "--engine", "local"), env=env,
                   check=True, capture_output=True)  # fmt: skip
    return db


def _day_inboxes(root: Path, i: int) -> tuple[Path, Path]:
    """The same 30 cards as three instrument exports, and as canonical CSV."""
    cohort = generate_cohort(30, seed=100 + i)
    exports, canonical = root / f"exports-{i}", root / f"canonical-{i}"
    exports.mkdir()
    cohort.specimens.write_csv(exports / "day.specimens.csv")
    for name, text in cohort_exports(cohort.results, MEASURED).items():
        (exports / name).write_text(text)
    write_inbox(cohort, canonical, name="day")
    return exports, canonical


def day(root: Path, repeat: int) -> None:
    env = {**os.environ, "NBS_INBOX_SETTLE_S": "0"}
    env.pop("PREFECT_API_URL", None)
    # an installed package carries its bytecode (pip compiles it); without this every
    # `nbs` start would compile the package from source (the year's run warms the cache)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    year = _year(root, env)
    times: dict[str, list[float]] = {"exports": [], "canonical": []}
    for i in range(repeat):
        for label, inbox in zip(times, _day_inboxes(root, i), strict=True):
            db = root / f"{label}-{i}.duckdb"
            shutil.copy(year, db)
            wall, _, _ = timed(nbs("run", str(inbox), "--db", str(db), "--engine", "local"), env)
            times[label].append(wall)
    for label, walls in times.items():
        shown = ", ".join(f"{w:.2f}" for w in walls)
        print(f"30-card day as {label:9} into a year of 6,500 (local): {shown} s, "
              f"median {statistics.median(walls):.2f} s")  # fmt: skip


def _plate_384() -> str:
    """A full 384-well plate: 380 cards and 4 standards, three targets each."""
    wells = []
    for i in range(384):
        position = f"{chr(ord('A') + i // 24)}{i % 24 + 1}"
        sample = f"STD-{i + 1}" if i < 4 else f"S{i:07d}"
        task = "STANDARD" if i < 4 else "UNKNOWN"
        quantity = 10.0 ** (5 - i) if i < 4 else 300.0 + i
        wells.append(Well(position, sample, "TREC", task, 25.0 + i % 7 / 10, quantity))
        wells.append(Well(position, sample, "RNase P", task, 24.0 + i % 5 / 10))
        wells.append(Well(position, sample, "SMN1", task, 26.0 + i % 3 / 10))
    return quantstudio_v1_text(wells, MEASURED, "TREC-384")


def read_cost(root: Path, rounds: int = 20) -> None:
    from nbs.config import load_config
    from nbs.intake.discover import discover
    from nbs.intake.exports import readers, recogniser
    from nbs.intake.files import PlannedFile
    from nbs.run.stage import stage_file

    config = load_config()
    export_dir, csv_dir = root / "e384", root / "c384"
    export_dir.mkdir()
    csv_dir.mkdir()
    (export_dir / "plate-384.txt").write_text(_plate_384())
    recognise = recogniser(readers(config.instruments))
    (export,), _, _ = discover(export_dir, recognise=recognise)
    # the canonical CSV of exactly the rows the export gives
    from nbs.intake.exports import read_export_blocks

    rows = next(read_export_blocks(export, readers(config.instruments))).drop("row_number")
    rows.write_csv(csv_dir / "plate-384.results.csv")
    (canonical,), _, _ = discover(csv_dir)
    costs = {}
    for label, found in (("export", export), ("canonical CSV", canonical)):
        walls = []
        for r in range(rounds):
            work = root / f"work-{label[:3]}-{r}"
            t0 = time.perf_counter()
            stage_file(PlannedFile(found, "new", "x"), work, config)
            walls.append(time.perf_counter() - t0)
        costs[label] = statistics.median(walls)
    print(
        f"384-well QuantStudio export ({rows.height} rows) staged in "
        f"{costs['export'] * 1000:.1f} ms, its canonical CSV in "
        f"{costs['canonical CSV'] * 1000:.1f} ms (median of {rounds}): "
        f"export/CSV {costs['export'] / costs['canonical CSV']:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="days timed (each on a copy)")
    parser.add_argument("--keep", type=Path, help="keep the files here")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="nbs-instruments-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        read_cost(root)
        day(root, args.repeat)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
