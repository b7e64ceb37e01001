"""The pandera schemas of a parsed specimen-card frame and a parsed result frame.

Each column's checks name the reason a row is held; a check sees the typed column and its
text as it arrived (``*__raw``), so a value that is missing is told from one that does not
parse.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from nbs.validate.parsing import raw_column

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


def _parses(col: str, what: str) -> pa.Check:
    """The typed value exists wherever the raw text does."""
    return pa.Check(
        lambda d: d.lazyframe.select(pl.col(col).is_not_null() | pl.col(raw_column(col)).is_null()),
        name=f"{col}_parses",
        error=f"not {what}",
    )


def _row_check(expr: pl.Expr, name: str, error: str) -> pa.Check:
    """A row-wise check written as one boolean polars expression (null counts as pass)."""
    return pa.Check(lambda d: d.lazyframe.select(expr.fill_null(True)), name=name, error=error)


def _required(col: str) -> pa.Check:
    return _row_check(
        pl.col(raw_column(col)).is_not_null(), f"{col}_required", "required value is missing"
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


def _censored_beyond_plausible() -> pl.Expr:
    """A censored value whose bound lies past the plausible range on its own side (``>3000``
    above the top, ``<`` below the bottom): the instrument says the value is beyond it, a
    result to keep and act on, never an error to hold (``card_warnings`` flags it)."""
    sign = pl.col("censored")
    beyond = ((sign == ">") & (pl.col("value") > pl.col("plausible_max"))) | (
        (sign == "<") & (pl.col("value") < pl.col("plausible_min"))
    )
    # a plain number (no sign) is not censored: it must not turn a failed range into a pass
    return beyond.fill_null(False)


def result_schema(no_amplification_texts: bool = True) -> pa.DataFrameSchema:
    """pandera schema of a parsed result frame (typed columns + ``*__raw``). Without
    ``no_amplification_texts`` (a block with none, the usual) their checks are left out."""
    parses = pl.col("value").is_not_null() | pl.col(raw_column("value")).is_null()
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
                        pl.col("analyte").is_not_null() | pl.col(raw_column("analyte")).is_null(),
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
                        pl.col("value").is_between(pl.col("plausible_min"), pl.col("plausible_max"))
                        | _censored_beyond_plausible(),
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
                        | pl.col(raw_column("unit")).is_null(),
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
