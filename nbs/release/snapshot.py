"""What a release carries: a card's data, each condition's call and the values they rest
on, as one JSON document, and its digest.

The digest covers what a receiver acts on (the card's data, each condition's call and
urgency, the values; no run ids, evaluation times or reason texts), so a card whose
current content has another digest than its last release has changed since: a
correction, new punches, a reprocessing that changed a call. :func:`changed_keys` names
the observations that differ, which an amendment flags as corrected.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import polars as pl

from nbs.store.releases import ReleaseInputs

CARD_FIELDS = (
    "specimen_id",
    "baby_id",
    "birth_at",
    "collected_at",
    "received_at",
    "sex",
    "birth_weight_g",
    "gestational_age_weeks",
    "transfusion",
    "parenteral_nutrition",
    "last_transfusion_at",
    "specimen_quality",
    "submitter",
    "first_of_baby",
)
#: what a receiver acts on of a call (the values are the analytes'): a reprocessing that
#: only restates the same call under another cutoff version changes nothing released
CALL_FIELDS = ("call", "urgency")
#: a call's fields kept in the snapshot (sent as notes) but not compared
CALL_RECORD = ("basis", "reason", "rule_version", "kind", "run_id")


def _plain(value: Any) -> Any:
    """A JSON value: times as ISO text (to the second), the rest as they are."""
    if isinstance(value, dt.datetime):
        return value.replace(microsecond=0).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _analytes(results: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Per analyte the value reported: the mean of the retest punches once two are in
    (what decides then), else the first punch with its text as the instrument gave it."""
    out: dict[str, dict[str, Any]] = {}
    for (code,), rows in results.group_by("analyte", maintain_order=True):
        first = rows.filter(pl.col("replicate") == 1)
        retests = rows.filter((pl.col("replicate") > 1) & pl.col("value").is_not_null())
        base = (first if first.height else rows.head(1)).row(0, named=True)
        entry: dict[str, Any] = {
            "value": base["value"],
            "unit": base["unit"],
            "text": base["value_text"],
            "censored": base["censored"],
            "flag": base["flag"],
            "basis": "first punch",
            "punches": rows.height,
            "plates": sorted({p for p in rows["plate_id"] if p}),
        }
        if retests.height >= 2:
            mean = float(retests["value"].mean())  # type: ignore[arg-type]
            entry.update(value=round(mean, 6), text=None, censored=None, flag=None)
            entry["basis"] = f"mean of {retests.height} retest punches"
        out[str(code)] = entry
    return out


def build(inputs: ReleaseInputs, specimen_id: str) -> dict[str, Any]:
    """The snapshot of one card (it must be stored: KeyError otherwise)."""
    cards = inputs.cards.filter(pl.col("specimen_id") == specimen_id)
    if cards.height == 0:
        raise KeyError(specimen_id)
    card = {k: _plain(v) for k, v in cards.row(0, named=True).items() if k in CARD_FIELDS}
    calls = inputs.calls.filter(pl.col("specimen_id") == specimen_id)
    conditions = {
        row["condition"]: {k: row[k] for k in (*CALL_FIELDS, *CALL_RECORD)}
        for row in calls.iter_rows(named=True)
    }
    markers: dict[str, list[str]] = {}
    for row in inputs.markers.iter_rows(named=True):
        if row["condition"] in conditions:
            markers.setdefault(row["condition"], []).append(row["marker"])
    results = inputs.results.filter(pl.col("specimen_id") == specimen_id)
    requests = inputs.card_recalls.filter(pl.col("specimen_id") == specimen_id)
    return {
        "card": card,
        "conditions": conditions,
        "analytes": _analytes(results),
        "markers": markers,
        # a new card asked for the card's own sake (too early, transfused, unsatisfactory)
        "card_requests": [r["reason"] for r in requests.iter_rows(named=True)],
    }


def content(snapshot: dict[str, Any]) -> dict[str, Any]:
    """What a receiver reads of a snapshot (the digest's input)."""
    return {
        "card": snapshot["card"],
        "conditions": {
            c: {k: v for k, v in call.items() if k in CALL_FIELDS}
            for c, call in snapshot["conditions"].items()
        },
        "analytes": {a: {**v, "plates": None} for a, v in snapshot["analytes"].items()},
        "card_requests": snapshot.get("card_requests", []),
    }


def digest(snapshot: dict[str, Any]) -> str:
    """SHA-256 of the snapshot's content, canonical JSON."""
    text = json.dumps(content(snapshot), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def to_json(snapshot: dict[str, Any]) -> str:
    """The snapshot as stored."""
    return json.dumps(snapshot, sort_keys=True, ensure_ascii=False, default=str)


def changed_keys(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The observations that differ: ``card.FIELD``, ``card.requests`` (a new card
    asked for the card's sake), ``condition.C``, ``analyte.A``."""
    old, new = content(before), content(after)
    out = [f"card.{k}" for k in CARD_FIELDS if old["card"].get(k) != new["card"].get(k)]
    if old["card_requests"] != new["card_requests"]:
        out.append("card.requests")
    for part, prefix in (("conditions", "condition"), ("analytes", "analyte")):
        for key in sorted(set(old[part]) | set(new[part])):
            if old[part].get(key) != new[part].get(key):
                out.append(f"{prefix}.{key}")
    return out
