"""Crash safety: a run killed with SIGKILL at any point leaves the database as it was
before the run (or fully committed), the inbox files where a rerun finds them, and the
rerun gives exactly what an uninterrupted run gives."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from data_samples import SAMPLE_INBOX
from nbs import store
from nbs.config import ScreeningConfig
from nbs.console import command as nbs_command
from nbs.run.faults import CRASH_POINTS
from nbs.run.steps import WORK_DIR, run_local
from tests.helpers import db_state

pytestmark = pytest.mark.slow  # runs killed as processes, then rerun

COMMITTED = {"after-commit", "mid-archive", "before-export"}


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, list[tuple[object, ...]]], list[str]]:
    from nbs.config import load_config

    root = tmp_path_factory.mktemp("reference")
    shutil.copytree(SAMPLE_INBOX, root / "inbox")
    run_local(root / "inbox", root / "nbs.duckdb", load_config())
    return db_state(root / "nbs.duckdb"), _archived(root / "inbox")


def _archived(inbox: Path) -> list[str]:
    return sorted(p.name for p in (inbox / "archive").rglob("*") if p.is_file())


def _inbox_files(inbox: Path) -> list[str]:
    return sorted(p.name for p in inbox.iterdir() if p.is_file())


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_run_killed_at_any_point_reruns_to_the_same_result(
    point: str, tmp_path: Path, config: ScreeningConfig, reference
) -> None:  # type: ignore[no-untyped-def]
    inbox, db = tmp_path / "inbox", tmp_path / "nbs.duckdb"
    shutil.copytree(SAMPLE_INBOX, inbox)
    before = _inbox_files(inbox)
    command = ["run", str(inbox), "--db", str(db), "--engine", "local"]
    killed = subprocess.run(
        nbs_command(*command),
        env={**os.environ, "NBS_CRASH_AT": point},
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()

    # the database is exactly before or exactly after the run, never in between
    runs = store.query(db, "SELECT count(*) FROM runs").item()
    state = db_state(db)
    if point in COMMITTED:
        assert runs == 1 and state == reference[0]
    else:
        assert runs == 0 and all(not rows for rows in state.values())
        assert _inbox_files(inbox) == before  # nothing moved before the commit
    # every input file is still in the inbox, the archive or the quarantine: nothing lost
    kept = [p.name for p in inbox.rglob("*") if p.is_file() and not p.name.endswith(".txt")]
    assert sorted(kept) == before

    rerun = run_local(inbox, db, config)
    assert db_state(db) == reference[0]
    assert _archived(inbox) == reference[1] and _inbox_files(inbox) == []
    if point in COMMITTED:
        assert rerun.new_calls == 0 and rerun.new_recalls == 0  # nothing counted twice
    assert not any((db.parent / WORK_DIR).iterdir())  # the dead run's work folder is gone
