"""Seeded generator of SYNTHETIC newborn screening cohorts in the canonical inbox format.

Never real data: every card and value is drawn from the model below. The same arguments
give byte-identical files. Vectorised with numpy and polars: a million cards (eleven
million results) take seconds, so the same generator serves a test (30 cards), the demo
and the national-scale benchmarks.

Model (medians and effects from ../shared/notes/DOMAIN.md and its sources; where a number
is our assumption it says so):

* Gestation: ~1% born < 32 weeks (24-31), ~6% at 32-36, the rest 37-42 (mean 39.3).
  Birth weight follows gestation (median curve 650 g at 24 w to 3,450 g at 40 w, x lognormal
  sd 0.12); 0.2% of cards miss the weight.
* Collection: mostly 48-84 h of life; 1.5% before 24 h (early discharge); 1% after 96 h.
  Received 12-96 h after collection; measured 2-30 h after receipt.
* Analytes (first punch, catalogue units), log-normal around newborn medians (median,
  sigma of ln): PHE 55 µmol/L (0.22), TYR 75 (0.34), C2 22 (0.30), C8 0.05 (0.40), C10 0.06
  (0.40), TSH 2.0 mU/L (0.60: 99.5th percentile ~9), OHP17 6 nmol/L (0.50), IRT 22 ng/mL
  (0.40: 99th percentile ~56), TREC 120 copies/µL (0.50); qPCR Ct: SMN1 N(27, 0.8),
  RPP30 N(25, 0.8).
* Covariates: 17-OHP x3 below 32 weeks or 1,500 g, x1.6 at 32-36 weeks; TSH surge x3 before
  24 h and x1.7 at 24-36 h; Phe x0.85 before 24 h; parenteral nutrition raises Phe and Tyr
  together (x2, ratio kept) and acylcarnitines (x1.5); TREC falls 9.6% per week below 37;
  0.1% DNA failures (RPP30 Ct 36-40, TREC and SMN1 fail with it).
* Affected babies (at most one condition each) at European incidences x incidence_scale:
  PKU 1/10,000 (PHE 400-1,500, TYR 30-60), CH 1/3,000 (TSH 30-300), CAH 1/15,000 (OHP17
  80-400), MCAD 1/15,000 (C8 1.5-8, C8/C10 3-8, C8/C2 > 0.06), CF 1/3,500 (IRT 70-300),
  SMA 1/8,000 (SMN1 no amplification: empty value, flag ``undetermined``), SCID 1/50,000
  (TREC 0-5).
* Transfusion ~30% of babies < 32 weeks, 0.1% of others; parenteral nutrition 60% < 32
  weeks, 5% at 32-36, 0.2% of term babies (our assumptions); CF consent 97%.
* Unsatisfactory cards at ``unsatisfactory_rate`` with the contract's codes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

SPECIMEN_COLUMNS = (
    "specimen_id", "baby_id", "birth_at", "collected_at", "received_at", "sex",
    "birth_weight_g", "gestational_age_weeks", "transfusion", "parenteral_nutrition",
    "consent_cf", "specimen_quality", "submitter",
)  # fmt: skip
RESULT_COLUMNS = (
    "specimen_id", "analyte", "value", "unit", "measured_at", "instrument", "plate_id", "well",
    "replicate", "flag",
)  # fmt: skip

#: code -> (unit, instrument, decimals)
ANALYTES: dict[str, tuple[str, str, int]] = {
    "PHE": ("µmol/L", "MSMS-01", 1),
    "TYR": ("µmol/L", "MSMS-01", 1),
    "C2": ("µmol/L", "MSMS-01", 2),
    "C8": ("µmol/L", "MSMS-01", 3),
    "C10": ("µmol/L", "MSMS-01", 3),
    "TSH": ("mU/L", "GSP-01", 2),
    "OHP17": ("nmol/L", "GSP-01", 1),
    "IRT": ("ng/mL", "GSP-01", 1),
    "SMN1": ("Ct", "QPCR-01", 2),
    "RPP30": ("Ct", "QPCR-01", 2),
    "TREC": ("copies/µL", "QPCR-01", 1),
}
#: code -> (median, sigma of ln value)
LOGNORMAL = {
    "PHE": (55.0, 0.22), "TYR": (75.0, 0.34), "C2": (22.0, 0.30), "C8": (0.05, 0.40),
    "C10": (0.06, 0.40), "TSH": (2.0, 0.60), "OHP17": (6.0, 0.50), "IRT": (22.0, 0.40),
    "TREC": (120.0, 0.50),
}  # fmt: skip
#: condition -> incidence per baby (European figures, DOMAIN.md)
INCIDENCE = {
    "PKU": 1 / 10_000, "CH": 1 / 3_000, "CAH": 1 / 15_000, "MCAD": 1 / 15_000,
    "CF": 1 / 3_500, "SMA": 1 / 8_000, "SCID": 1 / 50_000,
}  # fmt: skip
UNSATISFACTORY = ("insufficient", "oversaturated", "layered", "contaminated", "not_dry",
                  "expired_card", "too_old", "damaged")  # fmt: skip
SUBMITTERS = (("CHL", 0.45), ("HRS", 0.20), ("CHEM", 0.20), ("CHdN", 0.13), ("HOME", 0.02))


@dataclass(frozen=True)
class Cohort:
    """A synthetic cohort: cards, long-format results, and the truth behind them."""

    specimens: pl.DataFrame
    results: pl.DataFrame
    truth: pl.DataFrame


def _hours(values: np.ndarray) -> np.ndarray:
    return (values * 3_600_000_000).astype("timedelta64[us]")


def generate_cohort(
    n_cards: int,
    *,
    seed: int = 2026,
    start: dt.date = dt.date(2026, 1, 5),
    days: int | None = None,
    unsatisfactory_rate: float = 0.005,
    incidence_scale: float = 1.0,
    first_number: int = 1,
) -> Cohort:
    """Draw ``n_cards`` first cards (one per baby) and their eleven first-tier results.

    ``days`` spreads births over that many days from ``start`` (default: about 18 cards a
    day, Luxembourg's pace); ``incidence_scale`` multiplies every incidence (e.g. 200 to
    see affected babies in a small cohort); ``first_number`` numbers the cards (and babies)
    from there, so that cohorts of successive days do not share ids.
    """
    if n_cards < 1:
        raise ValueError("n_cards must be at least 1")
    rng = np.random.default_rng(seed)
    n = n_cards
    span = days if days is not None else max(1, math.ceil(n / 18))

    # gestation and weight
    u = rng.random(n)
    ga = np.where(
        u < 0.01,
        rng.integers(24, 32, n),
        np.where(
            u < 0.07, rng.integers(32, 37, n), np.clip(np.rint(rng.normal(39.3, 1.2, n)), 37, 42)
        ),
    ).astype(np.int64)
    median_weight = np.interp(ga, [24, 28, 32, 36, 40, 42], [650, 1100, 1800, 2700, 3450, 3650])
    weight = np.rint(median_weight * rng.lognormal(0.0, 0.12, n)).astype(np.int64)
    weight_missing = rng.random(n) < 0.002
    preterm = ga < 32
    low_weight = weight < 1500

    # times
    birth = (
        (np.datetime64(start, "us") + _hours(rng.random(n) * 24 * span))
        .astype("datetime64[s]")
        .astype("datetime64[us]")
    )
    v = rng.random(n)
    age = np.where(
        v < 0.015,
        rng.uniform(10, 24, n),
        np.where(v < 0.025, rng.uniform(96, 200, n), rng.uniform(48, 84, n)),
    )
    collected = (birth + _hours(age)).astype("datetime64[m]").astype("datetime64[us]")
    received = (
        (collected + _hours(rng.uniform(12, 96, n)))
        .astype("datetime64[m]")
        .astype("datetime64[us]")
    )
    measured = (
        (received + _hours(rng.uniform(2, 30, n))).astype("datetime64[m]").astype("datetime64[us]")
    )

    # context
    transfusion = np.where(preterm, rng.random(n) < 0.30, rng.random(n) < 0.001)
    tpn = np.where(
        preterm,
        rng.random(n) < 0.60,
        np.where(ga < 37, rng.random(n) < 0.05, rng.random(n) < 0.002),
    )
    consent = rng.random(n) < 0.97
    quality = np.where(
        rng.random(n) < unsatisfactory_rate, rng.choice(np.array(UNSATISFACTORY), n), "ok"
    )
    sex = rng.choice(np.array(["M", "F", "U"]), n, p=[0.51, 0.487, 0.003])
    submitter = rng.choice(np.array([s for s, _ in SUBMITTERS]), n, p=[p for _, p in SUBMITTERS])

    # affected babies: at most one condition each
    affected = np.full(n, None, dtype=object)
    w = rng.random(n)
    low = 0.0
    for condition, incidence in INCIDENCE.items():
        high = low + incidence * incidence_scale
        affected[(w >= low) & (w < high)] = condition
        low = high

    values: dict[str, np.ndarray] = {
        code: median * rng.lognormal(0.0, sigma, n) for code, (median, sigma) in LOGNORMAL.items()
    }
    values["SMN1"] = rng.normal(27.0, 0.8, n)
    values["RPP30"] = rng.normal(25.0, 0.8, n)
    early, surge = age < 24, (age >= 24) & (age < 36)
    values["OHP17"] *= np.where(preterm | low_weight, 3.0, np.where(ga < 37, 1.6, 1.0))
    values["TSH"] *= np.where(early, 3.0, np.where(surge, 1.7, 1.0))
    values["PHE"] *= np.where(early, 0.85, 1.0)
    for code, factor in (("PHE", 2.0), ("TYR", 2.0), ("C2", 1.5), ("C8", 1.5), ("C10", 1.5)):
        values[code] *= np.where(tpn, factor, 1.0)
    values["TREC"] *= 1.096 ** -np.clip(37 - ga, 0, None)
    dna_failure = rng.random(n) < 0.001
    values["RPP30"] = np.where(dna_failure, rng.uniform(36, 40, n), values["RPP30"])
    values["SMN1"] = np.where(dna_failure, rng.uniform(36, 40, n), values["SMN1"])
    values["TREC"] = np.where(dna_failure, rng.uniform(0, 3, n), values["TREC"])

    def set_where(code: str, cond: np.ndarray, new: np.ndarray) -> None:
        values[code] = np.where(cond, new, values[code])

    is_ = {c: affected == c for c in INCIDENCE}
    set_where("PHE", is_["PKU"], rng.uniform(400, 1500, n))
    set_where("TYR", is_["PKU"], rng.uniform(30, 60, n))
    set_where("TSH", is_["CH"], rng.uniform(30, 300, n))
    set_where("OHP17", is_["CAH"], rng.uniform(80, 400, n))
    c8 = rng.uniform(1.5, 8, n)
    set_where("C8", is_["MCAD"], c8)
    set_where("C10", is_["MCAD"], c8 / rng.uniform(3, 8, n))
    set_where("C2", is_["MCAD"], np.minimum(values["C2"], c8 / 0.06))
    set_where("IRT", is_["CF"], rng.uniform(70, 300, n))
    set_where("TREC", is_["SCID"], rng.uniform(0, 5, n))
    smn1_absent = is_["SMA"]
    set_where("RPP30", smn1_absent | is_["SCID"], rng.normal(25.0, 0.8, n))

    ids = np.arange(first_number, first_number + n)
    specimen_id = pl.Series("specimen_id", ids).cast(pl.String).str.zfill(8)
    specimens = pl.DataFrame(
        {
            "specimen_id": "S" + specimen_id,
            "baby_id": "B" + specimen_id,
            "birth_at": birth,
            "collected_at": collected,
            "received_at": received,
            "sex": sex,
            "birth_weight_g": pl.Series(weight).set(pl.Series(weight_missing), None),
            "gestational_age_weeks": ga,
            "transfusion": transfusion,
            "parenteral_nutrition": tpn,
            "consent_cf": consent,
            "specimen_quality": quality,
            "submitter": submitter,
        }
    ).select(SPECIMEN_COLUMNS)

    frames = []
    for code, (unit, instrument, decimals) in ANALYTES.items():
        value = pl.Series("value", np.round(values[code], decimals))
        flag = pl.lit(None, dtype=pl.String)
        if code == "SMN1":
            value = value.set(pl.Series(smn1_absent), None)
            flag = pl.when(pl.Series(smn1_absent)).then(pl.lit("undetermined"))
        frames.append(
            pl.DataFrame(
                {
                    "specimen_id": specimens["specimen_id"],
                    "value": value,
                    "measured_at": measured,
                    "n": ids - first_number,
                }
            ).with_columns(
                analyte=pl.lit(code),
                unit=pl.lit(unit),
                instrument=pl.lit(instrument),
                plate_id=pl.format(
                    "P{}-{}-{}",
                    pl.col("measured_at").dt.strftime("%y%m%d"),
                    pl.lit(instrument),
                    (pl.col("n") // 96 + 1).cast(pl.String).str.zfill(4),
                ),
                well=pl.format(
                    "{}{}",
                    pl.lit("ABCDEFGH").str.slice(pl.col("n") % 96 // 12, 1),
                    (pl.col("n") % 12 + 1).cast(pl.String).str.zfill(2),
                ),
                replicate=pl.lit(1, dtype=pl.Int64),
                flag=flag,
            )
        )
    results = pl.concat(frames).sort("n", maintain_order=True).select(RESULT_COLUMNS)
    truth = pl.DataFrame(
        {
            "specimen_id": specimens["specimen_id"],
            "baby_id": specimens["baby_id"],
            "affected": pl.Series(affected.tolist(), dtype=pl.String),
            "preterm": preterm,
            "early": early,
            "tpn": tpn,
            "transfusion": transfusion,
        }
    )
    return Cohort(specimens=specimens, results=results, truth=truth)


def write_inbox(
    cohort: Cohort, inbox: Path, *, name: str = "batch", fmt: Literal["csv", "parquet"] = "csv"
) -> list[Path]:
    """Write ``{name}.specimens.{fmt}`` and ``{name}.results.{fmt}`` into ``inbox``."""
    inbox.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, frame in (("specimens", cohort.specimens), ("results", cohort.results)):
        path = inbox / f"{name}.{kind}.{fmt}"
        if fmt == "csv":
            frame.write_csv(path, datetime_format="%Y-%m-%dT%H:%M:%S")
        else:
            frame.write_parquet(path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """``python -m data_samples.generator --cards N --out DIR``: write a synthetic inbox."""
    parser = argparse.ArgumentParser(description="Write a synthetic newborn screening inbox.")
    parser.add_argument("--cards", type=int, required=True)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--name", default="batch")
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 1, 5))
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--incidence-scale", type=float, default=1.0)
    parser.add_argument("--first-number", type=int, default=1)
    args = parser.parse_args(argv)
    cohort = generate_cohort(
        args.cards,
        seed=args.seed,
        start=args.start,
        days=args.days,
        incidence_scale=args.incidence_scale,
        first_number=args.first_number,
    )
    for path in write_inbox(cohort, args.out, name=args.name, fmt=args.format):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
