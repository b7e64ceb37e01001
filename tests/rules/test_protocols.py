"""Cystic fibrosis protocols as configurations: the Dutch (IRT x PAP, the default) and the
German (IRT -> PAP -> DNA, percentiles of a rolling window, scipy)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cutoffs import DEFAULT_CUTOFF_DIR
from nbs.config import ScreeningConfig, load_config
from nbs.evaluate.core import evaluate
from nbs.rules.percentile import PercentileParams, percentile_limits
from tests.helpers import BIRTH, cards, results

PROTOCOLS = DEFAULT_CUTOFF_DIR / "protocols"


def test_installed_sets_carry_the_dutch_block(config: ScreeningConfig) -> None:
    dutch = yaml.safe_load((PROTOCOLS / "cf-netherlands.yaml").read_text())["CF"]
    for s in config.cutoff_sets:
        assert (
            s.conditions["CF"].model_dump()
            == type(s.conditions["CF"]).model_validate(dutch).model_dump()
        )


@pytest.fixture(scope="module")
def german(tmp_path_factory: pytest.TempPathFactory) -> ScreeningConfig:
    folder = tmp_path_factory.mktemp("cutoffs")
    shutil.copy2(DEFAULT_CUTOFF_DIR / "lns-2026.1.yaml", folder)
    data = yaml.safe_load((folder / "lns-2026.1.yaml").read_text())
    data["conditions"]["CF"] = yaml.safe_load((PROTOCOLS / "cf-germany.yaml").read_text())["CF"]
    (folder / "lns-2026.1.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    return load_config(folder)


def _history(n: int, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    irt = 22 * rng.lognormal(0, 0.4, n)
    return pl.DataFrame(
        {
            "specimen_id": [f"H{i}" for i in range(n)],
            "analyte": ["IRT"] * n,
            "value": irt,
            "collected_at": [BIRTH - dt.timedelta(days=int(d)) for d in rng.integers(1, 80, n)],
        }
    )


def _cf(ev, specimen: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return ev.calls.filter((pl.col("specimen_id") == specimen) & (pl.col("condition") == "CF")).row(
        0, named=True
    )


def test_german_limits_are_percentiles_of_the_window(german: ScreeningConfig) -> None:
    history = _history(5000)
    p99, p999 = np.percentile(history["value"], [99.0, 99.9])
    irt = {"S0": p99 * 0.95, "S1": (p99 + p999) / 2, "S2": p999 * 1.05, "S3": (p99 + p999) / 2}
    rows = [(s, "IRT", v, r) for s, v in irt.items() for r in (1, 2, 3)]
    rows.append(("S3", "PAP", 5.0, 1))
    ev = evaluate(cards(*({"specimen_id": s} for s in irt)), results(*rows), german, history)
    assert _cf(ev, "S0")["call"] == "negative"
    between = _cf(ev, "S1")
    assert between["call"] == "retest"  # asks for PAP, never negative
    assert "second tier PAP needed" in str(between["reason"])
    assert "(p99.9) of 90-day window, n=5004" in str(between["reason"])
    assert _cf(ev, "S2")["call"] == "referral"  # >= 99.9th percentile: DNA directly
    assert _cf(ev, "S3")["call"] == "referral"  # PAP 5.0 >= the fixed 1.6 fallback
    assert "fixed fallback" in str(_cf(ev, "S3")["reason"])


def test_too_few_values_use_the_fixed_fallback(german: ScreeningConfig) -> None:
    ev = evaluate(
        cards({"specimen_id": "S0"}),
        results(*[("S0", "IRT", 70.0, r) for r in (1, 2, 3)]),
        german,
        _history(50),
    )
    call = _cf(ev, "S0")
    assert call["call"] == "retest"  # 70 >= fallback 60: PAP needed
    assert "fixed fallback, 51 values in 90-day window < 1000" in str(call["reason"])


def test_dutch_protocol_needs_pap_between_60_and_124(config: ScreeningConfig) -> None:
    rows = [
        (s, "IRT", v, r) for s, v in (("S0", 59.9), ("S1", 80.0), ("S2", 124.0)) for r in (1, 2, 3)
    ]
    ev = evaluate(
        cards({"specimen_id": "S0"}, {"specimen_id": "S1"}, {"specimen_id": "S2"}),
        results(*rows),
        config,
    )
    assert [_cf(ev, s)["call"] for s in ("S0", "S1", "S2")] == ["negative", "retest", "referral"]


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(min_value=0, max_value=500), min_size=20, max_size=300),
    p=st.floats(min_value=50, max_value=99.9),
)
def test_percentile_limit_is_the_sample_percentile(values: list[float], p: float) -> None:
    params = PercentileParams(
        marker="IRT", percentiles={"referral": p}, min_values=20, fallback={"referral": 60}
    )
    limits, text = percentile_limits(params, np.array(values))
    assert limits[2] == pytest.approx(float(np.percentile(values, p)), rel=1e-9, abs=1e-9)
    assert f"n={len(values)}" in text


@pytest.mark.slow  # over two seconds: the full tier
def test_a_run_uses_stored_first_punches_as_the_window(
    german: ScreeningConfig, tmp_path: Path
) -> None:
    from nbs import store
    from nbs.run.steps import run_local

    assert german.percentile_markers() == {"IRT": 90, "PAP": 365}
    db = tmp_path / "nbs.duckdb"
    inbox = tmp_path / "inbox"
    from data_samples.generator import generate_cohort, write_inbox

    write_inbox(
        generate_cohort(1200, seed=5, start=dt.date(2026, 2, 1), days=20), inbox, name="history"
    )
    run_local(inbox, db, german)
    today = generate_cohort(5, seed=6, start=dt.date(2026, 2, 25), days=1, first_number=5001)
    write_inbox(today, inbox, name="today")
    run_local(inbox, db, german)
    reasons = store.query(
        db,
        "SELECT reason FROM screening_calls WHERE condition = 'CF' "
        "AND call <> 'not_evaluated' AND specimen_id IN "
        "(SELECT specimen_id FROM specimens WHERE run_id = "
        "(SELECT run_id FROM runs ORDER BY run_seq DESC LIMIT 1))",
    )["reason"]
    assert reasons.len() > 0
    assert all("of 90-day window, n=" in r for r in reasons)
