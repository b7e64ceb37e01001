"""A generated cohort run through the pipeline once, with a repeat delivery, for the
officials' figures that need real calls and recalls (completeness, case care, report
cards). Read-only for the tests that use it; case outcomes are planted by the module that
checks them, on its own copy."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from data_samples.generator import extend, generate_cohort, repeat_cards, write_inbox
from nbs import store
from nbs.config import ScreeningConfig


@dataclass(frozen=True)
class RunCohort:
    """The database after both runs and every card the runs read."""

    db: Path
    specimens: pl.DataFrame  # every card (first and repeat) as generated
    repeated: tuple[str, ...]  # first cards whose baby sent a repeat card


@pytest.fixture(scope="session")
def run_cohort(tmp_path_factory: pytest.TempPathFactory, config: ScreeningConfig) -> RunCohort:
    from nbs.run.steps import run_local

    root = tmp_path_factory.mktemp("run-cohort")
    db = root / "nbs.duckdb"
    cohort = generate_cohort(
        120, seed=29, start=dt.date(2026, 1, 5), days=50, min_affected=1, unsatisfactory_rate=0.05
    )
    write_inbox(cohort, root / "inbox1")
    run_local(root / "inbox1", db, config)
    asked = store.query(
        db,
        "SELECT DISTINCT specimen_id FROM recalls WHERE action = 'repeat_specimen' "
        "ORDER BY specimen_id LIMIT 3",
    )["specimen_id"].to_list()
    assert len(asked) == 3, "the cohort must ask for repeat cards"
    later = repeat_cards(cohort, asked, seed=30, unsatisfactory_rate=0.0)
    write_inbox(later, root / "inbox2", name="repeats")
    run_local(root / "inbox2", db, config)
    return RunCohort(db, extend(cohort, later).specimens, tuple(asked))


@pytest.fixture
def run_db(run_cohort: RunCohort, tmp_path: Path) -> Path:
    """A copy of the run cohort's database, for a test that adds to it."""
    copy = tmp_path / "copy.duckdb"
    shutil.copy(run_cohort.db, copy)
    return copy
