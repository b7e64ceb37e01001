"""A screening database of the committed sample inbox, made once per session through
the real pipeline, with a lab and a coordinator account; each test gets its own copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nbs.web import users

LAB, COORDINATOR = "lab.anna", "coord.ben"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory: pytest.TempPathFactory, screened_sample: Path) -> Path:
    db = tmp_path_factory.mktemp("release-sample") / "nbs.duckdb"
    shutil.copy(screened_sample, db)
    users.add_user(db, LAB, "lab", PASSWORD, "test")
    users.add_user(db, COORDINATOR, "coordinator", PASSWORD, "test")
    return db


@pytest.fixture
def db(sample_db: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "nbs.duckdb"
    shutil.copy(sample_db, copy)
    return copy
