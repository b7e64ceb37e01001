"""What the instruments report of a SYNTHETIC card: punches, DNA failures, measuring ranges.

:mod:`data_samples.generator` draws the babies and each card's underlying value per marker;
this module measures them: the first punch of every card, new punches of the same card
(:func:`retest_punches`), and the results as the instrument writes them.

Model (where a number is our assumption it says so):

* Each card has an underlying value per marker (the truth, ``true_<code>``); every punch,
  the first one included, is that value x the punch-to-punch variation (:data:`PUNCH_CV`),
  so the first punch's spread is the underlying spread and the punch spread together, and a
  retest disagrees with the first punch as it does in a laboratory. Punch CVs: TSH 9% (GSP
  and NS2400 neonatal TSH kits, intra/inter-assay CVs 4.3-15.7%: Int J Neonatal Screen
  2021;7:51); 17-OHP and IRT 10% and MS/MS amino acids 10%, acylcarnitines 12% (kit and
  proficiency-testing CVs of 5-15%; our middle values, assumed); qPCR 0.4 cycles SD
  (assumed, within the usual 0.3-0.5), hence TREC x 2^N(0, 0.4). A punch of a multiplexed
  assay (MS/MS, qPCR) shares 5% of punch-volume variation across its analytes (the spot's
  volume and haematocrit; George and Moat, Clin Chem 2016;62:466 show 15-24% for small
  spots): ratios vary less than markers.
* Optional gross errors (``punch_error_rate``, 0 by default): one result x or / 3-10, or a
  Ct +- 3-8 cycles (an internal-standard or pipetting fault of one analyte).
* DNA failures: 0.1% of qPCR punches; 30% of the failed first punches are of a card that
  fails at every punch (``dna_failure`` in the truth; assumed). Half the failed punches have
  no RPP30 amplification (RPP30, TREC and SMN1 empty with flag ``undetermined``), the other
  half a late RPP30 Ct 36-40 with SMN1 about 2 cycles later (undetermined past 40) and TREC
  0-3 (assumed shares).
* ``censored``: values beyond a kit's measuring range (:data:`MEASURING_RANGE`) are written
  as the instrument prints them (``>250``, ``<1``); the value column is then text.
* Retests (:func:`retest_punches`): measured 30-96 h after the card's receipt, on retest
  plates; a second-tier code (CF: PAP) is measured only when asked for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import polars as pl

from data_samples.cohort import Cohort

RESULT_COLUMNS = (
    "specimen_id", "analyte", "value", "unit", "measured_at", "instrument", "plate_id", "well",
    "replicate", "flag",
)  # fmt: skip

#: first-tier code -> (unit, instrument, decimals): eleven results per card
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
#: second-tier codes, measured only when asked for (CF: PAP after a raised IRT)
SECOND_TIER: dict[str, tuple[str, str, int]] = {"PAP": ("µg/L", "GSP-01", 2)}
#: code -> assay: the analytes of one assay are measured on one punch (MS/MS and qPCR are
#: multiplexed; each immunoassay takes its own punch)
ASSAY = {
    "PHE": "MSMS", "TYR": "MSMS", "C2": "MSMS", "C8": "MSMS", "C10": "MSMS", "TSH": "TSH",
    "OHP17": "OHP17", "IRT": "IRT", "PAP": "PAP", "SMN1": "QPCR", "RPP30": "QPCR",
    "TREC": "QPCR",
}  # fmt: skip
#: punch-to-punch variation: sd of ln value (about the CV), or Ct sd in cycles; sources in
#: the module docstring
PUNCH_CV = {
    "PHE": 0.10, "TYR": 0.10, "C2": 0.10, "C8": 0.12, "C10": 0.12, "TSH": 0.09,
    "OHP17": 0.10, "IRT": 0.10, "PAP": 0.10, "SMN1": 0.4, "RPP30": 0.4,
    "TREC": 0.4 * math.log(2),
}  # fmt: skip
#: sd of ln punch volume, shared by the analytes of one punch (part of PUNCH_CV)
PUNCH_VOLUME_SD = 0.05
QPCR_MAX_CT = 40.0  # the run's last cycle: later is "no amplification"
DNA_FAILURE_RATE = 0.001
DNA_FAILURE_PERSISTENT = 0.3
DNA_FAILURE_UNDETERMINED = 0.5
#: code -> (lower, upper) end of the kit's measuring range. Typical values, ASSUMED (kit
#: inserts differ by lot and platform): beyond them the instrument prints ``>250``, ``<1``.
MEASURING_RANGE: dict[str, tuple[float | None, float | None]] = {
    "TSH": (None, 250.0),
    "OHP17": (None, 300.0),
    "TREC": (1.0, None),
}
_QPCR = ("SMN1", "RPP30", "TREC")
#: codes reported as a cycle threshold: a punch moves them by cycles, not by a factor
_CT = frozenset(code for code, (unit, _, _) in {**ANALYTES, **SECOND_TIER}.items() if unit == "Ct")
_TRUE = tuple(f"true_{code}" for code in (*ANALYTES, *SECOND_TIER))


def hours(values: np.ndarray) -> np.ndarray:
    return (values * 3_600_000_000).astype("timedelta64[us]")


def minutes(values: np.ndarray) -> np.ndarray:
    return values.astype("datetime64[m]").astype("datetime64[us]")


def first_punches(
    rng: np.random.Generator, true: dict[str, np.ndarray], *, error_rate: float
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The first punch of each card for the eleven first-tier codes, and which cards fail
    DNA extraction at every punch (the truth's ``dna_failure``)."""
    n = len(next(iter(true.values())))
    first_fails = rng.random(n) < DNA_FAILURE_RATE
    # the cards failing at every punch are drawn among the first punch's failures, so that
    # first punches fail at DNA_FAILURE_RATE in all
    persistent = first_fails & (rng.random(n) < DNA_FAILURE_PERSISTENT)
    first = _punches(rng, true, list(ANALYTES), dna_failed=first_fails, error_rate=error_rate)
    return first, persistent


def _punches(
    rng: np.random.Generator,
    true: dict[str, np.ndarray],
    codes: Sequence[str],
    *,
    dna_failed: np.ndarray,
    error_rate: float,
) -> dict[str, np.ndarray]:
    """One punch of each card for ``codes``: the underlying value x the punch variation
    (a volume factor shared by the punch's analytes, then each analyte's own), gross
    errors at ``error_rate``, and the qPCR punches in ``dna_failed`` failing. NaN: no
    amplification."""
    n = dna_failed.size
    assays = dict.fromkeys(ASSAY[c] for c in codes)
    volume = {a: rng.normal(0.0, PUNCH_VOLUME_SD, n) for a in assays}
    out: dict[str, np.ndarray] = {}
    for code in codes:
        ct = code in _CT
        # more blood in the punch: more of every analyte, an earlier Ct
        shared, shared_sd = (
            (-volume[ASSAY[code]] / math.log(2), PUNCH_VOLUME_SD / math.log(2))
            if ct
            else (volume[ASSAY[code]], PUNCH_VOLUME_SD)
        )
        noise = shared + rng.normal(0.0, math.sqrt(PUNCH_CV[code] ** 2 - shared_sd**2), n)
        if error_rate > 0:
            sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
            size = rng.uniform(3, 8, n) if ct else rng.uniform(math.log(3), math.log(10), n)
            noise = noise + np.where(rng.random(n) < error_rate, sign * size, 0.0)
        if ct:
            value = true[code] + noise
            out[code] = np.where(value > QPCR_MAX_CT, np.nan, value)
        else:
            out[code] = true[code] * np.exp(noise)
    if any(code in _QPCR for code in codes):
        _fail_dna(rng, out, dna_failed)
    return out


def _fail_dna(rng: np.random.Generator, out: dict[str, np.ndarray], failed: np.ndarray) -> None:
    """Failed qPCR punches: no amplification at all, or a late reference gene."""
    n = failed.size
    none = failed & (rng.random(n) < DNA_FAILURE_UNDETERMINED)
    late = failed & ~none
    rpp30 = rng.uniform(36, 40, n)
    smn1 = rpp30 + rng.normal(2.0, 0.4, n)
    new = {
        "RPP30": np.where(late, rpp30, np.nan),
        "SMN1": np.where(late & (smn1 <= QPCR_MAX_CT), smn1, np.nan),
        "TREC": np.where(late, rng.uniform(0, 3, n), np.nan),
    }
    for code in _QPCR:
        if code in out:
            out[code] = np.where(failed, new[code], out[code])


def result_frame(
    specimen_ids: pl.Series,
    values: dict[str, np.ndarray],
    measured: np.ndarray,
    replicate: int,
    plate: str = "P",
) -> pl.DataFrame:
    """Long results of one punch per card, card by card in the order given, the codes in
    the order of ``values``; the plate and well follow the card's place in the delivery
    (96 wells a plate). No value: no amplification (flag ``undetermined``)."""
    meta = {**ANALYTES, **SECOND_TIER}
    codes = list(values)
    n, k = specimen_ids.len(), len(codes)
    card = np.repeat(np.arange(n), k)
    code = pl.Series(np.tile(np.arange(k), n))

    def per_code(i: int) -> pl.Series:
        return code.replace_strict(
            {j: meta[c][i] for j, c in enumerate(codes)}, return_dtype=pl.String
        )

    rounded = np.column_stack([np.round(values[c], meta[c][2]) for c in codes]).ravel()
    return (
        pl.DataFrame(
            {
                "specimen_id": specimen_ids.gather(card),
                "analyte": code.replace_strict(dict(enumerate(codes)), return_dtype=pl.String),
                "value": pl.Series(rounded).fill_nan(None),
                "unit": per_code(0),
                "measured_at": measured[card],
                "instrument": per_code(1),
                "card": card,
            }
        )
        .with_columns(
            # a plate holds 96 cards measured on one day by one instrument, in their order
            plate_id=pl.format(
                "{}{}-{}-{}",
                pl.lit(plate),
                pl.col("measured_at").dt.strftime("%y%m%d"),
                pl.col("instrument"),
                (
                    pl.col("card").rank("dense").over(pl.col("measured_at").dt.date(), "instrument")
                    // 96
                    + 1
                )
                .cast(pl.String)
                .str.zfill(4),
            ),
            well=pl.format(
                "{}{}",
                pl.lit("ABCDEFGH").str.slice(pl.col("card") % 96 // 12, 1),
                (pl.col("card") % 12 + 1).cast(pl.String).str.zfill(2),
            ),
            replicate=pl.lit(replicate, dtype=pl.Int64),
            flag=pl.when(pl.col("value").is_null()).then(pl.lit("undetermined")),
        )
        .select(RESULT_COLUMNS)
    )


def censor(results: pl.DataFrame) -> pl.DataFrame:
    """The results as the instrument prints them: a value past its kit's measuring range
    (:data:`MEASURING_RANGE`) as ``>250`` or ``<1``; the value column becomes text."""
    value = pl.col("value")
    text = value.cast(pl.String)
    for code, (low, high) in MEASURING_RANGE.items():
        is_code = pl.col("analyte") == code
        if high is not None:
            text = pl.when(is_code & (value > high)).then(pl.lit(f">{high:g}")).otherwise(text)
        if low is not None:
            text = pl.when(is_code & (value < low)).then(pl.lit(f"<{low:g}")).otherwise(text)
    return results.with_columns(value=text)


def cards_of(cohort: Cohort, specimen_ids: Iterable[str]) -> pl.DataFrame:
    """The asked cards (sorted, so that the draw does not depend on the order asked in)
    with their specimen fields and truth."""
    wanted = pl.DataFrame(
        {"specimen_id": sorted(set(specimen_ids))}, schema={"specimen_id": pl.String}
    )
    cards = wanted.join(cohort.specimens, on="specimen_id", how="left", maintain_order="left")
    cards = cards.join(
        cohort.truth.drop("baby_id"), on="specimen_id", how="left", maintain_order="left"
    )
    unknown = cards.filter(pl.col("baby_id").is_null())["specimen_id"]
    if unknown.len():
        raise ValueError(f"cards not in the cohort: {unknown.head(5).to_list()}")
    return cards


def _true_arrays(cards: pl.DataFrame) -> dict[str, np.ndarray]:
    return {
        t.removeprefix("true_"): cards[t].cast(pl.Float64).fill_null(np.nan).to_numpy()
        for t in _TRUE
    }


def retest_punches(
    cohort: Cohort,
    specimen_ids: Iterable[str],
    *,
    replicates: Sequence[int] = (2, 3),
    analytes: Sequence[str] | None = None,
    seed: int = 2026,
    punch_error_rate: float = 0.0,
    censored: bool = False,
) -> pl.DataFrame:
    """New punches of the same cards (retests in duplicate by default), drawn around each
    card's underlying value (``cohort.truth``) with the punch-to-punch variation, as the
    first punch was. ``analytes``: the codes to measure (default the eleven first-tier
    ones; a second-tier code such as ``PAP`` gives its first measurement with
    ``replicates=(1,)``). Measured 30-96 h after the card's receipt, on retest plates."""
    codes = list(analytes) if analytes is not None else list(ANALYTES)
    unknown_codes = set(codes) - set(ASSAY)
    if unknown_codes:
        raise ValueError(f"no model for {sorted(unknown_codes)}")
    cards = cards_of(cohort, specimen_ids)
    rng = np.random.default_rng(seed)
    true = _true_arrays(cards)
    received = cards["received_at"].to_numpy()
    frames = []
    for replicate in replicates:
        failed = cards["dna_failure"].to_numpy() | (rng.random(cards.height) < DNA_FAILURE_RATE)
        values = _punches(rng, true, codes, dna_failed=failed, error_rate=punch_error_rate)
        measured = minutes(received + hours(rng.uniform(30, 96, cards.height)))
        frames.append(result_frame(cards["specimen_id"], values, measured, replicate, "R"))
    if not frames:
        raise ValueError("no replicate asked for")
    results = pl.concat(frames).sort("specimen_id", maintain_order=True)
    return censor(results) if censored else results
