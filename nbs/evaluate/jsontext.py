"""JSON built as text with polars expressions.

A call's explanation is a JSON object per row. Encoding a list of structs per row costs half
the evaluation; concatenating already-encoded parts costs little. Every value here is
encoded once, by one of these helpers.
"""

from __future__ import annotations

import json

import polars as pl


def json_text(expr: pl.Expr) -> pl.Expr:
    """A string expression as a JSON string (``null`` where null). The texts come from the
    cutoff files and the catalogue, so quotes, backslashes and line breaks are escaped."""
    escaped = (
        expr.str.replace_all("\\", "\\\\", literal=True)
        .str.replace_all('"', '\\"', literal=True)
        .str.replace_all("\n", "\\n", literal=True)
        .str.replace_all("\r", "\\r", literal=True)
        .str.replace_all("\t", "\\t", literal=True)
    )
    return pl.concat_str([pl.lit('"'), escaped, pl.lit('"')]).fill_null("null")


def json_float(expr: pl.Expr) -> pl.Expr:
    """A Float64 as JSON (``null`` where null, NaN or infinite: JSON has no such number)."""
    return pl.when(expr.is_finite()).then(expr.cast(pl.String)).otherwise(pl.lit("null"))


def json_scalar(expr: pl.Expr) -> pl.Expr:
    """An integer or a boolean as JSON (``null`` where null)."""
    return expr.cast(pl.String).fill_null("null")


def json_object(fields: dict[str, pl.Expr]) -> pl.Expr:
    """A JSON object of already-encoded values, in the given key order."""
    parts: list[pl.Expr] = []
    for i, (key, value) in enumerate(fields.items()):
        parts += [pl.lit(("{" if i == 0 else ",") + json.dumps(key) + ":"), value]
    return pl.concat_str([*parts, pl.lit("}")])
