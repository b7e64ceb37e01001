"""Yearly statistics on a synthetic history whose true figures are known by construction
(``data_samples/stats_cohort.py`` enumerates them independently of the SQL views), the
officials' identifier-free file, and ``nbs stats``."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from data_samples.stats_cohort import PANEL, write_cohort
from nbs import store
from nbs.cli import UserError, app
from nbs.config import ScreeningConfig
from nbs.run.steps import run_local
from nbs.stats import statistics
from tests.helpers import STATS_COHORT as COHORT
from tests.helpers import write_pku3_retests


@pytest.fixture(scope="module")
def cohort_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("cohort") / "nbs.duckdb"
    write_cohort(db, COHORT)
    return db


def _close(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) < 0.006  # type: ignore[arg-type]
    return a == b


def test_yield_matches_the_known_truth_including_empty_years(cohort_db: Path) -> None:
    table = statistics.yield_table(cohort_db, 2022, 2025, list(PANEL))
    assert table.height == 4 * len(PANEL)
    for row in table.iter_rows(named=True):
        truth = COHORT.truth_yield(row["year"], row["condition"])
        assert all(_close(row[k], v) for k, v in truth.items()), (row, truth)
    by = {(r["year"], r["condition"]): r for r in table.iter_rows(named=True)}
    assert by[(2023, "PKU")]["ppv_pct"] == 25.0  # 1 of 4 referred babies confirmed
    assert by[(2025, "CF")]["screened"] == 1350  # no CF consent for 1 in 10 babies
    assert by[(2025, "CF")]["ppv_pct"] == 0.0
    assert by[(2025, "SCID")]["ppv_pct"] is None  # no referral: PPV undefined
    assert by[(2024, "CH")]["screened"] == 0 and by[(2024, "CH")]["recall_rate_pct"] is None


def test_quality_indicators_match_the_known_truth(cohort_db: Path) -> None:
    table = statistics.quality_table(cohort_db, 2022, 2025)
    assert set(table["year"]) == {2023, 2025}  # nothing is invented for an empty year
    for year in (2023, 2025):
        got = dict(table.filter(year=year).select("indicator", "value").iter_rows())
        truth = COHORT.truth_quality(year)
        assert set(got) == set(truth), year
        for indicator, value in truth.items():
            assert _close(got[indicator], value), (year, indicator, got[indicator], value)
    reasons = statistics.unsatisfactory_table(cohort_db, 2025, 2025)
    assert dict(reasons.select("reason", "cards").iter_rows()) == {
        "contaminated": 3,  # i % 500 == 3
        "insufficient": 6,  # i % 250 == 7
        "ok": 1491,
    }


def test_marker_percentiles_match_the_known_truth(cohort_db: Path) -> None:
    table = statistics.marker_table(cohort_db, 2025, 2025)
    assert table.height == 12 * len(PANEL)  # every month, every condition's marker
    for month in (1, 6, 12):
        for condition in ("PKU", "CF", "SCID"):
            row = table.filter(
                (pl.col("month").dt.month() == month) & (pl.col("condition") == condition)
            ).row(0, named=True)
            truth = COHORT.truth_marker(2025, month, condition)
            assert all(_close(row[k], v) for k, v in truth.items()), (month, condition)


@pytest.mark.slow
def test_runs_keep_first_cards_cohort_years_and_monthly_percentiles(
    sample_inbox: Path, db_path: Path, config: ScreeningConfig, tmp_path: Path
) -> None:
    from data_samples.make_sample_inbox import write_repeat_delivery

    run_local(sample_inbox, db_path, config)
    before = store.query(db_path, "SELECT * FROM marker_percentiles")
    assert before.height > 0 and before["babies"].min() >= 1
    # a repeat card of one baby, and a card of another baby collected before its first one
    later = tmp_path / "later"
    write_repeat_delivery(
        later,
        [("S-EARLY", "S-EARLY-R", 75, {}, {}), ("S-N01", "S-N01-A", 30, {}, {})],
    )
    run_local(later, db_path, config)
    first = dict(
        store.query(
            db_path,
            "SELECT specimen_id, first_of_baby FROM specimens WHERE baby_id IN ('BEARLY', 'BN01')",
        ).rows()
    )
    assert first == {"S-EARLY": True, "S-EARLY-R": False, "S-N01": False, "S-N01-A": True}
    moved = store.query(db_path, "SELECT first_specimen_id FROM screened WHERE baby_id = 'BN01'")[
        "first_specimen_id"
    ]
    assert set(moved) == {"S-N01-A"}  # the earlier card is now the baby's first
    years = store.query(
        db_path, "SELECT DISTINCT cohort_year FROM recalls WHERE condition IS NOT NULL"
    )["cohort_year"].to_list()
    assert years == [2026]
    screened = store.query(db_path, "SELECT count(*) FROM screened WHERE baby_id = 'BN01'")
    assert screened.item() == len(config.conditions)  # still counted once per condition


#: the monthly percentiles by their definition, from all calls: each first card's latest
#: screening call (the runs keep it in ``screened.first_call`` instead of looking it up)
LATEST_SCREENING_CALLS = (
    "SELECT specimen_id, condition, arg_max(call, run_seq) AS call "
    "FROM calls WHERE kind = 'screening' GROUP BY ALL"
)
PERCENTILES_FROM_CALLS = f"""
WITH latest AS ({LATEST_SCREENING_CALLS}),
negative AS (
    SELECT date_trunc('month', s.first_collected_at)::DATE AS month, s.condition,
           s.first_specimen_id AS specimen_id
    FROM screened s JOIN latest l
      ON l.specimen_id = s.first_specimen_id AND l.condition = s.condition
    WHERE l.call = 'negative'
)
SELECT n.month, n.condition, m.marker, count(*) AS babies,
       round(quantile_cont(r.value, 0.05), 4) AS p05,
       round(quantile_cont(r.value, 0.50), 4) AS p50,
       round(quantile_cont(r.value, 0.995), 4) AS p995
FROM negative n
JOIN condition_markers m ON m.condition = n.condition
JOIN results r ON r.specimen_id = n.specimen_id AND r.analyte = m.marker
WHERE r.replicate = 1 AND r.value IS NOT NULL
GROUP BY ALL ORDER BY ALL
"""


@pytest.mark.slow
def test_a_first_card_evaluated_again_counts_with_its_latest_call(
    sample_inbox: Path, db_path: Path, config: ScreeningConfig
) -> None:
    """A first card whose retest punches arrive later (retest -> negative) joins its
    month's percentiles; what the runs keep equals the definition from all calls."""

    def kept() -> pl.DataFrame:
        return store.query(
            db_path,
            "SELECT month, condition, marker, babies, p05, p50, p995 "
            "FROM marker_month_percentiles ORDER BY ALL",
        )

    def first_call() -> str:
        return str(
            store.query(
                db_path,
                "SELECT first_call FROM screened "
                "WHERE first_specimen_id = 'S-PKU5' AND condition = 'PKU'",
            ).item()
        )

    run_local(sample_inbox, db_path, config)
    assert first_call() == "retest"
    before = kept()
    assert before.equals(store.query(db_path, PERCENTILES_FROM_CALLS))
    write_pku3_retests(sample_inbox, ("61", "66"), ("58", "61"), card="S-PKU5")
    run_local(sample_inbox, db_path, config)
    assert first_call() == "negative"
    after = kept()
    assert after.equals(store.query(db_path, PERCENTILES_FROM_CALLS))
    assert after["babies"].sum() == before["babies"].sum() + 2  # PHE and TYR of S-PKU5
    mismatched = store.query(
        db_path,
        f"SELECT count(*) FROM screened s JOIN ({LATEST_SCREENING_CALLS}) l "
        "ON l.specimen_id = s.first_specimen_id AND l.condition = s.condition "
        "WHERE s.first_call IS DISTINCT FROM l.call",
    )
    assert mismatched.item() == 0


@pytest.mark.slow
def test_cards_collected_at_the_same_time_take_the_smaller_id_as_first(
    db_path: Path, config: ScreeningConfig, tmp_path: Path
) -> None:
    """Two cards of one baby with the same collection time: the baby's first card is the
    smaller id, as the evaluation orders them, whatever the order the rows arrive in (the
    statistics picked whichever row came first)."""
    from data_samples.make_sample_inbox import write_repeat_delivery

    def firsts() -> tuple[set[str], set[str]]:
        cards = store.query(
            db_path, "SELECT specimen_id FROM specimens WHERE baby_id = 'BTIE' AND first_of_baby"
        )["specimen_id"]
        screened = store.query(
            db_path, "SELECT first_specimen_id FROM screened WHERE baby_id = 'BTIE'"
        )["first_specimen_id"]
        return set(cards), set(screened)

    # the larger id first in the file
    write_repeat_delivery(
        tmp_path / "one", [("S-TIE", "S-TIE-B", 48, {}, {}), ("S-TIE", "S-TIE-A", 48, {}, {})]
    )
    run_local(tmp_path / "one", db_path, config)
    assert firsts() == ({"S-TIE-A"}, {"S-TIE-A"})
    # a card arriving later with the same time and a smaller id becomes the first
    write_repeat_delivery(tmp_path / "two", [("S-TIE", "S-TIE-0", 48, {}, {})], stem="20260311")
    run_local(tmp_path / "two", db_path, config)
    assert firsts() == ({"S-TIE-0"}, {"S-TIE-0"})


def test_officials_file_has_no_identifiers_and_no_small_submitter_counts(
    cohort_db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "officials" / "stats.duckdb"
    result = statistics.export_stats(cohort_db, out, min_cell=5)
    assert result.years == (2023, 2025)
    ids = store.query(cohort_db, "SELECT specimen_id, baby_id, birth_at FROM specimens")
    forbidden = set(ids["specimen_id"]) | set(ids["baby_id"])
    births = set(ids["birth_at"])
    con = duckdb.connect(str(out), read_only=True)  # what an official does
    try:
        tables = [r[0] for r in con.execute("SHOW TABLES").fetchall()]
        assert {"yield_by_year", "quality_indicators", "submitter_quality"} <= set(tables)
        for table in tables:
            frame = pl.from_arrow(con.sql(f'SELECT * FROM "{table}"').to_arrow_table())
            assert isinstance(frame, pl.DataFrame)
            assert not any(("id" in c.split("_")) or "birth" in c for c in frame.columns), table
            for column in frame.columns:
                values = set(frame[column].drop_nulls().to_list())
                assert not values & forbidden, (table, column)
                assert not values & births, (table, column)
        small = pl.from_arrow(con.sql("SELECT * FROM submitter_quality").to_arrow_table())
    finally:
        con.close()
    assert isinstance(small, pl.DataFrame)
    for column in ("cards", "unsatisfactory"):
        shown = small[column].drop_nulls()
        assert ((shown == 0) | (shown >= 5)).all(), column
    tiny = small.filter(submitter="MAT-SMALL")
    assert tiny["suppressed"].all() and tiny["cards"].is_null().all()  # 3 and 4 cards
    assert small.filter(submitter="CHL")["cards"].to_list() == [1197, 1496]


@pytest.mark.slow
def test_every_run_renews_the_officials_file(
    sample_inbox: Path, db_path: Path, config: ScreeningConfig
) -> None:
    summary = run_local(sample_inbox, db_path, config)
    assert summary.stats_error is None
    path = statistics.default_stats_path(db_path)
    assert summary.stats_file == str(path) and path.exists()
    con = duckdb.connect(str(path), read_only=True)
    try:
        exported = con.execute("SELECT * FROM yield_by_year ORDER BY condition").fetchall()
    finally:
        con.close()
    live = store.query(db_path, "SELECT * FROM yield_by_year ORDER BY condition").rows()
    assert exported == live and {r[1] for r in live} == set(config.conditions)


def test_cli_stats_formats_and_errors(cohort_db: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(
        app, ["stats", "--db", str(cohort_db), "--year", "2023", "--to", "2025", "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    assert len(rows) == 3 * len(PANEL)
    pku = next(r for r in rows if (r["year"], r["condition"]) == (2023, "PKU"))
    assert (pku["referrals"], pku["confirmed"], pku["ppv_pct"]) == (4, 1, 25.0)
    quality = runner.invoke(
        app,
        [
            "stats",
            "--db",
            str(cohort_db),
            "--year",
            "2025",
            "--table",
            "quality",
            "--format",
            "csv",
        ],
    )
    assert quality.exit_code == 0
    # the condition column is empty on a programme-wide row; the NewSTEPs QI follows
    assert "unsatisfactory_specimens_pct,,0.6," in quality.stdout
    assert quality.stdout.splitlines()[0].endswith(",unit,qi")
    bad = runner.invoke(app, ["stats", "--db", str(cohort_db), "--year", "2025", "--to", "2023"])
    assert isinstance(bad.exception, UserError)


@pytest.mark.slow
def test_officials_file_opens_in_duckdb_one_major_version_back_and_as_parquet(
    cohort_db: Path, tmp_path: Path
) -> None:
    """The DuckDB command-line tool a new user installs (1.x) reads the file; the same
    tables are written as Parquet for any other client."""
    import subprocess
    import sys

    out = tmp_path / "officials" / "stats.duckdb"
    statistics.export_stats(cohort_db, out, min_cell=5)
    con = duckdb.connect(str(out), read_only=True)
    try:
        tags = con.execute("SELECT tags FROM duckdb_databases() WHERE NOT internal").fetchall()[0]
        live = con.sql("SELECT * FROM yield_by_year ORDER BY ALL").fetchall()
    finally:
        con.close()
    assert tags is not None and tags[0]["storage_version"].startswith("v1.2.0")
    parquet = statistics.parquet_folder(out)
    assert parquet.name == "stats.parquet"
    from_parquet = pl.read_parquet(parquet / "yield_by_year.parquet").sort(pl.all())
    assert from_parquet.rows() == live
    # a real DuckDB 1.x reads it (taken from the package registry; skipped offline)
    old = tmp_path / "duckdb1"
    got = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(old),
         "duckdb>=1.3,<2"],
        capture_output=True, text=True,
    )  # fmt: skip
    if got.returncode != 0:
        pytest.skip(f"DuckDB 1.x not installable here: {got.stderr.strip()[-200:]}")
    script = (
        f"import duckdb; c = duckdb.connect(r'{out}', read_only=True); "
        "print(duckdb.__version__, c.sql('SELECT count(*) FROM yield_by_year').fetchone()[0])"
    )
    read = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={"PYTHONPATH": str(old)}
    )
    assert read.returncode == 0, read.stderr
    version, rows = read.stdout.split()
    assert version.startswith("1.") and int(rows) == len(live)


def test_the_registry_is_what_every_consumer_publishes(cohort_db: Path, tmp_path: Path) -> None:
    """The officials' file holds every registered statistic (and its definitions);
    ``nbs stats --table`` offers every registered key; the page shows the page's."""
    from nbs.stats import registry

    result = statistics.export_stats(cohort_db, tmp_path / "o.stats.duckdb", min_cell=5)
    names = [s.name for s in registry.STATISTICS]
    assert list(result.tables) == [*names, "definitions", "about"]
    defined = [c.name for s in registry.STATISTICS for c in s.columns if c.definition]
    assert len(defined) == len(set(defined))  # a term has one definition
    assert set(statistics.DEFINITIONS) == set(defined)
    assert {"qi", "screen_detected", "missed", "sensitivity_pct"} <= set(defined)
    for key in registry.table_keys():
        shown = CliRunner().invoke(
            app, ["stats", "--db", str(cohort_db), "--year", "2025", "--table", key]
        )
        assert shown.exit_code == 0, (key, shown.output)
    page = statistics.page_tables(cohort_db)
    assert [s.name for s, _ in page] == ["yield_by_year", "quality_indicators", "missed_cases"]
    for statistic, rows in page[:2]:  # the cohort records no case outcome
        assert rows and set(rows[0]) >= {c.name for c in statistic.columns}, statistic.name


@pytest.mark.slow
def test_a_card_received_too_late_counts_as_too_old(
    tmp_path: Path, config: ScreeningConfig
) -> None:
    """A card the submitter gave as ok but received after the transit limit (14 days) is
    unsatisfactory by the specimen rules: the officials' table counts it as too_old, not
    ok; a card the submitter gave another code keeps that code."""
    import datetime as dt
    from dataclasses import replace

    from data_samples.generator import generate_cohort, write_inbox

    cohort = generate_cohort(6, seed=8, start=dt.date(2026, 2, 2), unsatisfactory_rate=0.0)
    late = pl.col("specimen_id").is_in(["S00000001", "S00000002"])
    specimens = cohort.specimens.with_columns(
        received_at=pl.when(late)
        .then(pl.col("collected_at") + pl.duration(days=20))
        .otherwise(pl.col("received_at")),
        specimen_quality=pl.when(pl.col("specimen_id") == "S00000002")
        .then(pl.lit("insufficient"))
        .otherwise(pl.col("specimen_quality")),
    )
    write_inbox(replace(cohort, specimens=specimens), tmp_path / "inbox")
    db = tmp_path / "nbs.duckdb"
    run_local(tmp_path / "inbox", db, config)
    reasons = statistics.unsatisfactory_table(db, 2026, 2026)
    assert dict(reasons.select("reason", "cards").iter_rows()) == {
        "insufficient": 1,
        "ok": 4,
        "too_old": 1,
    }
    exported = statistics.export_stats(db, tmp_path / "o.stats.duckdb", min_cell=1)
    with duckdb.connect(str(exported.path), read_only=True) as con:
        rows = con.sql("SELECT reason, cards FROM unsatisfactory_by_reason ORDER BY reason")
        assert ("too_old", 1) in rows.fetchall()
    # every other count of unsatisfactory cards sees it too: the quality indicator and
    # the maternities' report cards
    indicator = store.query(
        db,
        "SELECT numerator, denominator FROM card_quality_indicators "
        "WHERE indicator = 'unsatisfactory_specimens_pct'",
    )
    assert indicator.rows() == [(2, 6)]
    months = store.query(
        db, "SELECT sum(unsatisfactory) FROM submitter_months WHERE submitter IS NOT NULL"
    )
    assert months.item() == 2


def test_the_too_old_view_reads_the_text_the_transit_rule_writes() -> None:
    """too_old_cards finds a card by the start of its transit problem's text: the view's
    pattern and the rule's text must not drift apart."""
    from nbs.evaluate.specimen_rules import TOO_OLD_TEXT

    root = Path(__file__).parents[2]
    sql = (root / "nbs/store/views/007_too_old_cards.sql").read_text()
    pattern = TOO_OLD_TEXT.replace("_", "\\_")
    assert f"'%{pattern}%' ESCAPE" in sql
