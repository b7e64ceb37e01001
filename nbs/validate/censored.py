"""Results beyond the measuring range and qPCR wells without amplification, as texts.

``<0.5``, ``> 300``, ``OOR >``, "above range" and the like: the value is at most / at least
its bound (``censored``), the number given or, without one, the catalogue's bound of the
measuring range. A text meaning no amplification ("Undetermined") makes the flag
``undetermined``.
"""

from __future__ import annotations

import polars as pl

from analytes import Catalogue
from analytes.catalogue import UNDETERMINED
from nbs.validate.parsing import raw_column

#: a number with an optional decimal comma or exponent
_NUMBER = r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:e[+-]?\d+)?"
#: ``<0.5``, ``< 0.5``, ``<=0.5``, ``≤0.5``, ``>300``, ``>= 300``, ``≥300``, ``OOR > 300``
_CENSORED_NUMBER = rf"^(?:oor\s*)?(<=|>=|≤|≥|<|>)\s*({_NUMBER})$"
#: texts that say above / below the measuring range without a number (folded: lower case,
#: single spaces); see data_samples/README.md
ABOVE_RANGE = (
    "oor >", "oor>", "oor high", "> uloq", ">uloq", "> uloq", "above range",
    "above measuring range", "above the measuring range", "over range", "out of range high",
    "> range", ">range", "above linearity", "> max", ">max",
)  # fmt: skip
BELOW_RANGE = (
    "oor <", "oor<", "oor low", "< lloq", "<lloq", "< loq", "<loq", "< lod", "<lod",
    "below range", "below measuring range", "below the measuring range", "under range",
    "out of range low", "< range", "<range", "< min", "<min",
)  # fmt: skip


#: the flag of a result reported only as above / below the measuring range, without a number
ABOVE_RANGE_FLAG = "above range"
BELOW_RANGE_FLAG = "below range"


def censored_and_no_amplification(frame: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    """Add ``censored`` (``<`` at most, ``>`` at least), ``value_bound`` (a bound with no
    number, in the catalogue unit) and ``no_amplification_text``; a text meaning no
    amplification (value or flag) makes the flag ``undetermined``.

    Only texts that are not plain numbers are looked at: a file of numbers pays one check.
    """
    keys = list(catalogue.no_amplification_keys())
    flag = pl.col("flag").str.strip_chars().str.replace_all(r"\s+", " ")
    odd = frame.select(
        (pl.col("value_reported").is_null() & pl.col(raw_column("value")).is_not_null()).any()
        | (flag.is_in(keys) & (flag != UNDETERMINED)).any()
    ).item()
    if not odd:  # the usual block: plain numbers and flags
        return frame.with_columns(
            censored=pl.lit(None, dtype=pl.String), no_amplification_text=pl.lit(False)
        )
    text = (
        pl.col(raw_column("value"))
        .str.strip_chars()
        .str.to_lowercase()
        .str.replace_all(r"\s+", " ")
    )
    sign = text.str.extract(_CENSORED_NUMBER, 1)
    number = text.str.extract(_CENSORED_NUMBER, 2).str.replace(",", ".", literal=True)
    above = text.is_in(ABOVE_RANGE)
    below = text.is_in(BELOW_RANGE)
    no_amp = text.is_in(keys)
    reported = pl.col("value_reported")
    return frame.with_columns(
        value_reported=pl.when(reported.is_null() & sign.is_not_null())
        .then(number.cast(pl.Float64, strict=False))
        .otherwise(reported),
        censored=pl.when(reported.is_not_null())
        .then(None)
        .when(sign.is_in(["<", "<=", "≤"]) | below)
        .then(pl.lit("<"))
        .when(sign.is_in([">", ">=", "≥"]) | above)
        .then(pl.lit(">")),
        value_bound=pl.when(reported.is_null() & above)
        .then(pl.col("censored_max"))
        .when(reported.is_null() & below)
        .then(pl.col("censored_min")),
        no_amplification_text=(reported.is_null() & no_amp).fill_null(False),
        # a text without a number: the bound is the range's, not the instrument's; the flag
        # says so where the instrument gave none, so that a reason never shows it as measured
        flag=pl.when((reported.is_null() & no_amp) | flag.is_in(keys))
        .then(pl.lit(UNDETERMINED))
        .when(reported.is_null() & above & pl.col("flag").is_null())
        .then(pl.lit(ABOVE_RANGE_FLAG))
        .when(reported.is_null() & below & pl.col("flag").is_null())
        .then(pl.lit(BELOW_RANGE_FLAG))
        .otherwise(pl.col("flag")),
    )
