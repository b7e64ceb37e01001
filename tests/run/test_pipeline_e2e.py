"""End to end on the committed sample inbox: expected outcomes written by hand in
data_samples/expected_*.csv; idempotency; late cards; late retests; crashes."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from data_samples import (
    EXPECTED_CALLS,
    EXPECTED_QUARANTINE,
    EXPECTED_RECALLS,
    SAMPLE_INBOX,
)
from nbs import settings, store
from nbs.config import ScreeningConfig
from nbs.run import steps as pipeline
from nbs.run.errors import RunFailed
from nbs.run.steps import run_local
from tests.helpers import db_state, write_pku3_retests

EXPECTED_WORKLIST = EXPECTED_CALLS.with_name("expected_worklist.csv")


def _expected(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)


def _rows(frame: pl.DataFrame, cols: list[str]) -> list[tuple[object, ...]]:
    return sorted(frame.select(cols).rows(), key=repr)


def test_sample_inbox_gives_the_expected_calls(
    sample_inbox: Path, db_path: Path, config: ScreeningConfig
) -> None:
    summary = run_local(sample_inbox, db_path, config)
    calls = store.query(db_path, "SELECT * FROM screening_calls")
    expected = _expected(EXPECTED_CALLS)
    assert _rows(calls, ["specimen_id", "condition", "call", "urgency"]) == _rows(
        expected, ["specimen_id", "condition", "call", "urgency"]
    )
    assert summary.new_recalls == _expected(EXPECTED_RECALLS).height
    assert summary.cards_evaluated == expected["specimen_id"].n_unique()
    # the card collected in 2025 is judged by the set in force then, which has no SCID
    versions = dict(
        store.query(
            db_path,
            "SELECT DISTINCT specimen_id, rule_version FROM "
            "screening_calls WHERE specimen_id IN ('S-SCID0', 'S-SCID1')",
        ).iter_rows()
    )
    assert versions == {"S-SCID0": "LNS-2024.1", "S-SCID1": "LNS-2026.1"}


def test_a_result_shows_the_texts_it_arrived_with(screened_db: Path) -> None:
    """The results keep the catalogue's code, unit and converted value; the texts as the
    instrument wrote them are kept once, in the raw row, and shown beside (the card page
    and ``nbs recalls show`` read ``result_details``)."""
    db_path = screened_db
    row = store.query(
        db_path,
        "SELECT analyte, unit, value, value_reported, analyte_reported, unit_reported, "
        "instrument, plate_id FROM result_details WHERE specimen_id = 'S-N03' AND analyte = 'PHE'",
    ).row(0, named=True)
    assert (row["analyte"], row["unit"]) == ("PHE", "µmol/L")
    assert row["value"] == pytest.approx(0.9 * 60.54, rel=1e-3)  # 1 mg/dL = 60.54 µmol/L
    assert (row["value_reported"], row["analyte_reported"], row["unit_reported"]) == (
        0.9,
        "Phenylalanine",
        "mg/dL",
    )
    assert (row["instrument"], row["plate_id"]) == ("MSMS-01", "P260302-MSMS-01-1")
    # every result has its raw row
    orphans = store.query(
        db_path,
        "SELECT count(*) AS n FROM result_details WHERE instrument IS NULL",
    )["n"][0]
    assert orphans == 0


def test_sample_inbox_gives_the_expected_recalls_and_worklist(screened_db: Path) -> None:
    db_path = screened_db
    recalls = store.query(db_path, "SELECT * FROM recall_list")
    assert _rows(recalls, ["specimen_id", "condition", "action", "urgency"]) == _rows(
        _expected(EXPECTED_RECALLS), ["specimen_id", "condition", "action", "urgency"]
    )
    assert set(recalls["status"]) == {"open"}
    assert recalls["outcome"].null_count() == recalls.height
    worklist = store.query(db_path, "SELECT * FROM retest_worklist")
    assert _rows(worklist, ["specimen_id", "condition", "priority"]) == _rows(
        _expected(EXPECTED_WORKLIST), ["specimen_id", "condition", "priority"]
    )


def test_bad_rows_and_garbage_file_are_quarantined_with_reasons(
    sample_inbox: Path, db_path: Path, config: ScreeningConfig
) -> None:
    summary = run_local(sample_inbox, db_path, config)
    q = store.query(db_path, "SELECT * FROM quarantine")
    expected = _expected(EXPECTED_QUARANTINE).with_columns(pl.col("row_number").cast(pl.Int32))
    assert _rows(q, ["file_name", "row_number", "column_name"]) == _rows(
        expected, ["file_name", "row_number", "column_name"]
    )
    for row in expected.iter_rows(named=True):
        got = q.filter(
            (pl.col("file_name") == row["file_name"]) & (pl.col("row_number") == row["row_number"])
        )["reason"].item()
        assert row["reason"] in got
    # the unreadable file is kept, next to its error report; nothing is deleted
    broken = sample_inbox / "quarantine" / "20260302-broken.results.csv"
    assert broken.read_bytes() == (SAMPLE_INBOX / broken.name).read_bytes()
    report = broken.with_name(broken.name + ".error.txt").read_text()
    assert "not UTF-8" in report and "20260302-broken.results.csv" in report
    files = store.query(db_path, "SELECT file_name, status FROM ingested_files")
    assert ("20260302-broken.results.csv", "unreadable") in files.rows()
    assert summary.files_quarantined[0]["name"] == "20260302-broken.results.csv"
    # ingested files are archived, the inbox is empty of handled files
    archived = sorted(p.name for p in (sample_inbox / "archive").rglob("*") if p.is_file())
    assert archived == sorted(
        p.name for p in SAMPLE_INBOX.iterdir() if p.name != "20260302-broken.results.csv"
    )
    assert [p for p in sample_inbox.iterdir() if p.is_file()] == []
    # raw rows are kept exactly as they arrived, bad ones included
    raw = store.query(db_path, "SELECT value FROM raw_result_rows WHERE value = 'high'")
    assert raw.height == 1


@pytest.mark.slow  # over two seconds: the full tier
def test_results_without_a_card_are_pending_until_the_card_arrives(
    sample_inbox: Path, db_path: Path, config: ScreeningConfig, tmp_path: Path
) -> None:
    summary = run_local(sample_inbox, db_path, config)
    assert summary.pending_cards == 4  # S-LATE and the three quarantined cards
    pending = store.query(db_path, "SELECT DISTINCT specimen_id FROM pending_results")
    assert sorted(pending["specimen_id"]) == ["S-BAD1", "S-BAD2", "S-BAD3", "S-LATE"]
    late = (
        pl.read_csv(SAMPLE_INBOX / "20260302.specimens.csv", infer_schema=False)
        .filter(pl.col("specimen_id") == "S-N01")
        .with_columns(specimen_id=pl.lit("S-LATE"), baby_id=pl.lit("BLATE"))
    )
    late.write_csv(sample_inbox / "20260303.specimens.csv")
    second = run_local(sample_inbox, db_path, config)
    assert second.cards_evaluated == 1
    calls = store.query(
        db_path, "SELECT condition, call FROM screening_calls WHERE specimen_id = 'S-LATE'"
    )
    assert sorted(calls.rows()) == [
        (c, "negative") for c in ("CAH", "CF", "CH", "MCAD", "PKU", "SCID", "SMA")
    ]
    pending = store.query(db_path, "SELECT DISTINCT specimen_id FROM pending_results")
    assert "S-LATE" not in pending["specimen_id"].to_list()


@pytest.mark.slow
def test_retests_arriving_later_complete_the_worklist(
    sample_inbox: Path, db_path: Path, config: ScreeningConfig
) -> None:
    run_local(sample_inbox, db_path, config)
    write_pku3_retests(sample_inbox, ("255", "270"), ("58", "61"))
    summary = run_local(sample_inbox, db_path, config)
    assert summary.retests_done == 1
    row = store.query(db_path, "SELECT status FROM retest_worklist WHERE specimen_id = 'S-PKU3'")
    assert row.item() == "done"
    call = store.query(
        db_path,
        "SELECT call, urgency FROM screening_calls "
        "WHERE specimen_id = 'S-PKU3' AND condition = 'PKU'",
    )
    assert call.row(0) == ("referral", "urgent")
    history = store.query(
        db_path,
        "SELECT call FROM calls WHERE specimen_id = 'S-PKU3' "
        "AND condition = 'PKU' ORDER BY run_seq",
    )
    assert history["call"].to_list() == ["retest", "referral"]


@pytest.mark.slow
def test_rerunning_the_same_inbox_changes_nothing(
    sample_inbox: Path, db_path: Path, config: ScreeningConfig
) -> None:
    run_local(sample_inbox, db_path, config)
    before = db_state(db_path)
    again = run_local(sample_inbox, db_path, config)
    assert again.new_calls == 0 and again.new_recalls == 0
    assert db_state(db_path) == before


@pytest.mark.slow
def test_redropping_files_never_double_counts(
    sample_inbox: Path, db_path: Path, config: ScreeningConfig
) -> None:
    run_local(sample_inbox, db_path, config)
    before = db_state(db_path)
    for path in (sample_inbox / "archive").rglob("*.csv"):
        shutil.copy2(path, sample_inbox / path.name)
    # the same content under another name is the same file
    shutil.copy2(SAMPLE_INBOX / "20260302.specimens.csv", sample_inbox / "resent.specimens.csv")
    summary = run_local(sample_inbox, db_path, config)
    assert {f["outcome"] for f in summary.files} == {"already ingested"}
    assert db_state(db_path) == before
    csv_files = [p for p in SAMPLE_INBOX.glob("*.csv") if "broken" not in p.name]
    assert len(list((sample_inbox / "archive" / "duplicates").iterdir())) == len(csv_files) + 1


@pytest.mark.slow
def test_same_card_in_a_new_file_is_known_and_a_changed_one_quarantined(
    sample_inbox: Path, db_path: Path, config: ScreeningConfig
) -> None:
    run_local(sample_inbox, db_path, config)
    cards = pl.read_csv(SAMPLE_INBOX / "20260302.specimens.csv", infer_schema=False)
    cards.filter(pl.col("specimen_id") == "S-N01").write_csv(sample_inbox / "a.specimens.csv")
    cards.filter(pl.col("specimen_id") == "S-N02").with_columns(
        birth_weight_g=pl.lit("3100")
    ).write_csv(sample_inbox / "b.specimens.csv")
    summary = run_local(sample_inbox, db_path, config)
    assert summary.already_known_rows == 1
    assert summary.specimen_rows == 0
    q = store.query(db_path, "SELECT reason FROM quarantine WHERE file_name = 'b.specimens.csv'")
    assert "already received with different data" in q.item()
    assert "20260302.specimens.csv row 2" in q.item()


def test_a_key_twice_in_one_batch_is_kept_once_or_held_when_it_differs(
    tmp_path: Path, db_path: Path, config: ScreeningConfig
) -> None:
    """Within one run: the same result row in two files counts once; a result key sent
    twice with different values is held in quarantine from both files, naming both."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy2(SAMPLE_INBOX / "20260302.specimens.csv", inbox)
    results = pl.read_csv(SAMPLE_INBOX / "20260302-msms.results.csv", infer_schema=False)
    results.write_csv(inbox / "a.results.csv")
    first = results.row(0, named=True)
    second = results.row(1, named=True)
    pl.DataFrame([first, {**second, "value": "999"}]).write_csv(inbox / "b.results.csv")
    summary = run_local(inbox, db_path, config)
    assert summary.already_known_rows == 1  # the identical repeat
    held = store.query(
        db_path,
        "SELECT file_name, reason FROM quarantine WHERE reason LIKE '%reused%' "
        "ORDER BY file_name, row_number",
    )
    assert held["file_name"].to_list() == ["a.results.csv", "b.results.csv"]
    assert held["reason"][0].startswith("result reused with different data")
    assert "a.results.csv row 2" in held["reason"][0] and "b.results.csv row 2" in held["reason"][0]
    stored = store.query(
        db_path,
        "SELECT count(*) FROM results WHERE specimen_id = ? AND analyte = ? AND replicate = ?",
        [second["specimen_id"], second["analyte"], int(second["replicate"])],
    )
    assert stored.item() == 0
    bad_anyway = store.query(
        db_path,
        "SELECT count(DISTINCT row_number) FROM quarantine "
        "WHERE file_name = 'a.results.csv' AND reason NOT LIKE '%reused%'",
    ).item()
    kept = store.query(db_path, "SELECT count(*) FROM results").item()
    assert kept == results.height - 1 - bad_anyway


@pytest.mark.slow
@pytest.mark.parametrize("where", ["before_commit", "inside_transaction"])
def test_crash_before_commit_leaves_database_and_inbox_as_before(
    where: str,
    sample_inbox: Path,
    db_path: Path,
    config: ScreeningConfig,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # a first, complete run so that there is a previous state to keep
    first = tmp_path / "first"
    first.mkdir()
    shutil.copy2(SAMPLE_INBOX / "20260302.specimens.csv", first)
    run_local(first, db_path, config)
    before = db_state(db_path)
    files_before = sorted(p.name for p in sample_inbox.iterdir())

    class Crash(Exception):
        pass

    if where == "before_commit":

        def crash(*args: object, **kwargs: object) -> None:
            raise Crash

        monkeypatch.setattr(store, "commit_run", crash)
    else:
        real = store.commit._write

        def write_then_crash(*args: object, **kwargs: object) -> None:
            real(*args, **kwargs)  # type: ignore[arg-type]
            raise Crash  # every insert done, COMMIT never reached

        monkeypatch.setattr(store.commit, "_write", write_then_crash)
    with pytest.raises(RunFailed) as failed:
        run_local(sample_inbox, db_path, config)
    # reported as what it left: nothing committed (read back from the database)
    assert isinstance(failed.value.__cause__, Crash) and failed.value.committed is False
    assert str(failed.value).startswith("nothing was committed: writing to the database")
    assert failed.value.exit_code == 4
    assert db_state(db_path) == before
    assert sorted(p.name for p in sample_inbox.iterdir()) == files_before
    monkeypatch.undo()
    run_local(sample_inbox, db_path, config)
    calls = store.query(db_path, "SELECT specimen_id, condition, call FROM screening_calls")
    assert _rows(calls, ["specimen_id", "condition", "call"]) == _rows(
        _expected(EXPECTED_CALLS), ["specimen_id", "condition", "call"]
    )


@pytest.mark.slow
def test_crash_between_commit_and_archive_is_completed_by_the_rerun(
    sample_inbox: Path,
    db_path: Path,
    config: ScreeningConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(pipeline, "archive", crash)
    with pytest.raises(RunFailed) as failed:
        run_local(sample_inbox, db_path, config)
    assert failed.value.committed is True and failed.value.exit_code == 5
    assert str(failed.value) == (
        "committed; archiving files failed: RuntimeError: power cut; the next run finishes it"
    )
    committed = db_state(db_path)
    monkeypatch.undo()
    summary = run_local(sample_inbox, db_path, config)
    assert summary.new_calls == 0 and summary.new_recalls == 0
    assert db_state(db_path) == committed
    recorded = store.query(db_path, "SELECT archived_as FROM ingested_files")
    for dest in recorded["archived_as"]:
        assert (sample_inbox / dest).is_file(), dest
    assert not (sample_inbox / "archive" / "duplicates").exists()
    assert (sample_inbox / "quarantine" / "20260302-broken.results.csv.error.txt").is_file()


def test_migrations_are_numbered_and_applied_once(db_path: Path) -> None:
    assert store.migrate(db_path) == [n for n, _, _ in store.migration_scripts()]
    assert store.migrate(db_path) == []
    assert store.schema_version(db_path) == max(n for n, _, _ in store.migration_scripts())


@pytest.mark.slow
def test_two_runs_at_once_do_not_interleave(
    sample_inbox: Path, db_path: Path, config: ScreeningConfig
) -> None:
    with store.run_lock(db_path), pytest.raises(store.RunInProgress, match="another"):
        run_local(sample_inbox, db_path, config)
    assert sorted(p.name for p in sample_inbox.iterdir()) == sorted(
        p.name for p in SAMPLE_INBOX.iterdir()
    )
    run_local(sample_inbox, db_path, config)  # the lock is gone with its holder


@pytest.mark.slow
def test_yield_by_year_counts_babies_referrals_and_ppv(
    sample_inbox: Path, db_path: Path, config: ScreeningConfig
) -> None:
    run_local(sample_inbox, db_path, config)
    rows = {
        r["condition"]: r
        for r in store.query(db_path, "SELECT * FROM yield_by_year WHERE year = 2026").iter_rows(
            named=True
        )
    }
    # babies with an evaluated first card in 2026: 40 valid 2026 cards minus not-evaluated
    assert rows["PKU"]["screened"] == 39 and rows["CH"]["screened"] == 38
    assert (rows["PKU"]["referrals"], rows["PKU"]["repeat_requests"]) == (1, 1)
    assert (rows["CH"]["referrals"], rows["CH"]["repeat_requests"]) == (2, 1)
    assert rows["CH"]["recall_rate_pct"] == pytest.approx(100 * 2 / 38, abs=1e-4)
    assert rows["CH"]["ppv_pct"] == 0 and rows["CH"]["confirmed"] == 0
    # a coordinator closes the CH referrals: one confirmed, one false positive
    with store.connect(db_path) as con:
        con.execute(
            "UPDATE recalls SET status = 'closed', outcome = 'confirmed' "
            "WHERE specimen_id = 'S-CH1' AND condition = 'CH'"
        )
        con.execute(
            "UPDATE recalls SET status = 'closed', outcome = 'false_positive' "
            "WHERE specimen_id = 'S-PRE2' AND condition = 'CH'"
        )
    ch = store.query(
        db_path, "SELECT * FROM yield_by_year WHERE condition = 'CH' AND year = 2026"
    ).row(0, named=True)
    assert (ch["confirmed"], ch["false_positives"]) == (1, 1)
    assert ch["ppv_pct"] == pytest.approx(50.0)
    assert ch["incidence_per_100k"] == pytest.approx(100000 / 38, abs=0.01)


@pytest.mark.slow
def test_a_file_still_being_written_is_waited_for_then_left_for_the_next_run(
    tmp_path: Path, db_path: Path, config: ScreeningConfig
) -> None:
    import threading
    import time

    from nbs.intake.discover import Stability, wait_until_stable

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    growing = inbox / "20260302.specimens.csv"
    growing.write_text("specimen_id,baby_id\n")
    done = inbox / "old.results.csv"
    done.write_text("x\n")
    old = time.time() - 60
    os.utime(done, (old, old))

    def writer() -> None:  # an instrument still appending for ~0.8 s
        for i in range(8):
            with open(growing, "a") as fh:
                fh.write(f"S{i},B{i}\n")
            time.sleep(0.1)

    thread = threading.Thread(target=writer)
    thread.start()
    t0 = time.monotonic()
    stable, changing = wait_until_stable(
        [growing, done], Stability(settle_s=0.5, wait_s=5, poll_s=0.05)
    )
    waited = time.monotonic() - t0
    thread.join()
    assert stable == sorted([growing, done]) and changing == []
    assert waited >= 0.5 + 0.7  # it waited for the writer to stop, then for the settle time
    assert growing.read_text().count("\n") == 9  # read only once complete

    # a file that never settles within the wait is left in the inbox, not half-read
    stop = threading.Event()

    def endless() -> None:
        while not stop.is_set():
            with open(growing, "a") as fh:
                fh.write("more\n")
            time.sleep(0.05)

    thread = threading.Thread(target=endless)
    thread.start()
    time.sleep(0.2)  # the writer is busy before the run looks
    try:
        stable, changing = wait_until_stable(
            [growing, done], Stability(settle_s=0.3, wait_s=1.0, poll_s=0.05)
        )
    finally:
        stop.set()
        thread.join()
    assert stable == [done] and changing == [growing]


@pytest.mark.slow
def test_evaluating_in_chunks_gives_the_same_rows(
    tmp_path: Path, config: ScreeningConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cards are evaluated a chunk at a time (bounded memory); the calls, recalls and the
    run's percentile limits must not depend on where the chunks fall."""

    whole, chunked = tmp_path / "whole", tmp_path / "chunked"
    for folder in (whole, chunked):
        shutil.copytree(SAMPLE_INBOX, folder / "inbox")
    run_local(whole / "inbox", whole / "nbs.duckdb", config)
    monkeypatch.setenv("NBS_EVALUATION_CHUNK", "7")
    summary = run_local(chunked / "inbox", chunked / "nbs.duckdb", config)
    assert summary.cards_evaluated > 5 * 7  # really several chunks
    assert db_state(chunked / "nbs.duckdb") == db_state(whole / "nbs.duckdb")


@pytest.mark.slow
def test_results_in_any_row_order_give_the_same_rows(
    tmp_path: Path, config: ScreeningConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The evaluation slices the results by card: results listed card by card (checked,
    not sorted again) and results in any order (sorted first) give the same calls, also
    with results of no card among them and chunks cut between cards."""
    from data_samples.generator import generate_cohort, write_inbox

    cohort = generate_cohort(300, seed=11, incidence_scale=300)
    # a card not received: its results fall between other cards' and must stay pending
    orphan = cohort.results.filter(pl.col("specimen_id") == cohort.results["specimen_id"][40])
    results = pl.concat(
        [
            cohort.results,
            orphan.with_columns(specimen_id=pl.col("specimen_id").str.replace(r"$", "X")),
        ]
    )
    in_order = dataclasses.replace(cohort, results=results.sort("specimen_id"))
    shuffled = dataclasses.replace(
        cohort, results=results.sample(fraction=1.0, shuffle=True, seed=3)
    )
    without = dataclasses.replace(cohort, results=cohort.results.sort("specimen_id"))
    assert in_order.results["specimen_id"].is_sorted()
    assert not shuffled.results["specimen_id"].is_sorted()
    monkeypatch.setenv("NBS_EVALUATION_CHUNK", "17")
    decided = ("calls", "retests", "recalls", "screened", "marker_month_percentiles")
    states = []
    for name, variant, pending in (
        ("in_order", in_order, 1),
        ("shuffled", shuffled, 1),
        ("without_orphan", without, 0),
    ):
        write_inbox(variant, tmp_path / name / "inbox")
        summary = run_local(tmp_path / name / "inbox", tmp_path / name / "nbs.duckdb", config)
        assert summary.pending_cards == pending
        state = db_state(tmp_path / name / "nbs.duckdb")
        # the results files differ (row order, hence hash and row numbers; the orphan's
        # rows); what was decided from them must not
        states.append({t: state[t] for t in decided})
    assert states[0] == states[1] == states[2]
    assert len(states[0]["calls"]) == 300 * 7
    # migration 013: the long texts and ids of calls are stored with ZSTD
    stored = store.query(
        tmp_path / "in_order" / "nbs.duckdb",
        "SELECT DISTINCT column_name, compression FROM pragma_storage_info('calls') "
        "WHERE column_name IN ('reason', 'specimen_id') AND segment_type = 'VARCHAR'",
    )
    assert sorted(stored.rows()) == [("reason", "ZSTD"), ("specimen_id", "ZSTD")]


def _small_blocks(monkeypatch: pytest.MonkeyPatch, **blocks: int) -> None:
    """Read files in blocks smaller than the settings accept (a few rows each)."""
    small = settings.current().model_copy(update=blocks)
    monkeypatch.setattr(settings, "current", lambda: small)


@pytest.mark.slow
def test_reading_big_files_in_blocks_gives_the_same_rows(
    tmp_path: Path, config: ScreeningConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole, sliced = tmp_path / "whole", tmp_path / "sliced"
    for folder in (whole, sliced):
        shutil.copytree(SAMPLE_INBOX, folder / "inbox")
    run_local(whole / "inbox", whole / "nbs.duckdb", config)
    # a few rows per block: bad rows, and rows of the same card, fall in several blocks
    _small_blocks(monkeypatch, block_bytes=700, parquet_block_rows=13)
    run_local(sliced / "inbox", sliced / "nbs.duckdb", config)
    assert db_state(sliced / "nbs.duckdb") == db_state(whole / "nbs.duckdb")


@pytest.mark.slow
def test_a_batch_committed_twice_is_stored_once(
    sample_inbox: Path, db_path: Path, config: ScreeningConfig
) -> None:
    """A commit repeated with the same work (a retried Prefect task whose first attempt
    did commit) adds no raw row, result or call: rows come only from files not yet
    recorded, calls only from evidence not yet evaluated."""
    with pipeline.open_run(sample_inbox, db_path, "local") as ctx:
        planned, ignored = pipeline.plan_files(ctx, config)
        staged = [pipeline.stage_file(p, ctx.work_dir, config) for p in planned]
        batch = pipeline.build_batch(ctx, planned, staged, config, ignored)
        first = pipeline.commit(ctx, batch)
        tables = ("raw_result_rows", "raw_specimen_rows", "results", "specimens", "calls")
        counts = {t: store.query(db_path, f"SELECT count(*) FROM {t}").item() for t in tables}
        assert first.new_calls > 0 and counts["results"] > 0
        with pytest.raises(duckdb.ConstraintException, match="run_id"):
            pipeline.commit(ctx, batch)  # the same run twice: refused, rolled back
        # the same work under another run id (what a row-by-row guard would be for)
        second = pipeline.commit(dataclasses.replace(ctx, run_id=ctx.run_id + "-again"), batch)
        assert second.new_calls == 0 and second.new_recalls == 0
        assert {
            t: store.query(db_path, f"SELECT count(*) FROM {t}").item() for t in tables
        } == counts


def test_a_file_found_unreadable_deep_inside_leaves_no_staged_part(
    tmp_path: Path, config: ScreeningConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks are validated and written while the next is read: when a later block turns
    out unreadable, the parts already written for the file are removed, none is kept."""
    from nbs.intake import discover as ingest

    header = "specimen_id,analyte,value,unit,measured_at,instrument,plate_id,replicate\n"
    good = "".join(f"S{i},PHE,55,µmol/L,2026-03-02T10:00,MS1,P1,1\n" for i in range(200))
    path = tmp_path / "deep.results.csv"
    path.write_bytes((header + good).encode() + b"S9,PHE,\xff\xfe,umol/L,x,y,z,1\n")
    _small_blocks(monkeypatch, block_bytes=600)
    planned = pipeline.PlannedFile(
        ingest.InboxFile(path, "results", "csv", ingest.sha256_of(path), path.stat().st_size),
        "new",
        "archive/deep.results.csv",
    )
    work = tmp_path / "work"
    staged = pipeline.stage_file(planned, work, config)
    assert not staged.readable and "not UTF-8" in str(staged.error)
    assert list((work / store.STAGED_DIR).iterdir()) == []
    # the same file without the bad row: every block kept, every row counted
    path.write_text(header + good, encoding="utf-8")
    planned = dataclasses.replace(
        planned,
        file=ingest.InboxFile(path, "results", "csv", ingest.sha256_of(path), path.stat().st_size),
    )
    staged = pipeline.stage_file(planned, work, config)
    assert staged.readable and staged.rows_read == 200 and staged.rows_quarantined == 0
    assert len(list((work / store.STAGED_DIR).iterdir())) > 3 * 5  # many blocks


@pytest.mark.parametrize(
    ("rows", "blocked", "unreadable"),
    [
        (200, 2, False),  # block 2 fails while later blocks are read
        (40, 1, True),  # the last block before the unreadable one fails
    ],
)
def test_a_block_that_cannot_be_written_fails_the_file_and_leaves_no_part(
    tmp_path: Path,
    config: ScreeningConfig,
    monkeypatch: pytest.MonkeyPatch,
    rows: int,
    blocked: int,
    unreadable: bool,
) -> None:
    """A part that cannot be written (here: a folder in its place, as a full disk would do)
    is the machine's fault, not the file's: staging raises (a retry can succeed) instead of
    reporting the file unreadable, even when the file is also unreadable further on, and
    no part of the file is left for the batch to pick up."""
    from nbs.intake import discover as ingest

    header = "specimen_id,analyte,value,unit,measured_at,instrument,plate_id,replicate\n"
    good = "".join(f"S{i},PHE,55,µmol/L,2026-03-02T10:00,MS1,P1,1\n" for i in range(rows))
    path = tmp_path / "blocked.results.csv"
    tail = b"S9,PHE,\xff\xfe,umol/L,x,y,z,1\n" if unreadable else b""
    path.write_bytes((header + good).encode() + tail)
    _small_blocks(monkeypatch, block_bytes=600)
    sha = ingest.sha256_of(path)
    planned = pipeline.PlannedFile(
        ingest.InboxFile(path, "results", "csv", sha, path.stat().st_size),
        "new",
        "archive/blocked.results.csv",
    )
    if unreadable:  # the failure is found only once the file turned out unreadable
        blocks = ingest.read_raw_blocks(planned.file)
        for _ in range(blocked + 1):  # blocks 0 to ``blocked`` read fine
            next(blocks)
        with pytest.raises(ingest.UnreadableFile):
            next(blocks)
    work = tmp_path / "work"
    store.staged_part(work, "good", "results", sha, blocked).mkdir(parents=True)
    with pytest.raises(OSError):
        pipeline.stage_file(planned, work, config)
    parts = (work / store.STAGED_DIR).glob("*.parquet")
    assert [p for p in parts if p.is_file()] == []  # (the folder in the way is not a part)


def test_a_damaged_parquet_file_is_unreadable_but_a_vanished_file_fails_the_step(
    tmp_path: Path,
) -> None:
    """A Parquet file cut short is the file's fault: unreadable, kept with its error
    (pyarrow reports it as a bare OSError). A file gone between discovery and reading is
    the machine's (an OSError with an errno): the step fails, to be retried, and the
    file is not reported unreadable."""
    from nbs.intake import discover as ingest

    whole = tmp_path / "whole.results.parquet"
    pl.DataFrame({"specimen_id": ["S1"] * 5000, "analyte": ["PHE"] * 5000}).write_parquet(whole)
    damaged = tmp_path / "damaged.results.parquet"
    damaged.write_bytes(whole.read_bytes()[100:])
    gone = tmp_path / "gone.results.csv"

    def inbox_file(path: Path, fmt: str) -> ingest.InboxFile:
        return ingest.InboxFile(path, "results", fmt, "0" * 64, 0)  # type: ignore[arg-type]

    with pytest.raises(ingest.UnreadableFile, match="cannot be read as PARQUET"):
        list(ingest.read_raw_blocks(inbox_file(damaged, "parquet")))
    with pytest.raises(FileNotFoundError):
        list(ingest.read_raw_blocks(inbox_file(gone, "csv")))
