"""A batch evaluated a chunk at a time: the settings choose the chunks, the rows do not
depend on them."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from data_samples.generator import generate_cohort
from nbs.config import ScreeningConfig
from nbs.evaluate.batch import EVALUATION_CHUNK, EVALUATION_THREADS, Context, evaluate_batch
from nbs.evaluate.escalation import PRIOR_SCHEMA
from nbs.settings import Settings


def _calls(
    parts: Path, config: ScreeningConfig, cards: pl.DataFrame, results: pl.DataFrame
) -> tuple[int, pl.DataFrame]:
    context = Context(history=None, prior=PRIOR_SCHEMA.to_frame())
    evaluation = evaluate_batch(cards, results, config, context, parts)
    assert sum(evaluation.calls.values()) == cards.height * len(config.conditions)
    files = sorted(parts.glob("part-*.parquet"))
    return len(files), pl.concat([pl.read_parquet(f) for f in files]).sort(
        "specimen_id", "condition"
    )


@pytest.mark.slow  # over two seconds: the full tier
def test_the_chunk_and_thread_settings_change_no_row(
    tmp_path: Path, config: ScreeningConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``NBS_EVALUATION_CHUNK`` and ``NBS_EVALUATION_THREADS`` are read when a batch is
    evaluated; the module's constants are their defaults."""
    assert Settings().evaluation_chunk == EVALUATION_CHUNK
    assert Settings().evaluation_threads == EVALUATION_THREADS
    cohort = generate_cohort(60, seed=4, incidence_scale=300)
    cards = cohort.specimens.with_columns(is_first_card=pl.lit(True))
    results = cohort.results
    monkeypatch.delenv("NBS_EVALUATION_CHUNK", raising=False)
    whole_parts, whole = _calls(tmp_path / "whole", config, cards, results)
    monkeypatch.setenv("NBS_EVALUATION_CHUNK", "7")
    monkeypatch.setenv("NBS_EVALUATION_THREADS", "2")
    chunked_parts, chunked = _calls(tmp_path / "chunked", config, cards, results)
    assert (whole_parts, chunked_parts) == (1, 9)
    assert chunked.equals(whole)
