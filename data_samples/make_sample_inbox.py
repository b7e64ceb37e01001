"""Write the committed sample inbox (``sample_inbox/``) from the case table below.

Run ``python -m data_samples.make_sample_inbox`` after changing a case; the files are
committed so the end-to-end tests and ``nbs demo`` read exactly what is reviewed here.
The expected outcome of every case is written by hand in ``expected_calls.csv``,
``expected_recalls.csv`` and ``expected_quarantine.csv``, not computed by this script.

All data are synthetic.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

from data_samples import SAMPLE_INBOX
from data_samples.cohort import Cohort

BIRTH = dt.datetime(2026, 3, 1, 8, 30)

#: A typical first punch of a healthy term baby (catalogue units).
NORMAL = {
    "PHE": 55.0,
    "TYR": 72.0,
    "C2": 22.5,
    "C8": 0.05,
    "C10": 0.06,
    "TSH": 2.1,
    "OHP17": 6.0,
    "IRT": 24.0,
    "SMN1": 27.1,
    "RPP30": 25.2,
    "TREC": 115.0,
}
MSMS = ("PHE", "TYR", "C2", "C8", "C10")
GSP = ("TSH", "OHP17", "IRT")
QPCR = ("SMN1", "RPP30", "TREC")
UNITS = {
    "PHE": "µmol/L",
    "TYR": "µmol/L",
    "C2": "µmol/L",
    "C8": "µmol/L",
    "C10": "µmol/L",
    "TSH": "mU/L",
    "OHP17": "nmol/L",
    "IRT": "ng/mL",
    "SMN1": "Ct",
    "RPP30": "Ct",
    "TREC": "copies/µL",
    "CAH_RATIO": "ratio",
    "PAP": "µg/L",
    "SMN2_COPIES": "copies",
}
UNDET = "undetermined"  # qPCR: no amplification (empty value, flag undetermined)

# (specimen_id, age at collection h, card overrides, first-punch overrides, retests)
# retests: {analyte: [replicate 2 value, replicate 3 value]}
Case = tuple[str, float, dict[str, object], dict[str, object], dict[str, list[object]]]
CASES: list[Case] = [
    ("S-N01", 52, {}, {}, {}),
    ("S-N02", 60, {"sex": "F", "consent_cf": False}, {}, {}),
    # reported in other units and under aliases (converted: 0.9 mg/dL Phe = 54.5 µmol/L)
    (
        "S-N03",
        49,
        {},
        {
            "PHE": ("Phenylalanine", 0.9, "mg/dL"),
            "TSH": ("hTSH", 3.0, "µIU/mL"),
            "OHP17": ("17-OHP", 2.0, "ng/mL"),
        },
        {},
    ),
    # PKU: clearly abnormal, confirmed by the duplicate -> urgent referral
    ("S-PKU1", 55, {}, {"PHE": 720.0, "TYR": 45.0}, {"PHE": [700.0, 712.0], "TYR": [48.0, 44.0]}),
    # PKU: borderline on the duplicate -> repeat card
    ("S-PKU2", 58, {}, {"PHE": 190.0, "TYR": 80.0}, {"PHE": [185.0, 180.0], "TYR": [85.0, 82.0]}),
    # PKU: first punch high, duplicate not yet done -> on the retest worklist (urgent)
    ("S-PKU3", 50, {}, {"PHE": 260.0, "TYR": 60.0}, {}),
    # PKU: first punch high, the duplicate is normal -> negative (cleared)
    ("S-PKU4", 62, {}, {"PHE": 160.0, "TYR": 70.0}, {"PHE": [100.0, 104.0], "TYR": [70.0, 72.0]}),
    # parenteral nutrition: Phe and Tyr both raised, ratio normal: not PKU by the ratio,
    # but a Phe at the UK limit (240) is never cleared -> retest, then at least a new card
    (
        "S-TPN1",
        70,
        {"parenteral_nutrition": True, "gestational_age_weeks": 35, "birth_weight_g": 2300},
        {"PHE": 260.0, "TYR": 230.0},
        {},
    ),
    # PKU: exactly at the retest limits (limits are inclusive) -> retest
    ("S-PKU5", 54, {}, {"PHE": 120.0, "TYR": 80.0}, {}),
    # CH: clearly abnormal, confirmed -> urgent referral
    ("S-CH1", 51, {}, {"TSH": 85.0}, {"TSH": [80.0, 90.0]}),
    # CH: collected at 80 h (band 72-120 h), borderline on the duplicate -> repeat card
    ("S-CH2", 80, {}, {"TSH": 17.0}, {"TSH": [16.5, 17.5]}),
    # CH: first punch at the 0-72 h retest limit, duplicate pending -> retest
    ("S-CH3", 50, {}, {"TSH": 16.0}, {}),
    # collected at 18 h: repeat card; TSH surge on the first punch -> retest as well
    ("S-EARLY", 18, {}, {"TSH": 25.0, "PHE": 40.0}, {}),
    # unsatisfactory card, normal results: repeat card; negatives not conclusive
    ("S-UNSAT", 53, {"specimen_quality": "insufficient"}, {}, {}),
    # transfusion before collection: repeat card
    ("S-TRANSF", 57, {"transfusion": True}, {}, {}),
    # born at 29 weeks: the configured repeat card
    (
        "S-PRE1",
        72,
        {"gestational_age_weeks": 29, "birth_weight_g": 1250},
        {"OHP17": 25.0, "TREC": 60.0},
        {},
    ),
    # born at 30 weeks with a clearly abnormal TSH: referred at once, plus the repeat card
    ("S-PRE2", 60, {"gestational_age_weeks": 30, "birth_weight_g": 1400}, {"TSH": 45.0}, {}),
    # no tyrosine result on the card -> PKU not evaluated (never negative)
    ("S-NOTYR", 56, {}, {"TYR": None}, {}),
    # kept, with warnings: weight implausible for gestation; weight missing
    ("S-WARN", 52, {"gestational_age_weeks": 40, "birth_weight_g": 900}, {}, {}),
    ("S-NOWT", 52, {"birth_weight_g": None, "gestational_age_weeks": None}, {}, {}),
    # bad result rows (see expected_quarantine.csv): TSH "high", TSH in furlongs
    ("S-BADVAL", 52, {}, {"TSH": ("TSH", "high", "mU/L")}, {}),
    ("S-BADUNIT", 52, {}, {"TSH": ("TSH", 3.0, "furlongs")}, {}),
    # CAH: confirmed by the duplicate, no second tier -> urgent referral
    ("S-CAH1", 54, {}, {"OHP17": 120.0}, {"OHP17": [115.0, 125.0]}),
    # CAH: borderline on the duplicate (term stratum 30-60) -> repeat card
    ("S-CAH2", 54, {}, {"OHP17": 40.0}, {"OHP17": [38.0, 42.0]}),
    # CAH: 80 nmol/L in a 30-week, 1,300 g baby is below the preterm stratum -> negative
    ("S-CAH3", 60, {"gestational_age_weeks": 30, "birth_weight_g": 1300}, {"OHP17": 80.0}, {}),
    # CAH: borderline first tier (30-60) cleared by the LC-MS/MS ratio 0.8 (< 2.5) -> negative
    ("S-CAH4", 55, {}, {"OHP17": 45.0, "CAH_RATIO": 0.8}, {"OHP17": [44.0, 46.0]}),
    # CAH: positive first tier confirmed by the ratio 3.1 -> urgent referral
    ("S-CAH5", 55, {}, {"OHP17": 70.0, "CAH_RATIO": 3.1}, {"OHP17": [66.0, 74.0]}),
    # MCAD: C8 1.8 with both ratios high, duplicates agree -> urgent referral
    (
        "S-MCAD1",
        50,
        {},
        {"C8": 1.8, "C10": 0.2, "C2": 20.0},
        {"C8": [1.7, 1.9], "C10": [0.2, 0.21], "C2": [21.0, 19.0]},
    ),
    # MCAD: C8 raised under parenteral nutrition but both ratios normal -> negative
    (
        "S-MCAD2",
        66,
        {"parenteral_nutrition": True, "gestational_age_weeks": 36, "birth_weight_g": 2600},
        {"C8": 0.4, "C10": 0.35, "C2": 40.0},
        {},
    ),
    # MCAD: C8 0.4 with C8/C10 4 on the duplicates: borderline -> repeat card
    (
        "S-MCAD3",
        52,
        {},
        {"C8": 0.4, "C10": 0.1},
        {"C8": [0.41, 0.39], "C10": [0.1, 0.1], "C2": [22.0, 23.0]},
    ),
    # SCID: TREC 20 (<= 24, > 15) with a valid reference on the duplicates -> repeat card
    ("S-SCID3", 52, {}, {"TREC": 20.0}, {"TREC": [19.0, 21.0], "RPP30": [25.1, 25.3]}),
    # CF: IRT positive, PAP 3.5 (IRT >= 60 and PAP >= 3.0) -> urgent referral
    ("S-CF1", 52, {}, {"IRT": 80.0, "PAP": 3.5}, {"IRT": [78.0, 82.0]}),
    # CF: IRT positive, no PAP yet -> the call asks for it (retest), never negative
    ("S-CF2", 52, {}, {"IRT": 90.0}, {"IRT": [88.0, 92.0]}),
    # CF: IRT >= 124 failsafe -> referral to DNA directly, PAP not needed
    ("S-CF3", 52, {}, {"IRT": 150.0}, {"IRT": [148.0, 152.0]}),
    # CF: the same IRT without parental consent -> not evaluated
    ("S-CF4", 52, {"consent_cf": False}, {"IRT": 150.0}, {}),
    # CF: IRT 70 with PAP 1.5 (neither combination) -> cleared by the second tier
    ("S-CF5", 52, {}, {"IRT": 70.0, "PAP": 1.5}, {"IRT": [69.0, 71.0]}),
    # SMA: no SMN1 amplification with a valid reference, confirmed; 2 SMN2 copies -> referral
    (
        "S-SMA1",
        52,
        {},
        {"SMN1": UNDET, "SMN2_COPIES": 2.0},
        {"SMN1": [UNDET, UNDET], "RPP30": [25.3, 24.9]},
    ),
    # SMA: neither SMN1 nor the reference amplified: a DNA failure -> retest, not referral
    ("S-SMA2", 52, {}, {"SMN1": UNDET, "RPP30": UNDET}, {}),
    # SCID: TREC 2 copies/µL with a valid reference, confirmed -> urgent referral
    ("S-SCID1", 52, {}, {"TREC": 2.0}, {"TREC": [3.0, 1.0], "RPP30": [25.0, 25.4]}),
    # SCID: low TREC with a failed reference, still failed on the retests -> repeat card
    ("S-SCID2", 52, {}, {"TREC": 1.0, "RPP30": 38.0}, {"TREC": [1.0, 0.5], "RPP30": [37.0, 39.0]}),
]

# collected before SCID joined the panel: judged by LNS-2024.1, no SCID call at all
EARLY_BIRTH = dt.datetime(2025, 12, 28, 10, 0)
BEFORE_SCID: Case = (
    "S-SCID0",
    50,
    {
        "birth_at": EARLY_BIRTH.isoformat(),
        "collected_at": (EARLY_BIRTH + dt.timedelta(hours=50)).isoformat(),
        "received_at": (EARLY_BIRTH + dt.timedelta(hours=70)).isoformat(),
    },
    {"TREC": 2.0},
    {},
)
CASES.append(BEFORE_SCID)
TIER2 = ("CAH_RATIO", "PAP", "SMN2_COPIES")

# cards with bad rows: kept in quarantine, their results wait (pending) for a corrected card
BAD_CARDS: list[dict[str, str | None]] = [
    {"specimen_id": "S-BAD1", "collected_at": "2026-02-28T10:00:00"},  # before birth
    {"specimen_id": "S-BAD2", "birth_weight_g": "45000"},  # impossible weight
    {"specimen_id": "S-BAD3", "sex": None},  # required field missing
]
# results whose card has not arrived yet (it comes in a later delivery)
LATE = "S-LATE"


def _card(specimen_id: str, age_h: float, overrides: dict[str, object]) -> dict[str, object]:
    n = int("".join(ch for ch in specimen_id if ch.isdigit()) or 0)
    collected = BIRTH + dt.timedelta(hours=age_h)
    card: dict[str, object] = {
        "specimen_id": specimen_id,
        "baby_id": "B" + specimen_id[2:],
        "birth_at": BIRTH.isoformat(),
        "collected_at": collected.isoformat(),
        "received_at": (collected + dt.timedelta(hours=20)).isoformat(),
        "sex": "M" if n % 2 else "F",
        "birth_weight_g": 3350,
        "gestational_age_weeks": 39,
        "transfusion": False,
        "parenteral_nutrition": False,
        "consent_cf": True,
        "specimen_quality": "ok",
        "submitter": "CHL",
    }
    card.update(overrides)
    return {
        k: (None if v is None else str(v).lower() if isinstance(v, bool) else str(v))
        for k, v in card.items()
    }


def _result(
    specimen_id: str,
    code: str,
    value: object,
    replicate: int,
    measured: dt.datetime,
    name: str | None = None,
    unit: str | None = None,
) -> dict[str, object]:
    flag = None
    if value == UNDET:
        value, flag = None, UNDET
    instrument = (
        "LCMSMS-01"
        if code == "CAH_RATIO"
        else "MSMS-01"
        if code in MSMS
        else "GSP-01"
        if code in GSP or code == "PAP"
        else "QPCR-01"
    )
    return {
        "specimen_id": specimen_id,
        "analyte": name or code,
        "value": None if value is None else str(value),
        "unit": unit or UNITS[code],
        "measured_at": measured.isoformat(),
        "instrument": instrument,
        "plate_id": f"P260302-{instrument}-{replicate}",
        "well": None,
        "replicate": str(replicate),
        "flag": flag,
    }


def build() -> dict[str, pl.DataFrame]:
    """The sample inbox's frames by file name (all text, as an instrument would write)."""
    cards = [_card(sid, age, ov) for sid, age, ov, _, _ in CASES]
    for bad in BAD_CARDS:
        card = _card(str(bad["specimen_id"]), 52, {})
        card.update({k: None if v is None else str(v) for k, v in bad.items()})
        cards.append(card)
    measured = dt.datetime(2026, 3, 6, 9, 0)
    groups: dict[str, list[dict[str, object]]] = {
        "msms": [],
        "gsp": [],
        "qpcr": [],
        "retests": [],
        "tier2": [],
    }
    ids = [c[0] for c in CASES] + [str(b["specimen_id"]) for b in BAD_CARDS] + [LATE]
    first = {c[0]: c[3] for c in CASES}
    for sid in ids:
        for code, normal in NORMAL.items():
            spec = first.get(sid, {}).get(code, normal)
            if spec is None:
                continue
            name, value, unit = spec if isinstance(spec, tuple) else (None, spec, None)
            group = "msms" if code in MSMS else "gsp" if code in GSP else "qpcr"
            groups[group].append(_result(sid, code, value, 1, measured, name, unit))
        for code in TIER2:
            if code in first.get(sid, {}):
                groups["tier2"].append(_result(sid, code, first[sid][code], 1, measured))
    later = measured + dt.timedelta(hours=5)
    for sid, _, _, _, retests in CASES:
        for code, values in retests.items():
            for i, value in enumerate(values, start=2):
                groups["retests"].append(_result(sid, code, value, i, later))
    text = {k: pl.DataFrame(v, schema=dict.fromkeys(v[0], pl.String)) for k, v in groups.items()}
    # a bad row of an unknown analyte in the MS/MS export
    text["msms"] = pl.concat(
        [
            text["msms"],
            pl.DataFrame(
                [_result("S-N01", "PHE", "12.0", 1, measured, name="Xle", unit="µmol/L")],
                schema=dict.fromkeys(text["msms"].columns, pl.String),
            ),
        ]
    )
    qpcr = text["qpcr"].with_columns(
        pl.col("value").cast(pl.Float64),
        pl.col("replicate").cast(pl.Int64),
        pl.col("measured_at").str.to_datetime(),
    )
    return {
        "20260302.specimens.csv": pl.DataFrame(cards, schema=dict.fromkeys(cards[0], pl.String)),
        "20260302-msms.results.csv": text["msms"],
        "20260302-gsp.results.csv": text["gsp"],
        "20260302-qpcr.results.parquet": qpcr,
        "20260302-retests.results.csv": text["retests"],
        "20260302-tier2.results.csv": text["tier2"],
    }


GARBAGE = b"\x89PNG\r\n\x1a\n this is not a results export \x00\x01\x02"


#: a repeat card: (first card's specimen id, repeat specimen id, age at collection h,
#: card overrides, punch overrides: a value, or a list of values for punches 1, 2, ...)
Repeat = tuple[str, str, float, dict[str, object], dict[str, object]]


def write_repeat_delivery(
    folder: Path, repeats: list[Repeat], stem: str = "20260310"
) -> list[Path]:
    """Write a later delivery of repeat cards (same baby as the first card, new specimen id)
    with their first punches, as the lab would receive them a week on."""
    folder.mkdir(parents=True, exist_ok=True)
    cards, rows = [], []
    for first_id, repeat_id, age_h, card_overrides, punch in repeats:
        card = _card(repeat_id, age_h, {"baby_id": "B" + first_id[2:], **card_overrides})
        cards.append(card)
        measured = dt.datetime.fromisoformat(str(card["collected_at"])) + dt.timedelta(days=1)
        for code, normal in NORMAL.items():
            values = punch.get(code, normal)
            for i, value in enumerate(values if isinstance(values, list) else [values], 1):
                rows.append(_result(repeat_id, code, value, i, measured))
    paths = [folder / f"{stem}.specimens.csv", folder / f"{stem}.results.csv"]
    pl.DataFrame(cards, schema=dict.fromkeys(cards[0], pl.String)).write_csv(paths[0])
    pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String)).write_csv(paths[1])
    return paths


def write(folder: Path = SAMPLE_INBOX) -> list[Path]:
    """Write the sample inbox (and one unreadable file) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in build().items():
        path = folder / name
        if name.endswith(".parquet"):
            frame.write_parquet(path)
        else:
            frame.write_csv(path)
        paths.append(path)
    broken = folder / "20260302-broken.results.csv"
    broken.write_bytes(GARBAGE)
    paths.append(broken)
    return paths


if __name__ == "__main__":
    for p in write():
        print(p)


#: the inbox columns that hold a time of the card (the baby's, the sample's, the courier's)
CARD_TIMES = ("birth_at", "collected_at", "received_at", "last_transfusion_at")
HOUR = dt.timedelta(hours=1)


def copy_recent(dest: Path, now: dt.datetime, source: Path = SAMPLE_INBOX) -> dt.timedelta:
    """Copy the sample inbox into ``dest`` dated as a laboratory's last days before ``now``.

    The quality indicators measure to the time a card is reported (the run, ``now``), so
    the sample's own dates would read as months late. Its measurements move by whole hours
    to end an hour or two before ``now``; its cards (birth, collection, receipt) by as
    much plus the hours the sample leaves between its last receipt and its first
    measurement, so that the laboratory measured the morning after the last card came
    in. Ages at collection and times in transit stay as they are, and with them the
    calls; the card collected before SCID joined the panel keeps its dates (moved, it
    would be judged by the newer cutoff set). Texts that are not times (the cases held in
    quarantine) are copied as they are. Returns the cards' shift."""
    dest.mkdir(parents=True, exist_ok=True)
    files = [p for p in sorted(source.iterdir()) if p.is_file()]
    frames = {
        p: _read(p) for p in files if p.suffix in (".csv", ".parquet") and "broken" not in p.name
    }
    measured = pl.concat(
        [_times(f, "measured_at") for f in frames.values() if "measured_at" in f.columns]
    )
    received = pl.concat(
        [_times(f, "received_at") for f in frames.values() if "received_at" in f.columns]
    )
    results_shift = _whole_hours(now - HOUR - _when(measured.max()))
    lead = _whole_hours(_when(measured.min()) - _when(received.max()) - HOUR)
    cards_shift = results_shift + lead
    for path in files:
        if path not in frames:
            shutil.copy2(path, dest / path.name)
            continue
        frame = frames[path]
        moved = frame.with_columns(
            pl.when(pl.col("specimen_id") == BEFORE_SCID[0])
            .then(pl.col(c))
            .otherwise(_shifted(frame, c, cards_shift))
            for c in CARD_TIMES
            if c in frame.columns
        )
        if "measured_at" in frame.columns:
            moved = moved.with_columns(_shifted(frame, "measured_at", results_shift))
        if path.suffix == ".csv":
            moved.write_csv(dest / path.name)
        else:
            moved.write_parquet(dest / path.name)
    return cards_shift


def _read(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False) if path.suffix == ".csv" else pl.read_parquet(path)


def _times(frame: pl.DataFrame, column: str) -> pl.Series:
    """A column's times (a text that is not one, a case in quarantine, left out)."""
    values = frame[column]
    if values.dtype == pl.String:
        values = values.str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False)
    return values.drop_nulls()


def _when(value: object) -> dt.datetime:
    assert isinstance(value, dt.datetime), value
    return value


def _whole_hours(span: dt.timedelta) -> dt.timedelta:
    return max(dt.timedelta(0), span // HOUR * HOUR)


def _shifted(frame: pl.DataFrame, column: str, shift: dt.timedelta) -> pl.Expr:
    if frame.schema[column] != pl.String:
        return pl.col(column) + shift
    when = pl.col(column).str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False)
    return pl.coalesce((when + shift).dt.strftime("%Y-%m-%dT%H:%M:%S"), pl.col(column))


def measured_recently(cohort: Cohort, now: dt.datetime, seed: int) -> Cohort:
    """The cohort with each card's times (birth, collection, receipt, measurement) moved
    together so that its results were measured 1 to 24 hours before ``now``: ages,
    transit and laboratory times as drawn, each card reported by the next run as a
    laboratory would report it (the generator dates births from a start day on)."""
    rng = np.random.default_rng(seed)
    last = cohort.results.group_by("specimen_id").agg(pl.col("measured_at").max())
    last = last.sort("specimen_id")  # the draws go to the same cards every time
    minutes = np.round(rng.uniform(60, 24 * 60, last.height)).astype(np.int64)
    # the generator's times are whole minutes: so are the shifts
    target = pl.lit(now.replace(second=0, microsecond=0)) - pl.duration(
        minutes=pl.lit(pl.Series(minutes))
    )
    shifts = last.select("specimen_id", shift=target - pl.col("measured_at"))

    def moved(frame: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
        present = [c for c in columns if c in frame.columns]
        return (
            frame.join(shifts, on="specimen_id", how="left")
            .with_columns(pl.col(c) + pl.col("shift").fill_null(dt.timedelta(0)) for c in present)
            .drop("shift")
        )

    return replace(
        cohort,
        specimens=moved(cohort.specimens, CARD_TIMES),
        results=moved(cohort.results, ("measured_at",)),
    )
