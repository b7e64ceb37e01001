"""A condition's punches scored: the tier its criteria reach, raised by a fired failsafe,
with the criteria's texts and their JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass

import polars as pl

from nbs.evaluate.decide import CALL_BY_LEVEL
from nbs.evaluate.jsontext import json_float, json_object, json_scalar, json_text
from nbs.rules.kinds import all_reach
from nbs.rules.registry import CriterionExprs


def criteria_json(crits: list[CriterionExprs]) -> pl.Expr:
    """The criteria of a punch as a JSON array of ``{criterion, value, limits, stratum,
    tier}``: built as text, as a list of structs encoded per row costs half the
    evaluation."""
    objects = [
        json_object(
            {
                "criterion": pl.lit(json.dumps(c.label)),
                "value": json_float(c.value.cast(pl.Float64)),
                "limits": json_text(c.limits),
                "stratum": json_text(c.stratum),
                "tier": json_scalar(c.level),
            }
        )
        for c in crits
    ]
    return pl.concat_str([pl.lit("["), pl.concat_str(objects, separator=","), pl.lit("]")])


@dataclass(frozen=True)
class Scoring:
    """A condition's criteria and its failsafes (each: the tier level it guarantees and its
    criteria), built for one cutoff set."""

    criteria: list[CriterionExprs]
    failsafe: list[tuple[int, list[CriterionExprs]]]

    def level(self) -> pl.Expr:
        """The tier all criteria reach (null if an input is missing), raised to a fired
        failsafe's level: a failsafe fires where all its criteria reach referral, and a
        missing input of the other criteria does not stop it."""
        combined = all_reach([c.level for c in self.criteria])
        if not self.failsafe:
            return combined
        fired = self.fired()
        return (
            pl.when(fired > 0)
            .then(pl.max_horizontal(combined, fired))
            .otherwise(combined)
            .cast(pl.Int8)
        )

    def fired(self) -> pl.Expr:
        """The highest level a failsafe guarantees on the row (0: none fired)."""
        return pl.max_horizontal(
            [
                pl.when(all_reach([c.level for c in crits]) >= 3)
                .then(pl.lit(level, dtype=pl.Int8))
                .otherwise(pl.lit(0, dtype=pl.Int8))
                for level, crits in self.failsafe
            ]
        )

    def detail(self) -> pl.Expr:
        """The criteria's texts, and a failsafe's where it raised the tier."""
        text = pl.concat_str([c.detail for c in self.criteria], separator="; ")
        combined = all_reach([c.level for c in self.criteria])
        for level, crits in self.failsafe:
            fired = (all_reach([c.level for c in crits]) >= 3) & (
                combined.is_null() | (combined < level)
            )
            action = CALL_BY_LEVEL[level]
            note = pl.concat_str(
                [
                    pl.lit(f"; failsafe (at least {action} whatever the other criteria): "),
                    pl.concat_str([c.detail for c in crits], separator="; "),
                ]
            )
            text = pl.concat_str(
                [text.fill_null(""), pl.when(fired).then(note).otherwise(pl.lit(""))]
            )
        return text


def score(
    frame: pl.DataFrame, scoring: Scoring, prefix: str, criteria: bool = True
) -> pl.DataFrame:
    """Add ``{prefix}level`` (see :meth:`Scoring.level`), ``{prefix}invalid`` (a
    measurement failed), ``{prefix}detail`` (text) and, with ``criteria``,
    ``{prefix}criteria`` (the criteria as a JSON array)."""
    crits = scoring.criteria
    columns = [
        scoring.level().alias(f"{prefix}level"),
        pl.any_horizontal([c.invalid.fill_null(False) for c in crits]).alias(f"{prefix}invalid"),
        scoring.detail().alias(f"{prefix}detail"),
    ]
    if criteria:
        columns.append(criteria_json(crits).alias(f"{prefix}criteria"))
    return frame.with_columns(columns)
