"""A batch's results shaped for the rule kinds: one row per (card, punch) with a column per
marker, the punches a call rests on (its evidence), and the mean of retest punches.

A punch with no amplification of a qPCR target that the catalogue declares
(``no_amplification``) takes the value it is evaluated as here, once, so that every rule
kind and plug-in sees it the same way; its flag stays ``undetermined`` for the text.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import polars as pl

from analytes.catalogue import UNDETERMINED
from nbs.rules.kinds import FLOAT_NOISE


class ResultsByMarker:
    """The results of a set of cards, shaped once for all conditions: each condition takes
    its markers' punches instead of filtering, pivoting and joining every result again."""

    def __init__(
        self,
        results: pl.DataFrame,
        covariates: pl.DataFrame,
        no_amplification: Mapping[str, float] | None = None,
    ) -> None:
        mine = results.join(covariates.select("specimen_id"), on="specimen_id", how="semi")
        mine = _no_amplification_values(mine, no_amplification or {})
        if "censored" not in mine.columns:
            mine = mine.with_columns(censored=pl.lit(None, dtype=pl.String))
        self._mine = mine
        #: the markers with a flagged or censored punch: only their values need more than
        #: a number in a reason
        self.annotated = frozenset(
            mine.filter(pl.col("flag").is_not_null() | pl.col("censored").is_not_null())[
                "analyte"
            ].unique()
        )
        self._analytes = set(mine["analyte"].unique().to_list())
        # every card's punches as bits, and as one row per punch with the card's covariates,
        # once for all conditions (a grouping, a pivot and a join per condition would be a
        # third of the evaluation)
        self._masks = _punch_masks(mine)
        self._wide = _punches(mine, sorted(self._analytes)).join(
            covariates, on="specimen_id", how="inner"
        )
        self._covariates = [c for c in covariates.columns if c != "specimen_id"]

    def punches(self, markers: list[str]) -> pl.DataFrame:
        """One row per (card, replicate) with a result of any of these markers: its value,
        ``__flag`` and ``__cens`` (``<`` / ``>`` where censored) per marker (null where that
        marker has no row) and the card's covariates."""
        held = [m for m in markers if m in self._analytes]
        rows = self._wide
        if held:
            rows = rows.filter(pl.any_horizontal([pl.col(f"{m}__row") for m in held]))
        else:
            rows = rows.clear()
        frame = rows.select(
            "specimen_id",
            "replicate",
            *[name for m in held for name in (m, f"{m}__flag", f"{m}__cens")],
            *self._covariates,
        )
        return with_missing(frame, markers)

    def of(self, markers: Collection[str]) -> pl.DataFrame:
        """The rows of these markers (no row of another)."""
        return self._mine.filter(pl.col("analyte").is_in(list(markers)))

    def evidence(self, markers: Collection[str]) -> pl.DataFrame:
        """``specimen_id, evidence`` of the cards with a result of these markers (see
        :func:`evidence_of`)."""
        if self._masks is None:
            return evidence_of(self.of(markers))
        masks, pairs = self._masks
        keep = sum(1 << i for i, (analyte, _) in enumerate(pairs) if analyte in markers)
        mine = masks.select("specimen_id", mask=pl.col("mask") & keep).filter(pl.col("mask") != 0)
        return _spell(mine, [token for _, token in pairs])


def _no_amplification_values(mine: pl.DataFrame, values: Mapping[str, float]) -> pl.DataFrame:
    """A punch with no value flagged ``undetermined`` of a marker the catalogue declares
    (``no_amplification``) takes the value it is evaluated as; other empty values stay
    missing."""
    if not values or "flag" not in mine.columns:
        return mine
    absent = pl.col("value").is_null() & (pl.col("flag") == UNDETERMINED)
    if not mine.select(absent.any()).item():
        return mine
    as_value = pl.col("analyte").replace_strict(values, default=None, return_dtype=pl.Float64)
    return mine.with_columns(value=pl.when(absent).then(as_value).otherwise(pl.col("value")))


def _punches(mine: pl.DataFrame, markers: list[str]) -> pl.DataFrame:
    """One row per (card, replicate) with, per marker, its value, ``__flag``, ``__row``
    (true where the marker has a row for that punch; ``mine``: the markers' results) and
    ``__cens``. Columns: the key, then per marker its value, flag, row and censoring."""
    key = ["specimen_id", "replicate"]
    if mine.is_empty():
        frame = pl.DataFrame(schema={"specimen_id": pl.String, "replicate": pl.Int64})
    else:
        # one pivot of the columns: value_PHE, flag_PHE, __row_PHE... renamed PHE,
        # PHE__flag, PHE__row
        values = ["value", "flag", "__row"]
        frame = mine.with_columns(__row=pl.lit(True)).pivot(on="analyte", index=key, values=values)
        names = {
            f"{v}_{m}": m if v == "value" else f"{m}__{v.strip('_')}"
            for m in markers
            for v in values
        }
        frame = frame.rename({c: names[c] for c in frame.columns if c in names})
        # censored values are few: their own small pivot, joined, instead of a fourth
        # column in the pivot of every result
        censored = mine.filter(pl.col("censored").is_not_null())
        if not censored.is_empty():
            wide = censored.pivot(on="analyte", index=key, values="censored")
            wide = wide.rename({m: f"{m}__cens" for m in wide.columns if m not in key})
            frame = frame.join(wide, on=key, how="left")
    frame = with_missing(frame, markers, exists=True)
    return frame.select(
        *key, *[f"{m}{x}" for m in markers for x in ("", "__flag", "__row", "__cens")]
    )


def floored(
    punches: pl.DataFrame, minima: Mapping[str, float], markers: Collection[str]
) -> pl.DataFrame:
    """A value reported as at most a bound below the plausible range (``<`` a bound under
    the catalogue's minimum; ``minima``) evaluated as its bound, never below zero: a
    negative denominator would make the most abnormal ratio a normal one, and raising a
    small bound to a minimum above zero could shrink a ratio that is high.
    ``markers``: the markers with a censored punch (the others are left alone)."""
    low = [
        pl.when((pl.col(f"{m}__cens") == "<") & (pl.col(m) < minima[m]))
        .then(pl.max_horizontal(pl.col(m), pl.lit(0.0)))
        .otherwise(pl.col(m))
        .alias(m)
        for m in markers
        if m in minima and m in punches.columns
    ]
    return punches.with_columns(low) if low else punches


def with_missing(frame: pl.DataFrame, markers: list[str], exists: bool = False) -> pl.DataFrame:
    """The markers' value, flag and censoring (and row) columns that ``frame`` lacks, added
    null."""
    kinds = [("", pl.Float64), ("__flag", pl.String), ("__cens", pl.String)]
    if exists:
        kinds.append(("__row", pl.Boolean))
    missing = [
        pl.lit(None, dtype=dtype).alias(f"{m}{x}")
        for m in markers
        for x, dtype in kinds
        if f"{m}{x}" not in frame.columns
    ]
    return frame.with_columns(missing) if missing else frame


def _token() -> pl.Expr:
    """A punch as text in evidence: ``PHE#1`` (marker, replicate)."""
    return pl.concat_str([pl.col("analyte"), pl.lit("#"), pl.col("replicate").cast(pl.String)])


def _punch_masks(mine: pl.DataFrame) -> tuple[pl.DataFrame, list[tuple[str, str]]] | None:
    """Per card (``specimen_id, mask``) one bit per distinct (marker, replicate) pair of
    ``mine``, and the pairs as ``(marker, token)`` with the tokens (``PHE#1``) in text
    order, bit i for pair i. None beyond 63 pairs (more than a mask holds)."""
    token = _token()
    pairs = mine.select("analyte", "replicate").unique().with_columns(token=token).sort("token")
    if pairs.height > 63:
        return None
    pairs = pairs.with_columns(
        bit=pl.Series("bit", [1 << i for i in range(pairs.height)], pl.UInt64)
    )
    masks = (
        mine.select("specimen_id", "analyte", "replicate")
        .join(pairs, on=["analyte", "replicate"])
        .group_by("specimen_id")
        .agg(mask=pl.col("bit").bitwise_or())
    )
    return masks, list(pairs.select("analyte", "token").iter_rows())


def _spell(masks: pl.DataFrame, tokens: list[str]) -> pl.DataFrame:
    """``specimen_id, evidence``: each distinct mask spelt once, its tokens joined by commas."""
    spelt = {
        mask: ",".join(t for i, t in enumerate(tokens) if mask >> i & 1)
        for mask in masks["mask"].unique().to_list()
    }
    return masks.select(
        "specimen_id",
        evidence=pl.col("mask").replace_strict(spelt, return_dtype=pl.String),
    )


def evidence_of(mine: pl.DataFrame) -> pl.DataFrame:
    """Per card, the punches a call rests on: ``evidence`` like ``PHE#1,TYR#1`` (its
    (marker, replicate) pairs in text order; part of a call's natural key). ``mine``: the
    results of the condition's markers.

    Each distinct pair is a bit, a card's pairs are OR-ed into one integer and each
    distinct integer is spelt once: sorting and joining the texts of every card would be a
    quarter of the evaluation."""
    masks = _punch_masks(mine)
    if masks is None:  # more pairs than bits: spell every card's own (never seen so far)
        token = _token()
        return mine.group_by("specimen_id").agg(evidence=token.sort().str.join(","))
    return _spell(masks[0], [token for _, token in masks[1]])


def present(markers: list[str]) -> pl.Expr:
    """Every marker has a value or an instrument flag (a result, even 'no amplification')."""
    return pl.all_horizontal(
        [pl.col(m).is_not_null() | pl.col(f"{m}__flag").is_not_null() for m in markers]
    )


#: a mean of punches that lies within float noise (``rules.kinds.FLOAT_NOISE``) of a
#: number with ``MEAN_DECIMALS`` decimals is shown and used as that number: the mean of
#: 94.99, 139.97, 93.45 and 271.59 is 150.00, not 149.99999999999997. (Other means keep
#: their value, to 9 decimals from about 1e5 up, where that grid is finer than the noise.
#: Whether a value reaches a limit allows for the same noise: ``rules.kinds.reaches``.)
MEAN_DECIMALS = 9


def _mean(column: str) -> pl.Expr:
    """The mean of ``column`` in the group, summed left to right in row order, snapped to
    ``MEAN_DECIMALS`` decimals where it is within float noise of such a number."""
    values = pl.col(column)
    n = values.count()
    # cum_sum, not sum: polars' sum switches between plain and compensated summation with
    # the number of threads and groups, so a card's mean could change in its last digit
    # with the chunk it was evaluated in
    mean = values.fill_null(0.0).cum_sum().last() / n
    near = mean.round(MEAN_DECIMALS)
    snapped = pl.when((mean - near).abs() <= FLOAT_NOISE * near.abs()).then(near).otherwise(mean)
    return pl.when(n > 0).then(snapped)


def mean_of(frame: pl.DataFrame, markers: list[str]) -> pl.DataFrame:
    """Per card: the mean of each marker's values, its flag and its censoring.

    The flag is ``undetermined`` only where no punch amplified (the mean of a punch with
    no amplification and one that amplified is a number), else the highest other flag;
    the censoring is kept where every censored punch points the same way (the mean of
    values of at least their bound is at least the mean of the bounds).

    The values are summed in replicate order, so the same punches give the same mean
    whatever order their rows arrive in (chunks, threads, partitions): a float sum depends
    on its order. See ``_mean`` for float noise."""
    ordered = frame.sort("specimen_id", "replicate")
    return ordered.group_by("specimen_id").agg(
        [_mean(m).alias(m) for m in markers]
        + [_mean_flag(f"{m}__flag") for m in markers]
        + [_mean_censoring(f"{m}__cens") for m in markers]
    )


def _mean_flag(column: str) -> pl.Expr:
    flag = pl.col(column)
    none_amplified = (flag == UNDETERMINED).fill_null(False).all()
    return (
        pl.when(none_amplified)
        .then(pl.lit(UNDETERMINED))
        .otherwise(flag.filter(flag != UNDETERMINED).max())
        .alias(column)
    )


def _mean_censoring(column: str) -> pl.Expr:
    signs = pl.col(column).drop_nulls().unique()
    return pl.when(signs.len() == 1).then(signs.first()).alias(column)
