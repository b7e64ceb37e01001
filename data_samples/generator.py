"""Seeded generator of SYNTHETIC newborn screening cohorts in the canonical inbox format.

Never real data: every card and value is drawn from the model below. The same arguments
give byte-identical files. Vectorised with numpy and polars: a million cards (eleven
million results) take seconds, so the same generator serves a test (30 cards), the demo,
the national-scale benchmarks and the laboratory loop (:mod:`data_samples.lab_loop`).

This module draws the babies, their cards and each card's underlying value per marker;
:mod:`data_samples.instrument` measures them (punch-to-punch variation, gross punch errors,
DNA failures, measuring ranges, retest punches) and holds that half of the model; its
public names are importable from here too.

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
  RPP30 N(25, 0.8). Second tier PAP 0.5 µg/L (0.60; assumed, independent of IRT). These
  spreads include the punch-to-punch variation (:data:`PUNCH_CV`): each card's underlying
  value (``true_<code>``) spreads by what remains once it is taken out.
* Covariates: 17-OHP x3 below 32 weeks postmenstrual age or 1,500 g, x1.6 below 37 weeks;
  TSH surge x3 before 24 h and x1.7 at 24-36 h; Phe x0.85 before 24 h; parenteral nutrition
  raises Phe and Tyr together (x2, ratio kept) and acylcarnitines (x1.5); TREC falls 9.6%
  per week of postmenstrual age below 37.
* Affected babies (at most one condition each) at European incidences x incidence_scale,
  at least ``min_affected`` per condition (planted): PKU 1/10,000 (PHE 400-1,500, TYR 30-60),
  CH 1/3,000 (TSH 30-300), CAH 1/15,000 (OHP17 80-400), MCAD 1/15,000 (C8 1.5-8, C8/C10
  3-8, C8/C2 > 0.06), CF 1/3,500 (IRT 70-300, PAP log-normal around 6, sigma 0.5, assumed),
  SMA 1/8,000 (SMN1 no amplification: empty value, flag ``undetermined``), SCID 1/50,000
  (no TREC amplification in 85%: TRECs were undetectable in 8 of 9 typical SCID in New York
  State, Vogel, J Clin Immunol 2014;34:289; else, leaky SCID, TREC 0.5-5).
* Transfusion ~30% of babies < 32 weeks, 0.1% of others; parenteral nutrition 60% < 32
  weeks, 5% at 32-36, 0.2% of term babies (our assumptions); CF consent 97%.
* Unsatisfactory cards at ``unsatisfactory_rate`` with the contract's codes.
* Repeat cards (:func:`repeat_cards`): 7-14 days after the request, or at a corrected 32
  weeks for babies born before 32 weeks; affected babies stay affected (a fresh draw of
  their disease's values; a SCID baby without TREC stays without), every other marker is a
  fresh draw at the new age (no TSH surge; birth weight no longer raises 17-OHP);
  parenteral nutrition continues only in babies born before 32 weeks (assumed); no
  transfusion.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from data_samples.cohort import Cohort
from data_samples.instrument import (
    ANALYTES,
    ASSAY,
    DNA_FAILURE_PERSISTENT,
    DNA_FAILURE_RATE,
    DNA_FAILURE_UNDETERMINED,
    MEASURING_RANGE,
    PUNCH_CV,
    PUNCH_VOLUME_SD,
    QPCR_MAX_CT,
    RESULT_COLUMNS,
    SECOND_TIER,
    cards_of,
    censor,
    first_punches,
    hours,
    minutes,
    result_frame,
    retest_punches,
)

__all__ = [
    "ANALYTES",
    "ASSAY",
    "CT_NORMAL",
    "DNA_FAILURE_PERSISTENT",
    "DNA_FAILURE_RATE",
    "DNA_FAILURE_UNDETERMINED",
    "INCIDENCE",
    "LOGNORMAL",
    "MEASURING_RANGE",
    "PUNCH_CV",
    "PUNCH_VOLUME_SD",
    "QPCR_MAX_CT",
    "RESULT_COLUMNS",
    "SCID_TREC_UNDETERMINED",
    "SECOND_TIER",
    "SPECIMEN_COLUMNS",
    "SUBMITTERS",
    "UNSATISFACTORY",
    "Cohort",
    "censor",
    "extend",
    "generate_cohort",
    "main",
    "repeat_cards",
    "retest_punches",
    "write_inbox",
]

SPECIMEN_COLUMNS = (
    "specimen_id", "baby_id", "birth_at", "collected_at", "received_at", "sex",
    "birth_weight_g", "gestational_age_weeks", "transfusion", "parenteral_nutrition",
    "consent_cf", "specimen_quality", "submitter",
)  # fmt: skip
#: code -> (median, sigma of ln value) of the first punch, punch variation included
LOGNORMAL = {
    "PHE": (55.0, 0.22), "TYR": (75.0, 0.34), "C2": (22.0, 0.30), "C8": (0.05, 0.40),
    "C10": (0.06, 0.40), "TSH": (2.0, 0.60), "OHP17": (6.0, 0.50), "IRT": (22.0, 0.40),
    "TREC": (120.0, 0.50), "PAP": (0.5, 0.60),
}  # fmt: skip
#: Ct code -> (mean, sd in cycles) of the first punch
CT_NORMAL = {"SMN1": (27.0, 0.8), "RPP30": (25.0, 0.8)}
SCID_TREC_UNDETERMINED = 0.85  # share of SCID babies without TREC amplification
#: condition -> incidence per baby (European figures, DOMAIN.md)
INCIDENCE = {
    "PKU": 1 / 10_000, "CH": 1 / 3_000, "CAH": 1 / 15_000, "MCAD": 1 / 15_000,
    "CF": 1 / 3_500, "SMA": 1 / 8_000, "SCID": 1 / 50_000,
}  # fmt: skip
UNSATISFACTORY = ("insufficient", "oversaturated", "layered", "contaminated", "not_dry",
                  "expired_card", "too_old", "damaged")  # fmt: skip
SUBMITTERS = (("CHL", 0.45), ("HRS", 0.20), ("CHEM", 0.20), ("CHdN", 0.13), ("HOME", 0.02))


def _draw_babies(
    rng: np.random.Generator, n: int, start: dt.date, span: int, unsatisfactory_rate: float
) -> dict[str, np.ndarray]:
    """Gestation, weight, times of the first card, and the card's context."""
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
    birth = (
        (np.datetime64(start, "us") + hours(rng.random(n) * 24 * span))
        .astype("datetime64[s]")
        .astype("datetime64[us]")
    )
    v = rng.random(n)
    age = np.where(
        v < 0.015,
        rng.uniform(10, 24, n),
        np.where(v < 0.025, rng.uniform(96, 200, n), rng.uniform(48, 84, n)),
    )
    collected = minutes(birth + hours(age))
    received = minutes(collected + hours(rng.uniform(12, 96, n)))
    preterm = ga < 32
    return {
        "ga": ga,
        "weight": weight,
        "weight_missing": weight_missing,
        "birth": birth,
        "age": age,
        "collected": collected,
        "received": received,
        "measured": minutes(received + hours(rng.uniform(2, 30, n))),
        "transfusion": np.where(preterm, rng.random(n) < 0.30, rng.random(n) < 0.001),
        "tpn": np.where(
            preterm,
            rng.random(n) < 0.60,
            np.where(ga < 37, rng.random(n) < 0.05, rng.random(n) < 0.002),
        ),
        "consent": rng.random(n) < 0.97,
        "quality": _quality(rng, n, unsatisfactory_rate),
        "sex": rng.choice(np.array(["M", "F", "U"]), n, p=[0.51, 0.487, 0.003]),
        "submitter": rng.choice(
            np.array([s for s, _ in SUBMITTERS]), n, p=[p for _, p in SUBMITTERS]
        ),
    }


def _quality(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    return np.where(rng.random(n) < rate, rng.choice(np.array(UNSATISFACTORY), n), "ok")


def _draw_affected(
    rng: np.random.Generator, n: int, incidence_scale: float, min_affected: int
) -> np.ndarray:
    """At most one condition per baby; then babies planted until each condition has
    ``min_affected`` (so that a benchmark of realistic size sees every condition)."""
    affected = np.full(n, None, dtype=object)
    w = rng.random(n)
    low = 0.0
    for condition, incidence in INCIDENCE.items():
        high = low + incidence * incidence_scale
        affected[(w >= low) & (w < high)] = condition
        low = high
    for condition in INCIDENCE:
        need = min_affected - int((affected == condition).sum())
        free = np.flatnonzero(affected == None)  # noqa: E711 (numpy element-wise)
        if need > 0:
            affected[rng.choice(free, min(need, free.size), replace=False)] = condition
    return affected


def _underlying(
    rng: np.random.Generator,
    *,
    ga: np.ndarray,
    age: np.ndarray,
    low_weight: np.ndarray,
    tpn: np.ndarray,
    affected: np.ndarray,
    trec_absent: np.ndarray,
) -> dict[str, np.ndarray]:
    """Each card's underlying value per marker (NaN: the target is absent). The population
    spread is what remains of the first punch's spread once the punch variation is out."""
    n = ga.size
    values: dict[str, np.ndarray] = {}
    for code, (median, sigma) in LOGNORMAL.items():
        values[code] = median * rng.lognormal(0.0, math.sqrt(sigma**2 - PUNCH_CV[code] ** 2), n)
    for code, (mean, sd) in CT_NORMAL.items():
        values[code] = rng.normal(mean, math.sqrt(sd**2 - PUNCH_CV[code] ** 2), n)
    pma = ga + age / 168.0  # postmenstrual age in weeks
    values["OHP17"] *= np.where((pma < 32) | low_weight, 3.0, np.where(pma < 37, 1.6, 1.0))
    values["TSH"] *= np.where(age < 24, 3.0, np.where(age < 36, 1.7, 1.0))
    values["PHE"] *= np.where(age < 24, 0.85, 1.0)
    for code, factor in (("PHE", 2.0), ("TYR", 2.0), ("C2", 1.5), ("C8", 1.5), ("C10", 1.5)):
        values[code] *= np.where(tpn, factor, 1.0)
    values["TREC"] *= 1.096 ** -np.clip(37 - pma, 0, None)

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
    set_where("PAP", is_["CF"], 6.0 * rng.lognormal(0.0, 0.5, n))
    set_where("SMN1", is_["SMA"], np.full(n, np.nan))
    set_where("TREC", is_["SCID"], np.where(trec_absent, np.nan, rng.uniform(0.5, 5, n)))
    return values


def _specimens_frame(
    numbers: np.ndarray, baby_id: pl.Series, cards: dict[str, np.ndarray]
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "specimen_id": "S" + pl.Series(numbers).cast(pl.String).str.zfill(8),
            "baby_id": baby_id,
            "birth_at": cards["birth"],
            "collected_at": cards["collected"],
            "received_at": cards["received"],
            "sex": pl.Series(cards["sex"], dtype=pl.String),
            "birth_weight_g": pl.Series(cards["weight"]).set(
                pl.Series(cards["weight_missing"]), None
            ),
            "gestational_age_weeks": cards["ga"],
            "transfusion": cards["transfusion"],
            "parenteral_nutrition": cards["tpn"],
            "consent_cf": cards["consent"],
            "specimen_quality": pl.Series(cards["quality"], dtype=pl.String),
            "submitter": pl.Series(cards["submitter"], dtype=pl.String),
        }
    ).select(SPECIMEN_COLUMNS)


def _truth_frame(
    specimens: pl.DataFrame,
    affected: np.ndarray,
    cards: dict[str, np.ndarray],
    true: dict[str, np.ndarray],
    dna_failure: np.ndarray,
    card: np.ndarray,
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "specimen_id": specimens["specimen_id"],
            "baby_id": specimens["baby_id"],
            "affected": pl.Series(affected.tolist(), dtype=pl.String),
            "preterm": cards["ga"] < 32,
            "early": cards["age"] < 24,
            "tpn": cards["tpn"],
            "transfusion": cards["transfusion"],
            "dna_failure": dna_failure,
            "card": card.astype(np.int64),
            **{f"true_{c}": pl.Series(true[c]).fill_nan(None) for c in (*ANALYTES, *SECOND_TIER)},
        }
    )


def generate_cohort(
    n_cards: int,
    *,
    seed: int = 2026,
    start: dt.date = dt.date(2026, 1, 5),
    days: int | None = None,
    unsatisfactory_rate: float = 0.005,
    incidence_scale: float = 1.0,
    first_number: int = 1,
    min_affected: int = 0,
    punch_error_rate: float = 0.0,
    censored: bool = False,
) -> Cohort:
    """Draw ``n_cards`` first cards (one per baby) and their eleven first-tier results.

    ``days`` spreads births over that many days from ``start`` (default: about 18 cards a
    day, Luxembourg's pace); ``incidence_scale`` multiplies every incidence (e.g. 200 to
    see affected babies in a small cohort); ``min_affected`` plants babies until every
    condition has that many; ``first_number`` numbers the cards (and babies) from there,
    so that cohorts of successive days do not share ids; ``punch_error_rate``: gross punch
    errors; ``censored``: values past the measuring range as text (``>250``).
    """
    if n_cards < 1:
        raise ValueError("n_cards must be at least 1")
    rng = np.random.default_rng(seed)
    span = days if days is not None else max(1, math.ceil(n_cards / 18))
    cards = _draw_babies(rng, n_cards, start, span, unsatisfactory_rate)
    affected = _draw_affected(rng, n_cards, incidence_scale, min_affected)
    scid = affected == "SCID"
    true = _underlying(
        rng,
        ga=cards["ga"],
        age=cards["age"],
        low_weight=cards["weight"] < 1500,
        tpn=cards["tpn"],
        affected=affected,
        trec_absent=scid & (rng.random(n_cards) < SCID_TREC_UNDETERMINED),
    )
    first, persistent = first_punches(rng, true, error_rate=punch_error_rate)
    ids = np.arange(first_number, first_number + n_cards)
    specimens = _specimens_frame(ids, "B" + pl.Series(ids).cast(pl.String).str.zfill(8), cards)
    results = result_frame(specimens["specimen_id"], first, cards["measured"], 1)
    truth = _truth_frame(specimens, affected, cards, true, persistent, np.ones(n_cards))
    return Cohort(specimens, censor(results) if censored else results, truth)


def repeat_cards(
    cohort: Cohort,
    specimen_ids: Iterable[str],
    *,
    seed: int = 2026,
    requested_at: dt.datetime | None = None,
    unsatisfactory_rate: float = 0.005,
    punch_error_rate: float = 0.0,
    censored: bool = False,
) -> Cohort:
    """A new card of each baby of these cards (one per baby): a new ``specimen_id``, the
    same ``baby_id``, collected 7-14 days after the request (``requested_at``, default two
    days after the card's receipt), or at a corrected 32 weeks for a baby born before 32
    weeks, with its first-tier results drawn from the same truth at the new age (see the
    module docstring). Returns only the new cards; :func:`extend` adds them to a cohort."""
    asked = cards_of(cohort, specimen_ids).sort("baby_id", "collected_at")
    base = asked.unique("baby_id", keep="last", maintain_order=True)
    n = base.height
    rng = np.random.default_rng(seed)
    ga = base["gestational_age_weeks"].to_numpy()
    birth = base["birth_at"].to_numpy()
    request = (
        np.full(n, np.datetime64(requested_at, "us"))
        if requested_at is not None
        else base["received_at"].to_numpy() + hours(np.full(n, 48.0))
    )
    collected = request + hours(rng.uniform(7 * 24, 14 * 24, n))
    at_32_weeks = birth + hours((32 - ga) * 168.0 + rng.uniform(0, 7 * 24, n))
    collected = minutes(np.where(ga < 32, np.maximum(collected, at_32_weeks), collected))
    received = minutes(collected + hours(rng.uniform(12, 96, n)))
    cards = {
        "ga": ga,
        "weight": base["birth_weight_g"].fill_null(0).to_numpy(),
        "weight_missing": base["birth_weight_g"].is_null().to_numpy(),
        "birth": birth,
        "age": (collected - birth) / np.timedelta64(1, "h"),
        "collected": collected,
        "received": received,
        "measured": minutes(received + hours(rng.uniform(2, 30, n))),
        "transfusion": np.zeros(n, dtype=bool),
        "tpn": base["parenteral_nutrition"].to_numpy() & (ga < 32),
        "consent": base["consent_cf"].to_numpy(),
        "quality": _quality(rng, n, unsatisfactory_rate),
        "sex": base["sex"].to_numpy(),
        "submitter": base["submitter"].to_numpy(),
    }
    affected = np.array(base["affected"].to_list(), dtype=object)
    true = _underlying(
        rng,
        ga=ga,
        age=cards["age"],
        low_weight=np.zeros(n, dtype=bool),
        tpn=cards["tpn"],
        affected=affected,
        trec_absent=base["true_TREC"].is_null().to_numpy(),
    )
    first, persistent = first_punches(rng, true, error_rate=punch_error_rate)
    numbers = np.arange(n) + _next_number(cohort)
    specimens = _specimens_frame(numbers, base["baby_id"], cards)
    results = result_frame(specimens["specimen_id"], first, cards["measured"], 1)
    card = base["card"].to_numpy() + 1
    truth = _truth_frame(specimens, affected, cards, true, persistent, card)
    return Cohort(specimens, censor(results) if censored else results, truth)


def _next_number(cohort: Cohort) -> int:
    numbers = cohort.specimens["specimen_id"].str.strip_prefix("S").cast(pl.Int64, strict=False)
    return int(numbers.max() or 0) + 1  # type: ignore[arg-type]


def extend(cohort: Cohort, more: Cohort) -> Cohort:
    """The cohort with more cards (e.g. repeat cards) and their results and truth."""
    results = [cohort.results, more.results]
    if results[0].schema["value"] != results[1].schema["value"]:  # one censored: all text
        results = [r.with_columns(pl.col("value").cast(pl.String)) for r in results]
    return Cohort(
        pl.concat([cohort.specimens, more.specimens]),
        pl.concat(results),
        pl.concat([cohort.truth, more.truth]),
    )


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
    parser.add_argument("--min-affected", type=int, default=0)
    parser.add_argument("--punch-error-rate", type=float, default=0.0)
    parser.add_argument("--censored", action="store_true", help="'>250' past the range")
    args = parser.parse_args(argv)
    cohort = generate_cohort(
        args.cards,
        seed=args.seed,
        start=args.start,
        days=args.days,
        incidence_scale=args.incidence_scale,
        first_number=args.first_number,
        min_affected=args.min_affected,
        punch_error_rate=args.punch_error_rate,
        censored=args.censored,
    )
    for path in write_inbox(cohort, args.out, name=args.name, fmt=args.format):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
