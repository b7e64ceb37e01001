"""The columns validation hands on: a validated card, a validated result, a quarantine
entry."""

from __future__ import annotations

import polars as pl

#: Typed columns of a validated card, in contract order.
SPECIMEN_TYPES = pl.Schema(
    {
        "specimen_id": pl.String(),
        "baby_id": pl.String(),
        "birth_at": pl.Datetime("us"),
        "collected_at": pl.Datetime("us"),
        "received_at": pl.Datetime("us"),
        "sex": pl.String(),
        "birth_weight_g": pl.Int64(),
        "gestational_age_weeks": pl.Int64(),
        "transfusion": pl.Boolean(),
        "parenteral_nutrition": pl.Boolean(),
        "consent_cf": pl.Boolean(),
        "specimen_quality": pl.String(),
        "submitter": pl.String(),
        "last_transfusion_at": pl.Datetime("us"),
    }
)
#: Typed columns of a validated result (value in the catalogue unit; the number as reported
#: beside; ``censored``: ``<`` where the value is at most, ``>`` at least its bound). The
#: texts kept as they arrived (analyte and unit as reported, instrument, plate, well, the
#: value's text) are the raw row's, which the database keeps once (``result_details``).
RESULT_TYPES = pl.Schema(
    {
        "specimen_id": pl.String(),
        "analyte": pl.String(),
        "replicate": pl.Int64(),
        "value": pl.Float64(),
        "unit": pl.String(),
        "value_reported": pl.Float64(),
        "measured_at": pl.Datetime("us"),
        "flag": pl.String(),
        "censored": pl.String(),
    }
)
SPECIMEN_FIELDS = tuple(SPECIMEN_TYPES)
RESULT_FIELDS = tuple(RESULT_TYPES)

#: One quarantine entry: the row, the column, the value as it arrived and the reason.
QUARANTINE_SCHEMA = pl.Schema(
    {
        "row_number": pl.Int64,
        "column_name": pl.String,
        "value": pl.String,
        "reason": pl.String,
    }
)
