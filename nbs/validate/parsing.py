"""Text to typed values: numbers (a decimal point or comma), whole numbers, booleans.

A file's columns arrive as text and keep it beside the typed value (``raw_column``: the name of
a column's text), so that a failure names the value as it arrived.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl


def raw_column(col: str) -> str:
    """The name of the column holding ``col``'s text as it arrived."""
    return f"{col}__raw"


def fix_nulls(
    parsed: pl.Series, text: pl.Series, slow: Callable[[pl.Series], pl.Series]
) -> pl.Series:
    """``parsed`` with ``slow`` applied to the texts it left null: a fast parse of the usual
    form on every row, the slow one only where the text is there and did not parse."""
    rest = parsed.is_null() & text.is_not_null()
    if not rest.any():
        return parsed
    return parsed.scatter(rest.arg_true(), slow(text.filter(rest)))


def parse_float(text: pl.Series) -> pl.Series:
    """Text -> Float64 (a decimal comma is accepted; null where it does not parse).

    The comma is replaced only in texts that did not parse as they are: a plain cast of
    every text is several times cheaper than a replacement in every text."""
    return fix_nulls(
        text.cast(pl.Float64, strict=False),
        text,
        lambda rest: rest.str.replace(",", ".", literal=True).cast(pl.Float64, strict=False),
    )


def parse_int(text: pl.Series) -> pl.Series:
    """Text -> Int64 when the number is whole (``3200`` or ``3200.0``), else null."""

    def whole(rest: pl.Series) -> pl.Series:
        number = parse_float(rest)
        return (
            number.to_frame("n")
            .select(
                pl.when(pl.col("n") == pl.col("n").round(0))
                .then(pl.col("n"))
                .cast(pl.Int64, strict=False)
            )
            .to_series()
        )

    return fix_nulls(text.cast(pl.Int64, strict=False), text, whole)


_TRUE = ("true", "1", "yes", "y", "t")
_FALSE = ("false", "0", "no", "n", "f")


def parse_bool(column: str) -> pl.Expr:
    """Text -> Boolean (true/false, 1/0, yes/no); null where it is none of them."""
    text = pl.col(column).str.to_lowercase()
    return pl.when(text.is_in(_TRUE)).then(True).when(text.is_in(_FALSE)).then(False)
