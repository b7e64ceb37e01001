"""Loading cutoff sets from YAML and choosing the set in force for a collection time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from cutoffs.model import CutoffSet
from nbs.yamlfile import load_yaml

DEFAULT_CUTOFF_DIR = Path(__file__).parent


def load_cutoff_file(path: Path) -> CutoffSet:
    """Read one cutoff set file into a frozen :class:`CutoffSet` (structure only)."""
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a cutoff set (expected a mapping at the top)")
    return CutoffSet.model_validate(data)


def load_cutoff_sets(directory: Path | None = None) -> tuple[CutoffSet, ...]:
    """All ``*.yaml`` cutoff sets of a folder, oldest first; versions and dates unique."""
    folder = directory or DEFAULT_CUTOFF_DIR
    sets = sorted(
        (load_cutoff_file(p) for p in sorted(folder.glob("*.yaml"))),
        key=lambda s: s.effective_from,
    )
    if not sets:
        raise ValueError(f"no cutoff set (*.yaml) in {folder}")
    _check_unique(sets)
    return tuple(sets)


def _check_unique(sets: Iterable[CutoffSet]) -> None:
    versions: set[str] = set()
    dates: set[dt.date] = set()
    for s in sets:
        if s.version in versions:
            raise ValueError(f"cutoff version {s.version} is defined twice")
        if s.effective_from in dates:
            raise ValueError(f"two cutoff sets take effect on {s.effective_from}")
        versions.add(s.version)
        dates.add(s.effective_from)


def set_in_force(sets: tuple[CutoffSet, ...], collected: dt.date) -> CutoffSet | None:
    """The newest set whose ``effective_from`` is on or before ``collected``."""
    chosen = None
    for s in sets:
        if s.effective_from <= collected:
            chosen = s
    return chosen
