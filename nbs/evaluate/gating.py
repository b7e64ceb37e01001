"""Results held by their plate make no call.

A plate whose calibration or controls failed holds its specimen results until a
supervisor accepts it (:mod:`nbs.qc.plates`). The evaluation leaves them out; a condition
that reads a held marker of a card is then called ``retest`` (basis ``plate_held``) with the
plate's reason, so the card waits on the retest worklist; a held punch of a marker with
usable punches on accepted plates is void and the call is made from those. A card whose
usable results already ask for a new card or a referral keeps that call, with a note: a
held plate never hides an abnormal result.
"""

from __future__ import annotations

import polars as pl

from cutoffs import ConditionCutoffs

HELD_BASIS = "plate_held"
ABNORMAL = ("repeat_specimen", "referral")


def split_held(results: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """(usable results, held results ``specimen_id, analyte, held_reason``) of results
    marked with ``held_reason``; results without the column are all usable.

    A held punch is void: a card's usable punches of that marker are numbered again from 1
    (a retest punch on a good plate then stands as the first punch). Only markers with no
    usable punch at all are returned as held (their conditions cannot be called)."""
    if "held_reason" not in results.columns:
        return results, None
    is_held = pl.col("held_reason").is_not_null()
    held = results.filter(is_held)
    usable = results.filter(~is_held).drop("held_reason")
    key = ["specimen_id", "analyte"]
    touched = held.select(key).unique()
    affected = usable.join(touched, on=key, how="semi")
    if not affected.is_empty():
        renumbered = affected.with_columns(
            replicate=pl.col("replicate").rank("dense").over(key).cast(results["replicate"].dtype)
        )
        rest = usable.join(touched, on=key, how="anti")
        usable = pl.concat([rest, renumbered]).sort("specimen_id", maintain_order=True)
    only_held = held.join(usable.select(key).unique(), on=key, how="anti")
    return usable, only_held.select(*key, "held_reason")


def hold_calls(
    calls: pl.DataFrame, held: pl.DataFrame | None, code: str, cond: ConditionCutoffs
) -> pl.DataFrame:
    """The condition's calls with the held results taken into account (see above)."""
    if held is None or held.is_empty():
        return calls
    markers = [*cond.markers, *(cond.second_tier.markers if cond.second_tier else ())]
    mine = (
        held.filter(pl.col("analyte").is_in(markers))
        .group_by("specimen_id")
        .agg(held_reason=pl.col("held_reason").unique().sort().str.join("; "))
    )
    if mine.is_empty():
        return calls
    urgency = "urgent" if cond.urgency.get("referral", "urgent") == "urgent" else "routine"
    joined = calls.join(mine, on="specimen_id", how="left", maintain_order="left")
    is_held = pl.col("held_reason").is_not_null()
    hold = is_held & ~pl.col("call").is_in(ABNORMAL)
    version = pl.col("rule_version").fill_null("none")
    return joined.with_columns(
        call=pl.when(hold).then(pl.lit("retest")).otherwise(pl.col("call")),
        urgency=pl.when(hold).then(pl.lit(urgency)).otherwise(pl.col("urgency")),
        basis=pl.when(hold).then(pl.lit(HELD_BASIS)).otherwise(pl.col("basis")),
        reason=pl.when(hold)
        .then(
            pl.concat_str(
                [
                    pl.lit(f"{code} retest ({urgency}): results on a held plate make no call: "),
                    pl.col("held_reason"),
                    pl.lit("; retest on an accepted plate, or a supervisor accepts the plate"),
                    pl.lit(" [cutoffs "),
                    version,
                    pl.lit("]"),
                ]
            )
        )
        .when(is_held)
        .then(
            pl.concat_str(
                [pl.col("reason"), pl.lit(" (not used: "), pl.col("held_reason"), pl.lit(")")]
            )
        )
        .otherwise(pl.col("reason")),
        explanation=pl.when(hold)
        .then(
            pl.struct(
                basis=pl.lit(HELD_BASIS), held=pl.col("held_reason"), condition=pl.lit(code)
            ).struct.json_encode()
        )
        .otherwise(pl.col("explanation")),
    ).drop("held_reason")
