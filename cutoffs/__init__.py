"""Versioned cutoff sets: the YAML files in this folder and their typed model."""

from cutoffs.load import DEFAULT_CUTOFF_DIR, load_cutoff_file, load_cutoff_sets, set_in_force
from cutoffs.model import (
    LEVELS,
    ConditionCutoffs,
    CutoffSet,
    ReplicatePolicy,
    SpecimenRules,
    TierLimits,
)

__all__ = [
    "DEFAULT_CUTOFF_DIR",
    "LEVELS",
    "ConditionCutoffs",
    "CutoffSet",
    "ReplicatePolicy",
    "SpecimenRules",
    "TierLimits",
    "load_cutoff_file",
    "load_cutoff_sets",
    "set_in_force",
]
