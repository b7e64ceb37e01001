"""A held plate in the review application, from a real run: the plate's page lists the
recalls its decision holds back, and the coordinator's recall page says it waits and
offers no stage move until the supervisor decides."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from nbs import store
from nbs.config import ScreeningConfig
from nbs.run.steps import run_local
from nbs.web import users
from nbs.web.process import serving
from tests.run.test_plates_e2e import inbox_with_a_pku_referral
from tests.web import signing

pytestmark = [pytest.mark.xdist_group("web"), pytest.mark.slow]

PASSWORDS = {"lars": ("lab", "laboratory-pw-1"), "carla": ("coordinator", "coordinator-pw-1")}


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, config: ScreeningConfig
) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("waiting")
    inbox = inbox_with_a_pku_referral(root)
    db = root / "lab.duckdb"
    run_local(inbox, db, config)
    for name, (role, password) in PASSWORDS.items():
        users.add_user(db, name, role, password, "test")
    with serving(db, "test-secret-" + "w" * 32) as server:
        yield server.url, db


def test_the_plate_lists_the_recalls_it_holds_and_the_recall_says_it_waits(
    served: tuple[str, Path],
) -> None:
    url, db = served
    recall_id = str(
        store.recall_list(db, "open").filter(pl.col("specimen_id") == "S-H1")["recall_id"][0]
    )
    with signing.signed_in(url, "lars", PASSWORDS["lars"][1]) as lab:
        page = lab.get("/plates/GSP-7").text
    assert "Recalls waiting for this decision" in page and recall_id in page
    with signing.signed_in(url, "carla", PASSWORDS["carla"][1]) as coordinator:
        listing = coordinator.get("/recalls").text
        assert "waits for plate GSP-7" in listing
        recall = coordinator.get(f"/recalls/{recall_id}").text
    assert "Waiting for plate GSP-7" in recall
    assert 'id="stage-form"' not in recall and 'id="close-form"' not in recall
    assert 'id="note-form"' in recall  # a note is still allowed
