"""Rule kinds and the rule engine at and around every limit (property tests)."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cutoffs.model import TierLimits
from nbs.rules.kinds import builtin_kinds
from nbs.rules.limits import FLOAT_NOISE, reaches, tier_level
from nbs.rules.registry import Kind, KindContext, KindRegistry
from nbs.rules.strata import AboveByAge, AgeBandedParams
from nbs.rules.threshold import Above, AboveParams, Below, BelowParams, RatioAbove, RatioParams

CTX = KindContext(
    units={"PHE": "µmol/L", "TSH": "mU/L", "TREC": "copies/µL"}, decimals={"PHE": 1, "TSH": 1}
)

limits_strategy = st.lists(
    st.floats(min_value=0.01, max_value=1e4, allow_nan=False), min_size=3, max_size=3
).map(sorted)
values = st.floats(min_value=0, max_value=2e4, allow_nan=False)


def at_or_past(value: float, limit: float, direction: str) -> bool:
    """The documented comparison: inclusive, up to float noise of the limit (a value within
    a few ulps of the limit counts as at it)."""
    slack = abs(limit) * FLOAT_NOISE
    return value >= limit - slack if direction == "high" else value <= limit + slack


def level_of(kind: type[Kind[Any]], params: Any, frame: pl.DataFrame) -> list[int | None]:
    exprs = kind().build(params, CTX)
    return frame.select(exprs.level.alias("lv"))["lv"].to_list()


@settings(max_examples=200, deadline=None)
@given(limits=limits_strategy, value=values)
def test_above_tier_is_the_highest_limit_reached(limits: list[float], value: float) -> None:
    retest, repeat, referral = limits
    params = AboveParams(
        marker="PHE", limits=TierLimits(retest=retest, repeat_specimen=repeat, referral=referral)
    )
    [level] = level_of(Above, params, pl.DataFrame({"PHE": [value]}))
    expected = sum(at_or_past(value, limit, "high") for limit in limits)
    assert level == expected
    # a value past a limit is always flagged
    if value >= retest:
        assert level is not None and level >= 1


@settings(max_examples=100, deadline=None)
@given(limits=limits_strategy)
def test_limits_are_inclusive_and_just_below_is_not_flagged(limits: list[float]) -> None:
    params = AboveParams(
        marker="PHE",
        limits=TierLimits(retest=limits[0], repeat_specimen=limits[1], referral=limits[2]),
    )
    frame = pl.DataFrame({"PHE": [limits[0], limits[1], limits[2]]})
    at = level_of(Above, params, frame)
    assert at[0] is not None and at[0] >= 1
    assert at[1] is not None and at[1] >= 2
    assert at[2] == 3
    below = level_of(Above, params, pl.DataFrame({"PHE": [limits[0] * (1 - 1e-9)]}))
    assert below == [0]


@settings(max_examples=100, deadline=None)
@given(limits=limits_strategy, value=values)
# an edge: one ulp above the referral limit counts as at it
@example(limits=[0.01, 1.0, 1.0], value=0.010000000000000002)
def test_below_mirrors_above_for_falling_markers(limits: list[float], value: float) -> None:
    referral, repeat, retest = limits  # falling marker: retest >= repeat >= referral
    params = BelowParams(
        marker="TREC", limits=TierLimits(retest=retest, repeat_specimen=repeat, referral=referral)
    )
    [level] = level_of(Below, params, pl.DataFrame({"TREC": [value]}))
    assert level == sum(at_or_past(value, limit, "low") for limit in limits)


def test_missing_value_gives_no_level_never_zero() -> None:
    params = AboveParams(
        marker="PHE", limits=TierLimits(retest=120, repeat_specimen=150, referral=240)
    )
    frame = pl.DataFrame({"PHE": [None, float("nan")]}, schema={"PHE": pl.Float64})
    assert level_of(Above, params, frame) == [None, None]


@settings(max_examples=150, deadline=None)
@given(num=st.floats(min_value=0.1, max_value=3000), den=st.floats(min_value=0.1, max_value=3000))
def test_ratio_flags_exactly_when_ratio_reaches_limit(num: float, den: float) -> None:
    params = RatioParams(
        numerator="PHE",
        denominator="TYR",
        limits=TierLimits(retest=1.5, repeat_specimen=1.7, referral=1.7),
    )
    [level] = level_of(RatioAbove, params, pl.DataFrame({"PHE": [num], "TYR": [den]}))
    ratio = num / den
    assert level == (3 if ratio >= 1.7 else 1 if ratio >= 1.5 else 0)


def test_zero_denominator_is_flagged_and_zero_over_zero_is_not_evaluated() -> None:
    params = RatioParams(numerator="PHE", denominator="TYR", limits=TierLimits(repeat_specimen=1.7))
    frame = pl.DataFrame({"PHE": [100.0, 0.0], "TYR": [0.0, 0.0]})
    assert level_of(RatioAbove, params, frame) == [3, None]


BANDS = AgeBandedParams.model_validate(
    {
        "marker": "TSH",
        "bands": [
            {
                "from_hours": 0,
                "to_hours": 72,
                "limits": {"retest": 15, "repeat_specimen": 20, "referral": 40},
            },
            {
                "from_hours": 72,
                "to_hours": 120,
                "limits": {"retest": 12, "repeat_specimen": 15, "referral": 20},
            },
            {"from_hours": 120, "limits": {"retest": 8, "repeat_specimen": 10, "referral": 20}},
        ],
    }
)


@pytest.mark.parametrize(
    ("age", "tsh", "level"),
    [
        (71.99, 19.99, 1),  # 0-72 band: retest 15 reached, repeat 20 not
        (72.0, 19.99, 2),  # the band boundary belongs to the next band [72, 120)
        (72.0, 15.0, 2),  # inclusive at the limit
        (71.0, 40.0, 3),
        (119.99, 14.99, 1),
        (120.0, 10.0, 2),
        (500.0, 7.99, 0),
        (0.0, 15.0, 1),
    ],
)
def test_age_bands_are_lower_inclusive(age: float, tsh: float, level: int) -> None:
    frame = pl.DataFrame({"TSH": [tsh], "age_hours": [age]})
    assert level_of(AboveByAge, BANDS, frame) == [level]


@settings(max_examples=150, deadline=None)
@given(age=st.floats(min_value=0, max_value=1000), tsh=values)
def test_age_banded_equals_plain_threshold_of_its_band(age: float, tsh: float) -> None:
    band = next(
        b for b in BANDS.bands if b.from_hours <= age and (b.to_hours is None or age < b.to_hours)
    )
    plain = AboveParams(marker="TSH", limits=band.limits)
    frame = pl.DataFrame({"TSH": [tsh], "age_hours": [age]})
    assert level_of(AboveByAge, BANDS, frame) == level_of(Above, plain, frame)


def test_detail_names_value_unit_limits_and_stratum() -> None:
    exprs = AboveByAge().build(BANDS, CTX)
    frame = pl.DataFrame(
        {"TSH": [17.0, 300.0], "TSH__flag": [None, None], "TSH__cens": [None, ">"]},
        schema_overrides={"TSH__flag": pl.String, "TSH__cens": pl.String},
    ).with_columns(age_hours=pl.lit(80.0))
    plain, censored = frame.select(exprs.detail).to_series().to_list()
    assert plain == (
        "TSH 17.0 mU/L (age 80 h, age band 72-120 h: retest ≥12, repeat ≥15, referral ≥20)"
    )
    # a value reported as above the measuring range shows as reported, compared as its bound
    assert censored.startswith("TSH >300.0 mU/L (age 80 h")


@pytest.mark.parametrize(
    "bad",
    [
        {"marker": "PHE", "limits": {"retest": 200, "repeat_specimen": 150}},
        {"marker": "PHE", "limits": {}},
        {"marker": "PHE"},
        {"marker": "PHE", "limits": {"referral": 1}, "typo": 3},
    ],
)
def test_bad_threshold_parameters_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AboveParams.model_validate(bad)


def test_age_bands_must_be_contiguous_and_open_ended() -> None:
    gap = {
        "marker": "TSH",
        "bands": [
            {"from_hours": 0, "to_hours": 48, "limits": {"referral": 20}},
            {"from_hours": 72, "limits": {"referral": 20}},
        ],
    }
    closed = {
        "marker": "TSH",
        "bands": [{"from_hours": 0, "to_hours": 48, "limits": {"referral": 20}}],
    }
    for bad in (gap, closed):
        with pytest.raises(ValueError):
            AgeBandedParams.model_validate(bad)


def test_registry_rejects_duplicate_kind_names() -> None:
    registry = KindRegistry()
    registry.register_all(builtin_kinds())
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Above)
    with pytest.raises(KeyError, match="unknown rule kind"):
        registry.get("nonesuch")


def test_every_builtin_kind_is_documented() -> None:
    for kind in builtin_kinds():
        assert len(kind.doc) > 40, kind.name


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 999_999), min_size=3, max_size=3, unique=True),
    st.sampled_from(["high", "low"]),
)
def test_limit_text_round_trips_for_the_review_gauge(cents: list[int], direction: str) -> None:
    from nbs.rules.limits import limits_text, parse_limits_text
    from nbs.web.charts import value_gauge

    values = sorted(c / 100 for c in cents)
    if direction == "low":
        values.reverse()
    limits = TierLimits(retest=values[0], repeat_specimen=values[1], referral=values[2])
    text = limits_text(limits, direction)  # type: ignore[arg-type]
    assert parse_limits_text(text) == (direction, *values)
    # the gauge draws the value inside the drawing, for any value past the referral limit
    svg = value_gauge(values[2] * 3, text, "X")
    assert svg is not None and 'data-value="' in svg
    assert value_gauge(None, text, "X") is None
    assert value_gauge(1.0, "absent at Ct ≥36 or no amplification", "SMN1") is None


def test_a_limit_is_reached_up_to_float_noise_only() -> None:
    """Phe 557.77 / Tyr 328.10 is exactly 1.7: reached although it computes a hair under;
    a value 1e-12 short of a limit is not; falling markers mirror it."""
    import math

    rising = pl.Series([557.77 / 328.10, 1.7 * (1 - 1e-12)])
    falling = pl.Series([math.nextafter(20.0, 21.0), 20.0 * (1 + 1e-12)])
    assert rising.to_frame("v").select(reaches(pl.col("v"), 1.7, "high"))["v"].to_list() == [
        True,
        False,
    ]
    assert falling.to_frame("v").select(reaches(pl.col("v"), 20.0, "low"))["v"].to_list() == [
        True,
        False,
    ]


def test_an_infinite_limit_compares_exactly_and_a_missing_limit_gives_no_tier() -> None:
    """No slack around an infinite limit (inf - inf is NaN, which polars orders above every
    number: TREC 500 came out a referral); a per-card limit that is null gives no tier
    (not evaluated), never tier 0 (negative)."""
    frame = pl.DataFrame(
        {"v": [500.0, 25.0, 10.0, float("inf"), None], "lim": [1.0, None, 1.0, 1.0, 1.0]}
    )
    got = frame.select(
        falling=tier_level(pl.col("v"), (30.0, 20.0, float("-inf")), "low"),
        rising=tier_level(pl.col("v"), (15.0, 20.0, float("inf")), "high"),
        per_card=tier_level(pl.col("v"), (pl.col("lim"), pl.col("lim"), pl.col("lim")), "high"),
    )
    assert got["falling"].to_list() == [0, 1, 2, 0, None]
    assert got["rising"].to_list() == [2, 2, 0, 3, None]
    assert got["per_card"].to_list() == [3, None, 3, 3, None]
