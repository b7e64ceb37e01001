"""The statistics the laboratory publishes, in one list.

``nbs stats``, the statistics page of the review application, the officials' file
(``NAME.stats.duckdb`` and its Parquet folder) and the annual report all iterate
:data:`STATISTICS`; a new statistic is one more entry here (and its view and read in
``nbs.store.stats``). This module imports nothing heavy: ``nbs --help`` reads the keys.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """A column of a statistic as the pages show it."""

    name: str
    label: str
    #: what a page shows for no value
    blank: str = "–"
    #: the definition officials read (the file's ``definitions`` table, the report)
    definition: str = ""
    #: underscores shown as spaces (a name used as a label, e.g. an indicator)
    spaced: bool = False


@dataclass(frozen=True)
class Suppression:
    """How small cells are hidden: a count from 1 to ``threshold - 1`` is withheld, with
    every rate of its row, because in a small country a rare-disease count can identify a
    baby."""

    counts: tuple[str, ...] = ()
    rates: tuple[str, ...] = ()
    #: rows with fewer than ``min_cell`` in this column are left out of the officials' file
    rows_below: str | None = None
    #: True: always, at the ``min_cell`` setting (the officials' file); False: only for
    #: publication (``nbs report --suppress-below N``)
    always: bool = False
    #: only rows where this column is set are suppressed (e.g. a condition's rows among
    #: programme-wide ones)
    only_where_set: str | None = None


@dataclass(frozen=True)
class Statistic:
    """One published statistic."""

    #: its table in the officials' file (and its view in the database)
    name: str
    title: str
    description: str
    #: the ``nbs.store.stats`` function reading it for the years ``first`` to ``last``
    source: str
    columns: tuple[Column, ...]
    suppression: Suppression | None = None
    #: ``nbs stats --table KEY`` (None: not offered there)
    key: str | None = None
    #: the ``nbs.store.stats`` function of the statistics page (every year, newest first)
    page_source: str | None = None
    #: what the page says under the title
    page_note: str = ""
    #: what the page says when there is nothing yet
    page_empty: str = ""
    #: the annual report's CSV file of it is ``{report_csv}_{year}.csv`` (None: not in it)
    report_csv: str | None = None
    #: every year and condition asked for gets a row, zeros rather than nothing
    zero_filled: bool = False


YIELD_COUNTS = ("screened", "repeat_requests", "referrals", "confirmed", "false_positives")
YIELD_RATES = ("recall_rate_pct", "ppv_pct", "incidence_per_100k")

YIELD = Statistic(
    name="yield_by_year",
    title="Yield by year",
    description="Babies screened, asked for a repeat card, referred, confirmed and false "
    "positive per condition and year, with recall rate, PPV and incidence",
    source="yield_by_year",
    columns=(
        Column("year", "Year"),
        Column("condition", "Condition"),
        Column(
            "screened",
            "Screened",
            definition="babies (not cards) whose first evaluated card for the condition was "
            "collected that year",
        ),
        Column(
            "repeat_requests",
            "Repeat requests",
            definition="babies of the year's cohort asked for a repeat card for the condition",
        ),
        Column(
            "referrals",
            "Referrals",
            definition="babies referred to the specialist (presumptive positive)",
        ),
        Column(
            "confirmed",
            "Confirmed",
            definition="referred babies whose recall was closed as confirmed",
        ),
        Column(
            "false_positives",
            "False positives",
            definition="referred babies closed as false positive",
        ),
        Column("recall_rate_pct", "Recall rate %", definition="100 × referrals / screened"),
        Column(
            "ppv_pct",
            "PPV %",
            definition="100 × confirmed / referrals (undefined without referrals)",
        ),
        Column(
            "incidence_per_100k",
            "Incidence /100,000",
            definition="100000 × confirmed / screened",
        ),
    ),
    suppression=Suppression(counts=YIELD_COUNTS[1:], rates=YIELD_RATES),
    key="yield",
    page_source="yield_newest_first",
    page_note="Babies screened (not cards); recall rate = referrals / screened; PPV = "
    "confirmed / referrals; incidence = confirmed / screened. Counts only: no names, ids or "
    "dates of birth.",
    page_empty="No screening yet.",
    report_csv="yield",
    zero_filled=True,
)

QUALITY = Statistic(
    name="quality_indicators",
    title="Quality indicators",
    description="Quality indicators per year (NewSTEPs QI 1-8: unsatisfactory cards, missing "
    "information, unscreened newborns, recalls open or lost to follow-up, timeliness of "
    "screening and of care, confirmed and missed cases), with numerator and denominator; "
    "a condition's rows for the care of its cases",
    source="quality_indicators",
    columns=(
        Column("year", "Year"),
        Column("indicator", "Indicator", spaced=True),
        Column("condition", "Condition", blank="all"),
        Column("value", "Value"),
        Column("unit", "Unit"),
        Column("numerator", "Numerator", blank=""),
        Column("denominator", "Denominator", blank=""),
        Column(
            "qi",
            "NewSTEPs QI",
            blank="",
            definition="the APHL NewSTEPs quality indicator: 1 unsatisfactory specimens, 2 "
            "missing essential information, 3 unscreened newborns (3a none by the configured "
            "day of life, 3b declined; babies who died before a card are not eligible), 4 lost "
            "to follow-up, 5 timeliness (5a birth to collection, 5b collection to receipt, 5d "
            "birth to report, 5e birth to treatment, 5f birth to diagnosis, 5g birth to a false "
            "positive ruled out; care in days of life, by the baby's year of birth), 7 "
            "confirmed cases, 8 missed cases and sensitivity",
        ),
    ),
    suppression=Suppression(
        counts=("numerator", "denominator"), rates=("value",), only_where_set="condition"
    ),
    key="quality",
    page_source="quality_newest_first",
    page_empty="No card yet.",
    report_csv="quality_indicators",
)

MISSED = Statistic(
    name="missed_cases",
    title="Confirmed and missed cases",
    description="Cases the screen found (confirmed) and missed (diagnosed later in a baby "
    "whose card screened negative) per year of birth and condition, with sensitivity",
    source="missed_cases",
    columns=(
        Column("year", "Year of birth"),
        Column("condition", "Condition"),
        Column(
            "screen_detected",
            "Found by screening",
            definition="babies with the condition confirmed after screening (NewSTEPs QI 7), "
            "by year of birth",
        ),
        Column(
            "missed",
            "Missed",
            definition="babies diagnosed later whose card screened negative for the condition "
            "(NewSTEPs QI 8), by year of birth",
        ),
        Column(
            "sensitivity_pct",
            "Sensitivity %",
            definition="100 × found / (found + missed); no row where neither is known (it "
            "cannot be computed)",
        ),
    ),
    suppression=Suppression(counts=("screen_detected", "missed"), rates=("sensitivity_pct",)),
    key="missed",
    page_source="missed_newest_first",
    page_note="Sensitivity = found / (found + missed), by year of birth; a missed case counts "
    "once it is recorded, which may be years later.",
    page_empty="No case recorded yet.",
    report_csv="missed_cases",
)

UNSATISFACTORY = Statistic(
    name="unsatisfactory_by_reason",
    title="Unsatisfactory specimens by reason",
    description="Cards per year by specimen quality code (ok included, as the denominator); "
    "a card received after the transit limit counts as too_old",
    source="unsatisfactory_by_reason",
    columns=(
        Column("year", "Year"),
        Column(
            "reason",
            "Reason",
            definition="the card's specimen quality code as the submitter gave it (ok: "
            "satisfactory); too_old also for a card given as ok but received more days "
            "after collection than the cutoff set's transit limit allows",
        ),
        Column("cards", "Cards"),
        Column("pct", "%"),
    ),
    key="unsatisfactory",
    report_csv="unsatisfactory_by_reason",
)

MARKERS = Statistic(
    name="marker_percentiles",
    title="Marker distributions of screen-negative babies",
    description="Monthly percentiles of the first punch of screen-negative babies' first "
    "cards, per condition and marker",
    source="marker_percentiles",
    columns=(
        Column("month", "Month"),
        Column("condition", "Condition"),
        Column("marker", "Marker"),
        Column("babies", "Babies"),
        *(Column(p, p) for p in ("p01", "p05", "p50", "p95", "p99", "p995")),
    ),
    suppression=Suppression(rows_below="babies", always=True),
    key="markers",
    report_csv="marker_percentiles",
)

SUBMITTERS = Statistic(
    name="submitter_quality",
    title="Cards per submitting unit",
    description="Cards and unsatisfactory cards per submitting unit and year",
    source="submitters_by_year",
    columns=(
        Column("year", "Year"),
        Column("submitter", "Submitting unit"),
        Column("cards", "Cards"),
        Column("unsatisfactory", "Unsatisfactory"),
    ),
    suppression=Suppression(counts=("cards", "unsatisfactory"), always=True),
)

#: every statistic the laboratory publishes, in the order they are shown
STATISTICS: tuple[Statistic, ...] = (
    YIELD,
    QUALITY,
    MISSED,
    UNSATISFACTORY,
    MARKERS,
    SUBMITTERS,
)


def by_key(key: str) -> Statistic:
    """The statistic ``nbs stats --table KEY`` names."""
    return next(s for s in STATISTICS if s.key == key)


def table_keys() -> list[str]:
    """What ``nbs stats --table`` offers."""
    return [s.key for s in STATISTICS if s.key]


def definitions() -> dict[str, str]:
    """Every defined column (term -> definition), as officials read them."""
    return {c.name: c.definition for s in STATISTICS for c in s.columns if c.definition}
