"""The laboratory loop, simulated end to end through the real ``nbs run`` (SYNTHETIC data).

Round 1 delivers every baby's first card and first punches. After each run the loop reads
what the laboratory would act on, from the database with the package's own reads:

* the open retest worklist (``retest_worklist``): the card is punched again in duplicate
  (replicates 2 and 3) for every assay of the condition's markers (a retest of MS/MS
  measures the whole MS/MS panel again, as the instrument does); a card whose duplicates
  are in and whose condition still waits asks for its required second tier (CF: PAP);
* the open repeat-card requests (``recall_list``, ``action = 'repeat_specimen'``, of one
  condition or specimen-level): a new card of the baby, unless one collected later has
  already been delivered (the request was answered; the run decides whether it closes).

The next round delivers them in a new inbox file pair, and so on until nothing is left to
deliver or ``max_rounds`` runs have been made. Everything is drawn by
:mod:`data_samples.generator` from one cohort's truth, so a benchmark can score the calls
(see ``benchmarks/accuracy.py``). Seeded: the same arguments deliver the same files.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from data_samples.generator import Cohort, extend, generate_cohort, repeat_cards, write_inbox
from data_samples.instrument import ANALYTES, ASSAY, retest_punches

#: runs the screening over an inbox into a database (default: ``nbs run`` in a child process)
Runner = Callable[[Path, Path], None]


@dataclass(frozen=True)
class Round:
    """One delivery and the run over it."""

    number: int
    new_cards: int
    retest_cards: int
    second_tier_cards: int
    result_rows: int
    run_seconds: float
    summary: dict[str, object]


@dataclass
class LoopOutcome:
    """The database, every card delivered with its truth, and what each round did."""

    db: Path
    cohort: Cohort
    rounds: list[Round] = field(default_factory=list)
    #: worklist entries (card, condition) for which there was nothing left to deliver
    stuck: set[tuple[str, str]] = field(default_factory=set)


@dataclass(frozen=True)
class Needs:
    """Per condition: its first-tier markers and the second-tier markers it waits for."""

    markers: dict[str, frozenset[str]]
    second_tier: dict[str, frozenset[str]]

    @classmethod
    def from_cutoffs(cls) -> Needs:
        """From the cutoff sets the package loads (every set: the union of their markers)."""
        from cutoffs.load import load_cutoff_sets

        markers: dict[str, set[str]] = defaultdict(set)
        second: dict[str, set[str]] = defaultdict(set)
        for cutoff_set in load_cutoff_sets():
            for code, cond in cutoff_set.conditions.items():
                markers[code] |= set(cond.markers)
                if cond.second_tier is not None and cond.second_tier.required:
                    second[code] |= set(cond.second_tier.markers) - set(cond.markers)
        return cls(
            {c: frozenset(m) for c, m in markers.items()},
            {c: frozenset(m) for c, m in second.items()},
        )


def nbs_run(inbox: Path, db: Path) -> None:
    """``nbs run INBOX --db FILE --engine local`` in a child process, as a laboratory runs it."""
    from nbs.console import command

    done = subprocess.run(
        command("run", str(inbox), "--db", str(db), "--engine", "local"),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"nbs run failed ({done.returncode}):\n{done.stderr[-2000:]}")


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def _last_summary(db: Path) -> dict[str, object]:
    from nbs import store

    rows = store.query(db, "SELECT summary_json FROM runs ORDER BY run_seq DESC LIMIT 1")
    return dict(json.loads(rows["summary_json"][0])) if rows.height else {}


def open_requests(db: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The open retest worklist (``specimen_id, condition``) and the open repeat-card
    recalls (``recall_id, baby_id, specimen_id, condition``), read as the laboratory does."""
    from nbs import store

    worklist = store.query(
        db,
        "SELECT specimen_id, condition FROM retest_worklist WHERE status = 'open' "
        "ORDER BY specimen_id, condition",
    )
    recalls = store.query(
        db,
        "SELECT recall_id, baby_id, specimen_id, condition FROM recall_list "
        "WHERE status = 'open' AND action = 'repeat_specimen' ORDER BY recall_id",
    )
    return worklist, recalls


class _Deliveries:
    """What has been delivered per card beyond its first punch, to ask only for the rest."""

    def __init__(self, needs: Needs) -> None:
        self.needs = needs
        self.retested: dict[str, set[str]] = defaultdict(set)
        self.second: dict[str, set[str]] = defaultdict(set)

    def _retest_codes(self, condition: str) -> set[str]:
        assays = {ASSAY[m] for m in self.needs.markers.get(condition, ()) if m in ASSAY}
        return {code for code in ANALYTES if ASSAY[code] in assays}

    def plan(
        self, worklist: pl.DataFrame, stuck: set[tuple[str, str]]
    ) -> tuple[dict[frozenset[str], list[str]], dict[frozenset[str], list[str]]]:
        """Cards to punch again (by the codes to measure) and cards whose second tier is
        asked for; entries with nothing left to deliver go to ``stuck``."""
        retest: dict[str, set[str]] = defaultdict(set)
        second: dict[str, set[str]] = defaultdict(set)
        for specimen_id, condition in worklist.select("specimen_id", "condition").iter_rows():
            codes = self._retest_codes(condition) - self.retested[specimen_id]
            tier2 = {
                c for c in self.needs.second_tier.get(condition, ()) if c in ASSAY
            } - self.second[specimen_id]
            if codes:
                retest[specimen_id] |= codes
            elif tier2:
                second[specimen_id] |= tier2
            else:
                stuck.add((specimen_id, condition))
        for specimen_id, codes in retest.items():
            self.retested[specimen_id] |= codes
        for specimen_id, codes in second.items():
            self.second[specimen_id] |= codes
        return _by_codes(retest), _by_codes(second)


def _by_codes(wanted: dict[str, set[str]]) -> dict[frozenset[str], list[str]]:
    groups: dict[frozenset[str], list[str]] = defaultdict(list)
    for specimen_id in sorted(wanted):
        groups[frozenset(wanted[specimen_id])].append(specimen_id)
    return dict(sorted(groups.items(), key=lambda item: sorted(item[0])))


def _unanswered(recalls: pl.DataFrame, cohort: Cohort, served: set[str]) -> list[str]:
    """Cards of open repeat-card requests not yet served, whose baby has no card collected
    after the recall's card."""
    fresh = recalls.filter(~pl.col("recall_id").is_in(sorted(served)))
    if fresh.is_empty():
        return []
    latest = cohort.specimens.group_by("baby_id").agg(latest=pl.col("collected_at").max())
    asked = fresh.join(
        cohort.specimens.select("specimen_id", "collected_at"), on="specimen_id", how="left"
    ).join(latest, on="baby_id", how="left")
    return sorted(set(asked.filter(pl.col("collected_at") >= pl.col("latest"))["specimen_id"]))


def simulate(
    work: Path,
    *,
    babies: int = 50_000,
    seed: int = 1,
    incidence_scale: float = 1.0,
    min_affected: int = 20,
    censored: bool = False,
    punch_error_rate: float = 0.0,
    max_rounds: int = 6,
    days: int = 365,
    fmt: Literal["csv", "parquet"] = "csv",
    runner: Runner = nbs_run,
    say: Callable[[str], None] = lambda message: None,
) -> LoopOutcome:
    """Run the loop in ``work`` (``inbox/`` and ``nbs.duckdb`` there): ``babies`` first
    cards (births over ``days``), at least ``min_affected`` affected babies per condition,
    then up to ``max_rounds`` runs in all; see the module docstring."""
    inbox, db = work / "inbox", work / "nbs.duckdb"
    cohort = generate_cohort(
        babies,
        seed=seed,
        days=days,
        incidence_scale=incidence_scale,
        min_affected=min_affected,
        punch_error_rate=punch_error_rate,
        censored=censored,
    )
    outcome = LoopOutcome(db=db, cohort=cohort)
    deliveries, served = _Deliveries(Needs.from_cutoffs()), set[str]()
    delivery, counts = cohort, (babies, 0, 0)
    draw: dict[str, Any] = {"punch_error_rate": punch_error_rate, "censored": censored}
    for number in range(1, max_rounds + 1):
        _write(delivery, inbox, f"round{number}", fmt)
        started = time.perf_counter()
        runner(inbox, db)
        seconds = round(time.perf_counter() - started, 2)
        outcome.rounds.append(
            Round(number, *counts, delivery.results.height, seconds, _last_summary(db))
        )
        say(f"round {number}: {counts[0]} new cards, {counts[1]} re-punched, {seconds} s")
        worklist, recalls = open_requests(db)
        retests, second = deliveries.plan(worklist, outcome.stuck)
        ask = _unanswered(recalls, outcome.cohort, served)
        served |= set(recalls.filter(pl.col("specimen_id").is_in(ask))["recall_id"])
        if not (retests or second or ask):
            break
        parts = _punch(outcome.cohort, retests, (2, 3), _seed(seed, number, 1), draw)
        parts += _punch(outcome.cohort, second, (1,), _seed(seed, number, 2), draw)
        new = repeat_cards(outcome.cohort, ask, seed=_seed(seed, number, 3), **draw)
        outcome.cohort = extend(outcome.cohort, new)
        delivery = Cohort(new.specimens, _concat([new.results, *parts]), new.truth)
        counts = (new.specimens.height, _count(retests), _count(second))
    return outcome


def _punch(
    cohort: Cohort,
    groups: dict[frozenset[str], list[str]],
    replicates: tuple[int, ...],
    seed: int,
    draw: dict[str, Any],
) -> list[pl.DataFrame]:
    return [
        retest_punches(
            cohort, ids, replicates=replicates, analytes=sorted(codes), seed=seed + i, **draw
        )
        for i, (codes, ids) in enumerate(groups.items())
    ]


def _write(delivery: Cohort, inbox: Path, name: str, fmt: Literal["csv", "parquet"]) -> None:
    """The delivery's files; no cards file when only punches of known cards are sent."""
    if delivery.specimens.height:
        write_inbox(delivery, inbox, name=name, fmt=fmt)
        return
    inbox.mkdir(parents=True, exist_ok=True)
    path = inbox / f"{name}.results.{fmt}"
    if fmt == "csv":
        delivery.results.write_csv(path, datetime_format="%Y-%m-%dT%H:%M:%S")
    else:
        delivery.results.write_parquet(path)


def _count(groups: dict[frozenset[str], list[str]]) -> int:
    return len({s for ids in groups.values() for s in ids})


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    if len({f.schema["value"] for f in frames}) > 1:
        frames = [f.with_columns(pl.col("value").cast(pl.String)) for f in frames]
    return pl.concat(frames)
