"""Row-level validation of inbox files with pandera (polars backend).

A file's text columns are parsed into typed columns beside the raw ones, then one pandera
schema per kind checks the collected frame lazily, so a file reports all its problems at
once. Every failure becomes a quarantine entry naming the row, the column, the value as
it arrived and the reason; rows without failures go on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from analytes import Catalogue
from analytes.catalogue import UNDETERMINED, alias_key, unit_key

SEXES = ("M", "F", "U")
SPECIMEN_QUALITIES = (
    "ok",
    "insufficient",
    "oversaturated",
    "layered",
    "contaminated",
    "not_dry",
    "expired_card",
    "too_old",
    "damaged",
)
#: Physically possible ranges; outside them a card is held (likely a typing error).
BIRTH_WEIGHT_RANGE = (250, 7500)
GESTATION_RANGE = (20, 45)
#: Birth weight (g) plausible for completed weeks of gestation: (from_weeks, min_g, max_g).
#: Wide bands (beyond about +/-4 SD of the Fenton charts); outside -> a warning, not a hold.
WEIGHT_FOR_GESTATION = (
    (20, 250, 1200),
    (26, 350, 2200),
    (30, 600, 3300),
    (34, 1000, 4500),
    (37, 1400, 6500),
)

_NAIVE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
)
#: the usual form of the first, tried alone first: polars has a fast parser for it
_FAST_FORMAT = "%Y-%m-%dT%H:%M:%S"
_FAST_LENGTH = len("2026-01-05T08:00:00")
#: Time zone of the laboratory: datetimes sent with an offset are converted to it.
LAB_TIME_ZONE = "Europe/Luxembourg"

QUARANTINE_SCHEMA = pl.Schema(
    {
        "row_number": pl.Int64,
        "column_name": pl.String,
        "value": pl.String,
        "reason": pl.String,
    }
)


#: the accepted forms with an offset, once a space between date and time is made a ``T``.
#: ``%#z`` is chrono's lenient offset: ``Z``, ``+01:00``, ``+0100`` or ``+01``
_ZONED_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M%#z")


def _naive(text: pl.Expr) -> pl.Expr:
    """The accepted forms without an offset, the first that parses."""
    return pl.coalesce(
        [text.str.to_datetime(f, strict=False, time_unit="us") for f in _NAIVE_FORMATS]
    )


def _zoned(text: pl.Expr) -> pl.Expr:
    """The accepted forms with an offset, converted to laboratory time (naive):
    ``2026-01-12 04:43:00+01:00``, ``...Z``, and a time-zone-aware Parquet timestamp, which
    arrives as ``2026-01-12 03:43:00.000000+00:00``."""
    iso = text.str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T")
    return pl.coalesce(
        [
            iso.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC")
            .dt.convert_time_zone(LAB_TIME_ZONE)
            .dt.replace_time_zone(None)
            for f in _ZONED_FORMATS
        ]
    )


def _datetime_formats(text: pl.Expr) -> pl.Expr:
    """Each accepted form in turn, the first that parses (null where none does)."""
    return pl.coalesce([_naive(text), _zoned(text)])


def _fix_nulls(
    parsed: pl.Series, text: pl.Series, slow: Callable[[pl.Series], pl.Series]
) -> pl.Series:
    """``parsed`` with ``slow`` applied to the texts it left null: a fast parse of the usual
    form on every row, the slow one only where the text is there and did not parse."""
    rest = parsed.is_null() & text.is_not_null()
    if not rest.any():
        return parsed
    return parsed.scatter(rest.arg_true(), slow(text.filter(rest)))


def parse_datetime(text: pl.Series) -> pl.Series:
    """ISO-8601 text -> naive local datetime (null where it does not parse).

    The usual form is tried on every row and the accepted forms only on the rows it did
    not parse: the same result as trying those in turn (the first that parses wins),
    without five more passes over a column in which nearly every text has the usual form.
    The usual form, whole seconds without a fraction (``_FAST_FORMAT``), has a fast parser
    in polars: 0.16 s for 11 M instrument times against 0.31 s for the first accepted form
    (``%.f``: an optional fraction), and 0.07 s against 0.58 s for a million cards' three
    times. It is given only texts of that form's length without a leading sign; of those,
    a text it parses, the accepted forms parse to the same time (property test)."""
    t = pl.col("t")
    # only texts of the usual form's length and without a sign: polars' fast parser reads
    # "--026-01-05T08:00:00" as the year 26, where no accepted form parses it
    usual = (t.str.len_bytes() == _FAST_LENGTH) & ~t.str.starts_with("-")
    fast = text.to_frame("t").select(
        pl.when(usual).then(t.str.to_datetime(_FAST_FORMAT, strict=False, time_unit="us"))
    )
    return _fix_nulls(
        fast.to_series().rename(text.name),
        text,
        # the forms without an offset, then those with one only where none parsed: a
        # Parquet file's timestamps (``2026-01-12 03:43:00.000000``) miss the fast form,
        # and would otherwise all go through the offset forms too
        lambda rest: _fix_nulls(
            rest.to_frame("t").select(_naive(pl.col("t"))).to_series(),
            rest,
            lambda left: left.to_frame("t").select(_zoned(pl.col("t"))).to_series(),
        ),
    )


def parse_float(text: pl.Series) -> pl.Series:
    """Text -> Float64 (a decimal comma is accepted; null where it does not parse).

    The comma is replaced only in texts that did not parse as they are: replacing it in
    every text took 0.9 s for 4 M results, the plain cast 0.1 s."""
    return _fix_nulls(
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

    return _fix_nulls(text.cast(pl.Int64, strict=False), text, whole)


_TRUE = ("true", "1", "yes", "y", "t")
_FALSE = ("false", "0", "no", "n", "f")


def parse_bool(column: str) -> pl.Expr:
    """Text -> Boolean (true/false, 1/0, yes/no); null where it is none of them."""
    text = pl.col(column).str.to_lowercase()
    return pl.when(text.is_in(_TRUE)).then(True).when(text.is_in(_FALSE)).then(False)


def _raw(col: str) -> str:
    return f"{col}__raw"


def _parses(col: str, what: str) -> pa.Check:
    """The typed value exists wherever the raw text does."""
    return pa.Check(
        lambda d: d.lazyframe.select(pl.col(col).is_not_null() | pl.col(_raw(col)).is_null()),
        name=f"{col}_parses",
        error=f"not {what}",
    )


def _row_check(expr: pl.Expr, name: str, error: str) -> pa.Check:
    """A row-wise check written as one boolean polars expression (null counts as pass)."""
    return pa.Check(lambda d: d.lazyframe.select(expr.fill_null(True)), name=name, error=error)


def _required(col: str) -> pa.Check:
    return _row_check(
        pl.col(_raw(col)).is_not_null(), f"{col}_required", "required value is missing"
    )


def specimen_schema() -> pa.DataFrameSchema:
    """pandera schema of a parsed specimen-card frame (typed columns + ``*__raw``)."""
    return pa.DataFrameSchema(
        {
            "specimen_id": pa.Column(pl.String, nullable=True, checks=[_required("specimen_id")]),
            "baby_id": pa.Column(pl.String, nullable=True, checks=[_required("baby_id")]),
            "birth_at": pa.Column(
                pl.Datetime("us"),
                nullable=True,
                checks=[_required("birth_at"), _parses("birth_at", "an ISO-8601 datetime")],
            ),
            "collected_at": pa.Column(
                pl.Datetime("us"),
                nullable=True,
                checks=[
                    _required("collected_at"),
                    _parses("collected_at", "an ISO-8601 datetime"),
                    _row_check(
                        pl.col("collected_at") >= pl.col("birth_at"),
                        "collected_after_birth",
                        "collection before birth",
                    ),
                ],
            ),
            "received_at": pa.Column(
                pl.Datetime("us"),
                nullable=True,
                checks=[
                    _required("received_at"),
                    _parses("received_at", "an ISO-8601 datetime"),
                    _row_check(
                        pl.col("received_at") >= pl.col("collected_at"),
                        "received_after_collection",
                        "received before collection",
                    ),
                ],
            ),
            "sex": pa.Column(
                pl.String,
                nullable=True,
                checks=[
                    _required("sex"),
                    _row_check(pl.col("sex").is_in(SEXES), "sex_code", "sex must be M, F or U"),
                ],
            ),
            "birth_weight_g": pa.Column(
                pl.Int64,
                nullable=True,
                checks=[
                    _parses("birth_weight_g", "a whole number of grams"),
                    _row_check(
                        pl.col("birth_weight_g").is_between(*BIRTH_WEIGHT_RANGE),
                        "birth_weight_possible",
                        "impossible birth weight (outside {}-{} g)".format(*BIRTH_WEIGHT_RANGE),
                    ),
                ],
            ),
            "gestational_age_weeks": pa.Column(
                pl.Int64,
                nullable=True,
                checks=[
                    _parses("gestational_age_weeks", "a whole number of weeks"),
                    _row_check(
                        pl.col("gestational_age_weeks").is_between(*GESTATION_RANGE),
                        "gestation_possible",
                        "impossible gestational age (outside {}-{} weeks)".format(*GESTATION_RANGE),
                    ),
                ],
            ),
            "transfusion": pa.Column(
                pl.Boolean, nullable=True, checks=[_parses("transfusion", "true or false")]
            ),
            "parenteral_nutrition": pa.Column(
                pl.Boolean, nullable=True, checks=[_parses("parenteral_nutrition", "true or false")]
            ),
            "consent_cf": pa.Column(
                pl.Boolean, nullable=True, checks=[_parses("consent_cf", "true or false")]
            ),
            "specimen_quality": pa.Column(
                pl.String,
                nullable=True,
                checks=[
                    _required("specimen_quality"),
                    _row_check(
                        pl.col("specimen_quality").is_in(SPECIMEN_QUALITIES),
                        "specimen_quality_code",
                        "unknown specimen_quality code (expected "
                        + ", ".join(SPECIMEN_QUALITIES)
                        + ")",
                    ),
                ],
            ),
            "submitter": pa.Column(pl.String, nullable=True),
            "last_transfusion_at": pa.Column(
                pl.Datetime("us"),
                nullable=True,
                checks=[
                    _parses("last_transfusion_at", "an ISO-8601 datetime"),
                    _row_check(
                        pl.col("last_transfusion_at") >= pl.col("birth_at"),
                        "transfusion_after_birth",
                        "last transfusion before birth",
                    ),
                ],
            ),
        },
        strict=False,
        name="specimen cards",
    )


def result_schema(no_amplification_texts: bool = True) -> pa.DataFrameSchema:
    """pandera schema of a parsed result frame (typed columns + ``*__raw``). Without
    ``no_amplification_texts`` (a block with none, the usual) their checks are left out."""
    parses = pl.col("value").is_not_null() | pl.col(_raw("value")).is_null()
    texts = [
        _row_check(
            ~pl.col("no_amplification_text")
            | pl.col("no_amplification_as").is_not_null()
            | pl.col("analyte").is_null(),
            "value_no_amplification",
            "no-amplification text for an analyte that is not a qPCR target "
            "(catalogue: no_amplification)",
        )
    ]
    if no_amplification_texts:
        parses = parses | pl.col("no_amplification_text")
    else:
        texts = []
    return pa.DataFrameSchema(
        {
            "specimen_id": pa.Column(pl.String, nullable=True, checks=[_required("specimen_id")]),
            "analyte": pa.Column(
                pl.String,
                nullable=True,
                checks=[
                    _required("analyte"),
                    _row_check(
                        pl.col("analyte").is_not_null() | pl.col(_raw("analyte")).is_null(),
                        "analyte_known",
                        "unknown analyte (not a catalogue code or alias)",
                    ),
                ],
            ),
            "value": pa.Column(
                pl.Float64,
                nullable=True,
                checks=[
                    _row_check(
                        parses,
                        "value_parses",
                        "not a number (nor a censored value such as <0.5 or >300, nor a "
                        "qPCR no-amplification text)",
                    ),
                    *texts,
                    _row_check(
                        pl.col("value").is_between(
                            pl.col("plausible_min"), pl.col("plausible_max")
                        ),
                        "value_plausible",
                        "value outside the analyte's plausible range (catalogue)",
                    ),
                ],
            ),
            "unit": pa.Column(
                pl.String,
                nullable=True,
                checks=[
                    _required("unit"),
                    _row_check(
                        pl.col("factor").is_not_null()
                        | pl.col("analyte").is_null()
                        | pl.col(_raw("unit")).is_null(),
                        "unit_known",
                        "unknown unit for this analyte (catalogue)",
                    ),
                ],
            ),
            "measured_at": pa.Column(
                pl.Datetime("us"),
                nullable=True,
                checks=[_required("measured_at"), _parses("measured_at", "an ISO-8601 datetime")],
            ),
            "instrument": pa.Column(pl.String, nullable=True, checks=[_required("instrument")]),
            "plate_id": pa.Column(pl.String, nullable=True, checks=[_required("plate_id")]),
            "well": pa.Column(pl.String, nullable=True),
            "replicate": pa.Column(
                pl.Int64,
                nullable=True,
                checks=[
                    _required("replicate"),
                    _parses("replicate", "a whole number"),
                    _row_check(
                        pl.col("replicate") >= 1,
                        "replicate_positive",
                        "replicate must be 1 or more",
                    ),
                ],
            ),
            "flag": pa.Column(pl.String, nullable=True),
        },
        strict=False,
        name="analyte results",
    )


def parse_specimens(raw: pl.DataFrame) -> pl.DataFrame:
    """Typed specimen columns beside their ``*__raw`` text."""
    frame = raw.rename({c: _raw(c) for c in raw.columns if c != "row_number"})
    r = _raw
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
    join (three joins of every row took 0.3 s more per 4 M results)."""
    pairs = frame.select(_raw("analyte"), _raw("unit")).unique()
    folded = {
        "alias_key": [None if a is None else alias_key(a) for a in pairs[_raw("analyte")]],
        "unit_key": [None if u is None else unit_key(u) for u in pairs[_raw("unit")]],
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
    frame = raw.rename({c: _raw(c) for c in raw.columns if c != "row_number"})
    r = _raw
    frame = frame.join(
        _catalogue_terms(frame, catalogue),
        on=[r("analyte"), r("unit")],
        how="left",
        nulls_equal=True,
        # the rows stay in file order (a sort of every block cost more than keeping it)
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
    frame = _censored_and_no_amplification(frame, catalogue)
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


def _censored_and_no_amplification(frame: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    """Add ``censored`` (``<`` at most, ``>`` at least), ``value_bound`` (a bound with no
    number, in the catalogue unit) and ``no_amplification_text``; a text meaning no
    amplification (value or flag) makes the flag ``undetermined``.

    Only texts that are not plain numbers are looked at: a file of numbers pays one check.
    """
    keys = list(catalogue.no_amplification_keys())
    flag = pl.col("flag").str.strip_chars().str.replace_all(r"\s+", " ")
    odd = frame.select(
        (pl.col("value_reported").is_null() & pl.col(_raw("value")).is_not_null()).any()
        | (flag.is_in(keys) & (flag != UNDETERMINED)).any()
    ).item()
    if not odd:  # the usual block: plain numbers and flags
        return frame.with_columns(
            censored=pl.lit(None, dtype=pl.String), no_amplification_text=pl.lit(False)
        )
    text = pl.col(_raw("value")).str.strip_chars().str.to_lowercase().str.replace_all(r"\s+", " ")
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


def specimen_warnings(cards: pl.DataFrame) -> pl.DataFrame:
    """Cards kept but flagged: missing essential information (weight, gestation, the CF
    consent), weight implausible for gestation. Columns: specimen_id, column_name, reason."""
    band_min = pl.lit(None, dtype=pl.Int64)
    band_max = pl.lit(None, dtype=pl.Int64)
    for weeks, lo, hi in WEIGHT_FOR_GESTATION:
        in_band = pl.col("gestational_age_weeks") >= weeks
        band_min = pl.when(in_band).then(pl.lit(lo)).otherwise(band_min)
        band_max = pl.when(in_band).then(pl.lit(hi)).otherwise(band_max)
    weight = pl.col("birth_weight_g")
    checks = [
        (
            pl.col("birth_weight_g").is_null(),
            "birth_weight_g",
            pl.lit("missing essential information: birth weight"),
        ),
        (
            pl.col("gestational_age_weeks").is_null(),
            "gestational_age_weeks",
            pl.lit("missing essential information: gestational age"),
        ),
        (
            # missing is not "no": CF is screened only with the parents' recorded consent
            pl.col("consent_cf").is_null(),
            "consent_cf",
            pl.lit("missing essential information: CF consent (not screened for CF)"),
        ),
        (
            (weight < band_min) | (weight > band_max),
            "birth_weight_g",
            pl.concat_str(
                [
                    pl.lit("birth weight "),
                    weight.cast(pl.String),
                    pl.lit(" g implausible at "),
                    pl.col("gestational_age_weeks").cast(pl.String),
                    pl.lit(" weeks (expected "),
                    band_min.cast(pl.String),
                    pl.lit("-"),
                    band_max.cast(pl.String),
                    pl.lit(" g): check the card"),
                ]
            ),
        ),
    ]
    frames = [
        cards.filter(hit.fill_null(False)).select(
            "specimen_id", column_name=pl.lit(col), reason=text
        )
        for hit, col, text in checks
    ]
    return pl.concat(frames).sort("specimen_id", "column_name")


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
