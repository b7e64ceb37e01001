"""The generator's output, a module of its own: the generator and the instrument simulation
(:mod:`data_samples.instrument`) both use it."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class Cohort:
    """A synthetic cohort: cards, long-format results, and the truth behind them (per
    card: the baby's condition, confounders, ``dna_failure``, ``card`` (1 = first card)
    and each marker's underlying value ``true_<code>``, null where it does not amplify)."""

    specimens: pl.DataFrame
    results: pl.DataFrame
    truth: pl.DataFrame
