"""The Levey-Jennings chart is a golden file: any change to its drawing is a reviewable diff
(``UPDATE_GOLDEN=1`` rewrites it)."""

from __future__ import annotations

import os
from pathlib import Path

from nbs.qc.chart import Point, levey_jennings

GOLDEN = Path(__file__).parents[1] / "golden" / "levey_jennings_tsh_l2.svg"


def _chart() -> str:
    values = [44.1, 46.0, 43.2, 47.9, 45.5, 42.8, 53.5, 52.1, 44.9, 39.0, 57.3]
    rules = {6: "2-2s", 7: "2-2s", 10: "1-3s"}
    points = [Point(f"P{i + 1:02d}", v, rules.get(i, "")) for i, v in enumerate(values)]
    return levey_jennings("TSH NBS-CTRL level 2, lot 4411", points, 45.0, 4.0)


def test_the_levey_jennings_chart_matches_its_golden_file() -> None:
    svg = _chart()
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(svg, "utf-8")
    assert svg == GOLDEN.read_text("utf-8")


def test_the_chart_marks_broken_rules_and_clips_far_points() -> None:
    svg = _chart()
    assert svg.count('fill="#c0392b"><title>') == 3
    assert "<title>P11: 57.3 (1-3s)</title>" in svg
    far = levey_jennings("x", [Point("P1", 1000.0)], 10.0, 1.0)
    assert 'cy="28.0"' in far  # drawn at the top edge (+4 SD), not off the chart
