"""The resolved cutoff table: every limit of every condition, stratum and tier, with its
source. Printed by ``nbs cutoffs show`` and kept as a golden snapshot in the tests, so that
any change of a cutoff is a reviewable diff."""

from __future__ import annotations

import polars as pl

from cutoffs import CutoffSet
from nbs.conditions import ConditionRegistry

TABLE_SCHEMA = pl.Schema(
    {
        "version": pl.String(),
        "effective_from": pl.Date(),
        "condition": pl.String(),
        "tier": pl.String(),
        "marker": pl.String(),
        "rule": pl.String(),
        "stratum": pl.String(),
        "retest": pl.Float64(),
        "repeat_specimen": pl.Float64(),
        "referral": pl.Float64(),
        "source": pl.String(),
    }
)


def cutoff_table(sets: tuple[CutoffSet, ...], registry: ConditionRegistry) -> pl.DataFrame:
    """One row per limit: version, condition, tier (first/second), marker, stratum, limits,
    and the first line of the condition's (or second tier's) sources."""
    rows: list[dict[str, object]] = []
    for s in sets:
        for code, cond in s.conditions.items():
            parts = [("first", cond.criteria, cond.sources)]
            if cond.second_tier:
                parts.append(
                    (
                        f"second: {cond.second_tier.name}",
                        cond.second_tier.criteria,
                        cond.second_tier.sources,
                    )
                )
            parts += [
                (f"failsafe: at least {f.at_least}", f.criteria, f.sources) for f in cond.failsafe
            ]
            for tier, criteria, sources in parts:
                for criterion in criteria:
                    for row in registry.kinds.describe(criterion):
                        rows.append(
                            {
                                "version": s.version,
                                "effective_from": s.effective_from,
                                "condition": code,
                                "tier": tier,
                                "marker": row.marker,
                                "rule": row.rule,
                                "stratum": row.stratum,
                                "retest": row.retest,
                                "repeat_specimen": row.repeat_specimen,
                                "referral": row.referral,
                                "source": " ".join(sources[0].split()),
                            }
                        )
    return pl.DataFrame(rows, schema=TABLE_SCHEMA)
