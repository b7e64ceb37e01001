"""The QuantStudio "Results" export (Thermo Fisher / Applied Biosystems), as SCID and SMA
laboratories export it, read into canonical result rows.

Two layouts, recognised by content: the QuantStudio Real-Time PCR Software 1.x text
export (QuantStudio 6/7 Flex, ViiA 7, 7500; header lines ``* Key = Value``, a
``[Results]`` section of tab-separated rows) and the Design & Analysis 2.x CSV export
(QuantStudio 1-7 Pro; header lines ``# Key: Value``, then a CSV table). Excel exports
(one sheet per section) are read by :mod:`nbs.intake.quantstudio_excel` into the same
header and table.

Per well: Sample Name is the card's id; Task gives the role (UNKNOWN a specimen,
STANDARD a calibrator with its known Quantity, NTC a blank; the profile's control
patterns name control wells); the value is the Ct or the standard-curve Quantity as the
instrument profile says, with its unit factor. Replicate wells of one sample and target
become punches 1..n in well order. "Undetermined" is kept as written (no amplification).
Layout from the vendor's published export description and public test files of
Benchling's ``allotropy`` converter; no vendor file is copied.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

import polars as pl

from nbs.intake.profiles import Profile

#: the canonical result columns an export becomes (all text, as a CSV would be read)
CANONICAL = (
    "specimen_id", "analyte", "value", "unit", "measured_at", "instrument", "plate_id",
    "well", "replicate", "flag", "sample_type", "material", "material_level", "material_lot",
    "nominal", "ct", "kit_lot",
)  # fmt: skip

#: header names as they vary between software versions -> one name
_ALIASES = {
    "sample name": "sample", "sample": "sample",
    "target name": "target", "target": "target",
    "ct": "ct", "cq": "ct", "crt": "ct",
    "well position": "position", "well": "well",
    "quantity": "quantity", "task": "task", "omit": "omit",
}  # fmt: skip

#: time-zone abbreviations the software prints after the run time -> hours from UTC
_ZONES = {
    "UTC": 0, "GMT": 0, "WET": 0, "WEST": 1, "BST": 1, "CET": 1, "CEST": 2, "MEZ": 1,
    "MESZ": 2, "EET": 2, "EEST": 3, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5,
    "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
}  # fmt: skip
_RUN_END = ("experiment run end time", "run end date/time", "run end time")
_INSTRUMENT = ("instrument name", "instrument serial number", "instrument type")
_PLATE = ("experiment barcode", "barcode", "experiment name", "file name")
#: header keys a laboratory's template uses for the assay kit's lot (patient-based QC by lot)
_KIT_LOT = ("kit lot", "reagent lot", "assay lot", "kit lot number")


class ExportError(ValueError):
    """An export that cannot be read; the message says where and why."""


@dataclass(frozen=True)
class Export:
    """An export's header (keys in lower case) and its results table (text cells)."""

    header: dict[str, str]
    table: list[dict[str, str]]


def recognise(head: str) -> bool:
    """Whether the first lines of a file are a QuantStudio results export."""
    v1 = "[Results]" in head and re.search(r"^\* [^=\n]+ = ", head, re.MULTILINE)
    da = re.search(
        r"^# (Software Name and Version|Instrument Type): .*(Design|QuantStudio)",
        head,
        re.MULTILINE,
    )
    return bool(v1 or da)


def _key(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).replace("\u0442", "t").strip().casefold()
    return _ALIASES.get(text, text)


def _rows(lines: list[str], delimiter: str) -> list[dict[str, str]]:
    """A table's rows by normalised column name; a name given twice keeps its first."""
    reader = csv.reader(lines, delimiter=delimiter)
    header = [_key(h) for h in next(reader, [])]
    rows = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            break
        row: dict[str, str] = {}
        for name, cell in zip(header, cells, strict=False):
            row.setdefault(name, cell.strip())
        rows.append(row)
    return rows


def parse_text(text: str) -> Export:
    """The header and the results table of a text or CSV export."""
    lines = text.lstrip("\ufeff").splitlines()
    header: dict[str, str] = {}
    for line in lines:
        v1 = re.match(r"^\* (.+?)\s*=\s*(.*)$", line)
        da = re.match(r"^# (.+?):\s*(.*)$", line)
        found = v1 or da
        if found:
            header[found.group(1).strip().casefold()] = found.group(2).strip()
    if any(line.strip() == "[Results]" for line in lines):
        start = next(i for i, line in enumerate(lines) if line.strip() == "[Results]") + 1
        table = _rows(lines[start:], "\t")
    else:
        body = [line for line in lines if line.strip() and not line.startswith("#")]
        table = _rows(body, "\t" if body and "\t" in body[0] else ",")
    if not table:
        raise ExportError("no results table (a [Results] section or a CSV table)")
    return Export(header, table)


def _first(header: dict[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = header.get(key, "").strip()
        if value and value.upper() not in ("NA", "N/A", "NOT STARTED"):
            return value
    return None


def run_time(text: str) -> str:
    """An ISO-8601 time of the software's run time (with its offset when the zone is one
    of the known abbreviations; otherwise laboratory time)."""
    found = re.match(r"^(.+?\d(?:\s*[AP]M)?)\s*([A-Za-z]{2,5})?$", text.strip())
    if not found:
        raise ExportError(f"run time {text!r} is not a date and time")
    stamp, zone = found.group(1), (found.group(2) or "").upper()
    for form in ("%Y-%m-%d %I:%M:%S %p", "%Y-%m-%d %H:%M:%S", "%m-%d-%Y %H:%M:%S",
                 "%d-%m-%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%Y/%m/%d %H:%M:%S"):  # fmt: skip
        try:
            when = dt.datetime.strptime(stamp, form)
        except ValueError:
            continue
        if zone in _ZONES:
            when = when.replace(tzinfo=dt.timezone(dt.timedelta(hours=_ZONES[zone])))
        return when.isoformat()
    raise ExportError(f"run time {text!r} is not a date and time")


def _number(text: str) -> str:
    """A number as written by the software (thousands separated by commas) -> plain text."""
    return text.replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", text) else text


def _well_order(position: str) -> tuple[int, int]:
    found = re.fullmatch(r"([A-Pa-p])(\d{1,2})", position.strip())
    return (ord(found.group(1).upper()), int(found.group(2))) if found else (99, 0)


def to_results(export: Export, profile: Profile, file_name: str) -> pl.DataFrame:
    """Canonical result rows (text) of an export read with ``profile``."""
    measured = _first(export.header, _RUN_END)
    if measured is None:
        raise ExportError(f"{file_name}: no run time in the header ({', '.join(_RUN_END)})")
    measured_at = run_time(measured)
    instrument = _first(export.header, _INSTRUMENT) or profile.name
    plate = _first(export.header, _PLATE) or file_name.rsplit(".", 1)[0]
    plate = re.sub(r"\.(eds|edt)$", "", plate.replace("\\", "/").rsplit("/", 1)[-1])
    rows = [
        _row(cells, profile, measured_at, instrument, plate)
        for cells in sorted(export.table, key=lambda c: _well_order(c.get("position", "")))
        if cells.get("sample") or cells.get("task")
    ]
    frame = pl.DataFrame(rows, schema=dict.fromkeys(CANONICAL, pl.String)).with_columns(
        kit_lot=pl.lit(_first(export.header, _KIT_LOT), pl.String)
    )
    return number_wells(frame).select(CANONICAL)


def number_wells(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows without a ``replicate`` numbered 1..n in file order per card (or material),
    analyte and role: an export numbers its own wells; the batch puts them after the
    card's stored punches."""
    in_file = pl.int_range(1, pl.len() + 1).over(
        pl.col("specimen_id").fill_null(pl.col("material")), "analyte", "sample_type"
    )
    return frame.with_columns(replicate=pl.col("replicate").fill_null(in_file.cast(pl.String)))


def _value(cells: dict[str, str], profile: Profile, target_name: str) -> str | None:
    """The well's value as the profile reads it: Ct, quantity or value, times the factor;
    "Undetermined" where nothing amplified."""
    target = profile.target(target_name)
    ct = _number(cells.get("ct", ""))
    column = {"ct": "ct", "quantity": "quantity"}.get(target.value, "value")
    raw = _number(cells.get(column, ""))
    if not raw:
        return ct if ct.casefold() in NO_CT else None
    if target.factor != 1 and re.fullmatch(r"-?\d+(\.\d+)?([eE]-?\d+)?", raw):
        return repr(float(raw) * target.factor)
    return raw


#: what the software writes in the Ct column when nothing amplified
NO_CT = ("undetermined", "no ct", "no cq", "no amp")


def _row(
    cells: dict[str, str], profile: Profile, measured_at: str, instrument: str, plate: str
) -> dict[str, str | None]:
    sample, target_name = cells.get("sample", "").strip(), cells.get("target", "").strip()
    target = profile.target(target_name)
    control = profile.control(sample) or {}
    role = control.get("sample_type") or profile.task(cells.get("task")) or "specimen"
    ct = _number(cells.get("ct", ""))
    omitted = cells.get("omit", "").casefold() == "true"
    return {
        "specimen_id": sample if role == "specimen" else None,
        "analyte": target.analyte or target_name,
        "value": None if omitted else _value(cells, profile, target_name),
        "unit": target.unit or ("Ct" if target.value == "ct" else None),
        "measured_at": measured_at,
        "instrument": instrument,
        "plate_id": plate,
        "well": cells.get("position") or cells.get("well"),
        "replicate": None,
        "flag": "omitted" if omitted else None,
        "sample_type": role,
        "material": control.get("material") or (sample if role != "specimen" else None),
        "material_level": control.get("level"),
        "material_lot": control.get("lot"),
        "nominal": _number(cells.get("quantity", "")) or None if role == "calibrator" else None,
        "ct": None if not ct or ct.casefold() in NO_CT else ct,
    }
