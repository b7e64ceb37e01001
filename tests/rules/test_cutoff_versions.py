"""A landed cutoff version never changes silently: calls name the version they were made
with, so a set whose limits change under the same version would make those calls mean
something else. Each installed set's limits, as the engine loads them, are fingerprinted
in ``tests/golden/cutoff_versions.json``; a changed limit needs a new version.

A source text, a name or a reason may be corrected under the same version: the
fingerprint leaves them out. A new version is recorded with ``UPDATE_GOLDEN=1`` (which never
overwrites a recorded one)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cutoffs.model import CutoffSet
from nbs.config import ScreeningConfig

GOLDEN = Path(__file__).parents[1] / "golden" / "cutoff_versions.json"
#: free text that explains a limit without being one
TEXT_FIELDS = frozenset({"sources", "reason", "name", "title", "status"})


def _without_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_text(v) for k, v in value.items() if k not in TEXT_FIELDS}
    if isinstance(value, list):
        return [_without_text(v) for v in value]
    return value


def limits_fingerprint(cutoff_set: CutoffSet) -> str:
    """sha256 of the set as loaded (limits, strata, specimen rules, replicate policy,
    urgencies, escalation), its free text left out. Fields left at the model's default
    count: a new setting or a changed default decides differently under every set that
    does not name it, so it shows here as a change to review (and, if the sets' calls
    really change, new versions)."""
    loaded = cutoff_set.model_dump(mode="json")
    canonical = json.dumps(_without_text(loaded), sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def test_a_landed_version_keeps_its_limits(config: ScreeningConfig) -> None:
    recorded: dict[str, str] = json.loads(GOLDEN.read_text())
    current = {s.version: limits_fingerprint(s) for s in config.cutoff_sets}
    new = {v: h for v, h in current.items() if v not in recorded}
    if new and os.environ.get("UPDATE_GOLDEN"):
        recorded = dict(sorted({**recorded, **new}.items()))
        GOLDEN.write_text(json.dumps(recorded, indent=2) + "\n")
    changed = sorted(v for v, h in current.items() if recorded.get(v, h) != h)
    assert not changed, (
        f"the limits of {', '.join(changed)} changed under the same version: publish a new "
        "version (copy the file, raise `version`, set `effective_from`) instead of editing a "
        "landed one"
    )
    missing = sorted(set(current) - set(recorded))
    assert not missing, f"cutoff version(s) {missing} not recorded: UPDATE_GOLDEN=1 records them"
    removed = sorted(set(recorded) - set(current))
    assert not removed, f"cutoff version(s) {removed} removed: calls made with them name them"


def test_the_fingerprint_sees_a_limit_and_not_a_source(config: ScreeningConfig) -> None:
    landed = config.cutoff_sets[-1]
    pku = landed.conditions["PKU"]
    raised = [{**pku.criteria[0], "limits": {"retest": 120, "repeat_specimen": 150}}]
    moved = landed.model_copy(
        update={
            "conditions": {
                **landed.conditions,
                "PKU": pku.model_copy(update={"criteria": (*raised, *pku.criteria[1:])}),
            }
        }
    )
    reworded = landed.model_copy(
        update={
            "title": "another title",
            "conditions": {
                **landed.conditions,
                "PKU": pku.model_copy(update={"sources": ("another source",)}),
            },
        }
    )
    assert limits_fingerprint(moved) != limits_fingerprint(landed)
    assert limits_fingerprint(reworded) == limits_fingerprint(landed)
    later = landed.specimen_rules.transit
    assert later is not None
    slower = landed.model_copy(
        update={
            "specimen_rules": landed.specimen_rules.model_copy(
                update={"transit": later.model_copy(update={"max_days": later.max_days + 1})}
            )
        }
    )
    assert limits_fingerprint(slower) != limits_fingerprint(landed)
    # a setting the file leaves at the model's default counts too (a changed default
    # decides differently under every set that does not name it)
    capped = landed.model_copy(
        update={
            "conditions": {
                **landed.conditions,
                "PKU": pku.model_copy(update={"repeat_cards_to_refer": 2}),
            }
        }
    )
    assert pku.repeat_cards_to_refer != 2
    assert limits_fingerprint(capped) != limits_fingerprint(landed)
