"""Fault cases of the inbox: files that change while a run reads them, a database reached
through a link, entries that are not plain files, rows longer than their header, and times
with offsets."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from data_samples import SAMPLE_INBOX
from nbs import store
from nbs.config import ScreeningConfig
from nbs.run import faults, stage
from nbs.run import steps as pipeline
from nbs.run.steps import run_local

CARDS = "20260302.specimens.csv"
MSMS = "20260302-msms.results.csv"


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    """The sample's cards and MS/MS results (which include S-LATE's, whose card is late)."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    for name in (CARDS, MSMS):
        shutil.copy2(SAMPLE_INBOX / name, folder / name)
    return folder


def _corrected_cards() -> bytes:
    """The card file corrected by the sender: S-LATE's card added."""
    cards = pl.read_csv(SAMPLE_INBOX / CARDS, infer_schema=False)
    late = cards.filter(pl.col("specimen_id") == "S-N01").with_columns(
        specimen_id=pl.lit("S-LATE"), baby_id=pl.lit("BLATE")
    )
    return pl.concat([cards, late]).write_csv().encode()


def _same_size_correction() -> bytes:
    """The card file with one weight corrected, byte for byte as long as before."""
    text = (SAMPLE_INBOX / CARDS).read_bytes()
    before = b"S-N02,BN02,2026-03-01T08:30:00,2026-03-03T20:30:00,2026-03-04T16:30:00,F,3350"
    assert before in text
    return text.replace(before, before[:-4] + b"3351")


def _printed(summary: pipeline.RunSummary) -> str:
    """The summary as ``nbs run`` prints it, and as the Prefect artifact shows it."""
    from rich.console import Console

    from nbs.run.summary import print_summary, summary_markdown

    console = Console(record=True, width=400)
    print_summary(summary, console)
    return console.export_text() + summary_markdown(summary)


def _stored_cards(db: Path) -> int:
    return int(store.query(db, "SELECT count(*) FROM specimens").item())


def _pending(db: Path) -> list[str]:
    found = store.query(db, "SELECT DISTINCT specimen_id FROM pending_results")
    return sorted(found["specimen_id"])


def _archived(inbox: Path, name: str) -> list[Path]:
    return [p for p in (inbox / "archive").rglob(name) if p.is_file()]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["in place", "renamed over it", "in place, same size"])
def test_a_file_overwritten_after_it_was_read_is_left_for_the_next_run(
    how: str, inbox: Path, db_path: Path, config: ScreeningConfig
) -> None:
    """A corrected file copied over one the run has read is not archived with content the
    database never saw: it stays in the inbox, the summary says so, and the next run
    reads it."""
    target = inbox / CARDS
    corrected = _same_size_correction() if how.endswith("same size") else _corrected_cards()

    def overwrite() -> None:
        if how == "renamed over it":  # as rsync and most copy tools do: a new file
            fresh = inbox / ".incoming"
            fresh.write_bytes(corrected)
            os.replace(fresh, target)
        else:  # as cp does: the same file, rewritten
            target.write_bytes(corrected)

    with faults.hook("after-staging", overwrite):
        first = run_local(inbox, db_path, config)
    assert target.read_bytes() == corrected  # still in the inbox, as the sender left it
    assert _archived(inbox, CARDS) == []
    assert first.not_archived == [
        f"{CARDS} (changed after it was read: left in the inbox for the next run)"
    ]
    assert _archived(inbox, MSMS)  # the unchanged file is archived as usual
    assert f"Read, but left in the inbox: {first.not_archived[0]}" in _printed(first)
    cards = _stored_cards(db_path)

    second = run_local(inbox, db_path, config)
    assert [p.read_bytes() for p in _archived(inbox, CARDS)] == [corrected]
    assert second.not_archived == []
    if how.endswith("same size"):  # the correction is seen (and held), never lost in silence
        held = store.query(db_path, "SELECT value, reason FROM quarantine WHERE row_number = 2")
        assert "already received with different data" in held["reason"].item()
        assert second.already_known_rows == cards - 1
    else:
        assert second.specimen_rows == 1 and second.already_known_rows == cards
        assert "S-LATE" not in _pending(db_path)


@pytest.mark.slow
def test_a_file_changed_while_it_is_read_is_not_ingested(
    inbox: Path, db_path: Path, config: ScreeningConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file rewritten while its blocks are read: what was read may be neither the old
    content nor the new, so nothing of it is kept; the next run reads it whole."""
    target = inbox / CARDS
    reading = stage.read_raw_blocks

    def read_then_overwrite(file, block_bytes=None) -> Iterator[pl.DataFrame]:  # type: ignore[no-untyped-def]
        for i, block in enumerate(reading(file, block_bytes)):
            if i == 0 and file.path == target:
                target.write_bytes(_corrected_cards())
            yield block

    monkeypatch.setattr(stage, "read_raw_blocks", read_then_overwrite)
    first = run_local(inbox, db_path, config)
    outcome = {f["name"]: f["outcome"] for f in first.files}
    assert outcome[CARDS] == "changed while read: not ingested"
    assert first.specimen_rows == 0
    recorded = store.query(db_path, "SELECT file_name FROM ingested_files")
    assert CARDS not in recorded["file_name"].to_list()
    assert target.read_bytes() == _corrected_cards()

    monkeypatch.undo()
    second = run_local(inbox, db_path, config)
    assert second.specimen_rows == _stored_cards(db_path) > 40
    assert "S-LATE" not in _pending(db_path) and _archived(inbox, CARDS)


@pytest.mark.slow
def test_a_writer_that_pauses_longer_than_the_settle_time_loses_nothing(
    inbox: Path,
    tmp_path: Path,
    db_path: Path,
    config: ScreeningConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An instrument writes half its file, pauses past the settle time (the run reads the
    half), then writes the rest before the archiving: the file is not archived half-read;
    the next run ingests the rest, counting the first half once."""
    monkeypatch.setenv("NBS_INBOX_SETTLE_S", "0.2")
    lines = (SAMPLE_INBOX / MSMS).read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    target = inbox / MSMS
    target.write_bytes(b"".join(lines[:half]))
    paused = dt.datetime.now().timestamp() - 5  # the pause: longer than the settle time
    os.utime(target, (paused, paused))

    def resume() -> None:
        with open(target, "ab") as fh:
            fh.write(b"".join(lines[half:]))

    with faults.hook("after-evaluation", resume):
        first = run_local(inbox, db_path, config)
    assert first.not_archived == [
        f"{MSMS} (changed after it was read: left in the inbox for the next run)"
    ]
    assert target.read_bytes() == (SAMPLE_INBOX / MSMS).read_bytes()

    second = run_local(inbox, db_path, config)
    assert second.already_known_rows == half - 1  # the half read before: not counted twice
    assert _archived(inbox, MSMS) and not target.exists()
    # the same results and calls as one run of the whole files
    whole = tmp_path / "whole"
    shutil.copytree(SAMPLE_INBOX, whole, ignore=lambda d, names: set(names) - {CARDS, MSMS})
    run_local(whole, tmp_path / "whole.duckdb", config)
    for sql in (
        "SELECT specimen_id, analyte, replicate, value FROM results",
        "SELECT specimen_id, condition, call FROM screening_calls",
    ):
        assert sorted(store.query(db_path, sql).rows()) == sorted(
            store.query(tmp_path / "whole.duckdb", sql).rows()
        )


@pytest.mark.slow
def test_two_runs_through_a_linked_database_path_do_not_both_start(
    inbox: Path, tmp_path: Path, config: ScreeningConfig
) -> None:
    """The database given by its name and through a link is one database: one lock, one
    folder of work folders: a second run through the link is refused, the first's work kept."""
    real = tmp_path / "data" / "nbs.duckdb"
    link = tmp_path / "link.duckdb"
    real.parent.mkdir()
    link.symlink_to(real)
    with pipeline.open_run(inbox, real, "local") as first:
        marker = first.work_dir / "staged-part.parquet"
        marker.write_bytes(b"derived data of the first run")
        with pytest.raises(store.RunInProgress, match="another screening run"):
            run_local(inbox, link, config)
        assert marker.is_file()  # the first run's work is intact

        # another database in the same folder is another lock and other work folders
        other = run_local(inbox, real.with_name("other.duckdb"), config)
        assert other.cards_evaluated > 0 and marker.is_file()
    assert not link.with_name("link.duckdb.run.lock").exists()


def test_folders_and_links_named_like_inbox_files_are_named_and_links_copied(
    inbox: Path, tmp_path: Path, db_path: Path, config: ScreeningConfig
) -> None:
    """A folder, a link to nothing and a pipe named like inbox files are named in the
    summary (they were skipped in silence); a link to a file is read, and archived as a
    copy of its content: the file it points to is never moved."""
    (inbox / "2026-03-03.results.csv").mkdir()
    (inbox / "folder.specimens.csv").symlink_to(tmp_path, target_is_directory=True)
    (inbox / "gone.specimens.csv").symlink_to(tmp_path / "nowhere.csv")
    os.mkfifo(inbox / "pipe.results.csv")
    elsewhere = tmp_path / "instrument" / "tier2.results.csv"
    elsewhere.parent.mkdir()
    shutil.copy2(SAMPLE_INBOX / "20260302-tier2.results.csv", elsewhere)
    (inbox / "linked.results.csv").symlink_to(elsewhere)

    summary = run_local(inbox, db_path, config)
    assert summary.ignored_files == [
        "2026-03-03.results.csv (a folder, not a file: not read)",
        "folder.specimens.csv (a link to a folder, not a file: not read)",
        "gone.specimens.csv (a link to nothing: not read)",
        "pipe.results.csv (not a regular file: not read)",
    ]
    outcome = {f["name"]: f["outcome"] for f in summary.files}
    assert outcome["linked.results.csv"] == "ingested"
    [copy] = _archived(inbox, "linked.results.csv")
    assert not copy.is_symlink() and copy.read_bytes() == elsewhere.read_bytes()
    assert elsewhere.is_file() and not (inbox / "linked.results.csv").exists()
    assert _printed(summary).count("gone.specimens.csv (a link to nothing: not read)") == 2


def test_a_row_with_a_field_too_many_is_held_not_the_whole_file(
    inbox: Path, db_path: Path, config: ScreeningConfig
) -> None:
    lines = (SAMPLE_INBOX / CARDS).read_text(encoding="utf-8").splitlines(keepends=True)
    assert lines[3].startswith("S-")
    lines[3] = lines[3].rstrip("\n") + ",Hopital Esch\n"  # an unquoted comma in a value
    (inbox / CARDS).write_text("".join(lines), encoding="utf-8")
    summary = run_local(inbox, db_path, config)
    outcome = {f["name"]: f for f in summary.files}[CARDS]
    assert outcome["outcome"] == "ingested" and outcome["rows_quarantined"] >= 1
    held = store.query(
        db_path,
        "SELECT file_name, column_name, value, reason FROM quarantine WHERE row_number = 3",
    )
    assert held.row(0) == (
        CARDS,
        "(row)",
        "Hopital Esch",
        "more fields than the header (a field too many, or a comma in a value without quotes)",
    )
    card = lines[3].split(",")[0]
    stored = store.query(db_path, "SELECT specimen_id FROM specimens")["specimen_id"]
    assert card not in stored.to_list() and stored.len() >= len(lines) - 1 - 4
    raw = store.query(db_path, "SELECT count(*) FROM raw_specimen_rows WHERE row_number = 3")
    assert raw.item() == 1  # the row is kept as it arrived, with the others


def _card_file(path: Path, times: list[tuple[str, str, str]]) -> None:
    pl.DataFrame(
        {
            "specimen_id": [f"S-TZ{i}" for i in range(len(times))],
            "baby_id": [f"B-TZ{i}" for i in range(len(times))],
            "birth_at": [t[0] for t in times],
            "collected_at": [t[1] for t in times],
            "received_at": [t[2] for t in times],
            "sex": "F",
            "birth_weight_g": "3300",
            "gestational_age_weeks": "39",
            "specimen_quality": "ok",
        }
    ).write_csv(path)


def test_times_with_an_offset_are_converted_to_laboratory_time(
    tmp_path: Path, db_path: Path, config: ScreeningConfig
) -> None:
    """``+01:00``, ``Z``, with ``T`` or a space, and Parquet timestamps with a time zone:
    stored in Luxembourg time (winter +01:00, summer +02:00), not quarantined."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _card_file(
        inbox / "zoned.specimens.csv",
        [
            ("2026-01-10 04:43:00+01:00", "2026-01-12 04:43:00+01:00", "2026-01-13T03:43:00Z"),
            ("2026-07-10T02:43:00Z", "2026-07-12 02:43:00Z", "2026-07-13T04:43:00+02:00"),
            ("2026-01-10T04:43+01:00", "2026-01-12T08:43:00.5+05:00", "2026-01-13 04:43:00"),
        ],
    )
    measured = dt.datetime(2026, 7, 14, 6, 0, tzinfo=dt.UTC)
    pl.DataFrame(
        {
            "specimen_id": ["S-TZ0", "S-TZ1"],
            "analyte": "TSH",
            "value": ["2.0", "2.1"],
            "unit": "mU/L",
            "measured_at": [measured, measured],
            "instrument": "GSP-1",
            "plate_id": "P1",
            "replicate": "1",
        }
    ).with_columns(pl.col("measured_at").dt.convert_time_zone("America/New_York")).write_parquet(
        inbox / "zoned.results.parquet"
    )
    summary = run_local(inbox, db_path, config)
    assert summary.quarantine == [] and summary.quarantined_rows == 0
    cards = store.query(
        db_path, "SELECT birth_at, collected_at, received_at FROM specimens ORDER BY specimen_id"
    )
    local = dt.datetime
    assert cards.rows() == [
        (local(2026, 1, 10, 4, 43), local(2026, 1, 12, 4, 43), local(2026, 1, 13, 4, 43)),
        (local(2026, 7, 10, 4, 43), local(2026, 7, 12, 4, 43), local(2026, 7, 13, 4, 43)),
        (
            local(2026, 1, 10, 4, 43),
            local(2026, 1, 12, 4, 43, 0, 500000),
            local(2026, 1, 13, 4, 43),
        ),
    ]
    times = store.query(db_path, "SELECT DISTINCT measured_at FROM results")
    assert times["measured_at"].to_list() == [local(2026, 7, 14, 8, 0)]  # 06:00 UTC, CEST
