"""The recall lifecycle for screening coordinators.

Stages, in order: ``open`` -> ``contacted`` -> ``sample_requested`` / ``referred`` ->
``closed`` (with an outcome); a closed recall can be reopened with a reason. Moves go
forward only (skipping is allowed). Every change is an append-only audit event (who, when,
field, old -> new, note), written in the same transaction as the change; a change based
on a stale view of the recall is refused, so no one's change is silently overwritten.
The contract's ``status`` is ``closed`` for a closed recall and ``open`` otherwise.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from nbs import settings, store
from nbs.followup import worklist
from nbs.store import contacts as contact_store
from nbs.yamlfile import load_yaml

STAGES = ("open", "contacted", "sample_requested", "referred", "closed")
Stage = Literal["open", "contacted", "sample_requested", "referred", "closed"]
DEFAULT_FOLLOWUP = Path(__file__).with_name("followup.yaml")


class ContactConfig(BaseModel):
    """The contact log's choices and the first-contact limit of urgent recalls."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    how: tuple[str, ...] = ("telephone", "letter", "email", "in_person")
    whom: tuple[str, ...] = ("parents", "maternity", "paediatrician", "specialist", "other")
    urgent_first_contact_hours: float = Field(default=24, gt=0)


class FollowUpConfig(BaseModel):
    """Outcomes and overdue limits (``nbs/followup/followup.yaml``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcomes: tuple[str, ...] = Field(min_length=1)
    overdue_days: dict[Literal["urgent", "routine"], int]
    lost_to_follow_up_days: int = Field(default=365, ge=1)
    contacts: ContactConfig = ContactConfig()


def load_followup(path: Path | None = None) -> FollowUpConfig:
    """Read the follow-up configuration (the packaged file by default)."""
    return FollowUpConfig.model_validate(load_yaml(path or DEFAULT_FOLLOWUP))


class RecallError(ValueError):
    """A change a coordinator asked for that is not allowed (the message says why)."""


def current_user() -> str:
    """Who is making the change: the setting ``NBS_USER``, else the login name."""
    return settings.current().user or getpass.getuser()


@dataclass(frozen=True)
class Change:
    """One field change of a recall, as recorded in the audit."""

    field: str
    old: str | None
    new: str | None


def recall_row(db: Path, recall_id: str) -> dict[str, object]:
    """The recall as a mapping (RecallError when there is none)."""
    row = store.recall(db, recall_id)
    if row is None:
        raise RecallError(f"no recall {recall_id}")
    return row


def refuse_if_held(row: dict[str, object]) -> None:
    """Nothing about a card leaves the laboratory while one of its plates is held (CLSI
    C24: results of a run are released only once its QC is accepted); notes are allowed."""
    if row.get("held_by"):
        raise RecallError(
            f"{row['recall_id']} waits for plate {row['held_by']}: a supervisor accepts or "
            f"rejects the plate first (nbs qc accept / nbs qc reject, or the Plates page)"
        )


def set_stage(db: Path, recall_id: str, stage: str, actor: str, note: str | None = None) -> None:
    """Move a recall forward to ``stage`` (not ``closed``: use :func:`close_recall`)."""
    if stage not in STAGES or stage == "closed":
        allowed = ", ".join(s for s in STAGES if s != "closed")
        raise RecallError(f"stage must be one of {allowed} (close with an outcome instead)")
    row = recall_row(db, recall_id)
    old = str(row["stage"])
    if old == "closed":
        raise RecallError(f"{recall_id} is closed: reopen it first, with a reason")
    refuse_if_held(row)
    if STAGES.index(stage) <= STAGES.index(old) and not (
        {old, stage} == {"sample_requested", "referred"}
    ):
        raise RecallError(f"{recall_id} is already {old}: stages only move forward")
    store.change_recall(db, recall_id, old, [Change("stage", old, stage)], actor, note)


def close_recall(
    db: Path,
    recall_id: str,
    outcome: str,
    actor: str,
    note: str | None,
    config: FollowUpConfig,
) -> None:
    """Close a recall with one of the configured outcomes."""
    if outcome not in config.outcomes:
        raise RecallError(f"outcome must be one of {', '.join(config.outcomes)}")
    row = recall_row(db, recall_id)
    old = str(row["stage"])
    if old == "closed":
        raise RecallError(f"{recall_id} is already closed ({row['outcome']})")
    refuse_if_held(row)
    store.change_recall(
        db,
        recall_id,
        old,
        [Change("stage", old, "closed"), Change("outcome", None, outcome)],
        actor,
        note,
    )


def reopen_recall(db: Path, recall_id: str, reason: str, actor: str) -> None:
    """Reopen a closed recall; the reason is required and kept in the audit."""
    if not reason.strip():
        raise RecallError("a reason is required to reopen a recall")
    row = recall_row(db, recall_id)
    if row["stage"] != "closed":
        raise RecallError(f"{recall_id} is not closed")
    store.change_recall(
        db,
        recall_id,
        "closed",
        [Change("stage", "closed", "open"), Change("outcome", str(row["outcome"]), None)],
        actor,
        reason,
    )


def add_note(db: Path, recall_id: str, note: str, actor: str) -> None:
    """Add a note to a recall (kept in the audit; the latest shows on the recall)."""
    row = recall_row(db, recall_id)
    old = None if row["note"] is None else str(row["note"])
    store.change_recall(db, recall_id, str(row["stage"]), [Change("note", old, note)], actor, note)


def list_recalls(
    db: Path,
    config: FollowUpConfig,
    *,
    status: str | None = None,
    condition: str | None = None,
    urgency: str | None = None,
    overdue: bool = False,
    stage: str | None = None,
    submitter: str | None = None,
    sort: str = "priority",
) -> pl.DataFrame:
    """The recall list with ``days_open``, ``overdue``, the baby's ``age``, the contact
    state and ``action_due`` / ``not_contacted`` (:mod:`nbs.followup.worklist`); due work
    first, then urgent, then oldest (or ``sort``: a name of ``worklist.SORTS``)."""
    frame = worklist.annotate(
        contact_store.recall_worklist(db),
        store.utc_now(),
        {str(k): v for k, v in config.overdue_days.items()},
        config.contacts.urgent_first_contact_hours,
    )
    wanted = {"status": status, "condition": condition, "urgency": urgency}
    frame = worklist.select(frame, {**wanted, "stage": stage, "submitter": submitter})
    if overdue:
        frame = frame.filter(pl.col("overdue"))
    return worklist.sort(frame, sort)
