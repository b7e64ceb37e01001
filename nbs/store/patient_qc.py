"""Patient-based QC (``patient_qc_alarms``): the screen-negative first punches a run's
moving medians read, and the alarms it raised. What an alarm means is
:mod:`nbs.qc.patient`'s.

A **screen-negative first punch** is a result with ``replicate = 1`` and a value, of a card
whose every current screening call is ``negative`` (``screening_calls``), on a plate that
is accepted (or a result without a known plate); its instrument and plate are those of
its raw row, its kit lot its plate's ('' when not given): a series is one instrument,
kit lot and analyte. These reads run after every run: they touch the run's own results, and for
the history only the most recent results of the analytes asked for.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from nbs.store.connection import Connection, fetch, query, transaction

#: a first punch as the reads return it (the history and the run's, each in time order)
PUNCH_SCHEMA = pl.Schema(
    {
        "instrument": pl.String(),
        "kit_lot": pl.String(),
        "analyte": pl.String(),
        "unit": pl.String(),
        "value": pl.Float64(),
        "measured_at": pl.Datetime("us"),
        "plate_id": pl.String(),
    }
)
#: an alarm as :func:`write_alarms` takes it (``patient_qc_alarms`` but run and time)
ALARM_COLUMNS = (
    "instrument", "kit_lot", "analyte", "statistic", "value", "unit", "side", "low", "high",
    "reference", "n", "plate_id", "measured_at", "text",
)  # fmt: skip
#: older history is read only when the most recent first punches of an analyte, this many
#: times the history asked for, hold too few screen-negative ones of a series
_MARGIN = 2
#: the instrument of a result whose raw row names none
NO_INSTRUMENT = "unknown"
#: what makes one series of patient results
SERIES_KEY = ["instrument", "kit_lot", "analyte"]

# The candidate first punches (``cand``, with the card) -> the cards among them whose
# every current screening call is negative. This is the view ``screening_calls`` spelled
# out over the candidate cards only: through the view, DuckDB ranks every call ever made
# before it joins (0.7 s instead of 0.2 s at 100,000 cards); a test keeps the two equal.
_NEGATIVE = """
negative AS (
    SELECT specimen_id FROM (
        SELECT c.specimen_id, c.call,
               row_number() OVER (PARTITION BY c.specimen_id, c.condition
                                  ORDER BY c.run_seq DESC, c.evaluated_at DESC) AS rn
        FROM calls c SEMI JOIN cand USING (specimen_id)
        WHERE c.kind = 'screening'
    ) WHERE rn = 1
    GROUP BY specimen_id HAVING bool_and(call = 'negative')
)"""
_PUNCH = (
    "r.specimen_id, coalesce(w.instrument, '" + NO_INSTRUMENT + "') AS instrument, "
    "coalesce(kl.kit_lot, '') AS kit_lot, r.analyte, r.unit, r.value, r.measured_at, "
    "w.plate_id, r.file_sha256, r.row_number"
)
#: the kit lot of a result's plate
_KIT_LOT = "LEFT JOIN plates kl ON kl.plate_id = w.plate_id "
# what keeps a candidate: a screen-negative card, a plate that is accepted (or unknown)
_KEPT = (
    "FROM cand SEMI JOIN negative USING (specimen_id) "
    "ANTI JOIN plates p ON p.plate_id = cand.plate_id AND p.status <> 'accepted'"
)
#: a first punch with a value and a time (a result without one has no place in the series)
_FIRST_PUNCH = "replicate = 1 AND value IS NOT NULL AND measured_at IS NOT NULL"
_FIRST_PUNCH_R = "r.replicate = 1 AND r.value IS NOT NULL AND r.measured_at IS NOT NULL"
#: the runs before a run (its history: a run checked again later is judged as it was)
_EARLIER = "(SELECT run_id FROM runs WHERE run_seq < (SELECT run_seq FROM runs WHERE run_id = ?))"
_OUT = "instrument, kit_lot, analyte, unit, value, measured_at, plate_id"
_ORDER = "instrument, kit_lot, analyte, measured_at, file_sha256, row_number"


def run_first_punch_count(con: Connection, run_id: str) -> int:
    """How many first punches run ``run_id`` stored (a bound checked before reading them)."""
    rows = con.execute(
        "SELECT count(*) FROM results WHERE run_id = ? AND replicate = 1", [run_id]
    ).fetchall()
    return int(rows[0][0])


def run_first_punches(con: Connection, run_id: str, analytes: list[str]) -> pl.DataFrame:
    """The screen-negative first punches of ``analytes`` that run ``run_id`` stored, per
    series (:data:`SERIES_KEY`) in measurement order (:data:`PUNCH_SCHEMA`)."""
    frame = fetch(
        con,
        f"WITH cand AS MATERIALIZED (SELECT {_PUNCH} FROM results r "
        "JOIN raw_result_rows w USING (file_sha256, row_number) "
        f"{_KIT_LOT}WHERE r.run_id = ? AND {_FIRST_PUNCH_R} "
        f"AND list_contains(?, r.analyte)), {_NEGATIVE} "
        f"SELECT {_OUT} {_KEPT} ORDER BY {_ORDER}",
        [run_id, analytes],
    )
    return _typed(frame)


def history_first_punches(
    con: Connection, run_id: str, series: pl.DataFrame, per_series: int
) -> pl.DataFrame:
    """For each ``series`` (a frame of :data:`SERIES_KEY`): its most recent
    ``per_series`` screen-negative first punches stored by the runs before ``run_id``,
    oldest first (:data:`PUNCH_SCHEMA`).

    Only the first punches of each analyte measured since its ``2 x per_series``-th most
    recent one are joined (a year of results is not joined to find a few thousand); a
    series that finds too few there, while its analyte has older results, reads them all.
    """
    if series.is_empty():
        return _typed(pl.DataFrame(schema=PUNCH_SCHEMA))
    wanted = series.select(SERIES_KEY).unique()
    analytes = sorted(set(wanted["analyte"].to_list()))
    bounds = fetch(
        con,
        "SELECT analyte, list_min(max(measured_at, ?)) AS since, count(*) >= ? AS more "
        f"FROM results WHERE {_FIRST_PUNCH} AND run_id IN {_EARLIER} "
        "AND list_contains(?, analyte) GROUP BY analyte",
        [_MARGIN * per_series, _MARGIN * per_series, run_id, analytes],
    )
    found = _history(con, run_id, wanted.join(bounds, on="analyte"), per_series)
    counts = found.group_by(SERIES_KEY).len()
    short = (
        wanted.join(bounds, on="analyte")
        .join(counts, on=SERIES_KEY, how="left")
        .filter(pl.col("more") & (pl.col("len").fill_null(0) < per_series))
    )
    if short.is_empty():
        return found
    wider = short.select(*SERIES_KEY, since=pl.lit(None, pl.Datetime("us")))
    rest = _history(con, run_id, wider, per_series)
    kept = found.join(short, on=SERIES_KEY, how="anti")
    return pl.concat([kept, rest]).sort(SERIES_KEY, maintain_order=True)


def _history(con: Connection, run_id: str, wanted: pl.DataFrame, per_series: int) -> pl.DataFrame:
    """The history of the ``wanted`` series (its key, since: None for all)."""
    analytes = sorted(set(wanted["analyte"].to_list()))
    since = wanted.group_by("analyte").agg(pl.col("since").min())
    con.register("wanted", wanted.select(SERIES_KEY).to_arrow())
    con.register("since", since.to_arrow())
    try:
        frame = fetch(
            con,
            f"WITH cand AS MATERIALIZED (SELECT {_PUNCH} FROM results r "
            "JOIN since b ON b.analyte = r.analyte "
            "AND (b.since IS NULL OR r.measured_at >= b.since) "
            "JOIN raw_result_rows w USING (file_sha256, row_number) "
            f"{_KIT_LOT}SEMI JOIN wanted s ON s.analyte = r.analyte "
            f"AND s.instrument = coalesce(w.instrument, '{NO_INSTRUMENT}') "
            "AND s.kit_lot = coalesce(kl.kit_lot, '') "
            f"WHERE r.run_id IN {_EARLIER} AND {_FIRST_PUNCH_R} "
            f"AND list_contains(?, r.analyte)), {_NEGATIVE}, "
            f"kept AS (SELECT * {_KEPT} QUALIFY row_number() OVER (PARTITION BY instrument, "
            "kit_lot, analyte ORDER BY measured_at DESC, file_sha256 DESC, row_number DESC) <= ?) "
            f"SELECT {_OUT} FROM kept ORDER BY {_ORDER}",
            [run_id, analytes, per_series],
        )
    finally:
        con.unregister("wanted")
        con.unregister("since")
    return _typed(frame)


def _typed(frame: pl.DataFrame) -> pl.DataFrame:
    if frame.is_empty():
        return pl.DataFrame(schema=PUNCH_SCHEMA)
    return frame.select(pl.col(name).cast(dtype) for name, dtype in PUNCH_SCHEMA.items())


def write_alarms(con: Connection, alarms: pl.DataFrame, run_id: str, now: dt.datetime) -> int:
    """The run's alarms (a frame of :data:`ALARM_COLUMNS`), in one transaction; a second
    check of the same run replaces them. Returns the alarms written."""
    columns = ", ".join(ALARM_COLUMNS)
    with transaction(con):
        con.execute("DELETE FROM patient_qc_alarms WHERE run_id = ?", [run_id])
        if alarms.is_empty():
            return 0
        con.register("alarms", alarms.select(ALARM_COLUMNS).to_arrow())
        try:
            con.execute(
                f"INSERT INTO patient_qc_alarms (run_id, {columns}, raised_at) "
                f"SELECT ?, {columns}, ? FROM alarms",
                [run_id, now],
            )
        finally:
            con.unregister("alarms")
    return alarms.height


def patient_qc_alarms(
    db_path: Path, run_id: str | None = None, limit: int | None = None
) -> pl.DataFrame:
    """The alarms raised, newest first (of one run when ``run_id`` is given; at most
    ``limit``): every column of ``patient_qc_alarms``."""
    where = "WHERE run_id = ? " if run_id is not None else ""
    params: list[object] = [run_id] if run_id is not None else []
    if limit is not None:
        params.append(limit)
    return query(
        db_path,
        f"SELECT * FROM patient_qc_alarms {where}"
        "ORDER BY raised_at DESC, analyte, instrument" + (" LIMIT ?" if limit is not None else ""),
        params,
    )
