"""Cutoff sets: the golden snapshot of the resolved table, versions in force, the checks
of a proposed set, and property tests at every stratum boundary."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cutoffs import DEFAULT_CUTOFF_DIR, set_in_force
from nbs.cli import app
from nbs.config import ScreeningConfig
from nbs.evaluate.core import evaluate
from nbs.rules.cutoff_table import cutoff_table
from nbs.rules.registry import KindContext
from nbs.rules.strata import AboveByStratum, StratifiedParams
from nbs.rules.threshold import Above, AboveParams
from tests.helpers import cards, results

GOLDEN = Path(__file__).parents[1] / "golden" / "cutoff_table.csv"


def test_resolved_cutoff_table_matches_the_golden_snapshot(config: ScreeningConfig) -> None:
    """Any change of a limit, stratum or source shows here as a reviewable diff. After a
    deliberate change: UPDATE_GOLDEN=1 ./dev test tests/rules/test_cutoffs.py, and commit."""
    current = cutoff_table(config.cutoff_sets, config.registry).write_csv()
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(current)
    assert current == GOLDEN.read_text(), "cutoff table changed: review, then UPDATE_GOLDEN=1"


def test_cards_are_judged_by_the_set_in_force_at_collection(config: ScreeningConfig) -> None:
    sets = config.cutoff_sets
    assert set_in_force(sets, dt.date(2025, 12, 31)).version == "LNS-2024.1"  # type: ignore[union-attr]
    assert set_in_force(sets, dt.date(2026, 1, 1)).version == "LNS-2026.1"  # type: ignore[union-attr]
    assert set_in_force(sets, dt.date(2023, 12, 31)) is None
    assert "SCID" not in sets[0].conditions and "SCID" in sets[1].conditions


def test_show_prints_every_condition_and_check_accepts_the_installed_set() -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["cutoffs", "show", "--version", "LNS-2026.1", "--format", "csv"])
    assert shown.exit_code == 0
    table = pl.read_csv(shown.stdout.encode())
    assert set(table["condition"]) == {"PKU", "CH", "CAH", "MCAD", "CF", "SMA", "SCID"}
    assert "Schulze" in table.filter(pl.col("condition") == "PKU")["source"][0]
    checked = runner.invoke(app, ["cutoffs", "check", str(DEFAULT_CUTOFF_DIR / "lns-2026.1.yaml")])
    assert checked.exit_code == 0 and "OK: LNS-2026.1" in checked.stdout


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["conditions"]["PKU"]["criteria"][0]["limits"].update(retest=500),
            "retest <= repeat_specimen <= referral",
        ),
        (
            lambda d: d["conditions"]["CH"]["criteria"][0].update(kind="above_by_moon"),
            "unknown rule kind 'above_by_moon'",
        ),
        (
            lambda d: d["conditions"]["PKU"].update(markers=["PHE", "TYROSINE"]),
            "not in the analyte catalogue",
        ),
        (
            lambda d: d["conditions"].update(XYZ=d["conditions"]["PKU"]),
            "no installed plug-in provides this condition",
        ),
        (
            lambda d: d["conditions"]["PKU"]["criteria"][1].update(denominator="C2"),
            "not listed in its markers",
        ),
        (lambda d: d.pop("effective_from"), "effective_from: Field required"),
        (  # a limit that is no number: typed by mistake, never a setting
            lambda d: d["conditions"]["SCID"]["criteria"][0]["limits"].update(
                referral=float("-inf")
            ),
            "Input should be a finite number",
        ),
        (
            lambda d: d["conditions"]["PKU"]["criteria"][0]["limits"].update(referral=float("nan")),
            "Input should be a finite number",
        ),
    ],
)
def test_check_names_the_problem_of_a_proposed_set(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load((DEFAULT_CUTOFF_DIR / "lns-2026.1.yaml").read_text())
    edit(data)
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(yaml.safe_dump(data, allow_unicode=True))
    result = CliRunner().invoke(app, ["cutoffs", "check", str(proposed)])
    assert result.exit_code == 1
    assert message in result.output.replace("\n", " ")


def test_a_new_version_applies_from_its_date_and_old_calls_keep_theirs(
    tmp_path: Path,
) -> None:
    from nbs.config import load_config

    folder = tmp_path / "cutoffs"
    shutil.copytree(DEFAULT_CUTOFF_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__*"))
    data = yaml.safe_load((folder / "lns-2026.1.yaml").read_text())
    data.update(version="LNS-2026.2", effective_from=dt.date(2026, 3, 2))
    data["conditions"]["PKU"]["criteria"][0]["limits"] = {
        "retest": 100,
        "repeat_specimen": 120,
        "referral": 240,
    }
    (folder / "lns-2026.2.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    config = load_config(folder)
    birth = dt.datetime(2026, 3, 1, 8)
    frame = cards(
        {"specimen_id": "S0", "age_hours": 20},  # collected 2026-03-02 04:00: new set
        {"specimen_id": "S1", "birth_at": birth - dt.timedelta(days=2), "age_hours": 20},
    ).with_columns(collected_at=pl.col("birth_at") + pl.duration(hours=20))
    rows = [(s, a, v, 1) for s in ("S0", "S1") for a, v in (("PHE", 130.0), ("TYR", 50.0))]
    ev = evaluate(frame, results(*rows), config)
    pku = ev.calls.filter(pl.col("condition") == "PKU").sort("specimen_id")
    assert pku["rule_version"].to_list() == ["LNS-2026.2", "LNS-2026.1"]
    assert pku["call"].to_list() == ["retest", "retest"]  # 130 >= both retest limits
    assert "repeat ≥120" in pku["reason"][0] and "repeat ≥150" in pku["reason"][1]


CTX = KindContext(units={"OHP17": "nmol/L"}, decimals={"OHP17": 1})


def _strata(config: ScreeningConfig) -> StratifiedParams:
    raw = config.cutoff_sets[-1].conditions["CAH"].criteria[0]
    return StratifiedParams.model_validate({k: v for k, v in raw.items() if k != "kind"})


@settings(max_examples=300, deadline=None)
@given(
    pma=st.one_of(st.none(), st.floats(22, 46, allow_nan=False)),
    weight=st.one_of(st.none(), st.integers(400, 5000)),
    value=st.floats(min_value=0, max_value=500, allow_nan=False),
)
def test_stratified_limits_equal_the_first_matching_stratum(
    config: ScreeningConfig, pma: float | None, weight: int | None, value: float
) -> None:
    params = _strata(config)

    def inside(bounds, x) -> bool:  # type: ignore[no-untyped-def]
        if bounds is None:
            return True
        if x is None:
            return False
        return (bounds.from_ is None or x >= bounds.from_) and (bounds.to is None or x < bounds.to)

    chosen = next(
        s
        for s in params.strata
        if inside(s.postmenstrual_weeks, pma) and inside(s.birth_weight_g, weight)
    )
    frame = pl.DataFrame(
        {"OHP17": [value], "postmenstrual_weeks": [pma], "birth_weight_g": [weight]},
        schema={"OHP17": pl.Float64, "postmenstrual_weeks": pl.Float64, "birth_weight_g": pl.Int64},
    )
    got = frame.select(AboveByStratum().build(params, CTX).level).item()
    plain = AboveParams(marker="OHP17", limits=chosen.limits)
    assert got == frame.select(Above().build(plain, CTX).level).item()


@pytest.mark.parametrize(
    ("pma", "weight", "stratum"),
    [
        (31.9, 3000, "postmenstrual age <32 weeks"),
        (32.0, 3000, "postmenstrual age 32-42 weeks"),  # the lower bound belongs to it
        (41.9, 1200, "postmenstrual age 32-42 weeks"),  # a known maturity wins over weight
        (42.0, 3000, "postmenstrual age ≥42 weeks"),
        (None, 1499, "birth weight <1500 g"),  # gestation missing: the weight decides
        (None, 1500, "all other babies"),
        (None, None, "all other babies"),  # missing covariates: the most sensitive limits
    ],
)
def test_stratum_boundaries(
    config: ScreeningConfig, pma: float | None, weight: int | None, stratum: str
) -> None:
    frame = pl.DataFrame(
        {"OHP17": [1.0], "postmenstrual_weeks": [pma], "birth_weight_g": [weight]},
        schema={"OHP17": pl.Float64, "postmenstrual_weeks": pl.Float64, "birth_weight_g": pl.Int64},
    )
    assert frame.select(AboveByStratum().build(_strata(config), CTX).stratum).item() == stratum


def test_check_names_every_problem_without_library_boilerplate(tmp_path: Path) -> None:
    data = yaml.safe_load((DEFAULT_CUTOFF_DIR / "lns-2026.1.yaml").read_text())
    data["conditions"]["PKU"]["criteria"][0]["limits"].update(retest=500)
    data["conditions"]["CH"]["criteria"][0].update(kind="above_by_moon")
    data["conditions"]["SMA"].update(markers=["SMN1", "RPP31"])
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(yaml.safe_dump(data, allow_unicode=True))
    result = CliRunner().invoke(app, ["cutoffs", "check", str(proposed)])
    assert result.exit_code == 1
    out = result.output
    assert "condition PKU, criterion 1" in out and "retest <= repeat_specimen" in out
    assert "condition CH, criterion 1" in out and "above_by_moon" in out
    assert "condition SMA: markers not in the analyte catalogue: ['RPP31']" in out
    assert "4 problem(s)" in out  # the criterion reading RPP30 is named too
    for noise in ("errors.pydantic.dev", "Value error,", "input_value", "validation error for"):
        assert noise not in out
    # the rule kind's message as written, without the quotes of a KeyError
    assert "criterion 1: unknown rule kind 'above_by_moon' (known: above," in out
    # the top of the file broken too: its two problems AND the five of the conditions
    del data["effective_from"]
    data["version"] = None
    data["conditions"]["CAH"]["criteria"] = []
    proposed.write_text(yaml.safe_dump(data, allow_unicode=True))
    out = CliRunner().invoke(app, ["cutoffs", "check", str(proposed)]).output
    lines = out.strip().splitlines()
    assert lines[-1] == "7 problem(s): the cutoff set was not accepted", out
    assert f"error: {proposed}: effective_from: Field required" in lines
    assert any(line.startswith(f"error: {proposed}: version: ") for line in lines)
    assert any("conditions.CAH.criteria" in line for line in lines)
    assert "condition PKU, criterion 1" in out and "above_by_moon" in out and "RPP31" in out
    # a YAML error names the file once (the message already begins with it and the line)
    proposed.write_text("version: X\nconditions:\n  PKU: [1, 2\n")
    out = CliRunner().invoke(app, ["cutoffs", "check", str(proposed)]).output
    assert out.startswith(f"error: {proposed}:4: ") and out.count(str(proposed)) == 1, out
