"""The ``nbs`` command line: real console script for the contract's behaviour (exit codes,
one-line errors), in-process runner for the rest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from data_samples import EXPECTED_CALLS, EXPECTED_RECALLS, SAMPLE_INBOX

pytestmark = pytest.mark.slow  # every test runs `nbs` as a process

N_RECALLS = pl.read_csv(EXPECTED_RECALLS).height
N_CARDS = pl.read_csv(EXPECTED_CALLS)["specimen_id"].n_unique()

NBS = str(Path(sys.executable).with_name("nbs"))


def nbs(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("PREFECT_API_URL", None)
    return subprocess.run(
        [NBS, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False
    )


@pytest.fixture
def ran(tmp_path: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    inbox = tmp_path / "inbox"
    shutil.copytree(SAMPLE_INBOX, inbox)
    db = tmp_path / "nbs.duckdb"
    return db, nbs("run", str(inbox), "--db", str(db))


def test_run_with_quarantined_input_succeeds_and_says_so(
    ran: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    db, proc = ran
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "local" in out  # no Prefect API configured: the in-process engine
    assert "20260302-broken.results.csv" in out and "unreadable" in out
    assert "Some input was quarantined: 6 row(s), 1 unreadable file(s)" in out
    assert "collection before birth" in out
    assert db.is_file()


def test_recalls_list_formats(ran: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    db, _ = ran
    as_json = nbs("recalls", "list", "--db", str(db), "--format", "json")
    assert as_json.returncode == 0
    recalls = json.loads(as_json.stdout)
    assert len(recalls) == N_RECALLS
    assert recalls[0]["urgency"] == "urgent"  # urgent first
    as_csv = nbs("recalls", "list", "--db", str(db), "--status", "open", "--format", "csv")
    frame = pl.read_csv(as_csv.stdout.encode())
    assert frame.height == N_RECALLS
    assert {
        "recall_id",
        "baby_id",
        "specimen_id",
        "condition",
        "action",
        "urgency",
        "status",
        "outcome",
        "reason",
        "rule_version",
    } <= set(frame.columns)
    table = nbs("recalls", "list", "--db", str(db))
    assert table.returncode == 0 and "S-PKU1" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "/no/such/inbox", "--db", "x.duckdb"],
            "error: inbox /no/such/inbox is not a folder",
        ),
        (
            ["recalls", "list", "--db", "/no/such.duckdb"],
            "error: database /no/such.duckdb does not exist",
        ),
        (["recalls", "list", "--db", "x.duckdb", "--status", "maybe"], "error: --status must be"),
    ],
)
def test_bad_arguments_give_one_line_error_and_non_zero_exit(
    args: list[str], message: str, tmp_path: Path
) -> None:
    if "x.duckdb" in args:
        (tmp_path / "x.duckdb").touch()
    proc = nbs(*args, cwd=tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith(message), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_unknown_engine_is_refused(tmp_path: Path) -> None:
    proc = nbs("run", str(tmp_path), "--db", "x.duckdb", "--engine", "spark")
    assert proc.returncode == 2
    assert "spark" in proc.stderr


def test_bad_cutoff_folder_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("version: X\n")
    proc = nbs("run", str(tmp_path), "--db", str(tmp_path / "d.duckdb"), "--cutoffs", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: configuration:")


def test_conditions_lists_plugins_with_versions() -> None:
    proc = nbs("conditions")
    assert proc.returncode == 0
    assert "PKU" in proc.stdout and "CH" in proc.stdout and "1.0" in proc.stdout


def test_demo_runs_in_a_named_folder(tmp_path: Path) -> None:
    proc = nbs("demo", "--dir", str(tmp_path / "demo"), "--cards", "60")
    assert proc.returncode == 0, proc.stderr
    db = tmp_path / "demo" / "nbs.duckdb"
    assert db.is_file()
    assert str(db) in proc.stdout.replace("\n", "")
    assert "Open recall list" in proc.stdout
    from nbs import store

    cards = store.query(db, "SELECT count(*) FROM specimens").item()
    assert cards == N_CARDS + 60


def _database_at_011(db: Path) -> None:
    """A database as version 011 of the schema left it, with one card's result, its raw row
    and a call (the columns 012 moves or re-creates)."""
    import duckdb

    from nbs import store

    con = duckdb.connect(str(db))
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
        "applied_at TIMESTAMP NOT NULL)"
    )
    for number, name, sql in store.migration_scripts():
        if number <= 11:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [number, name])
    con.execute(
        "INSERT INTO raw_result_rows VALUES ('f1', 7, 'S1', 'Phenylalanine', '0,9', 'mg/dL', "
        "'2026-03-06T09:00', 'MSMS-01', 'P1', 'A3', '1', NULL)"
    )
    con.execute(
        "INSERT INTO results VALUES ('S1', 'PHE', 1, 54.49, 'µmol/L', 0.9, 'mg/dL', "
        "'Phenylalanine', TIMESTAMP '2026-03-06 09:00', 'MSMS-01', 'P1', 'A3', NULL, 'f1', 7, "
        "'run-1')"
    )
    con.execute(
        "INSERT INTO calls (specimen_id, baby_id, condition, call, reason, evidence, run_id, "
        "run_seq, evaluated_at) VALUES ('S1', 'B1', 'PKU', 'negative', 'PKU negative', "
        "'PHE#1', 'run-1', 1, TIMESTAMP '2026-03-07 10:00')"
    )
    con.close()


def test_a_database_made_by_an_older_version_is_upgraded_on_first_use(tmp_path: Path) -> None:
    """A lab installs a new version: its first command on the existing database applies the
    migrations the database lacks (here everything after 011), instead of failing on a view
    that version added; the rows and their texts as reported are all still there."""
    from nbs import store

    db = tmp_path / "old.duckdb"
    _database_at_011(db)
    latest = max(n for n, _, _ in store.migration_scripts())
    assert store.schema_version(db) == 11 < latest

    proc = nbs("recalls", "list", "--db", str(db), "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert "upgraded: migration(s) 12" in proc.stderr
    assert store.schema_version(db) == latest
    row = store.query(db, "SELECT * FROM result_details").row(0, named=True)
    assert (row["specimen_id"], row["analyte"], row["value"], row["value_reported"]) == (
        "S1",
        "PHE",
        54.49,
        0.9,
    )
    assert (row["analyte_reported"], row["unit_reported"]) == ("Phenylalanine", "mg/dL")
    assert (row["instrument"], row["plate_id"], row["well"]) == ("MSMS-01", "P1", "A3")
    # the card never arrived: the result is pending, with its texts
    pending = store.query(db, "SELECT instrument FROM pending_results")
    assert pending["instrument"].to_list() == ["MSMS-01"]
    call = store.query(db, "SELECT call, kind FROM calls").row(0)
    assert call == ("negative", "screening")  # kind's default kept by the re-created table
    again = nbs("recalls", "list", "--db", str(db), "--format", "csv")
    assert again.returncode == 0 and "upgraded" not in again.stderr


def test_an_upgrade_that_would_lose_reported_texts_stops(tmp_path: Path) -> None:
    """012 moves the texts as reported out of ``results``: a result without its raw row
    stops the migration, and the database stays as it was."""
    import duckdb

    from nbs import store

    db = tmp_path / "old.duckdb"
    _database_at_011(db)
    con = duckdb.connect(str(db))
    con.execute("DELETE FROM raw_result_rows")
    con.close()
    proc = nbs("stats", "--db", str(db), "--year", "2026")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert "migration 012" in proc.stderr and "1 result(s) have no raw row" in proc.stderr
    assert store.schema_version(db) == 11
    kept = store.query(db, "SELECT unit_reported, instrument FROM results")
    assert kept.row(0) == ("mg/dL", "MSMS-01")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"version: X\nconditions:\n  PKU: [1, 2\n", "bad.yaml:4: expected ',' or ']'"),
        (b'version: "Caf\xe9"\n', "bad.yaml:1: not UTF-8 (byte 0xe9); save the file as UTF-8"),
    ],
)
def test_a_malformed_cutoff_file_is_one_line_naming_file_and_line(
    content: bytes, says: str, tmp_path: Path
) -> None:
    cutoffs = tmp_path / "cutoffs"
    cutoffs.mkdir()
    (cutoffs / "bad.yaml").write_bytes(content)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    proc = nbs("run", str(inbox), "--db", str(tmp_path / "d.duckdb"), "--cutoffs", str(cutoffs))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith("error: configuration: ") and says in lines[0]
    assert not (tmp_path / "d.duckdb").exists()  # refused before anything was written


def test_a_malformed_catalogue_is_one_line_naming_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from analytes import catalogue
    from nbs import cli

    broken = tmp_path / "catalogue.yaml"
    broken.write_text("catalogue_version: '1'\nanalytes:\n  - code: PHE\n   unit: x\n")
    monkeypatch.setattr(catalogue, "DEFAULT_CATALOGUE", broken)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    monkeypatch.setattr(sys, "argv", ["nbs", "run", str(inbox), "--db", str(tmp_path / "d.duckdb")])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: configuration: {broken}:4: ")


def test_first_day_mistakes_are_refused_with_the_way_forward(tmp_path: Path) -> None:
    """The committed sample inbox is never consumed by a run pointed at it; a summary has no
    CSV form; an account needs a laboratory's database, not a new empty file."""
    before = sorted(p.name for p in SAMPLE_INBOX.iterdir())
    db = tmp_path / "lab.duckdb"
    sample = nbs("run", str(SAMPLE_INBOX), "--db", str(db), "--engine", "local")
    assert sample.returncode == 2
    assert "committed sample inbox" in sample.stderr and "nbs demo" in sample.stderr
    assert sorted(p.name for p in SAMPLE_INBOX.iterdir()) == before and not db.exists()
    csv = nbs("run", str(tmp_path), "--db", str(db), "--format", "csv")
    assert csv.returncode == 2 and "csv" in csv.stderr
    user = subprocess.run(
        [NBS, "users", "add", "anne", "--role", "lab", "--db", str(db), "--password-stdin"],
        input="a-long-password\n",
        capture_output=True,
        text=True,
    )
    assert user.returncode == 2 and "does not exist" in user.stderr and not db.exists()


def test_the_run_summary_lists_its_card_warnings(sample_inbox: Path, tmp_path: Path) -> None:
    """Cards kept with a warning are named in the summary, not only counted."""
    done = nbs("run", str(sample_inbox), "--db", str(tmp_path / "x.duckdb"), "--engine", "local")
    assert done.returncode == 0, done.stderr
    assert "Card warnings" in done.stdout
    assert "S-WARN" in done.stdout and "implausible" in done.stdout
