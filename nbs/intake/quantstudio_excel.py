"""QuantStudio exports saved as Excel workbooks, turned into the text layout the
QuantStudio reader reads (:mod:`nbs.intake.quantstudio`).

The software writes one sheet per section; the "Results" sheet starts with the export's
header as key/value rows (key in column A, value in column B), then, from the row whose
first cell is "Well", the results table. Cells are read as text (fastexcel, no pandas).
"""

from __future__ import annotations

import fastexcel
import polars as pl

#: the first bytes of a zip archive, which an .xlsx workbook is
ZIP_MAGIC = b"PK\x03\x04"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value).strip()


def workbook_as_text(data: bytes) -> str | None:
    """The workbook's Results sheet as a 1.x text export (``* Key = Value`` lines, then
    ``[Results]`` and the tab-separated table), or None without such a sheet."""
    try:
        reader = fastexcel.read_excel(data)
    except fastexcel.FastExcelError:
        return None
    name = next((n for n in reader.sheet_names if n.strip().casefold() == "results"), None)
    if name is None:
        return None
    sheet = reader.load_sheet(name, header_row=None, dtypes="string")
    frame = pl.from_arrow(sheet.to_arrow())
    assert isinstance(frame, pl.DataFrame)
    rows = [[_cell(v) for v in row] for row in frame.rows()]
    start = next((i for i, row in enumerate(rows) if row and row[0].casefold() == "well"), None)
    if start is None:
        return None
    header = [
        f"* {row[0].lstrip('*# ').rstrip(':').strip()} = {row[1] if len(row) > 1 else ''}"
        for row in rows[:start]
        if row and row[0]
    ]
    table = []
    for row in rows[start:]:
        if not any(row):
            break
        table.append("\t".join(row).rstrip("\t"))
    return "\n".join([*header, "", "[Results]", *table]) + "\n"
