"""Delimited plate exports of MS/MS and immunoassay software, read through a profile.

Such exports start with a few header lines (plate, instrument, kit lot, run time), then
a table: one row per well with a column per analyte (MS/MS, "wide"), or one row per
result (immunoassay, "long"); decimal commas are common. The profile (YAML) says which
line the table starts on, what each column is, how the header names plate, instrument and
run time, and which sample types and sample names are controls or calibrators, so a
laboratory adds its instrument without code. The rows come out canonical (text), and the
usual validation, units and quarantine apply.
"""

from __future__ import annotations

import csv
import datetime as dt
import re

import polars as pl

from nbs.intake.profiles import Profile
from nbs.intake.quantstudio import CANONICAL, ExportError, number_wells


def recognise(head: str, profile: Profile) -> bool:
    """Whether a file's first lines carry every text the profile recognises it by."""
    return bool(profile.recognise) and all(text in head for text in profile.recognise)


def _header(lines: list[str], profile: Profile) -> dict[str, str]:
    text = "\n".join(lines[: profile.header_lines])
    found = {}
    for field, pattern in profile.header.items():
        match = re.search(pattern, text, re.MULTILINE)
        if match:
            found[field] = match.group(1).strip()
    return found


def _time(text: str, profile: Profile) -> str:
    if profile.time_format is None:
        return text
    try:
        return dt.datetime.strptime(text, profile.time_format).isoformat()
    except ValueError as exc:
        raise ExportError(f"run time {text!r} does not read as {profile.time_format}") from exc


def _table(lines: list[str], profile: Profile) -> list[dict[str, str]]:
    body = [line for line in lines[profile.header_lines :] if line.strip()]
    reader = csv.reader(body, delimiter=profile.delimiter)
    columns = [c.strip() for c in next(reader, [])]
    if not columns:
        raise ExportError(f"no table after the {profile.header_lines} header line(s)")
    return [dict(zip(columns, (c.strip() for c in cells), strict=False)) for cells in reader]


def read(text: str, profile: Profile, file_name: str) -> pl.DataFrame:
    """Canonical result rows (text) of a plate export read with ``profile``."""
    lines = text.lstrip("\ufeff").splitlines()
    header = _header(lines, profile)
    missing = [
        f for f in ("plate_id", "measured_at") if f not in header and f not in profile.columns
    ]
    if missing:
        raise ExportError(f"{file_name}: the header does not give {', '.join(missing)}")
    table = _table(lines, profile)
    fixed = {
        "plate_id": header.get("plate_id"),
        "instrument": header.get("instrument") or profile.name,
        "measured_at": _time(header["measured_at"], profile) if "measured_at" in header else None,
        "material_lot": header.get("control_lot"),
        "kit_lot": header.get("kit_lot"),
    }
    rows = [r for cells in table for r in _rows(cells, profile, fixed)]
    frame = pl.DataFrame(rows, schema=dict.fromkeys(CANONICAL, pl.String))
    return number_wells(frame).select(CANONICAL)


def _cell(cells: dict[str, str], profile: Profile, field: str) -> str | None:
    column = profile.columns.get(field)
    value = cells.get(column, "") if column else ""
    return value or None


def _rows(
    cells: dict[str, str], profile: Profile, fixed: dict[str, str | None]
) -> list[dict[str, str | None]]:
    """The canonical rows of one table row: one, or one per analyte column (wide)."""
    sample = _cell(cells, profile, "specimen_id") or ""
    control = profile.control(sample) or {}
    role = (
        control.get("sample_type")
        or profile.task(_cell(cells, profile, "sample_type"))
        or "specimen"
    )
    if profile.layout == "wide":
        values = [
            (analyte, cells.get(column, "")) for column, analyte in profile.analyte_columns.items()
        ]
    else:
        values = [(_cell(cells, profile, "analyte") or "", _cell(cells, profile, "value") or "")]
    lot = control.get("lot") or (fixed["material_lot"] if role != "specimen" else None)
    rows = []
    for analyte, value in values:
        unit = _cell(cells, profile, "unit") or profile.units.get(analyte)
        rows.append(
            {
                **dict.fromkeys(CANONICAL),
                "specimen_id": sample if role == "specimen" else None,
                "analyte": analyte,
                "value": value or None,
                "unit": unit,
                "measured_at": _cell(cells, profile, "measured_at") or fixed["measured_at"],
                "instrument": fixed["instrument"],
                "plate_id": _cell(cells, profile, "plate_id") or fixed["plate_id"],
                "well": _cell(cells, profile, "well"),
                "flag": _cell(cells, profile, "flag"),
                "sample_type": role,
                "material": control.get("material") or (sample if role != "specimen" else None),
                "material_level": control.get("level"),
                "material_lot": lot,
                "nominal": _cell(cells, profile, "nominal") if role == "calibrator" else None,
                "kit_lot": _cell(cells, profile, "kit_lot") or fixed["kit_lot"],
            }
        )
    return rows
