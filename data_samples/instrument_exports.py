"""Synthetic instrument exports, written from the vendors' published layouts (no vendor
file is copied): a QuantStudio 1.x "Results" text export, the Design & Analysis 2.x CSV
export, and delimited plate exports of MS/MS and time-resolved fluoroimmunoassay software.

A plate is a list of :class:`Well`; the writers lay them out as the software would, so
the readers in ``nbs/intake`` are tested against the format, not against themselves.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class Well:
    """One well (one row of the export): position, sample, target, task, Ct, quantity."""

    position: str
    sample: str
    target: str
    task: str = "UNKNOWN"
    ct: float | None = None
    quantity: float | None = None
    omit: bool = False


def _well_number(position: str) -> int:
    return (ord(position[0]) - ord("A")) * 12 + int(position[1:])


def standard_curve(
    target: str, slope: float = -3.32, intercept: float = 38.0, first_row: str = "A"
) -> list[Well]:
    """Four standards (10^5 .. 10^2 copies) on the line ``Ct = slope*log10(q) + intercept``,
    and a no-template control that does not amplify."""
    wells = []
    for i, q in enumerate((1e5, 1e4, 1e3, 1e2)):
        ct = round(slope * math.log10(q) + intercept, 3)
        wells.append(Well(f"{first_row}{i + 1}", f"STD-{i + 1}", target, "STANDARD", ct, q))
    return [*wells, Well(f"{first_row}5", "NTC", target, "NTC")]


def _ct(value: float | None) -> str:
    return "Undetermined" if value is None else f"{value:.3f}"


def _quantity(value: float | None) -> str:
    return "" if value is None else f"{value:,.3f}"


def quantstudio_v1_text(
    wells: Sequence[Well], run_end: dt.datetime, barcode: str, instrument: str = "278880034"
) -> str:
    """The QuantStudio Real-Time PCR Software 1.x "Results" text export."""
    header = [
        "* Block Type = 96-Well Block (0.2mL)",
        "* Chemistry = TAQMAN",
        f"* Experiment Barcode = {barcode}",
        f"* Experiment File Name = C:\\Applied Biosystems\\experiments\\{barcode}.eds",
        f"* Experiment Name = {barcode}",
        f"* Experiment Run End Time = {run_end:%Y-%m-%d %I:%M:%S %p} CET",
        "* Experiment Type = Standard Curve",
        f"* Instrument Name = {instrument}",
        "* Instrument Type = QuantStudio(TM) 7 Flex System",
        "* Passive Reference = ROX",
        "",
        "[Results]",
    ]
    columns = [
        "Well", "Well Position", "Omit", "Sample Name", "Target Name", "Task", "Reporter",
        "Quencher", "CT", "Ct Mean", "Ct SD", "Quantity", "Quantity Mean", "Quantity SD",
        "Y-Intercept", "R(superscript 2)", "Slope", "Efficiency", "Comments", "Target Name",
        "Task",
    ]  # fmt: skip
    rows = ["\t".join(columns)]
    for w in wells:
        cells = [
            str(_well_number(w.position)), w.position, str(w.omit).lower(), w.sample,
            w.target, w.task, "FAM", "NFQ-MGB", _ct(w.ct), "", "",
            _quantity(w.quantity), "", "", "", "", "", "", "", w.target, w.task,
        ]  # fmt: skip
        rows.append("\t".join(cells))
    return "\n".join(header + rows) + "\n\nAnalysis Type = Singleplex\n"


def quantstudio_da_csv(
    wells: Sequence[Well], run_end: dt.datetime, barcode: str, instrument: str = "QS7PRO-2231"
) -> str:
    """The Design & Analysis Software 2.x CSV export of the Results table."""
    header = [
        f"# File Name: {barcode}.eds",
        f"# Barcode: {barcode}",
        "# Instrument Type: QuantStudio™ 7 Pro System",
        "# Block Type: 96-Well 0.2-mL Block",
        f"# Instrument Name: {instrument}",
        f"# Run End Date/Time: {run_end:%Y-%m-%d %I:%M:%S %p} CET",
        "# Quantification Cycle Method: CT",
        "# Software Name and Version: Design & Analysis Software v2.6.0",
        "# Plugin Name and Version: Standard Curve v1.4.1",
        "",
    ]
    columns = [
        "Well", "Well Position", "Omit", "Sample", "Target", "Task", "Reporter", "Quencher",
        "Cq", "Cq Mean", "Cq SD", "Quantity", "Amp Status",
    ]  # fmt: skip
    rows = [",".join(f'"{c}"' for c in columns)]
    for w in wells:
        cells = [
            str(_well_number(w.position)), w.position, str(w.omit).upper(), w.sample,
            w.target, w.task, "FAM", "NFQ-MGB", _ct(w.ct), "", "", _quantity(w.quantity),
            "NO_AMP" if w.ct is None else "AMP",
        ]  # fmt: skip
        rows.append(",".join(f'"{c}"' for c in cells))
    return "\n".join(header + rows) + "\n"


def _comma(value: float | None, decimals: int = 2) -> str:
    return "" if value is None else f"{value:.{decimals}f}".replace(".", ",")


def msms_wide(
    rows: Sequence[tuple[str, str, str, dict[str, float | None]]],
    plate: str,
    acquired: dt.datetime,
    instrument: str = "TQD-0417",
    kit_lot: str = "NB2-2611",
) -> str:
    """An MS/MS plate export: header lines, then ``Well;Sample ID;Sample Type;Phe;...``
    with decimal commas. ``rows``: (well, sample id, sample type, values by column)."""
    analytes = ("Phe", "Tyr", "C2", "C8", "C10")
    lines = [
        f"Plate ID;{plate}",
        f"Instrument;{instrument}",
        f"Acquired;{acquired:%d.%m.%Y %H:%M}",
        "Method;AAAC-FIA v3",
        f"Kit lot;{kit_lot}",
        ";".join(("Well", "Sample ID", "Sample Type", *analytes)),
    ]
    for well, sample, kind, values in rows:
        lines.append(";".join((well, sample, kind, *(_comma(values.get(a)) for a in analytes))))
    return "\n".join(lines) + "\n"


def trfia_long(
    rows: Sequence[tuple[str, str, str, str, float | None, str, float | None]],
    plate: str,
    measured: dt.datetime,
    kit_lot: str = "4411",
    instrument: str = "GSP-2021-0034",
) -> str:
    """An immunoassay result list: a header block, then ``Well, Sample, Type, Analyte,
    Result, Unit, Nominal`` tab-separated with decimal commas. ``rows``: (well, sample,
    type, analyte, result, unit, nominal)."""
    lines = [
        "Assay\tNeonatal hTSH",
        f"Kit lot\t{kit_lot}",
        f"Plate\t{plate}",
        f"Instrument\t{instrument}",
        f"Measured\t{measured:%Y-%m-%d %H:%M}",
        "",
        "\t".join(("Well", "Sample", "Type", "Analyte", "Result", "Unit", "Nominal")),
    ]
    for well, sample, kind, analyte, result, unit, nominal in rows:
        cells = (well, sample, kind, analyte, _comma(result), unit, _comma(nominal))
        lines.append("\t".join(cells))
    return "\n".join(lines) + "\n"


#: the shipped profiles' analytes of each export
QPCR = ("TREC", "RPP30", "SMN1")
MSMS = ("PHE", "TYR", "C2", "C8", "C10")
IMMUNO = {"TSH": "hTSH", "OHP17": "N-17OHP", "IRT": "Neonatal IRT"}
#: copies/µL per copy in the reaction (the shipped QuantStudio profile's factor)
TREC_FACTOR = 0.3226


def _position(i: int, columns: int = 12) -> str:
    return f"{chr(ord('A') + i // columns)}{i % columns + 1}"


def cohort_exports(results: pl.DataFrame, measured: dt.datetime) -> dict[str, str]:
    """A day's first punches (canonical rows of ``data_samples.generator``) as the three
    instruments would export them, each plate with its standards or calibrators and
    controls in range: file name -> text. Analytes of no export are left out."""
    by = {a: dict(zip(f["specimen_id"], f["value"], strict=True))
          for (a,), f in results.filter(pl.col("replicate") == 1).group_by("analyte")}  # fmt: skip
    ids = sorted({s for values in by.values() for s in values})
    wells = standard_curve("TREC", first_row="A")
    wells.append(Well("A6", "QC-TREC-L1-LOT2207", "TREC", "UNKNOWN", 30.8, 150.0))
    for i, sid in enumerate(ids):
        position = _position(i + 12)
        trec = by.get("TREC", {}).get(sid)
        quantity = None if trec is None or trec <= 0 else trec / TREC_FACTOR
        ct = None if quantity is None else round(38 - 3.32 * math.log10(quantity), 3)
        wells.append(Well(position, sid, "TREC", "UNKNOWN", ct, quantity))
        for target, code in (("RNase P", "RPP30"), ("SMN1", "SMN1")):
            value = by.get(code, {}).get(sid)
            wells.append(Well(position, sid, target, "UNKNOWN", value))
    msms_rows: list[tuple[str, str, str, dict[str, float | None]]] = [
        ("A01", "QC-MS-L1-LOT889", "QC", {"Phe": 80.0, "Tyr": 90.0})
    ]
    names = {"PHE": "Phe", "TYR": "Tyr", "C2": "C2", "C8": "C8", "C10": "C10"}
    for i, sid in enumerate(ids):
        values = {names[a]: by.get(a, {}).get(sid) for a in MSMS}
        msms_rows.append((_position(i + 1), sid, "Patient", values))
    immuno: list[tuple[str, str, str, str, float | None, str, float | None]] = []
    for analyte, name in IMMUNO.items():
        unit = {"TSH": "mU/L", "OHP17": "nmol/L", "IRT": "ng/mL"}[analyte]
        immuno.append(("A1", "CAL-A", "Calibrator", name, 0.1, unit, 0.0))
        immuno.append(("A2", "CAL-C", "Calibrator", name, 24.6, unit, 25.0))
        if analyte == "TSH":
            immuno.append(("B1", "CTRL-1", "Control", name, 6.1, unit, None))
            immuno.append(("B2", "CTRL-2", "Control", name, 44.0, unit, None))
        for i, sid in enumerate(ids):
            value = by.get(analyte, {}).get(sid)
            immuno.append((_position(i + 24), sid, "Sample", name, value, unit, None))
    stamp = f"{measured:%y%m%d}"
    return {
        f"QS7-{stamp}.txt": quantstudio_v1_text(wells, measured, f"TREC-{stamp}-01"),
        f"MSMS-{stamp}.csv": msms_wide(msms_rows, f"MS-{stamp}-01", measured),
        f"GSP-{stamp}.txt": trfia_long(immuno, f"GSP-{stamp}-01", measured),
    }


def quantstudio_xlsx(wells: Sequence[Well], run_end: dt.datetime, barcode: str) -> bytes:
    """The 1.x export saved as an Excel workbook: a "Results" sheet with the header as
    key/value rows, an empty row, then the table (numbers as numeric cells), and the
    other sections' sheets the software writes beside it."""
    import io

    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    book.add_worksheet("Sample Setup").write_row(0, 0, ["Well", "Well Position", "Sample Name"])
    sheet = book.add_worksheet("Results")
    header = [
        ("Block Type", "384-Well Block"),
        ("Experiment Barcode", barcode),
        ("Experiment Name", barcode),
        ("Experiment Run End Time", f"{run_end:%Y-%m-%d %I:%M:%S %p} CET"),
        ("Instrument Name", "278880099"),
        ("Instrument Type", "QuantStudio(TM) 7 Flex System"),
    ]
    for i, (key, value) in enumerate(header):
        sheet.write_row(i, 0, [key, value])
    top = len(header) + 1
    columns = ["Well", "Well Position", "Omit", "Sample Name", "Target Name", "Task", "CT",
               "Quantity"]  # fmt: skip
    sheet.write_row(top, 0, columns)
    for r, w in enumerate(wells, start=top + 1):
        ct: object = "Undetermined" if w.ct is None else w.ct
        quantity: object = "" if w.quantity is None else w.quantity
        cells = [_well_number(w.position), w.position, str(w.omit).lower(), w.sample, w.target,
                 w.task, ct, quantity]  # fmt: skip
        sheet.write_row(r, 0, cells)
    book.close()
    return out.getvalue()
