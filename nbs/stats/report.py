"""The annual report for health officials: one self-contained HTML page plus a CSV of
every table (``nbs report --year YYYY --out DIR``).

The page embeds its charts as SVG (matplotlib) and its style inline: it opens offline and
loads nothing from anywhere. It holds aggregates only. With ``suppress_below`` (for
publication) counts from 1 to ``suppress_below - 1`` are shown as ``<N`` and the rates of
their rows are withheld, and a footnote says so: in a small country a rare-disease count
can identify a baby.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from jinja2 import Environment, select_autoescape

from nbs import store
from nbs.qc.config import load_qc
from nbs.qc.series import ControlChart, control_charts
from nbs.stats import registry, statistics
from nbs.stats.registry import Statistic
from nbs.store import plates

TREND_YEARS = 9  # the trend shows the report's year and up to nine before it


@dataclass(frozen=True)
class ReportFiles:
    """What ``write_report`` wrote."""

    html: Path
    csvs: tuple[Path, ...]
    markdown: str  # a short summary (for the Prefect artifact)


def _figure(width: float = 7.0, height: float = 3.0, rows: int = 1, cols: int = 1) -> Any:
    """A matplotlib figure and its axes (a grid of ``rows`` × ``cols``, or one)."""
    import matplotlib

    matplotlib.use("Agg")  # no screen; chosen here, not at import time of the package
    from matplotlib import pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9})
    if rows == cols == 1:
        return plt.subplots(figsize=(width, height))
    return plt.subplots(rows, cols, figsize=(width, height), squeeze=False)


def _svg(fig: Any) -> str:
    """The figure as inline SVG; the figure is closed."""
    from matplotlib import pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _histogram(values: pl.Series, targets: list[float], title: str, xlabel: str) -> str:
    fig, ax = _figure()
    data = values.drop_nulls().to_numpy()
    if data.size:
        top = int(max(float(data.max()), *targets))
        ax.hist(data, bins=range(0, top + 13, 6))
    for t in targets:
        ax.axvline(t, color="#b3261e", linestyle="--", linewidth=1)
        ax.text(t, ax.get_ylim()[1] * 0.95, f" {t:g} h", color="#b3261e", va="top")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("cards")
    return _svg(fig)


def _trend(table: pl.DataFrame, column: str, title: str, ylabel: str) -> str:
    fig, ax = _figure()
    for condition in sorted(set(table["condition"])):
        rows = table.filter(pl.col("condition") == condition).sort("year")
        ax.plot(rows["year"].to_list(), rows[column].to_list(), marker="o", label=condition)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("year")
    # the years themselves: one year alone would otherwise be drawn a century wide
    years = sorted(set(table["year"].to_list()))
    if years:
        ax.set_xlim(years[0] - 0.5, years[-1] + 0.5)
        ax.set_xticks(years, [str(y) for y in years])
    values = table[column].drop_nulls()
    if values.is_empty() or float(values.max() or 0) == 0:  # type: ignore[arg-type]
        ax.set_ylim(0, 1)  # nothing to show: a flat axis from 0, not one around 0 +- 0.05
    else:
        ax.set_ylim(bottom=0)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, ncols=4)
    return _svg(fig)


def _percentiles(markers: pl.DataFrame) -> str:
    pairs = markers.select("condition", "marker").unique().sort("condition", "marker").rows()
    if not pairs:
        return ""
    cols = 3
    rows = (len(pairs) + cols - 1) // cols
    fig, axes = _figure(9, 2.3 * rows, rows, cols)
    for ax, (condition, marker) in zip(axes.flat, pairs, strict=False):
        m = markers.filter((pl.col("condition") == condition) & (pl.col("marker") == marker))
        m = m.sort("month")
        months = [d.strftime("%m") for d in m["month"].to_list()]
        for q, style in (("p50", "-"), ("p99", "--"), ("p995", ":")):
            ax.plot(months, m[q].to_list(), style, label=q)
        ax.set_title(f"{condition}: {marker}", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(pairs) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return _svg(fig)


def _suppressed_view(
    table: pl.DataFrame, statistic: Statistic, threshold: int | None
) -> pl.DataFrame:
    """For publication: the statistic's small counts shown as ``<N`` (and their rows'
    rates withheld), where the registry suppresses them."""
    rule = statistic.suppression
    if not threshold or threshold <= 1 or rule is None or not rule.counts:
        return table
    return statistics.suppress_small(
        table,
        list(rule.counts),
        list(rule.rates),
        threshold,
        (f"<{threshold}", "s"),
        rule.only_where_set,
    ).drop("suppressed")


@dataclass(frozen=True)
class _Figures:
    """What the report shows: each reported statistic of the year, and the yield trend."""

    year: int
    first: int
    last: int
    tables: dict[str, pl.DataFrame]  # by statistic name, of the year (suppressed if asked)
    trend: pl.DataFrame  # yield over the trend's years (suppressed if asked)
    trend_raw: pl.DataFrame  # the same, unsuppressed (for the charts)
    times: pl.DataFrame  # hours only, no card: the timeliness charts' distributions

    def csv_tables(self) -> dict[str, pl.DataFrame]:
        """The CSV files beside the page, by name (the trend after the yield)."""
        files = {}
        for statistic in REPORTED:
            files[f"{statistic.report_csv}_{self.year}"] = self.tables[statistic.name]
            if statistic is registry.YIELD:
                files[f"yield_trend_{self.first}_{self.last}"] = self.trend
        return files


#: quality indicators the report shows in sections of their own (completeness, care, cases)
_OWN_SECTIONS = ("3", "3a", "3b", "5e", "5f", "5g", "7", "8")

#: the statistics the report holds, in the registry's order
REPORTED = tuple(s for s in registry.STATISTICS if s.report_csv)


def _read_figures(
    db: Path, year: int, conditions: list[str], suppress_below: int | None
) -> _Figures:
    first, last = statistics.report_year_range(db, year, TREND_YEARS)
    trend = statistics.read(registry.YIELD, db, first, last, conditions)
    tables = {}
    for statistic in REPORTED:
        if statistic is registry.YIELD:  # the trend ends with the year
            frame = trend.filter(pl.col("year") == year)
        else:
            frame = statistics.read(statistic, db, year, year, conditions)
        tables[statistic.name] = _suppressed_view(frame, statistic, suppress_below)
    return _Figures(
        year=year,
        first=first,
        last=last,
        tables=tables,
        trend=_suppressed_view(trend, registry.YIELD, suppress_below),
        trend_raw=trend,
        times=store.timeliness_hours(db, year),
    )


def _charts(figures: _Figures) -> dict[str, str]:
    times, trend = figures.times, figures.trend_raw
    return {
        "collection": _histogram(
            times["age_h"],
            [48, 72],
            "Age at collection (first and repeat cards)",
            "hours of life",
        ),
        "transit": _histogram(
            times["transit_h"], [24, 72], "Collection to receipt", "hours after collection"
        ),
        "recall_rate": _trend(trend, "recall_rate_pct", "Recall rate by year", "% of screened"),
        "ppv": _trend(trend, "ppv_pct", "Positive predictive value by year", "% of referrals"),
        "markers": _percentiles(figures.tables[registry.MARKERS.name]),
    }


def _totals(figures: _Figures, raw_yield: pl.DataFrame) -> dict[str, int]:
    quality = figures.tables[registry.QUALITY.name]
    # a publication's suppression turns the value column into text ("s" on a condition's
    # small rows); these programme-wide rows are never suppressed
    value = pl.col("value").cast(pl.Float64, strict=False)
    cards = quality.filter(indicator="cards_received").select(value).to_series()
    babies = quality.filter(indicator="babies_with_a_card").select(value).to_series()
    return {
        "cards": int(cards.sum() or 0),
        "babies": int(babies.sum() or 0),
        "referrals": int(raw_yield["referrals"].sum()),
        "confirmed": int(raw_yield["confirmed"].sum()),
    }


@dataclass(frozen=True)
class _QualityControl:
    """The year's plates by status, and the control series' charts."""

    plates: pl.DataFrame  # status, plates
    charts: list[ControlChart]


def _quality_control(db: Path, year: int) -> _QualityControl:
    """Plates first measured in ``year`` by status (every status, zeros too), and a chart
    per control series with results in the year."""
    from analytes.catalogue import load_catalogue

    listed = plates.plate_list(db).filter(pl.col("run_at").dt.year() == year)
    counts = dict(listed.group_by("status").len().rows())
    table = pl.DataFrame(
        {
            "status": plates.PLATE_STATUSES,
            "plates": [counts.get(s, 0) for s in plates.PLATE_STATUSES],
        },
        schema={"status": pl.String, "plates": pl.Int64},
    )
    qc = load_qc()
    charts = [c for code in load_catalogue().codes for c in control_charts(db, code, qc, year=year)]
    return _QualityControl(table, charts)


def _render(
    figures: _Figures,
    totals: dict[str, int],
    csvs: list[Path],
    suppress_below: int | None,
    quality_control: _QualityControl,
) -> str:
    env = Environment(autoescape=select_autoescape(["html"]))
    template_text = (
        importlib.resources.files("nbs.stats.report_templates").joinpath("report.html").read_text()
    )
    rows = {name: frame.rows(named=True) for name, frame in figures.tables.items()}
    return env.from_string(template_text).render(
        year=figures.year,
        first=figures.first,
        last=figures.last,
        generated=store.utc_now(),
        totals=totals,
        yield_rows=rows[registry.YIELD.name],
        trend_rows=figures.trend.rows(named=True),
        quality_rows=[r for r in rows[registry.QUALITY.name] if r["qi"] not in _OWN_SECTIONS],
        completeness_rows=[r for r in rows[registry.QUALITY.name] if r["qi"] in ("3", "3a", "3b")],
        care_rows=[r for r in rows[registry.QUALITY.name] if r["qi"] in ("5e", "5f", "5g")],
        missed_rows=rows[registry.MISSED.name],
        reason_rows=rows[registry.UNSATISFACTORY.name],
        marker_rows=rows[registry.MARKERS.name],
        charts=_charts(figures),
        definitions=statistics.DEFINITIONS,
        suppress_below=suppress_below if suppress_below and suppress_below > 1 else None,
        csv_names=[p.name for p in csvs],
        plate_rows=quality_control.plates.rows(named=True),
        control_charts=quality_control.charts,
    )


def write_report(
    db: Path,
    year: int,
    out: Path,
    conditions: list[str],
    suppress_below: int | None = None,
) -> ReportFiles:
    """Render the year's report into ``out`` (HTML and CSV); returns what was written."""
    figures = _read_figures(db, year, conditions, suppress_below)
    out.mkdir(parents=True, exist_ok=True)
    quality_control = _quality_control(db, year)
    tables = {**figures.csv_tables(), f"plates_by_status_{year}": quality_control.plates}
    csvs = []
    for name, frame in tables.items():
        path = out / f"{name}.csv"
        frame.write_csv(path)
        csvs.append(path)
    totals = _totals(figures, figures.trend_raw.filter(pl.col("year") == year))
    html_path = out / f"nbs-annual-report-{year}.html"
    page = _render(figures, totals, csvs, suppress_below, quality_control)
    html_path.write_text(page, encoding="utf-8")
    shown_yield = figures.tables[registry.YIELD.name]
    markdown = _markdown(year, totals, shown_yield, html_path, suppress_below)
    return ReportFiles(html_path, tuple(csvs), markdown)


def _markdown(
    year: int, totals: dict[str, int], table: pl.DataFrame, html: Path, suppress: int | None
) -> str:
    lines = [
        f"# Newborn screening {year}",
        "",
        f"{totals['babies']} babies, {totals['cards']} cards, {totals['referrals']} referrals, "
        f"{totals['confirmed']} confirmed. Report: `{html}`",
        "",
        "| condition | screened | referrals | confirmed | recall rate % | PPV % |",
        "|---|---|---|---|---|---|",
    ]
    for r in table.iter_rows(named=True):
        lines.append(
            f"| {r['condition']} | {r['screened']} | {r['referrals']} | {r['confirmed']} | "
            f"{r['recall_rate_pct'] if r['recall_rate_pct'] is not None else '–'} | "
            f"{r['ppv_pct'] if r['ppv_pct'] is not None else '–'} |"
        )
    if suppress and suppress > 1:
        lines += ["", f"Counts below {suppress} are suppressed (shown as <{suppress})."]
    return "\n".join(lines)


def previous_year() -> int:
    """The year a January report is about."""
    return dt.datetime.now(dt.UTC).year - 1
