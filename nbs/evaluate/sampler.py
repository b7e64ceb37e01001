"""Reference distributions for limits set as percentiles: of the run, or of a rolling
window of stored first punches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

import numpy as np
import polars as pl

from nbs.config import Sampler

HISTORY_SCHEMA = pl.Schema(
    {
        "specimen_id": pl.String(),
        "analyte": pl.String(),
        "value": pl.Float64(),
        "collected_at": pl.Datetime("us"),
    }
)


def make_sampler(
    cards: pl.DataFrame,
    results: pl.DataFrame,
    history: pl.DataFrame | None,
    markers: Collection[str] | None = None,
    window_end: dt.datetime | None = None,
) -> Sampler:
    """Reference distributions for percentile limits: first punches of this batch's cards
    (``run``), or those plus stored first punches collected within the window up to the
    batch's latest card (``window``). ``markers``: only these can be asked for (keeps the
    sampler small when a run is evaluated in chunks that share it).

    A window ends at the batch's latest collection time, or at ``window_end`` when later
    (stored cards evaluated again: where the runs that delivered them stood, see
    :func:`nbs.evaluate.batch.load_context`): a card collected later was not known when
    the cards were screened, so a reprocessing draws the limits their run drew, whatever
    was stored since."""
    first = results.filter(pl.col("replicate") == 1)
    if markers is not None:
        first = first.filter(pl.col("analyte").is_in(list(markers)))
    batch = (
        first.join(cards.select("specimen_id", "collected_at"), on="specimen_id")
        .select(list(HISTORY_SCHEMA))
        .cast(HISTORY_SCHEMA)
    )
    stored = history.cast(HISTORY_SCHEMA) if history is not None else HISTORY_SCHEMA.to_frame()
    pool = pl.concat([stored, batch]).unique(subset=["specimen_id", "analyte"], keep="last")
    latest = cards["collected_at"].max() if cards.height else None
    if window_end is not None and (latest is None or window_end > latest):  # type: ignore[operator]
        latest = window_end
    cache: dict[tuple[str, str, int], np.ndarray] = {}

    def sample(marker: str, of: str, window_days: int) -> np.ndarray:
        key = (marker, of, window_days)
        if key not in cache:
            rows = batch if of == "run" else pool
            if of != "run" and latest is not None:
                start = latest - dt.timedelta(days=window_days)  # type: ignore[operator]
                rows = rows.filter(pl.col("collected_at").is_between(start, latest, "right"))
            cache[key] = rows.filter((pl.col("analyte") == marker) & pl.col("value").is_not_null())[
                "value"
            ].to_numpy()
        return cache[key]

    return sample
