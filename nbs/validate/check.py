"""The validation of a file's rows: parsed, checked by the pandera schema lazily (a file
reports all its problems at once), and split into good rows and quarantine entries."""

from __future__ import annotations

from dataclasses import dataclass

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from analytes import Catalogue
from nbs.validate.contract import QUARANTINE_SCHEMA, RESULT_FIELDS, SPECIMEN_FIELDS
from nbs.validate.rows import parse_results, parse_specimens
from nbs.validate.schemas import result_schema, specimen_schema


@dataclass(frozen=True)
class Checked:
    """Parsed rows that passed, and one quarantine entry per failure."""

    good: pl.DataFrame
    quarantine: pl.DataFrame


def run_schema(schema: pa.DataFrameSchema, parsed: pl.DataFrame) -> Checked:
    """Validate a collected frame lazily; split good rows from quarantine entries."""
    indexed = parsed.with_row_index("_i")
    try:
        schema.validate(indexed, lazy=True)
        failures = pl.DataFrame(schema={"index": pl.Int64, "column": pl.String, "check": pl.String})
    except SchemaErrors as exc:
        failures = exc.failure_cases.select(
            pl.col("index").cast(pl.Int64), pl.col("column"), pl.col("check")
        )
    if failures.is_empty():  # the usual block: every row good
        return Checked(good=parsed, quarantine=QUARANTINE_SCHEMA.to_frame())
    if failures.filter(pl.col("index").is_null()).height:
        # a dtype-level failure: a bug in parsing, never a property of the data
        raise RuntimeError(f"schema {schema.name}: {failures.filter(pl.col('index').is_null())}")
    # the text as it arrived, for the failing rows only (a clean file has none)
    failing = indexed.join(
        failures.select(pl.col("index").cast(pl.UInt32).alias("_i")).unique(), on="_i", how="semi"
    )
    raw_long = failing.select(
        pl.col("_i").cast(pl.Int64).alias("index"),
        "row_number",
        *[pl.col(c).cast(pl.String) for c in indexed.columns if c.endswith("__raw")],
    ).unpivot(index=["index", "row_number"], variable_name="raw_col", value_name="value")
    raw_long = raw_long.with_columns(column=pl.col("raw_col").str.strip_suffix("__raw"))
    quarantine = (
        failures.join(raw_long, on=["index", "column"], how="left")
        .select(
            pl.col("row_number"),
            column_name=pl.col("column"),
            value=pl.col("value"),
            reason=pl.col("check"),
        )
        .unique(maintain_order=True)
        .sort("row_number", "column_name")
        .cast(QUARANTINE_SCHEMA)
    )
    bad_rows = quarantine.select("row_number").unique()
    good = parsed.join(bad_rows, on="row_number", how="anti")
    return Checked(good=good, quarantine=quarantine)


def validate_specimens(raw: pl.DataFrame) -> Checked:
    """Parse and check a specimen-card file's rows."""
    checked = run_schema(specimen_schema(), parse_specimens(raw))
    return Checked(
        good=checked.good.select("row_number", *SPECIMEN_FIELDS),
        quarantine=checked.quarantine,
    )


def validate_results(raw: pl.DataFrame, catalogue: Catalogue) -> Checked:
    """Parse and check a result file's rows against the schema and the catalogue."""
    parsed = parse_results(raw, catalogue)
    texts = bool(parsed.select(pl.col("no_amplification_text").any()).item())
    checked = run_schema(result_schema(texts), parsed)
    return Checked(
        good=checked.good.select("row_number", *RESULT_FIELDS), quarantine=checked.quarantine
    )
