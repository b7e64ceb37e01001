"""The hand-written clinical cases (data_samples/clinical_cases.yaml) through the real
``nbs run`` (local engine, a DuckDB file): one, two and three deliveries.

The cases run as a laboratory works: one database, one run a day. Round 1 delivers every
case's first delivery (all the single-delivery cases among them, in one inbox and one
run), round 2 every case's second delivery, round 3 the third. The babies are
independent, so a case sees nothing of another; one run per round instead of one
database per case keeps the file well under a minute on two cores (a database per case
does not). ``NBS_CLINICAL_ISOLATED=1`` runs each case alone in a database of its own,
one run per delivery (slower; rules out an interaction between cases).

After each round, every case whose delivery says what to expect is compared with the
database (each relation read once per round): every call of its cards
(``screening_calls``), its retest worklist, recall list, specimen warnings and chosen
result rows (``result_details``). All mismatches of a case are reported together, with the
actual call and reason.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from data_samples.clinical_cases import CLASSES, Case, load_cases, write_delivery
from nbs import store
from nbs.config import ScreeningConfig
from nbs.run.steps import run_local
from tests.conftest import once_per_session

CASES = load_cases()
VERSION = "LNS-2026.1"

#: cases whose expected outcome follows the configuration and the practice it cites but
#: which the engine does not give: (case id, the evidence)
ENGINE_FINDINGS: dict[str, str] = {}


@dataclass(frozen=True)
class Snapshot:
    """The relations a case is checked against, read once after a round."""

    calls: pl.DataFrame
    worklist: pl.DataFrame
    recalls: pl.DataFrame
    warnings: pl.DataFrame
    results: pl.DataFrame
    held: pl.DataFrame

    @classmethod
    def read(cls, db: Path) -> Snapshot:
        def q(sql: str) -> pl.DataFrame:
            return store.query(db, sql)

        return cls(
            calls=q("SELECT specimen_id, condition, call, urgency, reason FROM screening_calls"),
            worklist=q(
                "SELECT specimen_id, condition, status, priority, reason FROM retest_worklist"
            ),
            recalls=q(
                "SELECT baby_id, specimen_id, condition, action, urgency, status, outcome, "
                "answered_by_specimen_id AS answered_by, reason FROM recall_list"
            ),
            warnings=q("SELECT specimen_id, column_name, reason FROM specimen_warnings"),
            results=q(
                "SELECT specimen_id, analyte, replicate, value, value_text, censored "
                "FROM result_details"
            ),
            held=q(
                "SELECT value, reason FROM quarantine WHERE column_name = 'specimen_id' "
                "AND reason LIKE '%with different data%'"
            ),
        )


def _null(value: object) -> object:
    return None if value in (None, "null", "") else value


def _check(snap: Snapshot, case: Case, index: int, conditions: list[str]) -> list[str]:
    """Every difference between the database and what the table expects after delivery
    ``index`` of ``case`` (empty: as expected)."""
    expect = case.deliveries[index].expect or {}
    cards = case.cards_until(index)
    specimens = sorted({str(c["specimen_id"]) for c in cards})
    babies = sorted({str(c["baby_id"]) for c in cards})
    mine = pl.col("specimen_id").is_in(specimens)
    problems: list[str] = []

    # calls: every condition of every delivered card
    got = {
        (r["specimen_id"], r["condition"]): r for r in snap.calls.filter(mine).iter_rows(named=True)
    }
    wanted: dict[str, dict[str, dict[str, Any]]] = expect.get("calls", {})
    problems += [
        f"calls: {s} is not a card of this case (yet)" for s in wanted if s not in specimens
    ]
    for sid in specimens:
        for cond in conditions:
            want = wanted.get(sid, {}).get(cond, {"call": "negative"})
            row = got.get((sid, cond))
            if row is None:
                problems.append(f"{sid} {cond}: no call (expected {want['call']})")
                continue
            said = f"{sid} {cond}: {row['call']} ({row['urgency']}); reason: {row['reason']}"
            if row["call"] != want["call"]:
                problems.append(f"expected {want['call']}, got {said}")
                continue
            if "urgency" in want and row["urgency"] != _null(want["urgency"]):
                problems.append(f"expected urgency {want['urgency']}, got {said}")
            if row["call"] in ("negative", "not_evaluated") and row["urgency"] is not None:
                problems.append(f"urgency on a {row['call']} call: {said}")
            for text in want.get("reason", []):
                if text not in (row["reason"] or ""):
                    problems.append(f"reason lacks {text!r}: {said}")

    problems += _compare_rows(
        "worklist",
        snap.worklist.filter(mine),
        expect.get("worklist", []),
        key=("specimen_id", "condition", "status"),
        optional=("priority",),
    )
    problems += _compare_rows(
        "recalls",
        snap.recalls.filter(pl.col("baby_id").is_in(babies)),
        expect.get("recalls", []),
        key=("specimen_id", "condition", "action", "urgency", "status", "outcome"),
        optional=("answered_by",),
    )
    problems += _compare_rows(
        "warnings",
        snap.warnings.filter(mine),
        expect.get("warnings", []),
        key=("specimen_id", "column_name"),
    )
    problems += _compare_rows(
        "held",
        snap.held.filter(pl.col("value").str.split("/").list.first().is_in(specimens)),
        expect.get("held", []),
        key=("value",),
    )

    # results as stored, beside the text they arrived with (stored: not held in quarantine)
    for want in expect.get("results", []):
        rows = snap.results.filter(
            (pl.col("specimen_id") == want["specimen_id"])
            & (pl.col("analyte") == want["analyte"])
            & (pl.col("replicate") == int(want["replicate"]))
        )
        label = f"result {want['specimen_id']} {want['analyte']} #{want['replicate']}"
        if rows.height != 1:
            problems.append(f"{label}: {rows.height} stored rows")
            continue
        row = rows.row(0, named=True)
        for field in ("value_text", "censored"):
            if field in want and row[field] != _null(want[field]):
                problems.append(f"{label}: {field} {row[field]!r}, expected {want[field]!r}")
        if "value" in want and not math.isclose(row["value"], float(want["value"])):
            problems.append(f"{label}: value {row['value']}, expected {want['value']}")
    return problems


def _compare_rows(
    what: str,
    frame: pl.DataFrame,
    wanted: list[dict[str, Any]],
    key: tuple[str, ...],
    optional: tuple[str, ...] = (),
) -> list[str]:
    """The table's rows against the database's (the same rows by ``key``; ``optional``
    columns and ``reason`` substrings where the table gives them)."""
    problems = []
    unmatched = list(frame.iter_rows(named=True))
    for want in wanted:
        target = tuple(_null(want.get(k)) for k in key)
        match = next((r for r in unmatched if tuple(r[k] for k in key) == target), None)
        if match is None:
            problems.append(f"{what}: missing {dict(zip(key, target, strict=True))}")
            continue
        unmatched.remove(match)
        for k in optional:
            if k in want and match[k] != _null(want[k]):
                problems.append(f"{what}: {target} {k} {match[k]!r}, expected {want[k]!r}")
        for text in want.get("reason", []):
            if text not in (match["reason"] or ""):
                problems.append(f"{what}: {target} reason lacks {text!r}: {match['reason']}")
    for row in unmatched:
        got = {k: row[k] for k in key}
        problems.append(f"{what}: unexpected {got}; reason: {row['reason']}")
    return problems


def _run_rounds(
    cases: list[Case], work: Path, config: ScreeningConfig, conditions: list[str]
) -> dict[str, list[str]]:
    """Deliver ``cases`` round by round into one database (one run per round) and return
    each case's problems (empty: as expected). A round's deliveries are written as one
    pair of files, as a day's exports of the laboratory's instruments."""
    db = work / "db" / "nbs.duckdb"
    problems: dict[str, list[str]] = {c.id: [] for c in cases}
    for k in range(max(len(c.deliveries) for c in cases)):
        here = [c for c in cases if len(c.deliveries) > k]
        inbox = work / f"round-{k + 1}"
        write_delivery(inbox, [c.deliveries[k] for c in here], f"clinical-round-{k + 1}")
        run_local(inbox, db, config)
        snap = Snapshot.read(db)
        for case in here:
            if case.deliveries[k].expect is not None:
                found = _check(snap, case, k, conditions)
                problems[case.id] += [f"after delivery {k + 1}: {p}" for p in found]
    # every row of the table is valid: none held (but the key conflicts a case expects,
    # checked above), none waiting for its card
    held = store.query(
        db,
        "SELECT file_name, row_number, column_name, value FROM quarantine "
        "WHERE NOT (column_name = 'specimen_id' AND reason LIKE '%with different data%')",
    )
    pending = store.query(db, "SELECT specimen_id, analyte, replicate FROM pending_results")
    for case in cases:
        problems[case.id] += [f"quarantined: {r}" for r in held.iter_rows()]
        problems[case.id] += [f"pending (no card): {r}" for r in pending.iter_rows()]
    return problems


@pytest.fixture(scope="module")
def conditions(config: ScreeningConfig) -> list[str]:
    return list(next(s for s in config.cutoff_sets if s.version == VERSION).conditions)


@pytest.fixture(scope="module")
def laboratory(
    tmp_path_factory: pytest.TempPathFactory, config: ScreeningConfig, conditions: list[str]
) -> dict[str, list[str]]:
    """Every case, round by round, in one database: each case's problems (once a session)."""
    found: dict[str, list[str]] = once_per_session(
        tmp_path_factory,
        "clinical-laboratory",
        lambda folder: _run_rounds(CASES, folder, config, conditions),
    )
    return found


def _param(case: Case) -> Any:
    marks = []
    if case.id in ENGINE_FINDINGS:
        marks.append(pytest.mark.xfail(strict=True, reason=ENGINE_FINDINGS[case.id]))
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_clinical_case(
    case: Case,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    config: ScreeningConfig,
    conditions: list[str],
) -> None:
    if os.environ.get("NBS_CLINICAL_ISOLATED") == "1":
        problems = _run_rounds([case], tmp_path, config, conditions)[case.id]
    else:
        problems = request.getfixturevalue("laboratory")[case.id]
    assert not problems, "\n".join([case.id, *problems])


def test_the_table_covers_every_class_with_sources() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    per_class = {cls: sum(c.cls == cls for c in CASES) for cls in CLASSES}
    assert all(n >= 2 for n in per_class.values()), per_class
    assert all(c.source and c.description for c in CASES)
    # one, two and three deliveries
    assert {len(c.deliveries) for c in CASES} == {1, 2, 3}
    # a card and a baby belong to one case; every card is collected in 2026 (LNS-2026.1)
    owners: dict[str, str] = {}
    for case in CASES:
        for card in case.cards_until(len(case.deliveries) - 1):
            for key in (str(card["specimen_id"]), str(card["baby_id"])):
                assert owners.setdefault(key, case.id) == case.id, key
            assert str(card["collected_at"]).startswith("2026-"), card["specimen_id"]


@pytest.mark.slow
def test_a_held_correction_keeps_the_card_from_leaving_unacknowledged(
    tmp_path: Path, config: ScreeningConfig, conditions: list[str]
) -> None:
    """A correction held in quarantine is an open exception of its card: the card is not
    released as it stands until a signer acknowledges the held version (names it)."""
    from nbs.release import rules
    from nbs.store.releases import release_inputs

    case = next(c for c in CASES if c.id == "correction-result-resent-with-another-value")
    assert not _run_rounds([case], tmp_path, config, conditions)[case.id]
    db = tmp_path / "db" / "nbs.duckdb"
    found = rules.blockers(release_inputs(db, ["CX1-1"]), "CX1-1")
    held = [b for b in found if b.kind == "quarantined"]
    assert len(held) == 1 and "already received with different data" in str(held[0])
    assert held[0].exception
