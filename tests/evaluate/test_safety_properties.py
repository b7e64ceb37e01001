"""Property tests of the clinical safety rules, each against an oracle written here from
the rule's words, not from the engine:

* no card with a valid punch at the referral tier is ever ``negative`` (PKU, CH, MCAD, CAH
  and CF with their failsafes, SMA and SCID by an absent target);
* no card with qPCR results has a qPCR condition ``not_evaluated`` (always an action);
* a censored value, in every accepted spelling, is evaluated as its bound;
* a card that breaks a specimen rule itself never answers a repeat-card request.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

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


# -- every first-tier condition: a punch at referral is never negative ------------------

#: a punch's value of a marker: (number, flag); (None, "undetermined") is no amplification
Value = tuple[float | None, str | None]
NO_AMP: Value = (None, "undetermined")


def _num(lo: float, hi: float) -> st.SearchStrategy[Value]:
    return st.tuples(st.floats(lo, hi, allow_nan=False).map(lambda x: round(x, 3)), st.none())


def _ct(lo: float, hi: float) -> st.SearchStrategy[Value]:
    return st.one_of(_num(lo, hi), st.just(NO_AMP))


def _limits(config: ScreeningConfig, code: str) -> dict[str, Any]:
    """The referral limits of a condition as LNS-2026.1 words them (its criteria as data,
    not the engine), for a term baby of 39 weeks at 52 h."""
    cond = next(s for s in config.cutoff_sets if s.version == "LNS-2026.1").conditions[code]
    crit = cond.criteria
    if code == "MCAD":
        ratios = crit[1]["criteria"]
        return {
            "C8": crit[0]["limits"]["referral"],
            "C8/C10": ratios[0]["limits"]["referral"],
            "C8/C2": ratios[1]["limits"]["referral"],
            "failsafe": cond.failsafe[0].criteria[0]["limits"]["referral"],
        }
    if code == "CAH":
        term = next(
            s for s in crit[0]["strata"] if s.get("postmenstrual_weeks") == {"from": 32, "to": 42}
        )
        return {"OHP17": term["limits"]["referral"]}
    if code == "CF":
        return {"IRT": crit[0]["limits"]["referral"]}
    reference = next(c["max_ct"] for c in crit if c["kind"] == "reference_gene")
    if code == "SMA":
        return {"SMN1": crit[0]["absent_from_ct"], "RPP30": reference}
    return {"TREC": crit[0]["limits"]["referral"], "RPP30": reference}


def _at_referral(code: str, limits: dict[str, Any], punch: dict[str, Value]) -> bool:
    """Whether one punch is at the referral level, in the cutoff file's words (a failsafe
    or a first tier at referral whatever the second tier; an absent target with a valid
    reference gene)."""
    v = {m: value for m, (value, _) in punch.items()}
    if code == "MCAD":
        c8, c10, c2 = v["C8"], v["C10"], v["C2"]
        assert c8 is not None and c10 is not None and c2 is not None
        ratio = c8 / c10 >= limits["C8/C10"] or c8 / c2 >= limits["C8/C2"]
        return c8 >= limits["failsafe"] or (c8 >= limits["C8"] and ratio)
    if code in ("CAH", "CF"):
        marker = "OHP17" if code == "CAH" else "IRT"
        value = v[marker]
        return value is not None and value >= limits[marker]
    rpp30 = punch.get("RPP30")
    valid = rpp30 is not None and rpp30[0] is not None and rpp30[0] <= limits["RPP30"]
    target = "SMN1" if code == "SMA" else "TREC"
    value, flag = punch.get(target, (None, None))
    if flag == "undetermined":
        return valid
    if value is None:
        return False
    return valid and (value >= limits[target] if code == "SMA" else value <= limits[target])


#: per condition: one punch of its markers (second-tier results on the first punch only)
PUNCHES: dict[str, st.SearchStrategy[dict[str, Value]]] = {
    "MCAD": st.fixed_dictionaries({"C8": _num(0.01, 2.5), "C10": _num(0.02, 1), "C2": _num(2, 60)}),
    "CAH": st.fixed_dictionaries({"OHP17": _num(1, 250)}),
    "CF": st.fixed_dictionaries({"IRT": _num(5, 300)}),
    "SMA": st.fixed_dictionaries({"SMN1": _ct(18, 45), "RPP30": _ct(18, 38)}),
    "SCID": st.fixed_dictionaries({"TREC": _ct(0, 150), "RPP30": _ct(18, 38)}),
}
SECOND_TIER = {"CAH": ("CAH_RATIO", _num(0.1, 8)), "CF": ("PAP", _num(0.1, 8))}


def _cards_of(code: str) -> st.SearchStrategy[list[tuple[list[dict[str, Value]], Value | None]]]:
    """Cards of a condition: one to three punches each, and a second-tier result or none."""
    tier2 = SECOND_TIER.get(code)
    second = st.one_of(st.none(), tier2[1]) if tier2 else st.none()
    card = st.tuples(st.lists(PUNCHES[code], min_size=1, max_size=3), second)
    return st.lists(card, min_size=1, max_size=25)


@pytest.mark.parametrize("code", list(PUNCHES))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_first_tier_condition_with_a_punch_at_referral_is_negative(
    config: ScreeningConfig, code: str, data: st.DataObject
) -> None:
    """MCAD (C8 failsafe), CAH and CF (first tier at referral whatever the second tier),
    SMA and SCID (an absent target with a valid reference gene): many cards a search."""
    drawn = data.draw(_cards_of(code))
    limits = _limits(config, code)
    rows = []
    for i, (punches, second) in enumerate(drawn):
        for replicate, punch in enumerate(punches, start=1):
            rows += [(f"S{i}", m, replicate, v, f) for m, (v, f) in punch.items()]
        if second is not None:
            rows.append((f"S{i}", SECOND_TIER[code][0], 1, second[0], None))
    frame = pl.DataFrame(
        [dict(zip(RESULT_SCHEMA, r, strict=True)) for r in rows], schema=RESULT_SCHEMA
    )
    ev = evaluate(cards(*({"specimen_id": f"S{i}"} for i in range(len(drawn)))), frame, config)
    got = ev.calls.filter(pl.col("condition") == code)
    calls = dict(zip(got["specimen_id"], zip(got["call"], got["reason"], strict=True), strict=True))
    for i, (punches, _) in enumerate(drawn):
        if any(_at_referral(code, limits, p) for p in punches):
            call, reason = calls[f"S{i}"]
            assert call != "negative", reason


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


#: data_samples/README.md's spellings with a number: (text before the number, direction)
NUMBERED = [
    (">", ">"), ("<", "<"), (">=", ">"), ("<=", "<"), ("≥", ">"), ("≤", "<"), ("> ", ">"),
    ("< ", "<"), ("OOR > ", ">"), ("OOR>", ">"), ("oor < ", "<"), (">= ", ">"),
]  # fmt: skip
#: and without one (the bound is the analyte's measuring range, else its plausible range)
WORDED = [
    ("OOR >", ">"), ("> ULOQ", ">"), ("Above range", ">"), ("above the measuring range", ">"),
    ("Over Range", ">"), ("out of range high", ">"), ("above linearity", ">"), ("> max", ">"),
    ("OOR <", "<"), ("< LLOQ", "<"), ("< LOD", "<"), ("below range", "<"),
    ("Below the measuring range", "<"), ("under range", "<"), ("< min", "<"),
]  # fmt: skip
#: (value text, direction, bound in mU/L, worded): a bound may lie past the plausible range
#: (TSH 0-2000 mU/L); a decimal comma is accepted
CENSORED = st.one_of(
    st.tuples(
        st.sampled_from(NUMBERED),
        st.floats(-5, 5000, allow_nan=False).map(lambda x: round(x, 1)),
        st.booleans(),
    )
    .filter(lambda t: t[1] > 0 if t[0][1] == ">" else t[1] < 1900)
    .map(
        lambda t: (
            t[0][0] + (str(t[1]).replace(".", ",") if t[2] else str(t[1])),
            t[0][1],
            t[1],
            False,
        )
    ),
    st.sampled_from(WORDED).map(lambda w: (w[0], w[1], None, True)),
)


def _raw_results(cells: list[tuple[str, int]]) -> pl.DataFrame:
    """TSH result rows of cards S0, S1... as a file has them: (value text, punches)."""
    rows = [
        {"row_number": len(cells) * r + i, "specimen_id": f"S{i}", "analyte": "TSH",
         "value": text, "unit": "mU/L", "measured_at": "2026-03-03T10:00:00",
         "instrument": "GSP-01", "plate_id": f"P{r}", "well": "A1", "replicate": str(r),
         "flag": None}
        for i, (text, punches) in enumerate(cells)
        for r in range(1, punches + 1)
    ]  # fmt: skip
    return pl.DataFrame(rows, schema_overrides={"flag": pl.String})


@settings(max_examples=5, deadline=None)
@given(drawn=st.lists(st.tuples(CENSORED, st.sampled_from([1, 3])), min_size=1, max_size=20))
def test_a_censored_value_is_evaluated_as_its_bound(
    config: ScreeningConfig, drawn: list[tuple[tuple[str, str, float | None, bool], int]]
) -> None:
    """Every accepted spelling, a bound past the plausible range included, is kept and
    called as the plain number of its bound would be (one punch, or three alike)."""
    low, high = config.catalogue.get("TSH").censored_bounds()
    floor = config.catalogue.get("TSH").plausible.min
    bounds = [b if b is not None else (high if d == ">" else low) for (_, d, b, _), _ in drawn]
    checked = validate_results(_raw_results([(c[0], n) for c, n in drawn]), config.catalogue)
    assert checked.quarantine.is_empty(), checked.quarantine
    stored = {(r["specimen_id"], r["replicate"]): r for r in checked.good.iter_rows(named=True)}
    plain = []
    for i, (((_, direction, _, _), punches), bound) in enumerate(zip(drawn, bounds, strict=True)):
        for r in range(1, punches + 1):
            row = stored[(f"S{i}", r)]
            assert (row["value"], row["censored"]) == (pytest.approx(bound), direction)
            # at most a bound below the plausible minimum is at most that minimum
            plain.append((f"S{i}", "TSH", r, max(bound, floor), None))
    plain_frame = pl.DataFrame(
        [dict(zip(RESULT_SCHEMA, p, strict=True)) for p in plain], schema=RESULT_SCHEMA
    )
    card = cards(*({"specimen_id": f"S{i}"} for i in range(len(drawn))))
    got = evaluate(card, checked.good, config).calls.filter(pl.col("condition") == "CH")
    want = evaluate(card, plain_frame, config).calls.filter(pl.col("condition") == "CH")
    key = ["specimen_id", "call", "level_first", "level_final"]
    assert got.select(key).sort("specimen_id").rows() == want.select(key).sort("specimen_id").rows()
    reasons = dict(zip(got["specimen_id"], got["reason"], strict=True))
    for i, ((_, direction, _, worded), _) in enumerate(drawn):
        # the reason shows the value as reported: ">300.0", "above range (as >2000.0)"
        side = "above" if direction == ">" else "below"
        shown = f"{side} range (as {direction}" if worded else f"TSH {direction}"
        assert shown in reasons[f"S{i}"], reasons[f"S{i}"]


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
