"""The simulated laboratory loop: what it delivers after each run, and a small loop through
the real ``nbs run``."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from data_samples.lab_loop import Needs, _Deliveries, simulate
from nbs import store

MSMS = frozenset({"PHE", "TYR", "C2", "C8", "C10"})


def _worklist(*entries: tuple[str, str]) -> pl.DataFrame:
    return pl.DataFrame(entries, schema=["specimen_id", "condition"], orient="row")


def test_the_loop_asks_for_each_assay_once_then_the_second_tier() -> None:
    needs = Needs.from_cutoffs()
    assert needs.markers["PKU"] == {"PHE", "TYR"} and needs.second_tier["CF"] == {"PAP"}
    deliveries, stuck = _Deliveries(needs), set[tuple[str, str]]()
    retests, second = deliveries.plan(
        _worklist(("S1", "PKU"), ("S1", "MCAD"), ("S2", "CF"), ("S3", "SCID")), stuck
    )
    # a retest of MS/MS measures the whole panel; SCID's punch is the qPCR multiplex
    assert retests == {
        frozenset({"IRT"}): ["S2"],
        MSMS: ["S1"],
        frozenset({"RPP30", "SMN1", "TREC"}): ["S3"],
    }
    assert second == {} and stuck == set()
    # CF still waits once its duplicates are in: its required second tier is asked for
    retests, second = deliveries.plan(_worklist(("S2", "CF"), ("S3", "SCID")), stuck)
    assert retests == {} and second == {frozenset({"PAP"}): ["S2"]}
    assert stuck == {("S3", "SCID")}
    # nothing left to deliver for CF either
    deliveries.plan(_worklist(("S2", "CF")), stuck)
    assert stuck == {("S3", "SCID"), ("S2", "CF")}


@pytest.mark.slow
def test_a_small_loop_through_nbs_run(tmp_path: Path) -> None:
    """300 babies with many affected: every retest asked for after the first run is
    delivered in duplicate, and every baby recalled for a repeat card gets one."""
    outcome = simulate(tmp_path, babies=300, seed=3, incidence_scale=100, min_affected=2)
    db = outcome.db
    assert len(outcome.rounds) >= 2 and outcome.rounds[0].new_cards == 300
    first_run = store.query(db, "SELECT run_id FROM runs ORDER BY run_seq LIMIT 1")["run_id"][0]
    asked = store.query(
        db, "SELECT DISTINCT specimen_id FROM retests WHERE run_id = ?", [first_run]
    )["specimen_id"]
    assert asked.len() > 0
    punched = store.query(
        db, "SELECT specimen_id, replicate FROM results WHERE replicate > 1"
    ).unique()
    for replicate in (2, 3):
        got = punched.filter(pl.col("replicate") == replicate)["specimen_id"]
        assert asked.is_in(got.implode()).all()
    recalled = store.query(
        db,
        "SELECT DISTINCT baby_id FROM recalls WHERE run_id = ? AND action = 'repeat_specimen'",
        [first_run],
    )["baby_id"]
    assert recalled.len() > 0
    cards = store.query(db, "SELECT baby_id, count(*) AS n FROM specimens GROUP BY baby_id")
    again = cards.filter(pl.col("n") >= 2)["baby_id"]
    assert recalled.is_in(again.implode()).all()
    # the truth covers every card delivered, and the cohort numbers them on
    assert set(outcome.cohort.truth["specimen_id"]) == set(
        store.query(db, "SELECT specimen_id FROM specimens")["specimen_id"]
    )
    assert outcome.cohort.truth.filter(pl.col("card") > 1)["baby_id"].n_unique() == again.len()
