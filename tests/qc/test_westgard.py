"""Westgard multirules: each rule fires on the pattern it names and on nothing less."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from nbs.qc.westgard import (
    DEFAULT_RULES,
    Control,
    Target,
    established_target,
    judge,
)

T0 = dt.datetime(2026, 3, 2, 8, 0)
TARGET = Target(mean=10.0, sd=1.0, source="declared")


def _control(plate: int, value: float, level: str = "1", lot: str = "4411") -> Control:
    at = T0 + dt.timedelta(hours=plate)
    return Control(f"P{plate:02d}", at, "TSH", "DBS-C", level, lot, value)


def _targets(*levels: str) -> dict[tuple[str, str, str, str], Target]:
    return {("TSH", "DBS-C", level, "4411"): TARGET for level in levels}


def _rules(controls: list[Control], **rules: str) -> set[tuple[str, str]]:
    judged = judge(controls, _targets("1", "2"), rules or None)  # type: ignore[arg-type]
    return {(v.rule, v.control.plate_id) for v in judged.violations}


def test_one_control_beyond_three_sd_rejects_its_plate() -> None:
    judged = judge([_control(1, 10.5), _control(2, 13.2)], _targets("1"))
    assert [v.rule for v in judged.rejected("P02")] == ["1-3s"]
    assert judged.rejected("P01") == []
    expected = "1-3s on TSH DBS-C level 1, lot 4411 (value 13.2, +3.2 SD)"
    assert judged.violations[0].text() == expected


def test_two_two_s_within_a_run_across_levels_and_across_runs_within_a_material() -> None:
    across_levels = [_control(1, 12.3, "1"), _control(1, 12.4, "2")]
    assert ("2-2s", "P01") in _rules(across_levels)
    across_runs = [_control(1, 12.3), _control(2, 12.1)]
    assert _rules(across_runs) == {("2-2s", "P02")}
    opposite = [_control(1, 12.3), _control(2, 7.8)]
    assert not any(rule == "2-2s" for rule, _ in _rules(opposite))


def test_r_four_s_only_within_one_run() -> None:
    within = [_control(1, 12.2, "1"), _control(1, 7.7, "2")]
    assert ("R-4s", "P01") in _rules(within)
    across = [_control(1, 12.2), _control(2, 7.7)]
    assert not any(rule == "R-4s" for rule, _ in _rules(across))


def test_four_one_s_and_ten_x_follow_their_configured_severity() -> None:
    four = [_control(i, 11.3) for i in range(1, 5)]
    judged = judge(four, _targets("1"))
    assert [(v.rule, v.severity, v.control.plate_id) for v in judged.violations] == [
        ("4-1s", "warning", "P04")
    ]
    strict = judge(four, _targets("1"), {**DEFAULT_RULES, "4-1s": "reject"})
    assert [v.rule for v in strict.rejected("P04")] == ["4-1s"]
    ten = [_control(i, 10.4) for i in range(1, 11)]
    assert _rules(ten) == {("10-x", "P10")}
    assert _rules(ten[:9]) == set()


def test_a_lot_without_a_target_is_not_judged() -> None:
    judged = judge([_control(1, 25.0, lot="9999")], _targets("1"))
    assert judged.violations == [] and [c.lot for c in judged.untargeted] == ["9999"]


def test_an_established_target_needs_twenty_results() -> None:
    assert established_target([10.0] * 19 + [11.0]) is not None
    assert established_target([10.0, 11.0] * 9) is None
    target = established_target([9.0, 11.0] * 10 + [50.0])
    assert target is not None and target.mean == 10.0 and target.source == "established"


@given(st.lists(st.floats(-1.99, 1.99), min_size=1, max_size=30), st.booleans())
def test_controls_within_two_sd_never_reject_under_the_classic_rules(
    zs: list[float], two_levels: bool
) -> None:
    controls = [
        _control(i // 2 if two_levels else i, 10.0 + z, str(1 + i % 2) if two_levels else "1")
        for i, z in enumerate(zs)
    ]
    rules = {"1-3s": "reject", "2-2s": "reject", "R-4s": "reject"}
    assert judge(controls, _targets("1", "2"), rules).violations == []  # type: ignore[arg-type]


@given(st.lists(st.floats(-1.99, 1.99), min_size=0, max_size=10), st.floats(3.01, 20))
def test_a_control_beyond_three_sd_always_rejects_its_plate(before: list[float], z: float) -> None:
    controls = [_control(i, 10.0 + b) for i, b in enumerate(before)]
    last = _control(len(before), 10.0 - z)
    judged = judge([*controls, last], _targets("1"))
    assert "1-3s" in {v.rule for v in judged.rejected(last.plate_id)}


def test_the_shipped_qc_configuration_names_catalogue_analytes_only() -> None:
    from analytes.catalogue import load_catalogue
    from nbs.qc.config import load_qc

    qc = load_qc()
    codes = {a.code for a in load_catalogue().analytes}
    assert qc.analytes() and qc.analytes() <= codes
    assert qc.rules_for("TSH")["1-3s"] == "reject"
    assert ("TSH", "NBS-CTRL", "2", "4411") in qc.declared_targets()
