"""A supervisor's decision on a held plate, a request to evaluate cards again, and what
follows from them.

Accepting a plate releases its specimen results: a screening run over an empty inbox
evaluates at once every card with results on it (the calls are made only now, as if
the results had just arrived); the daily run would do the same. Confirming the
rejection keeps them out of every call for good: the cards stay on the retest worklist
until new punches on an accepted plate answer them. A re-evaluation request is answered
the same way: its cards are evaluated now, in the clinical record.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from nbs.config import ScreeningConfig
from nbs.run.steps import run_local
from nbs.run.summary import RunSummary
from nbs.store import plates


@dataclass(frozen=True)
class Decision:
    """What a decision did: the plate's new status and the cards evaluated after it."""

    plate_id: str
    status: str
    cards_evaluated: int
    run_id: str | None


def decide(
    db_path: Path,
    plate_id: str,
    status: str,
    actor: str,
    reason: str,
    config: ScreeningConfig,
) -> Decision:
    """Record the decision (with its reason, in the plate's audit trail); when the plate
    is accepted, evaluate its cards now."""
    plates.decide_plate(db_path, plate_id, status, actor, reason)
    if status != "accepted":
        return Decision(plate_id, status, 0, None)
    summary = _evaluate_now(db_path, config)
    return Decision(plate_id, status, summary.cards_evaluated, summary.run_id)


def _evaluate_now(db_path: Path, config: ScreeningConfig) -> RunSummary:
    """A screening run over an empty inbox: it evaluates the cards of accepted plates and
    of re-evaluation requests that no run has evaluated yet, as the daily run would."""
    with tempfile.TemporaryDirectory(prefix="nbs-evaluate-now-") as empty:
        return run_local(Path(empty), db_path, config)


def reevaluate(
    db_path: Path, specimen_ids: list[str], reason: str, actor: str, config: ScreeningConfig
) -> RunSummary:
    """Evaluate stored cards again now, in the clinical record (after a corrected cutoff
    set or card): the request is kept with its reason, and the run that evaluates it is
    returned."""
    if not reason.strip():
        raise ValueError("a re-evaluation needs a reason")
    plates.request_reevaluation(db_path, specimen_ids, reason, actor)
    return _evaluate_now(db_path, config)
