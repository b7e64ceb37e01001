"""Turn the hand-written clinical case table (``clinical_cases.yaml``) into inbox files.

Each case of the table is a baby (or a few) whose cards and results arrive in one to three
deliveries. :func:`write_delivery` writes deliveries as the two canonical inbox files,
``STEM.specimens.csv`` and ``STEM.results.csv`` (see ``README.md`` here), every value as
text exactly as the table writes it: censored texts (``>300``, ``OOR >``, ``>1,5``) and
no-amplification texts (``Undetermined``, ``No Amp``) reach the pipeline as an instrument
would send them.

The table is read with every scalar as text (PyYAML's ``BaseLoader``: ``0.050`` stays
``0.050``, ``true`` stays ``true``), and a key given twice in one mapping is refused. An
empty text (``""``) is an empty cell.

Run ``python -m data_samples.clinical_cases OUT`` to write every case's deliveries into
``OUT/CASE/N-STEM/`` (one inbox per delivery) for a look or a manual ``nbs run``.

All data are synthetic.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from data_samples import HERE
from nbs.yamlfile import load_yaml

CASES_FILE = HERE / "clinical_cases.yaml"

#: the card columns, in the contract's order
SPECIMEN_COLUMNS = (
    "specimen_id",
    "baby_id",
    "birth_at",
    "collected_at",
    "received_at",
    "sex",
    "birth_weight_g",
    "gestational_age_weeks",
    "transfusion",
    "last_transfusion_at",
    "parenteral_nutrition",
    "consent_cf",
    "specimen_quality",
    "submitter",
)
#: the result columns, in the contract's order
RESULT_COLUMNS = (
    "specimen_id",
    "analyte",
    "value",
    "unit",
    "measured_at",
    "instrument",
    "plate_id",
    "well",
    "replicate",
    "flag",
)
#: the instrument that measures each analyte (an inbox row names it)
INSTRUMENT = {
    **dict.fromkeys(("PHE", "TYR", "C2", "C8", "C10"), "MSMS-01"),
    **dict.fromkeys(("TSH", "OHP17", "IRT", "PAP"), "GSP-01"),
    **dict.fromkeys(("SMN1", "RPP30", "TREC", "SMN2_COPIES"), "QPCR-01"),
    "CAH_RATIO": "LCMSMS-01",
}
CLASSES = (
    "qpcr_absent",
    "censored",
    "disagreement",
    "repeat_answers",
    "escalation",
    "limits_failsafe",
    "specimen_rules",
    "corrections",
)


class CaseTableError(ValueError):
    """The case table is malformed; the message names the case and the problem."""


@dataclass(frozen=True)
class Delivery:
    """One delivery of a case: its cards, its results by card, and the outcomes expected
    once it has been run (``None``: not checked after this delivery)."""

    at: str
    cards: tuple[dict[str, str | None], ...]
    results: tuple[dict[str, str | None], ...]
    expect: dict[str, Any] | None

    @property
    def stem(self) -> str:
        """The file name stem of the delivery (its date, ``20260305``)."""
        return self.at[:10].replace("-", "")


@dataclass(frozen=True)
class Case:
    id: str
    cls: str
    description: str
    source: str
    deliveries: tuple[Delivery, ...]

    def cards_until(self, index: int) -> list[dict[str, str | None]]:
        """The cards delivered up to and including delivery ``index``."""
        return [card for d in self.deliveries[: index + 1] for card in d.cards]


def _text(value: Any, where: str) -> str | None:
    if not isinstance(value, str):
        raise CaseTableError(f"{where}: expected a text, got {value!r}")
    return value if value != "" else None


def _card(raw: Any, defaults: dict[str, str], where: str) -> dict[str, str | None]:
    if not isinstance(raw, dict):
        raise CaseTableError(f"{where}: a card is a mapping")
    unknown = set(raw) - set(SPECIMEN_COLUMNS)
    if unknown:
        raise CaseTableError(f"{where}: unknown card fields {sorted(unknown)}")
    merged = {**defaults, **raw}
    missing = {"specimen_id", "baby_id", "birth_at", "collected_at", "received_at"} - set(raw)
    if missing:
        raise CaseTableError(f"{where}: the card must give {sorted(missing)}")
    return {c: _text(merged.get(c, ""), f"{where}.{c}") for c in SPECIMEN_COLUMNS}


def _row(raw: Any, where: str) -> tuple[str, str | None, str, str, str | None]:
    """``[analyte, value, unit, replicate]`` or ``[..., flag]`` as text."""
    if not isinstance(raw, list) or len(raw) not in (4, 5):
        raise CaseTableError(f"{where}: a result row is [analyte, value, unit, replicate, flag?]")
    analyte, value, unit, replicate = (_text(x, where) for x in raw[:4])
    flag = _text(raw[4], where) if len(raw) == 5 else None
    if analyte is None or unit is None or replicate is None:
        raise CaseTableError(f"{where}: analyte, unit and replicate are required")
    return analyte, value, unit, replicate, flag


def _results(
    raw: Any, at: str, panels: dict[str, list[Any]], where: str
) -> list[dict[str, str | None]]:
    """A delivery's results: per card, a panel's first punch (less ``omit``, with each of
    ``rows`` replacing the panel row of the same analyte and replicate, or added)."""
    if not isinstance(raw, dict):
        raise CaseTableError(f"{where}: results are a mapping of specimen id to rows")
    out: list[dict[str, str | None]] = []
    for specimen_id, spec in raw.items():
        here = f"{where}.{specimen_id}"
        if not isinstance(spec, dict) or set(spec) - {"panel", "omit", "rows"}:
            raise CaseTableError(f"{here}: give panel, omit and/or rows")
        rows: dict[tuple[str, str], tuple[str, str | None, str, str, str | None]] = {}
        if "panel" in spec:
            if spec["panel"] not in panels:
                raise CaseTableError(f"{here}: unknown panel {spec['panel']!r}")
            for i, r in enumerate(panels[spec["panel"]]):
                analyte, value, unit = (_text(x, f"panel {spec['panel']}[{i}]") for x in r)
                assert analyte is not None and unit is not None
                rows[(analyte, "1")] = (analyte, value, unit, "1", None)
        for analyte in spec.get("omit", []):
            if rows.pop((analyte, "1"), None) is None:
                raise CaseTableError(f"{here}: omit {analyte!r} is not in the panel")
        for i, r in enumerate(spec.get("rows", [])):
            row = _row(r, f"{here}.rows[{i}]")
            rows[(row[0], row[3])] = row
        for analyte, value, unit, replicate, flag in rows.values():
            if analyte not in INSTRUMENT:
                raise CaseTableError(f"{here}: unknown analyte {analyte!r}")
            instrument = INSTRUMENT[analyte]
            out.append(
                {
                    "specimen_id": specimen_id,
                    "analyte": analyte,
                    "value": value,
                    "unit": unit,
                    "measured_at": at,
                    "instrument": instrument,
                    "plate_id": f"P{at[:10].replace('-', '')}-{instrument}-{replicate}",
                    "well": None,
                    "replicate": replicate,
                    "flag": flag,
                }
            )
    return out


def load_cases(path: Path = CASES_FILE) -> list[Case]:
    """The cases of the table, in table order."""
    data = load_yaml(path, text=True)
    defaults = data["card_defaults"]
    panels = data["panels"]
    cases = []
    for raw in data["cases"]:
        cid = raw.get("id", "?")
        if raw.get("class") not in CLASSES:
            raise CaseTableError(f"{cid}: class must be one of {CLASSES}")
        deliveries = []
        for n, d in enumerate(raw["deliveries"], start=1):
            where = f"{cid} delivery {n}"
            at = _text(d["at"], f"{where}.at")
            assert at is not None
            deliveries.append(
                Delivery(
                    at=at,
                    cards=tuple(
                        _card(c, defaults, f"{where} card {i}")
                        for i, c in enumerate(d.get("cards", []))
                    ),
                    results=tuple(_results(d.get("results", {}), at, panels, where)),
                    expect=d.get("expect"),
                )
            )
        if deliveries[-1].expect is None:
            raise CaseTableError(f"{cid}: the last delivery must say what to expect")
        cases.append(
            Case(
                id=cid,
                cls=raw["class"],
                description=" ".join(raw["description"].split()),
                source=" ".join(raw["source"].split()),
                deliveries=tuple(deliveries),
            )
        )
    return cases


def delivery_frames(deliveries: list[Delivery]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The cards and the results of these deliveries as text frames (contract columns)."""
    cards = [card for d in deliveries for card in d.cards]
    results = [row for d in deliveries for row in d.results]
    return (
        pl.DataFrame(cards, schema=dict.fromkeys(SPECIMEN_COLUMNS, pl.String), orient="row"),
        pl.DataFrame(results, schema=dict.fromkeys(RESULT_COLUMNS, pl.String), orient="row"),
    )


def write_delivery(folder: Path, deliveries: list[Delivery], stem: str) -> list[Path]:
    """Write these deliveries into ``folder`` as ``STEM.specimens.csv`` (when they bring
    cards) and ``STEM.results.csv`` (when they bring results)."""
    folder.mkdir(parents=True, exist_ok=True)
    cards, results = delivery_frames(deliveries)
    paths = []
    for frame, kind in ((cards, "specimens"), (results, "results")):
        if frame.height:
            path = folder / f"{stem}.{kind}.csv"
            frame.write_csv(path)
            paths.append(path)
    return paths


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m data_samples.clinical_cases OUT", file=sys.stderr)
        return 2
    out = Path(argv[0])
    for case in load_cases():
        for n, delivery in enumerate(case.deliveries, start=1):
            folder = out / case.id / f"{n}-{delivery.stem}"
            for path in write_delivery(folder, [delivery], delivery.stem):
                print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
