"""The coordinators' tests share one screening run of the sample inbox (per session,
``screened_sample``) and each gets its own copy of the database file, so that none sees
another's changes."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def coord_db(screened_db: Path) -> Path:
    """A copy of the screened sample database, this test's own."""
    return screened_db
