"""Row-level validation of inbox files with pandera (polars backend).

A file's text columns are parsed into typed columns beside the raw ones, then one pandera
schema per kind checks the collected frame lazily, so a file reports all its problems at
once. Every failure becomes a quarantine entry naming the row, the column, the value as
it arrived and the reason; rows without failures go on.

The parts, one module each: :mod:`~nbs.validate.parsing` (numbers and booleans),
:mod:`~nbs.validate.times` (date-times and the laboratory's time zone),
:mod:`~nbs.validate.censored` (values beyond the measuring range, no amplification),
:mod:`~nbs.validate.rows` (a file's rows typed), :mod:`~nbs.validate.schemas` (the pandera
schemas), :mod:`~nbs.validate.check` (the entry points), :mod:`~nbs.validate.contract`
(the columns handed on) and :mod:`~nbs.validate.card_warnings` (cards kept but flagged,
for their card or a result past the plausible range).
This module gathers the names the run uses.
"""

from __future__ import annotations

from nbs.validate.card_warnings import result_warnings, specimen_warnings
from nbs.validate.check import Checked, validate_results, validate_specimens
from nbs.validate.contract import (
    QUARANTINE_SCHEMA,
    RESULT_FIELDS,
    RESULT_TYPES,
    SPECIMEN_FIELDS,
    SPECIMEN_TYPES,
)

__all__ = [
    "QUARANTINE_SCHEMA",
    "RESULT_FIELDS",
    "RESULT_TYPES",
    "SPECIMEN_FIELDS",
    "SPECIMEN_TYPES",
    "Checked",
    "result_warnings",
    "specimen_warnings",
    "validate_results",
    "validate_specimens",
]
