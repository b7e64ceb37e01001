"""A file's rows parsed: typed columns beside their text as it arrived (``*__raw``); for
results, analyte aliases resolved and values converted to the catalogue unit."""

from __future__ import annotations

import polars as pl

from analytes import Catalogue
from analytes.catalogue import alias_key, unit_key
from nbs.validate.censored import censored_and_no_amplification
from nbs.validate.parsing import parse_bool, parse_float, parse_int, raw_column
from nbs.validate.times import parse_datetime


def parse_specimens(raw: pl.DataFrame) -> pl.DataFrame:
    """Typed specimen columns beside their ``*__raw`` text."""
    frame = raw.rename({c: raw_column(c) for c in raw.columns if c != "row_number"})
    r = raw_column
    return frame.with_columns(
        specimen_id=pl.col(r("specimen_id")),
        baby_id=pl.col(r("baby_id")),
        birth_at=parse_datetime(frame[r("birth_at")]),
        collected_at=parse_datetime(frame[r("collected_at")]),
        received_at=parse_datetime(frame[r("received_at")]),
        sex=pl.col(r("sex")).str.to_uppercase(),
        birth_weight_g=parse_int(frame[r("birth_weight_g")]),
        gestational_age_weeks=parse_int(frame[r("gestational_age_weeks")]),
        transfusion=parse_bool(r("transfusion")),
        parenteral_nutrition=parse_bool(r("parenteral_nutrition")),
        consent_cf=parse_bool(r("consent_cf")),
        specimen_quality=pl.col(r("specimen_quality")).str.to_lowercase(),
        submitter=pl.col(r("submitter")),
        last_transfusion_at=parse_datetime(frame[r("last_transfusion_at")]),
    )


def _catalogue_terms(frame: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    """For each distinct (analyte text, unit text) of the frame: the analyte code, the
    catalogue unit, the factor to it and the plausible range (null where not known).

    A file has a handful of analyte names and units and a million rows: the names are
    folded and looked up once per pair, and the rows then take their pair's terms in one
    join rather than three joins of every row."""
    pairs = frame.select(raw_column("analyte"), raw_column("unit")).unique()
    folded = {
        "alias_key": [None if a is None else alias_key(a) for a in pairs[raw_column("analyte")]],
        "unit_key": [None if u is None else unit_key(u) for u in pairs[raw_column("unit")]],
    }
    return (
        pairs.with_columns(pl.DataFrame(folded, schema=dict.fromkeys(folded, pl.String)))
        .join(catalogue.alias_frame(), on="alias_key", how="left")
        .join(
            catalogue.unit_frame().rename({"unit": "catalogue_unit"}),
            on=["analyte", "unit_key"],
            how="left",
        )
        .join(catalogue.plausible_frame(), on="analyte", how="left")
        .drop("alias_key", "unit_key")
    )


def parse_results(raw: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    """Typed result columns beside their ``*__raw`` text; analyte aliases resolved to codes
    and values converted to the catalogue unit (``value``; as reported: ``value_reported``).
    """
    frame = raw.rename({c: raw_column(c) for c in raw.columns if c != "row_number"})
    r = raw_column
    frame = frame.join(
        _catalogue_terms(frame, catalogue),
        on=[r("analyte"), r("unit")],
        how="left",
        nulls_equal=True,
        # the rows stay in file order (cheaper than sorting every block)
        maintain_order="left",
    )
    reported = pl.col("value_reported")
    frame = frame.with_columns(
        specimen_id=pl.col(r("specimen_id")),
        value_reported=parse_float(frame[r("value")]),
        unit=pl.col("catalogue_unit"),
        measured_at=parse_datetime(frame[r("measured_at")]),
        instrument=pl.col(r("instrument")),
        plate_id=pl.col(r("plate_id")),
        well=pl.col(r("well")),
        replicate=parse_int(frame[r("replicate")]),
        flag=pl.col(r("flag")).str.to_lowercase(),
    )
    frame = censored_and_no_amplification(frame, catalogue)
    factor = pl.col("factor")
    if "value_bound" not in frame.columns:  # no censored text: the value is the number
        return frame.with_columns(
            value=pl.when(factor.is_not_null()).then(reported * factor).otherwise(reported)
        )
    return frame.with_columns(
        # a value that does not parse keeps the unit check honest: value null, raw kept.
        # A censored text without a number takes its bound in the catalogue unit
        value=pl.when(pl.col("value_bound").is_not_null())
        .then(pl.col("value_bound"))
        .when(factor.is_not_null())
        .then(reported * factor)
        .otherwise(reported),
    ).with_columns(
        value_reported=pl.when(pl.col("value_bound").is_not_null() & factor.is_not_null())
        .then(pl.col("value") / factor)
        .otherwise(reported),
    )
