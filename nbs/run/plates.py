"""The batch's plates: each new plate judged by its calibration and controls
(:mod:`nbs.qc.plates`), and the results no call may use.

A plate is judged once, by the run that first reads it. The specimen results of every
plate that is not accepted (held by this batch, or held or rejected before) are held: the
evaluation makes no call from them. The cards of plates a supervisor accepted since the
last run are evaluated again (their results now count).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from nbs import store
from nbs.config import ScreeningConfig
from nbs.intake.files import StagedFile
from nbs.qc.plates import QC_COLUMNS, PlateVerdict, judge_plates
from nbs.run.context import RunContext
from nbs.store import plates as plate_store
from nbs.validate.times import parse_datetime
from nbs.validate.wells import QC_TYPES

#: a new plate and its verdict, as the commit writes it
PLATES_SCHEMA = pl.Schema(
    {
        "plate_id": pl.String(),
        "instrument": pl.String(),
        "run_at": pl.Datetime("us"),
        "kit_lot": pl.String(),
        "status": pl.String(),
        "reason": pl.String(),
        "qc_version": pl.String(),
    }
)
#: a QC row of a new plate, with its z-score and broken rules, as the commit writes it
QC_PART_SCHEMA = pl.Schema(
    {**QC_TYPES, "file_sha256": pl.String(), "z": pl.Float64(), "rules": pl.String()}
)
#: a held specimen result (the evaluation's key) and why it is held
HELD_SCHEMA = pl.Schema(
    {
        "specimen_id": pl.String(),
        "analyte": pl.String(),
        "replicate": pl.Int64(),
        "held_reason": pl.String(),
    }
)
NO_QC = "accepted without QC: no control, calibrator or blank well came with this plate"
NO_QC_HELD = (
    "held: no control, calibrator or blank well came with this plate (qc.yaml: "
    "plates_without_qc: hold)"
)


@dataclass(frozen=True)
class PlateGate:
    """What the plates mean for the batch's evaluation."""

    #: plates not accepted (their specimen results are held)
    held_plates: list[str]
    #: the batch's own results on those plates
    held_results: pl.DataFrame
    #: cards of plates accepted since the last run (evaluated again)
    released_cards: pl.DataFrame
    #: why each plate this batch holds is held (for the run summary)
    held_reasons: list[str]


def _parts(readable: list[StagedFile], work: RunContext, what: str) -> list[pl.DataFrame]:
    return [
        pl.read_parquet(store.staged_part(work.work_dir, what, "results", s.planned.file.sha256))
        for s in readable
        if s.planned.file.kind == "results"
    ]


def _batch_plates(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Each plate of the batch once: instrument, assay kit lot and first measurement."""
    if not parts:
        return pl.DataFrame(
            schema={
                "plate_id": pl.String,
                "instrument": pl.String,
                "kit_lot": pl.String,
                "run_at": pl.Datetime("us"),
            }
        )
    found = (
        pl.concat(parts, how="diagonal_relaxed")
        .filter(pl.col("plate_id").is_not_null())
        .group_by("plate_id")
        .agg(
            pl.col("instrument").drop_nulls().first(),
            pl.col("kit_lot").drop_nulls().first(),
            pl.col("first_text").min(),
        )
    )
    return found.with_columns(run_at=parse_datetime(found["first_text"])).drop("first_text")


def _verdict_rows(
    new: pl.DataFrame, verdicts: list[PlateVerdict], config: ScreeningConfig
) -> pl.DataFrame:
    """The new plates with their status and reason (plates without QC rows by policy)."""
    judged = pl.DataFrame(
        [(v.plate_id, v.status, v.reason) for v in verdicts],
        schema={"plate_id": pl.String, "status": pl.String, "reason": pl.String},
        orient="row",
    )
    hold = config.qc.plates_without_qc == "hold"
    default_status = "held" if hold else "accepted"
    default_reason = (
        pl.concat_str([pl.lit("plate "), pl.col("plate_id"), pl.lit(f" {NO_QC_HELD}")])
        if hold
        else pl.lit(NO_QC)
    )
    return (
        new.join(judged, on="plate_id", how="left")
        .with_columns(
            status=pl.col("status").fill_null(default_status),
            reason=pl.col("reason").fill_null(default_reason),
            qc_version=pl.lit(config.qc.qc_version),
        )
        .select(list(PLATES_SCHEMA))
        .cast(PLATES_SCHEMA)
    )


def _scored_qc(qc: pl.DataFrame, verdicts: list[PlateVerdict]) -> pl.DataFrame:
    """The QC rows with each control's z-score and the rules it broke ('' none)."""
    scored = {ref: zr for v in verdicts for ref, zr in v.scored.items()}
    z = [scored.get(i, (None, ""))[0] for i in range(qc.height)]
    rules = [scored.get(i, (None, ""))[1] for i in range(qc.height)]
    return qc.with_columns(
        pl.Series("z", z, dtype=pl.Float64), pl.Series("rules", rules, dtype=pl.String)
    ).select(list(QC_PART_SCHEMA))


def _held_in_batch(ctx: RunContext, results: pl.DataFrame, held: pl.DataFrame) -> pl.DataFrame:
    """The batch's specimen results on the ``held`` plates (``plate_id``, ``reason``); a
    result knows its plate through its raw row."""
    if held.is_empty() or results.is_empty():
        return HELD_SCHEMA.to_frame()
    raw = (
        pl.scan_parquet(store.staged_part(ctx.work_dir, "raw", "results"))
        .select("file_sha256", "row_number", "plate_id")
        .filter(pl.col("plate_id").is_in(held["plate_id"].implode()))
        .collect()
    )
    keyed = results.select(
        pl.col("file_sha256").cast(pl.String), "row_number", "specimen_id", "analyte", "replicate"
    )
    return (
        keyed.join(raw, on=["file_sha256", "row_number"])
        .join(held, on="plate_id")
        .select("specimen_id", "analyte", "replicate", held_reason=pl.col("reason"))
        .cast(HELD_SCHEMA)
    )


def gate_plates(
    ctx: RunContext,
    config: ScreeningConfig,
    readable: list[StagedFile],
    results: pl.DataFrame,
    out: store.RunFiles,
) -> PlateGate:
    """Judge the batch's new plates, write them (and their QC rows) for the commit, and
    say which results the evaluation must hold and which cards it must evaluate again."""
    plates = _batch_plates(_parts(readable, ctx, "plates"))
    qc_parts = _parts(readable, ctx, "qc")
    empty = pl.DataFrame(schema={**QC_TYPES, "file_sha256": pl.String()})
    qc = pl.concat([empty, *qc_parts], how="vertical_relaxed")
    qc = qc.filter(pl.col("plate_id").is_not_null())
    with store.connect(ctx.db_path, read_only=True) as con:
        known = plate_store.known_plates(con, plates.select("plate_id"))
        history = plate_store.control_history(con, sorted(set(qc["analyte"].to_list())))
        stored_held = plate_store.unaccepted_plates(con)
        released_plates, released = plate_store.released_cards(con)
    new = plates.join(known.select("plate_id"), on="plate_id", how="anti")
    qc_new = qc.join(new.select("plate_id"), on="plate_id", how="semi").sort("measured_at")
    # the rows judged and the rows written in one order: a verdict names rows by position
    verdicts = judge_plates(
        qc_new.select(list(QC_COLUMNS)), history.select(list(QC_COLUMNS)), config.qc
    )
    judged = _verdict_rows(new, verdicts, config)
    store.write_part(judged, out.plates)
    store.write_part(_scored_qc(qc_new, verdicts), out.qc)
    store.write_part(released_plates, out.released)
    newly_held = judged.filter(pl.col("status") != "accepted")
    held = pl.concat(
        [
            newly_held.select("plate_id", "reason"),
            known.filter(pl.col("status") != "accepted").select("plate_id", "reason"),
        ]
    )
    return PlateGate(
        held_plates=sorted(set(held["plate_id"].to_list()) | set(stored_held)),
        held_results=_held_in_batch(ctx, results, held),
        released_cards=released,
        held_reasons=newly_held["reason"].to_list(),
    )
