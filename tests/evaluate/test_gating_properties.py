"""Property: no specimen result on a plate that is not accepted ever reaches a call.

Whatever a held punch says (normal, far past referral, no amplification), every call is
the same: its value cannot move a call. And a marker with only held punches is never
called negative: the condition waits (``retest``, basis ``plate_held``) unless usable
results already ask for more.
"""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbs.config import ScreeningConfig
from nbs.evaluate.core import evaluate
from tests.helpers import RESULT_SCHEMA, cards

pytestmark = pytest.mark.slow  # property searches through the evaluator

MARKERS = ("PHE", "TSH", "OHP17", "C8", "IRT", "TREC", "RPP30", "SMN1")
VALUES = {
    "PHE": (40.0, 900.0), "TSH": (2.0, 120.0), "OHP17": (5.0, 200.0), "C8": (0.05, 3.0),
    "IRT": (20.0, 200.0), "TREC": (0.0, 400.0), "RPP30": (20.0, 38.0), "SMN1": (22.0, 40.0),
}  # fmt: skip

QUIET = [HealthCheck.function_scoped_fixture]

punch = st.tuples(st.sampled_from(MARKERS), st.integers(1, 3), st.floats(0, 1), st.booleans())


def _frame(rows: list[tuple[str, int, float, bool]], held_values: float) -> pl.DataFrame:
    """Results of card S0; a held punch's value is replaced by ``held_values`` (0..1
    across the marker's range) to show it does not matter."""
    seen: set[tuple[str, int]] = set()
    out = []
    for marker, replicate, at, held in rows:
        if (marker, replicate) in seen:
            continue
        seen.add((marker, replicate))
        lo, hi = VALUES[marker]
        share = held_values if held else at
        out.append(
            {
                "specimen_id": "S0",
                "analyte": marker,
                "replicate": replicate,
                "value": lo + (hi - lo) * share,
                "flag": None,
                "held_reason": "plate P1 held: 1-3s" if held else None,
            }
        )
    return pl.DataFrame(out, schema={**RESULT_SCHEMA, "held_reason": pl.String})


def _calls(config: ScreeningConfig, results: pl.DataFrame) -> list[tuple[object, ...]]:
    ev = evaluate(cards({"specimen_id": "S0"}), results, config)
    return sorted(ev.calls.select("condition", "call", "basis", "level_first").rows())


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(punch, min_size=1, max_size=12), st.floats(0, 1), st.floats(0, 1))
def test_a_held_punch_never_moves_a_call(
    config: ScreeningConfig, rows: list[tuple[str, int, float, bool]], a: float, b: float
) -> None:
    assert _calls(config, _frame(rows, a)) == _calls(config, _frame(rows, b))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sampled_from(MARKERS), st.floats(0, 1))
def test_a_marker_with_only_held_punches_is_never_negative(
    config: ScreeningConfig, marker: str, at: float
) -> None:
    results = _frame([(marker, 1, at, True)], at)
    ev = evaluate(cards({"specimen_id": "S0"}), results, config)
    held = ev.calls.filter(pl.col("basis") == "plate_held")
    assert held.height >= 1
    assert set(held["call"]) == {"retest"}
    assert held["reason"].str.contains("plate P1 held").all()
