"""A synthetic screening history whose true statistics are known by construction.

Used by the statistics tests (small cohorts, every figure checked exactly against
:meth:`Cohort.truth`, computed here by plain enumeration, independently of the SQL views)
and by the benchmark (ten years of a million babies, generated inside DuckDB).

Baby ``i`` of a year of ``n`` babies (one first card each, all synthetic):

* born ``floor(i * 360 days / n)`` after 1 January (never near the year's end, so the
  card stays in the birth year), card collected at ``40 + i % 40`` hours of life,
  received ``12 + i % 72`` hours after collection, reported 6 hours after receipt;
* card unsatisfactory (``insufficient``) when ``i % 250 == 7``, ``contaminated`` when
  ``i % 500 == 3``; missing essential information when ``i % 300 == 11``;
* submitted by ``MAT-SMALL`` when ``i % 400 == 5`` (a small unit), else ``CHL``;
* screened for every condition of the panel, except CF without consent (``i % 10 == 0``);
* recalls per condition and year as the spec says, on babies picked deterministically;
* every screened baby's call is ``negative`` (CF without consent: ``not_evaluated``) and
  its first punch of the condition's marker is ``centre * (0.6 + 0.8 * u)`` with
  ``u = ((i * 7919 + k * 104729) % 1000) / 1000`` (``k``: the condition's place in the panel).
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from nbs import store

PANEL = ("PKU", "CH", "CAH", "MCAD", "CF", "SMA", "SCID")
#: the first-tier marker per condition and the centre of its synthetic values
MARKERS = {
    "PKU": ("PHE", 60.0),
    "CH": ("TSH", 3.0),
    "CAH": ("OHP17", 8.0),
    "MCAD": ("C8", 0.06),
    "CF": ("IRT", 25.0),
    "SMA": ("SMN1", 27.0),
    "SCID": ("TREC", 110.0),
}
SPREAD_S = 360 * 86400


@dataclass(frozen=True)
class RecallPlan:
    """Recalls of one condition in one year: babies referred and what became of them."""

    confirmed: int = 0
    false_positive: int = 0
    open_referrals: int = 0  # referred, outcome not known yet
    repeat_requests: int = 0  # borderline: repeat card asked for

    @property
    def referrals(self) -> int:
        return self.confirmed + self.false_positive + self.open_referrals


@dataclass(frozen=True)
class Cohort:
    """Years (year -> babies) and recall plans ((year, condition) -> plan)."""

    years: dict[int, int]
    plans: dict[tuple[int, str], RecallPlan] = field(default_factory=dict)
    conditions: tuple[str, ...] = PANEL

    # -- the known truth -----------------------------------------------------------------

    def screened(self, year: int, condition: str) -> int:
        n = self.years.get(year, 0)
        return sum(1 for i in range(n) if condition != "CF" or i % 10 != 0)

    def truth_yield(self, year: int, condition: str) -> dict[str, object]:
        """The ``yield_by_year`` row this cohort must give (None where undefined)."""
        plan = self.plans.get((year, condition), RecallPlan())
        screened = self.screened(year, condition)
        ppv = None if plan.referrals == 0 else round(100.0 * plan.confirmed / plan.referrals, 2)
        return {
            "year": year,
            "condition": condition,
            "screened": screened,
            "repeat_requests": plan.repeat_requests,
            "referrals": plan.referrals,
            "confirmed": plan.confirmed,
            "false_positives": plan.false_positive,
            "recall_rate_pct": None if not screened else round(100 * plan.referrals / screened, 4),
            "ppv_pct": ppv,
            "incidence_per_100k": None
            if not screened
            else round(100000.0 * plan.confirmed / screened, 2),
        }

    def truth_quality(self, year: int) -> dict[str, float | int | None]:
        """Indicator -> value of ``quality_indicators`` for the year, by enumeration."""
        n = self.years.get(year, 0)
        if n == 0:
            return {}
        ages = [40 + i % 40 for i in range(n)]
        transit = [12 + i % 72 for i in range(n)]
        report = [a + t + 6 for a, t in zip(ages, transit, strict=True)]
        unsat = sum(1 for i in range(n) if i % 250 == 7 or i % 500 == 3)
        missing = sum(1 for i in range(n) if i % 300 == 11)
        referral_ages = [ages[i] + 30 for c in self.conditions for i in self._referred(year, c)]
        repeats = sum(
            self.plans.get((year, c), RecallPlan()).repeat_requests for c in self.conditions
        )
        recalls = sum(
            p.referrals + p.repeat_requests for (y, _), p in self.plans.items() if y == year
        )

        def pct(k: int, d: int) -> float | None:
            return None if d == 0 else round(100.0 * k / d, 2)

        def q90(values: list[int]) -> float | None:
            return None if not values else round(float(np.quantile(values, 0.9)), 2)

        def med(values: list[int]) -> float | None:
            return None if not values else round(float(statistics.median(values)), 2)

        frame = self.recall_frame() if self.plans else pl.DataFrame()
        cutoff = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=365)
        lost = (
            frame.filter(
                (pl.col("created_at").dt.year() == year)
                & (pl.col("status") == "open")
                & (pl.col("created_at") < cutoff)
            ).height
            if recalls
            else 0
        )
        out: dict[str, float | int | None] = {
            "cards_received": n,
            "babies_with_a_card": n,
            "unsatisfactory_specimens_pct": pct(unsat, n),
            "missing_essential_information_pct": pct(missing, n),
            "collected_by_48h_pct": pct(sum(a <= 48 for a in ages), n),
            "collected_by_72h_pct": pct(sum(a <= 72 for a in ages), n),
            "birth_to_collection_median_h": med(ages),
            "birth_to_collection_p90_h": q90(ages),
            "received_within_24h_pct": pct(sum(t <= 24 for t in transit), n),
            "received_within_72h_pct": pct(sum(t <= 72 for t in transit), n),
            "collection_to_receipt_median_h": med(transit),
            "collection_to_receipt_p90_h": q90(transit),
            "birth_to_report_median_h": med(report),
            "birth_to_report_p90_h": q90(report),
            "all_results_by_day7_pct": pct(sum(r <= 168 for r in report), n),
        }
        if referral_ages:
            out |= {
                "time_critical_referred_by_day5_pct": pct(
                    sum(a <= 120 for a in referral_ages), len(referral_ages)
                ),
                "age_at_referral_median_h": med(referral_ages),
                "age_at_referral_p90_h": q90(referral_ages),
            }
        if repeats:
            out |= {"repeat_cards_requested": repeats, "repeat_cards_received_pct": 0.0}
        if recalls:
            # open recalls raised more than a year before today count as lost to follow-up
            out |= {"recalls_open_past_12_months": lost, "recalls_lost_to_follow_up": 0}
        return out

    def born_at(self, year: int, i: int) -> dt.datetime:
        return dt.datetime(year, 1, 1) + dt.timedelta(seconds=i * SPREAD_S // self.years[year])

    def collected_at(self, year: int, i: int) -> dt.datetime:
        return self.born_at(year, i) + dt.timedelta(hours=40 + i % 40)

    def marker_value(self, condition: str, i: int) -> float:
        k = self.conditions.index(condition)
        centre = MARKERS[condition][1]
        return centre * (0.6 + 0.8 * (((i * 7919 + k * 104729) % 1000) / 1000))

    def truth_marker(self, year: int, month: int, condition: str) -> dict[str, float]:
        """Babies and percentiles of ``marker_percentiles`` for a month (by enumeration)."""
        values = [
            self.marker_value(condition, i)
            for i in range(self.years.get(year, 0))
            if self.collected_at(year, i).month == month and (condition != "CF" or i % 10)
        ]
        out: dict[str, float] = {"babies": len(values)}
        for name, q in (("p01", 0.01), ("p50", 0.5), ("p99", 0.99), ("p995", 0.995)):
            out[name] = round(float(np.quantile(values, q)), 4)
        return out

    # -- which babies --------------------------------------------------------------------

    def _eligible(self, year: int, condition: str) -> list[int]:
        n = self.years.get(year, 0)
        offset = 1 + self.conditions.index(condition)
        return [i for i in range(offset, n, 7) if condition != "CF" or i % 10 != 0]

    def _referred(self, year: int, condition: str) -> list[int]:
        plan = self.plans.get((year, condition), RecallPlan())
        return self._eligible(year, condition)[: plan.referrals]

    def recall_frame(self) -> pl.DataFrame:
        """The recalls of the cohort (few: built in Python, checked against the plan)."""
        rows: list[dict[str, object]] = []
        for (year, condition), plan in sorted(self.plans.items()):
            picks = self._eligible(year, condition)
            needed = plan.referrals + plan.repeat_requests
            if len(picks) < needed:
                raise ValueError(f"{year} {condition}: {needed} recalls need more babies")
            outcomes = (
                ["confirmed"] * plan.confirmed
                + ["false_positive"] * plan.false_positive
                + [None] * plan.open_referrals
            )
            actions = [("referral", o) for o in outcomes] + [("repeat_specimen", None)] * (
                plan.repeat_requests
            )
            for i, (action, outcome) in zip(picks, actions, strict=False):
                collected = self.collected_at(year, i)
                created = collected + dt.timedelta(hours=30)
                rows.append(
                    {
                        "recall_id": f"R-{condition}-{year}-{i}",
                        "baby_id": f"B{year}-{i}",
                        "specimen_id": f"S{year}-{i}",
                        "condition": condition,
                        "action": action,
                        "urgency": "urgent" if action == "referral" else "routine",
                        "reason": "synthetic cohort",
                        "rule_version": "COHORT",
                        "created_at": created,
                        "run_id": "cohort",
                        "status": "closed" if outcome else "open",
                        "outcome": outcome,
                        "closed_at": created + dt.timedelta(days=20) if outcome else None,
                        "closed_by": "cohort" if outcome else None,
                        "stage": "closed" if outcome else "open",
                        "cohort_year": year,
                        "card_birth_at": self.born_at(year, i),
                        "card_collected_at": collected,
                    }
                )
        return pl.DataFrame(rows, infer_schema_length=None)


def write_cohort(db: Path, cohort: Cohort, with_markers: bool = True) -> None:
    """Write the cohort's cards, screening and recalls into a (new) screening database.

    Generated inside DuckDB from ``range()``, so ten years of a million babies take
    seconds; only the recalls come from Python.
    """
    store.migrate(db)
    years = pl.DataFrame(
        {"year": list(cohort.years), "n": list(cohort.years.values())},
        schema={"year": pl.Int32, "n": pl.Int64},
    )
    conditions = pl.DataFrame(
        {
            "condition": list(cohort.conditions),
            "k": list(range(len(cohort.conditions))),
            "marker": [MARKERS[c][0] for c in cohort.conditions],
            "centre": [MARKERS[c][1] for c in cohort.conditions],
        }
    )
    recalls = cohort.recall_frame()
    store.load_generated(
        db,
        {"cohort_years": years, "cohort_conditions": conditions, "cohort_recalls": recalls},
        COHORT_SQL + (MARKER_SQL if with_markers else ""),
    )


COHORT_SQL = f"""
CREATE TEMP TABLE babies AS
SELECT y.year, r.i, y.n, 'B' || y.year || '-' || r.i AS baby_id,
       'S' || y.year || '-' || r.i AS specimen_id,
       make_timestamp(y.year, 1, 1, 0, 0, 0) + to_seconds((r.i * {SPREAD_S}) // y.n) AS birth_at
FROM cohort_years y, range(y.n) r(i);

INSERT INTO specimens BY NAME
SELECT specimen_id, baby_id, birth_at,
       birth_at + to_hours(40 + i % 40) AS collected_at,
       birth_at + to_hours(40 + i % 40 + 12 + i % 72) AS received_at,
       CASE WHEN i % 2 = 0 THEN 'F' ELSE 'M' END AS sex,
       3300 AS birth_weight_g, 39 AS gestational_age_weeks,
       false AS transfusion, false AS parenteral_nutrition, i % 10 <> 0 AS consent_cf,
       CASE WHEN i % 250 = 7 THEN 'insufficient' WHEN i % 500 = 3 THEN 'contaminated'
            ELSE 'ok' END AS specimen_quality,
       CASE WHEN i % 400 = 5 THEN 'MAT-SMALL' ELSE 'CHL' END AS submitter,
       'cohort' AS file_sha256, i::INTEGER AS row_number, 'cohort' AS run_id,
       birth_at + to_hours(40 + i % 40 + 12 + i % 72 + 6) AS reported_at,
       true AS first_of_baby, i % 300 = 11 AS missing_information
FROM babies;

INSERT INTO specimen_warnings
SELECT specimen_id, 'birth_weight_g', 'missing essential information: birth weight', 'cohort'
FROM babies WHERE i % 300 = 11;

INSERT INTO screened
SELECT c.condition, b.baby_id, b.specimen_id, b.birth_at + to_hours(40 + b.i % 40), b.year,
       'negative'
FROM babies b, cohort_conditions c
WHERE c.condition <> 'CF' OR b.i % 10 <> 0;

INSERT INTO recalls BY NAME SELECT * FROM cohort_recalls;
"""

MARKER_SQL = """
INSERT INTO condition_markers SELECT condition, marker FROM cohort_conditions;

INSERT INTO calls BY NAME
SELECT b.specimen_id, b.baby_id, c.condition,
       CASE WHEN c.condition = 'CF' AND b.i % 10 = 0 THEN 'not_evaluated' ELSE 'negative' END
           AS call,
       'synthetic cohort' AS reason, 'COHORT' AS rule_version, '' AS evidence,
       'cohort' AS run_id, 0 AS run_seq,
       b.birth_at + to_hours(40 + b.i % 40 + 12 + b.i % 72 + 6) AS evaluated_at
FROM babies b, cohort_conditions c;

INSERT INTO results BY NAME
SELECT b.specimen_id, c.marker AS analyte, 1 AS replicate,
       c.centre * (0.6 + 0.8 * (((b.i * 7919 + c.k * 104729) % 1000) / 1000.0)) AS value,
       'u' AS unit, NULL AS value_reported,
       b.birth_at + to_hours(40 + b.i % 40 + 12 + b.i % 72) AS measured_at,
       'cohort' AS file_sha256, b.i::INTEGER AS row_number, 'cohort' AS run_id
FROM babies b, cohort_conditions c;

INSERT INTO marker_month_percentiles
SELECT * FROM marker_month_stats(DATE '1900-01-01', DATE '2999-12-01');
"""
