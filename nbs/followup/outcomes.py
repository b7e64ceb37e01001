"""Case outcomes: what became of a screened baby for one condition, recorded by a
coordinator, checked before it is kept.

* ``confirmed``: the condition was diagnosed (date of diagnosis; code; the date treatment
  started, when it has); the programme's true positives (NewSTEPs QI 5e-g, 7).
* ``ruled_out``: a referral or repeat request whose condition was excluded (the date).
* ``carrier``: carrier status found (CF, SMA).
* ``missed``: diagnosed later in a baby whose card screened negative for it (QI 8); it
  names the negative card.

Dates are checked against the baby's birth and today; a correction is a new recording
(the latest counts; every one is kept).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from nbs import store
from nbs.conditions import load_registry
from nbs.store import outcomes as outcome_store

Kind = Literal["confirmed", "ruled_out", "carrier", "missed"]
KINDS: tuple[Kind, ...] = ("confirmed", "ruled_out", "carrier", "missed")


class OutcomeError(ValueError):
    """An outcome that cannot be recorded as given (the message says why)."""


@dataclass(frozen=True)
class Outcome:
    """One recording of what became of a baby for one condition."""

    baby_id: str
    condition: str
    kind: Kind
    recorded_by: str
    specimen_id: str | None = None
    recall_id: str | None = None
    diagnosis_code: str | None = None
    diagnosed_at: dt.date | None = None
    treatment_started_at: dt.date | None = None
    ruled_out_at: dt.date | None = None
    note: str | None = None


def _check_dates(outcome: Outcome, birth: dt.date | None, today: dt.date) -> None:
    named = {
        "date of diagnosis": outcome.diagnosed_at,
        "date treatment started": outcome.treatment_started_at,
        "date ruled out": outcome.ruled_out_at,
    }
    for name, when in named.items():
        if when is None:
            continue
        if when > today:
            raise OutcomeError(f"the {name} ({when}) is in the future")
        if birth is not None and when < birth:
            raise OutcomeError(f"the {name} ({when}) is before the baby's birth ({birth})")
    diagnosed, treated = outcome.diagnosed_at, outcome.treatment_started_at
    # treatment may start before the confirmatory diagnosis (e.g. PKU diet on referral)
    if treated is not None and diagnosed is None:
        raise OutcomeError("a treatment date needs the date of diagnosis")


def _check_kind(outcome: Outcome, facts: dict[str, object]) -> None:
    if outcome.kind in ("confirmed", "missed") and outcome.diagnosed_at is None:
        raise OutcomeError(f"a {outcome.kind} case needs the date of diagnosis")
    if outcome.kind == "ruled_out" and outcome.ruled_out_at is None:
        raise OutcomeError("a ruled-out case needs the date the condition was excluded")
    if outcome.kind != "ruled_out" and outcome.ruled_out_at is not None:
        raise OutcomeError(f"a {outcome.kind} case has no date ruled out")
    if outcome.kind == "missed" and not facts.get("any_negative"):
        raise OutcomeError(
            f"{outcome.baby_id} has no card that screened negative for {outcome.condition}: "
            "a later diagnosis is recorded as confirmed, not missed"
        )


def check_outcome(db: Path, outcome: Outcome, today: dt.date | None = None) -> Outcome:
    """Check ``outcome`` against the baby's cards without keeping it; returns it as it
    would be kept (a missed case names the last negative card when none is given)."""
    if outcome.kind not in KINDS:
        raise OutcomeError(f"kind must be one of {', '.join(KINDS)}; not {outcome.kind!r}")
    codes = load_registry().codes()
    if outcome.condition not in codes:
        raise OutcomeError(
            f"condition must be one of {', '.join(codes)}; not {outcome.condition!r}"
        )
    facts = outcome_store.screening_facts(db, outcome.baby_id, outcome.condition)
    if facts.get("birth_at") is None:
        raise OutcomeError(f"no screened baby {outcome.baby_id}")
    birth = facts["birth_at"]
    assert isinstance(birth, dt.datetime)
    _check_kind(outcome, facts)
    _check_dates(outcome, birth.date(), today or store.utc_now().date())
    if outcome.kind == "missed" and outcome.specimen_id is None:
        outcome = Outcome(**{**asdict(outcome), "specimen_id": facts["last_negative"]})
    return outcome


def record_outcome(db: Path, outcome: Outcome, today: dt.date | None = None) -> Outcome:
    """Check ``outcome`` against the baby's cards and keep it; returns it as kept (a
    missed case names the last negative card when none is given)."""
    outcome = check_outcome(db, outcome, today)
    outcome_store.add_outcome(db, asdict(outcome))
    return outcome
