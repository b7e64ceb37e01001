"""Control series of the laboratory's QC results as Levey-Jennings charts: one chart per
analyte, material, level and lot, against the lot's declared target or the one its first
accepted results establish (CLSI C24). Used by ``nbs qc chart``, the plate page and the
annual report."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from nbs.qc.chart import Point, levey_jennings
from nbs.qc.config import QcConfig, load_qc
from nbs.qc.westgard import Target, established_target
from nbs.store import plates


@dataclass(frozen=True)
class ControlChart:
    """One control series (analyte, material, level, lot) on a Levey-Jennings chart, or,
    while the series has no target yet, no chart and the line that says so."""

    analyte: str
    material: str
    level: str
    lot: str
    points: int
    svg: str | None
    note: str

    @property
    def title(self) -> str:
        return f"{self.analyte} {self.material} level {self.level}, lot {self.lot}"


def _series_target(
    qc: QcConfig, series: tuple[str, str, str, str], rows: pl.DataFrame
) -> Target | None:
    """The declared target, else the one the first accepted results establish (CLSI C24)."""
    declared = qc.declared_targets().get(series)
    if declared is not None:
        return declared
    accepted = rows.filter(pl.col("status") == "accepted")["value"].to_list()
    return established_target(accepted, qc.establish_from)


def _shown(
    rows: pl.DataFrame, year: int | None, plate_id: str | None, last: int | None
) -> pl.DataFrame:
    """The results a chart draws: of the year, or up to the plate's own; the last ``last``."""
    if year is not None:
        rows = rows.filter(pl.col("measured_at").dt.year() == year)
    if plate_id is not None:
        mine = rows.with_row_index("i").filter(pl.col("plate_id") == plate_id)["i"]
        rows = rows.head(int(mine.max()) + 1) if mine.len() else rows.clear()  # type: ignore[arg-type]
    return rows.tail(last) if last else rows


def control_charts(
    db: Path,
    analyte: str,
    qc: QcConfig | None = None,
    *,
    material: str | None = None,
    level: str | None = None,
    lot: str | None = None,
    year: int | None = None,
    plate_id: str | None = None,
    last: int | None = None,
) -> list[ControlChart]:
    """The Levey-Jennings charts of ``analyte``'s control series (those matching
    ``material``, ``level`` and ``lot`` when given) with a result to show: of ``year``, or
    up to ``plate_id``'s own results (series the plate has); at most the ``last`` results.
    A series' target is its declared one (``analytes/qc.yaml``), else its first
    ``establish_from`` accepted results; without one the series gets a note, no chart."""
    qc = qc or load_qc()
    frame = plates.control_series(db, analyte).with_columns(
        pl.col("material", "level", "lot").fill_null(""), pl.col("rules").fill_null("")
    )
    frame = frame.filter(pl.col("value").is_not_null())
    for column, wanted in (("material", material), ("level", level), ("lot", lot)):
        if wanted is not None:
            frame = frame.filter(pl.col(column) == wanted)
    charts = []
    for (mat, lev, lot_), rows in frame.group_by("material", "level", "lot", maintain_order=True):
        series = (analyte, str(mat), str(lev), str(lot_))
        rows = rows.sort("measured_at", "plate_id", maintain_order=True)
        shown = _shown(rows, year, plate_id, last)
        if shown.is_empty():
            continue
        target = _series_target(qc, series, rows)
        chart = ControlChart(*series, points=shown.height, svg=None, note="")
        if target is None:
            have = rows.filter(pl.col("status") == "accepted").height
            note = (
                f"no target yet: {have} of {qc.establish_from} accepted results (declare the "
                "lot's mean and SD in analytes/qc.yaml, or accept plates until then)"
            )
            charts.append(dataclasses.replace(chart, note=note))
            continue
        points = [Point(p, v, r) for p, v, r in shown.select("plate_id", "value", "rules").rows()]
        svg = levey_jennings(chart.title, points, target.mean, target.sd)
        note = f"target ({target.source}): mean {target.mean:g}, SD {target.sd:g}"
        charts.append(dataclasses.replace(chart, svg=svg, note=note))
    return charts
