"""Infrastructure faults of ``nbs run``: a full disk, a damaged or foreign
database, read-only folders, an interrupted COMMIT. Each prints ONE line saying what
failed and whether the run's data were committed, with its own exit status, and no
traceback; a rerun once the cause is gone finishes the work.

Full disks and read-only folders are real: a small tmpfs and a read-only bind mount
(root is needed to mount them; without it those cases are skipped, saying so)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest

from data_samples import SAMPLE_INBOX
from nbs import store
from nbs.config import ScreeningConfig
from nbs.run import errors
from nbs.run.errors import RunFailed
from nbs.run.steps import run_local
from nbs.stats import statistics

pytestmark = pytest.mark.slow  # every test runs `nbs` as a process

NBS = str(Path(sys.executable).with_name("nbs"))


def nbs(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": "200", "NBS_INBOX_SETTLE_S": "0", **(env or {})}
    environment.pop("PREFECT_API_URL", None)
    return subprocess.run(
        [NBS, *args], capture_output=True, text=True, env=environment, timeout=300, check=False
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The one line of standard error (and no traceback)."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def _inbox_files(inbox: Path) -> list[str]:
    return sorted(p.name for p in inbox.iterdir() if p.is_file())


def _runs(db: Path) -> int:
    return int(store.query(db, "SELECT count(*) FROM runs").item())


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    shutil.copytree(SAMPLE_INBOX, folder)
    return folder


def test_json_summary_is_the_only_thing_on_standard_output(inbox: Path, tmp_path: Path) -> None:
    proc = nbs("run", str(inbox), "--db", str(tmp_path / "nbs.duckdb"), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)  # nothing else: no note, no progress
    assert summary["quarantined_rows"] == 6 and summary["not_archived"] == []
    assert "Some input was quarantined" in proc.stderr


@pytest.mark.parametrize(
    ("fault", "status", "message"),
    [
        (
            "after-staging:ENOSPC",
            4,
            "nothing was committed: reading and validating file 7/7: 20260302.specimens.csv "
            "failed: no space left on the device",
        ),
        (
            "inside-commit:EIO",
            4,
            "nothing was committed: writing to the database (one transaction) failed: "
            "input/output error (a failing disk?)",
        ),
        (
            "after-commit:INT",
            5,
            "committed; the run after its commit failed: interrupted (Ctrl+C or SIGTERM); "
            "the next run finishes it",
        ),
        (
            "mid-archive:ENOSPC",
            5,
            "committed; archiving files failed: no space left on the device; "
            "the next run finishes it",
        ),
    ],
)
def test_a_failed_run_says_in_one_line_whether_it_committed(
    fault: str, status: int, message: str, inbox: Path, tmp_path: Path
) -> None:
    db = tmp_path / "nbs.duckdb"
    before = _inbox_files(inbox)
    proc = nbs("run", str(inbox), "--db", str(db), "--engine", "local", env={"NBS_FAIL_AT": fault})
    assert proc.returncode == status
    assert one_line_error(proc) == f"error: {message}"
    assert _runs(db) == (1 if status == errors.EXIT_COMMITTED else 0)
    if status == errors.EXIT_NOT_COMMITTED:
        assert _inbox_files(inbox) == before  # the inbox as it was
    again = nbs("run", str(inbox), "--db", str(db), "--engine", "local")
    assert again.returncode == 0, again.stderr
    assert _runs(db) == 1 + (status == errors.EXIT_COMMITTED) and _inbox_files(inbox) == []


def test_an_interruption_as_the_commit_returns_is_reported_as_committed(
    inbox: Path, db_path: Path, config: ScreeningConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The COMMIT went through, then the run was interrupted before it could say so: the
    failure is read from the database, not guessed from the step it happened in."""
    real = store.commit_run

    def interrupted_after_commit(*args: object) -> store.CommitCounts:
        real(*args)  # type: ignore[arg-type]
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "commit_run", interrupted_after_commit)
    with pytest.raises(RunFailed) as failed:
        run_local(inbox, db_path, config)
    assert failed.value.committed is True and failed.value.exit_code == 5
    assert str(failed.value).startswith("committed; the run after its commit failed")


def test_sigterm_ends_a_run_with_one_line_and_nothing_committed(
    inbox: Path, tmp_path: Path
) -> None:
    """A service manager's stop while the run waits for a file to settle."""
    db = tmp_path / "nbs.duckdb"
    (inbox / "20260302.specimens.csv").touch()  # just written: waited for
    env = {**os.environ, "NBS_INBOX_SETTLE_S": "60", "COLUMNS": "200"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen(
        [NBS, "run", str(inbox), "--db", str(db), "--engine", "local"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    work = tmp_path / ".nbs-work" / "nbs.duckdb"
    deadline = time.monotonic() + 60
    while not (work.is_dir() and any(work.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert result.returncode == 4
    assert one_line_error(result) == (
        "error: nothing was committed: finding the inbox files failed: "
        "interrupted (Ctrl+C or SIGTERM)"
    )
    assert _runs(db) == 0 and not work.exists()  # the run's work folder is cleaned up
    assert _inbox_files(inbox) == _inbox_files(SAMPLE_INBOX)


def _foreign_duckdb(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE patients (name VARCHAR)")
    con.execute("INSERT INTO patients VALUES ('synthetic')")
    con.close()


def _sqlite(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (a)")
    con.commit()
    con.close()


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p.write_text("patient list\n" * 50), "is a text file, not a DuckDB database"),
        (_sqlite, "is a SQLite database, not a DuckDB database"),
        (_foreign_duckdb, "is a DuckDB database of another program (tables: patients)"),
    ],
)
def test_a_file_that_is_not_a_screening_database_is_refused_untouched(
    make, says: str, inbox: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "other.duckdb"
    make(db)
    content = db.read_bytes()
    proc = nbs("run", str(inbox), "--db", str(db))
    assert proc.returncode == 2
    assert says in one_line_error(proc)
    assert db.read_bytes() == content  # no table added, nothing written
    assert _inbox_files(inbox) == _inbox_files(SAMPLE_INBOX)
    listing = nbs("recalls", "list", "--db", str(db))
    assert listing.returncode == 2 and says in one_line_error(listing)


@pytest.mark.parametrize(
    ("damage", "says"),
    [("truncate", "the database file is truncated or damaged"), ("scramble", "damaged")],
)
def test_a_damaged_database_fails_in_one_line_and_commits_nothing(
    damage: str, says: str, inbox: Path, tmp_path: Path
) -> None:
    db = tmp_path / "nbs.duckdb"
    first = tmp_path / "first"
    first.mkdir()
    shutil.copy2(SAMPLE_INBOX / "20260302.specimens.csv", first)
    assert nbs("run", str(first), "--db", str(db)).returncode == 0
    data = bytearray(db.read_bytes())
    if damage == "truncate":
        db.write_bytes(bytes(data[: len(data) // 2]))
    else:  # every block but the headers scrambled
        for i in range(3 * 4096 + 64, len(data), 97):
            data[i] ^= 0x5A
        db.write_bytes(bytes(data))
    proc = nbs("run", str(inbox), "--db", str(db))
    assert proc.returncode == 4
    line = one_line_error(proc)
    assert line.startswith("error: nothing was committed: ") and says in line
    assert _inbox_files(inbox) == _inbox_files(SAMPLE_INBOX)


# -- real full disks and read-only folders (mounts) --------------------------------------


@contextlib.contextmanager
def _mounted(*commands: list[str], target: Path) -> Iterator[None]:
    """Run mount commands (undone at the end); skip the test where mounting is not allowed."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small or read-only file system needs root")
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)
            pytest.skip(f"cannot mount here ({done.stderr.strip()})")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


def _read_only(folder: Path) -> contextlib.AbstractContextManager[None]:
    return _mounted(
        ["mount", "--bind", str(folder), str(folder)],
        ["mount", "-o", "remount,bind,ro", str(folder)],
        target=folder,
    )


def _small_disk(folder: Path, size: str) -> contextlib.AbstractContextManager[None]:
    folder.mkdir(parents=True, exist_ok=True)
    return _mounted(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], target=folder
    )


def _fill(folder: Path, leave_bytes: int) -> Path:
    """A ballast file that leaves about ``leave_bytes`` free on the folder's file system."""
    ballast = folder / "ballast"
    free = shutil.disk_usage(folder).free - leave_bytes
    with open(ballast, "wb") as fh, contextlib.suppress(OSError):
        while free > 0:
            fh.write(b"\0" * min(free, 1 << 20))
            free -= 1 << 20
    return ballast


def test_a_read_only_inbox_commits_and_the_next_run_archives(inbox: Path, tmp_path: Path) -> None:
    db = tmp_path / "nbs.duckdb"
    with _read_only(inbox):
        proc = nbs("run", str(inbox), "--db", str(db))
    assert proc.returncode == 5
    line = one_line_error(proc)
    assert line.startswith("error: committed; archiving files failed: read-only file system")
    assert line.endswith("the next run finishes it")
    assert _runs(db) == 1
    again = nbs("run", str(inbox), "--db", str(db))
    assert again.returncode == 0 and _inbox_files(inbox) == []


def test_a_read_only_database_commits_nothing(inbox: Path, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    db = folder / "nbs.duckdb"
    first = tmp_path / "first"
    first.mkdir()
    shutil.copy2(SAMPLE_INBOX / "20260302.specimens.csv", first)
    assert nbs("run", str(first), "--db", str(db)).returncode == 0
    with _read_only(folder):
        proc = nbs("run", str(inbox), "--db", str(db))
    assert proc.returncode == 4
    line = one_line_error(proc)
    assert line.startswith("error: nothing was committed: opening the database failed: ")
    assert "read-only file system" in line
    assert _runs(db) == 1 and _inbox_files(inbox) == _inbox_files(SAMPLE_INBOX)


def test_a_full_disk_under_the_database_commits_nothing(inbox: Path, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    db = disk / "nbs.duckdb"
    first = tmp_path / "first"
    first.mkdir()
    shutil.copy2(SAMPLE_INBOX / "20260302.specimens.csv", first)
    with _small_disk(disk, "16m"):
        assert nbs("run", str(first), "--db", str(db)).returncode == 0
        ballast = _fill(disk, 300 << 10)
        proc = nbs("run", str(inbox), "--db", str(db))
        assert proc.returncode == 4
        line = one_line_error(proc)
        assert line.startswith("error: nothing was committed: ")
        assert "no space left on the device" in line
        assert _runs(db) == 1 and _inbox_files(inbox) == _inbox_files(SAMPLE_INBOX)
        ballast.unlink()
        again = nbs("run", str(inbox), "--db", str(db))
        assert again.returncode == 0, again.stderr
        assert _runs(db) == 2 and _inbox_files(inbox) == []


def test_a_full_disk_while_archiving_leaves_no_empty_error_report(
    tmp_path: Path, db_path: Path, config: ScreeningConfig
) -> None:
    """The error report of an unreadable file is written whole or not at all: a disk that
    fills up leaves no empty report for every later run to keep."""
    from nbs.run import faults

    inbox = tmp_path / "inbox"
    with _small_disk(inbox, "1m"):
        shutil.copy2(SAMPLE_INBOX / "20260302-broken.results.csv", inbox)
        ballast = inbox / "ballast"
        with (
            faults.hook("after-commit", lambda: _fill(inbox, 0)),
            pytest.raises(RunFailed) as failed,
        ):
            run_local(inbox, db_path, config)
        assert failed.value.committed is True and "no space left" in str(failed.value)
        quarantine = inbox / "quarantine"
        assert [p.name for p in quarantine.iterdir()] == []  # no report, no temporary
        ballast.unlink()
        run_local(inbox, db_path, config)
        report = quarantine / "20260302-broken.results.csv.error.txt"
        assert "error: not UTF-8" in report.read_text(encoding="utf-8")
        assert (quarantine / "20260302-broken.results.csv").is_file()


def test_an_interrupted_statistics_export_leaves_no_temporary_file(
    inbox: Path, db_path: Path, config: ScreeningConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBS_FAIL_AT", "inside-export:ENOSPC")
    summary = run_local(inbox, db_path, config)
    assert summary.stats_file is None and "No space left" in str(summary.stats_error)
    assert sorted(p.name for p in db_path.parent.iterdir() if ".tmp" in p.name) == []
    # a temporary of an export killed outright (a process gone) is swept by the next one
    dead = db_path.with_name(".nbs.stats.duckdb.999999999.tmp")
    dead.write_bytes(b"half a file")
    monkeypatch.delenv("NBS_FAIL_AT")
    assert nbs("export-stats", "--db", str(db_path)).returncode == 0
    assert not dead.exists() and db_path.with_name("nbs.stats.duckdb").is_file()
    # the Parquet copy: a full disk while it is written leaves the previous folder whole
    parquet = db_path.with_name("nbs.stats.parquet")
    tables = sorted(p.name for p in parquet.iterdir())
    monkeypatch.setenv("NBS_FAIL_AT", "inside-parquet:ENOSPC")
    with pytest.raises(OSError, match="No space left"):
        statistics.export_stats(db_path, db_path.with_name("nbs.stats.duckdb"))
    monkeypatch.delenv("NBS_FAIL_AT")
    assert (
        _temporaries(db_path.parent) == [] and sorted(p.name for p in parquet.iterdir()) == tables
    )
    # killed inside the Parquet write (kill -9): the previous folder stays whole, and the
    # next export sweeps the killed one's new folder, and a folder set aside by an export
    # killed between its two renames is put back (or removed once a new one is in)
    killed = nbs("export-stats", "--db", str(db_path), env={"NBS_CRASH_AT": "inside-parquet"})
    assert killed.returncode == -signal.SIGKILL
    assert [p.suffix for p in _temporaries(db_path.parent)] == [".tmp"]
    assert sorted(p.name for p in parquet.iterdir()) == tables
    shutil.move(parquet, parquet.with_name(".nbs.stats.parquet.999999998.old"))
    assert nbs("export-stats", "--db", str(db_path)).returncode == 0
    assert (
        _temporaries(db_path.parent) == [] and sorted(p.name for p in parquet.iterdir()) == tables
    )
    parquet.with_name(".nbs.stats.parquet.999999997.old").mkdir()
    assert nbs("export-stats", "--db", str(db_path)).returncode == 0
    assert (
        _temporaries(db_path.parent) == [] and sorted(p.name for p in parquet.iterdir()) == tables
    )


def _temporaries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith((".tmp", ".old")))


def test_the_parquet_folder_is_whole_at_every_step_of_its_renewal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An official's tool reading ``NAME.stats.parquet/`` while an export renews it finds
    the old tables or the new ones, never no folder (on Linux: one exchange, not two
    renames); where the exchange is not possible, the two renames leave nothing behind."""
    folder = tmp_path / "nbs.stats.parquet"
    real_replace = os.replace

    def replace(src: object, dst: object) -> None:
        real_replace(src, dst)  # type: ignore[arg-type]
        assert folder.is_dir(), f"no {folder.name} after renaming {src} to {dst}"

    statistics._write_parquet(folder, {"t": pl.DataFrame({"v": [1]})})
    with monkeypatch.context() as patched:
        patched.setattr(os, "replace", replace)
        statistics._write_parquet(folder, {"t": pl.DataFrame({"v": [2]})})
    assert pl.read_parquet(folder / "t.parquet")["v"].to_list() == [2]
    monkeypatch.setattr(statistics, "_exchange", lambda a, b: False)
    statistics._write_parquet(folder, {"u": pl.DataFrame({"v": [3]})})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nbs.stats.parquet"]
    assert [p.name for p in folder.iterdir()] == ["u.parquet"]


def test_the_database_file_is_readable_by_its_owner_only(
    inbox: Path, db_path: Path, config: ScreeningConfig
) -> None:
    old = os.umask(0o022)
    try:
        run_local(inbox, db_path, config)
        assert os.umask(0o022) == 0o022  # narrowed only while the file was created
    finally:
        os.umask(old)
    assert db_path.stat().st_mode & 0o777 == 0o600


def test_the_exit_statuses_are_documented() -> None:
    help_text = nbs("run", "--help").stdout
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    for status in (
        "3 the database is locked",
        "4 the run failed and nothing was committed",
        "5 the run's data were committed",
        "6 the database could not be read",
    ):
        assert status in " ".join(help_text.replace("│", " ").split()), status
    for status in ("`4`", "`5`", "`6`"):
        assert status in readme
    # the promise that was not true (the database may have been created or upgraded,
    # and a run that failed after its commit has stored its data)
    assert "a failed run has changed nothing" not in " ".join(readme.lower().split())


def test_a_run_that_cannot_tell_whether_it_committed_exits_6(
    inbox: Path,
    db_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A failure inside the commit, and the database then unreadable (a disk gone as the
    run failed): the run cannot know whether its data are in, says so, and exits 6."""
    from nbs import cli

    def unreadable(*args: object) -> bool:
        raise store.DatabaseError("IO Error: could not read from file")

    monkeypatch.setenv("NBS_FAIL_AT", "inside-commit:EIO")
    monkeypatch.setattr(store, "run_committed", unreadable)
    args = ["nbs", "run", str(inbox), "--db", str(db_path), "--engine", "local"]
    monkeypatch.setattr(sys, "argv", args)
    sigterm = signal.getsignal(signal.SIGTERM)  # `nbs run` takes SIGTERM as Ctrl+C
    try:
        with pytest.raises(SystemExit) as exited:
            cli.main()
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    assert exited.value.code == errors.EXIT_UNKNOWN == 6
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0] == (
        "error: writing to the database (one transaction) failed: input/output error (a "
        "failing disk?); the database could not be read to tell whether the run was "
        "committed (a rerun is safe either way)"
    )
