"""When a card's results may leave the laboratory.

A card is released only when:

* every condition is **called or explained**: a call of ``negative``, ``repeat_specimen``
  or ``referral``, or ``not_evaluated`` with a reason that is an action of its own (no
  consent, not assessable before 32 weeks: a new card is asked for). A ``retest`` (punches
  awaited) or a ``not_evaluated`` waiting for a marker or without a cutoff set is
  **pending** and blocks the release;
* no plate that carries one of its results is **held** or not judged (a rejected plate's
  results reach no call: a condition that had only them is still pending, a retest);
* no **open exception** is left unreviewed: a quarantined row naming the card (its card
  row or one of its results) or a warning on the card (missing essential information, a
  weight implausible for the age). These the signer may release over, naming them as
  acknowledged (kept in the release);
* a laboratory user signs it with their password (``nbs.release.service``).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from nbs.store.releases import ReleaseInputs

#: calls that are a decision a receiver can act on
CALLED = frozenset({"negative", "repeat_specimen", "referral"})


@dataclass(frozen=True)
class Blocker:
    """One reason a card cannot be released now; ``exception`` ones may be acknowledged."""

    kind: str  # no_card | no_calls | pending | plate | quarantined | warning
    detail: str

    @property
    def exception(self) -> bool:
        """An open exception the signer may release over, naming it."""
        return self.kind in ("quarantined", "warning")

    def __str__(self) -> str:
        return self.detail


def _of(frame: pl.DataFrame, specimen_id: str) -> pl.DataFrame:
    return frame.filter(pl.col("specimen_id") == specimen_id)


def _call_blockers(calls: pl.DataFrame) -> list[Blocker]:
    out = []
    for row in calls.iter_rows(named=True):
        call, condition = row["call"], row["condition"]
        if call in CALLED or (call == "not_evaluated" and row["basis"]):
            continue
        what = "retest punches awaited" if call == "retest" else row["reason"]
        out.append(Blocker("pending", f"{condition} pending: {what}"))
    return out


def blockers(inputs: ReleaseInputs, specimen_id: str) -> list[Blocker]:
    """Every reason the card cannot be released now (empty: it can)."""
    if _of(inputs.cards, specimen_id).height == 0:
        return [Blocker("no_card", f"no stored card {specimen_id}")]
    calls = _of(inputs.calls, specimen_id)
    found = [] if calls.height else [Blocker("no_calls", "no condition evaluated yet")]
    found += _call_blockers(calls)
    for row in _of(inputs.plates, specimen_id).iter_rows(named=True):
        if row["status"] not in ("accepted", "rejected"):
            status = row["status"] or "not judged"
            found.append(Blocker("plate", f"plate {row['plate_id']} is {status}"))
    for row in _of(inputs.quarantined, specimen_id).iter_rows(named=True):
        found.append(
            Blocker(
                "quarantined",
                f"quarantined: {row['file_name']} row {row['row_number']} "
                f"{row['column_name']}={row['value']!r}: {row['reason']}",
            )
        )
    for row in _of(inputs.warnings, specimen_id).iter_rows(named=True):
        found.append(Blocker("warning", f"warning: {row['column_name']}: {row['reason']}"))
    return found


def unacknowledged(found: list[Blocker], acknowledge: bool) -> list[Blocker]:
    """What still blocks once the signer acknowledges the exceptions (or not)."""
    return [b for b in found if not (acknowledge and b.exception)]
