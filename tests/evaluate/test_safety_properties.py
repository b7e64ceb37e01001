"""Property tests of the clinical safety rules, each against an oracle written here from
the rule's words, not from the engine:

* no card with a valid punch at the referral tier is ever ``negative``;
* no card with qPCR results has a qPCR condition ``not_evaluated`` (always an action);
* a censored value is evaluated as its bound;
* a card that breaks a specimen rule itself never answers a repeat-card request.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbs.config import ScreeningConfig
from nbs.evaluate.core import evaluate, prepare_cards
from nbs.evaluate.specimen_rules import specimen_findings
from nbs.validate.core import validate_results
from tests.helpers import BIRTH, cards

pytestmark = pytest.mark.slow  # long property searches through the evaluator

RESULT_SCHEMA = {
    "specimen_id": pl.String,
    "analyte": pl.String,
    "replicate": pl.Int64,
    "value": pl.Float64,
    "flag": pl.String,
}


def _results(rows: list[tuple[str, float | None, int, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"specimen_id": "S0", "analyte": a, "value": v, "replicate": r, "flag": f}
         for a, v, r, f in rows],
        schema=RESULT_SCHEMA,
    )  # fmt: skip


def _call(ev_calls: pl.DataFrame, condition: str) -> dict[str, object]:
    return ev_calls.filter(pl.col("condition") == condition).row(0, named=True)


@pytest.fixture(scope="module")
def two_of_three(tmp_path_factory: pytest.TempPathFactory) -> ScreeningConfig:
    from cutoffs import DEFAULT_CUTOFF_DIR
    from nbs.config import load_config

    folder = tmp_path_factory.mktemp("cutoffs")
    for path in DEFAULT_CUTOFF_DIR.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        data["replicates"] = {"retests_needed": 2, "method": "k_of_n", "k": 2}
        (folder / path.name).write_text(yaml.safe_dump(data, allow_unicode=True))
    return load_config(folder)


# -- a punch at referral is never outvoted ---------------------------------------------

punch = st.tuples(
    st.floats(20, 1500, allow_nan=False), st.floats(10, 400, allow_nan=False)
)  # (Phe, Tyr) in µmol/L


def _pku_referral(phe: float, tyr: float) -> bool:
    """The PKU referral tier as the cutoff file words it: Phe >= 240 and Phe/Tyr >= 1.7."""
    return phe >= 240 and phe / tyr >= 1.7


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=punch, retests=st.lists(punch, min_size=0, max_size=3), k_of_n=st.booleans())
def test_no_card_with_a_punch_at_referral_is_negative(
    config: ScreeningConfig,
    two_of_three: ScreeningConfig,
    first: tuple[float, float],
    retests: list[tuple[float, float]],
    k_of_n: bool,
) -> None:
    rows = []
    for replicate, (phe, tyr) in enumerate([first, *retests], start=1):
        rows += [("PHE", phe, replicate, None), ("TYR", tyr, replicate, None)]
    ev = evaluate(cards({"specimen_id": "S0"}), _results(rows), two_of_three if k_of_n else config)
    call = _call(ev.calls, "PKU")
    if any(_pku_referral(p, t) for p, t in [first, *retests]):
        assert call["call"] != "negative", call["reason"]
    if first[0] >= 240:  # the failsafe: a Phe at the UK limit is never cleared
        assert call["call"] != "negative", call["reason"]


@settings(max_examples=40, deadline=None)
@given(
    tsh=st.lists(st.floats(0.5, 400, allow_nan=False), min_size=1, max_size=4),
    age=st.floats(36, 200, allow_nan=False),
)
def test_no_tsh_punch_at_referral_is_negative(
    config: ScreeningConfig, tsh: list[float], age: float
) -> None:
    rows = [("TSH", v, r, None) for r, v in enumerate(tsh, start=1)]
    ev = evaluate(cards({"specimen_id": "S0", "age_hours": age}), _results(rows), config)
    call = _call(ev.calls, "CH")
    referral = 40 if age < 48 else 20  # the cutoff file's referral limit by age band
    if any(v >= referral for v in tsh):
        assert call["call"] != "negative", call["reason"]


# -- qPCR: always an action ------------------------------------------------------------

QPCR_VALUE = st.one_of(
    st.tuples(st.floats(0, 400, allow_nan=False), st.none()),  # a copy number / a Ct
    st.just((None, "undetermined")),  # no amplification
    st.just((None, None)),  # an empty value, no flag
)


@settings(max_examples=60, deadline=None)
@given(
    punches=st.lists(
        st.dictionaries(st.sampled_from(["TREC", "RPP30", "SMN1"]), QPCR_VALUE, min_size=1),
        min_size=1,
        max_size=3,
    )
)
def test_a_card_with_qpcr_results_never_leaves_a_qpcr_condition_without_action(
    config: ScreeningConfig, punches: list[dict[str, tuple[float | None, str | None]]]
) -> None:
    rows = []
    for replicate, punch_rows in enumerate(punches, start=1):
        for marker, (value, flag) in punch_rows.items():
            # Ct markers within their plausible range
            if value is not None and marker != "TREC":
                value = min(value, 50.0)
            rows.append((marker, value, replicate, flag))
    ev = evaluate(cards({"specimen_id": "S0"}), _results(rows), config)
    first = {m for m in punches[0]}
    for condition, markers in (("SCID", {"TREC", "RPP30"}), ("SMA", {"SMN1", "RPP30"})):
        call = _call(ev.calls, condition)
        if first & markers:
            assert call["call"] != "not_evaluated", call["reason"]
            if call["call"] == "retest":
                assert not ev.worklist.filter(pl.col("condition") == condition).is_empty()


# -- censored values -------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    bound=st.floats(0.1, 1900, allow_nan=False).map(lambda x: round(x, 1)),
    sign=st.sampled_from([">", "<", ">=", "<=", "≥", "≤", "> ", "< "]),
)
def test_a_censored_value_is_evaluated_as_its_bound(
    config: ScreeningConfig, bound: float, sign: str
) -> None:
    def raw(value: str) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "row_number": [1],
                "specimen_id": ["S0"],
                "analyte": ["TSH"],
                "value": [value],
                "unit": ["mU/L"],
                "measured_at": ["2026-03-03T10:00:00"],
                "instrument": ["GSP-01"],
                "plate_id": ["P1"],
                "well": ["A1"],
                "replicate": ["1"],
                "flag": [None],
            },
            schema_overrides={"flag": pl.String},
        )

    censored = validate_results(raw(f"{sign}{bound}"), config.catalogue)
    plain = validate_results(raw(str(bound)), config.catalogue)
    assert censored.quarantine.is_empty()
    row = censored.good.row(0, named=True)
    assert row["value"] == pytest.approx(bound)
    assert row["censored"] == (">" if ">" in sign or "≥" in sign else "<")
    card = cards({"specimen_id": "S0"})
    got = _call(evaluate(card, censored.good, config).calls, "CH")
    want = _call(evaluate(card, plain.good, config).calls, "CH")
    assert (got["call"], got["level_first"]) == (want["call"], want["level_first"])
    if got["call"] != "negative":  # the reason shows the value as reported: ">300.0"
        assert f"TSH {row['censored']}" in str(got["reason"])


# -- a card that breaks a specimen rule answers nothing --------------------------------


@settings(max_examples=200, deadline=None)
@given(
    quality=st.sampled_from(["ok", "ok", "ok", "insufficient", "layered"]),
    age_hours=st.floats(6, 60 * 24, allow_nan=False),
    weeks=st.one_of(st.none(), st.integers(23, 42)),
    grams=st.one_of(st.none(), st.integers(500, 4500)),
    transfused_days_before=st.one_of(st.none(), st.floats(0, 20, allow_nan=False)),
    transit_days=st.floats(0.2, 30, allow_nan=False),
)
def test_a_card_that_breaks_a_specimen_rule_never_answers(
    config: ScreeningConfig,
    quality: str,
    age_hours: float,
    weeks: int | None,
    grams: int | None,
    transfused_days_before: float | None,
    transit_days: float,
) -> None:
    collected = BIRTH + dt.timedelta(hours=age_hours)
    last_transfusion = (
        None
        if transfused_days_before is None
        else max(BIRTH, collected - dt.timedelta(days=transfused_days_before))
    )
    card = cards(
        {
            "specimen_id": "S1",
            "is_first_card": False,
            "age_hours": age_hours,
            "specimen_quality": quality,
            "gestational_age_weeks": weeks,
            "birth_weight_g": grams,
            "transfusion": last_transfusion is not None,
        }
    ).with_columns(
        received_at=pl.lit(collected + dt.timedelta(days=transit_days)),
        last_transfusion_at=pl.lit(last_transfusion, dtype=pl.Datetime("us")),
    )
    rules = config.cutoff_sets[-1].specimen_rules
    found = specimen_findings(prepare_cards(card), rules).row(0, named=True)
    # the oracle, in the cutoff file's words
    since = None if last_transfusion is None else (collected - last_transfusion).total_seconds()
    postmenstrual = None if weeks is None else weeks + age_hours / 168
    preterm = (weeks is not None and weeks < 32) or (grams is not None and grams < 1500)
    breaks = (
        quality != "ok"
        or transit_days > 14
        or age_hours < 36
        or (since is not None and since / 86400 < 3)
        or (preterm and postmenstrual is not None and postmenstrual < 32)
        or (preterm and postmenstrual is None and age_hours / 24 < 28)
    )
    assert (found["answer_blocker"] is not None) == breaks, found
    # a later card answers nothing of the first-card-only rules: no new request from it
    if quality == "ok" and transit_days <= 14:
        assert found["card_problem"] is None


def test_a_blocked_repeat_card_leaves_the_request_open_end_to_end(
    tmp_path: Path, config: ScreeningConfig
) -> None:
    """Through the run and the database: a repeat card collected too soon after a
    transfusion does not close the transfusion request; a valid later card does."""
    from nbs import store
    from nbs.run.steps import run_local
    from tests.helpers import write_card as deliver

    db = tmp_path / "x.duckdb"
    first = BIRTH + dt.timedelta(hours=50)
    deliver(tmp_path / "d1", "S1", "B1", first, transfusion="true")  # no date given
    run_local(tmp_path / "d1", db, config)
    request = "SELECT status, outcome FROM recall_list WHERE specimen_id = 'S1'"
    assert store.query(db, request).row(0) == ("open", None)
    soon = first + dt.timedelta(days=5)
    deliver(
        tmp_path / "d2", "S2", "B1", soon, transfusion="true",
        last_transfusion_at=(soon - dt.timedelta(days=1)).isoformat(),
    )  # fmt: skip
    run_local(tmp_path / "d2", db, config)
    assert store.query(db, request).row(0) == ("open", None)
    later = first + dt.timedelta(days=9)
    deliver(
        tmp_path / "d3", "S3", "B1", later, transfusion="true",
        last_transfusion_at=(soon - dt.timedelta(days=1)).isoformat(),
    )  # fmt: skip
    run_local(tmp_path / "d3", db, config)
    assert store.query(db, request).row(0) == ("closed", "repeat_normal")
