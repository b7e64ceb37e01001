"""Judging a batch's plates: calibration and control rules decide whether a plate's
specimen results may be used.

A plate whose calibration or controls fail is ``held``: none of its specimen results
reaches a call until a supervisor accepts the plate (with a reason) or confirms the
rejection. A plate is judged once, when it first arrives; the controls of the plates
before it (accepted ones, and the targets they established) are its history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

from nbs.qc.calibration import Standard, curve_problems, recovery_problems
from nbs.qc.config import QcConfig
from nbs.qc.westgard import Control, Target, Violation, established_target, judge

#: the well roles of the canonical results file; a specimen's row is the default
SAMPLE_TYPES = ("specimen", "control", "calibrator", "blank")

#: columns of the QC rows a plate is judged on (controls, calibrators, blanks)
QC_COLUMNS = pl.Schema(
    {
        "plate_id": pl.String(),
        "instrument": pl.String(),
        "well": pl.String(),
        "sample_type": pl.String(),
        "analyte": pl.String(),
        "material": pl.String(),
        "level": pl.String(),
        "lot": pl.String(),
        "value": pl.Float64(),
        "nominal": pl.Float64(),
        "ct": pl.Float64(),
        "measured_at": pl.Datetime("us"),
    }
)


@dataclass(frozen=True)
class PlateVerdict:
    """A plate's status after the rules (``accepted`` or ``held``) and why."""

    plate_id: str
    status: str
    reason: str
    violations: list[Violation] = field(default_factory=list)
    #: per control row (its index in the rows judged): z-score and the rules it broke
    scored: dict[int, tuple[float, str]] = field(default_factory=dict)


def _controls(rows: pl.DataFrame) -> list[Control]:
    """The control results of ``rows``; ``ref`` is the row's ``_ref`` when it has one."""
    frame = rows if "_ref" in rows.columns else rows.with_row_index("_ref")
    frame = frame.filter((pl.col("sample_type") == "control") & pl.col("value").is_not_null())
    return [
        Control(
            r["plate_id"],
            r["measured_at"],
            r["analyte"],
            r["material"] or "",
            r["level"] or "",
            r["lot"] or "",
            r["value"],
            int(r["_ref"]),
        )
        for r in frame.iter_rows(named=True)
    ]


def _targets(qc: QcConfig, accepted: Iterable[Control]) -> dict[tuple[str, str, str, str], Target]:
    """Declared targets, and for other lots the first accepted results (CLSI C24)."""
    values: dict[tuple[str, str, str, str], list[float]] = {}
    for control in sorted(accepted, key=lambda c: (c.run_at, c.plate_id)):
        values.setdefault(control.series, []).append(control.value)
    targets = {}
    for series, found in values.items():
        target = established_target(found, qc.establish_from)
        if target is not None:
            targets[series] = target
    return {**targets, **qc.declared_targets()}


def _calibration_problems(rows: pl.DataFrame, qc: QcConfig) -> list[str]:
    """Standard curves (qPCR) and calibrator recovery (immunoassay) of one plate."""
    problems = []
    for analyte, limits in sorted(qc.qpcr_curves.items()):
        own = rows.filter(pl.col("analyte") == analyte)
        standards = own.filter(pl.col("sample_type") == "calibrator")
        if standards.is_empty():
            continue
        points = [
            Standard(q, ct)
            for q, ct in standards.select("nominal", "ct").iter_rows()
            if q is not None and q > 0
        ]
        blanks = own.filter(pl.col("sample_type") == "blank")["ct"].to_list()
        problems += [f"{analyte} {p}" for p in curve_problems(points, blanks, limits)]
    for analyte, recovery in sorted(qc.calibrator_recovery.items()):
        calibrators = rows.filter(
            (pl.col("analyte") == analyte)
            & (pl.col("sample_type") == "calibrator")
            & pl.col("nominal").is_not_null()
            & pl.col("value").is_not_null()
        )
        named = [
            (f"{analyte} {m or w}", n, v)
            for m, w, n, v in calibrators.select("material", "well", "nominal", "value").iter_rows()
        ]
        problems += recovery_problems(named, recovery)
    return problems


def judge_plates(rows: pl.DataFrame, history: pl.DataFrame, qc: QcConfig) -> list[PlateVerdict]:
    """The verdict on every plate of ``rows`` (the batch's QC rows, ``QC_COLUMNS``), in
    run order. ``history``: the control rows of accepted plates judged before."""
    accepted = _controls(history)
    rows = rows.with_row_index("_ref")
    verdicts = []
    first_seen = (
        rows.group_by("plate_id").agg(pl.col("measured_at").min()).sort("measured_at", "plate_id")
    )
    for plate_id, _ in first_seen.iter_rows():
        plate = rows.filter(pl.col("plate_id") == plate_id)
        verdict = _judge_plate(plate_id, plate, accepted, qc)
        verdicts.append(verdict)
        if verdict.status == "accepted":
            accepted += _controls(plate)
    return verdicts


def _judge_plate(
    plate_id: str, plate: pl.DataFrame, accepted: list[Control], qc: QcConfig
) -> PlateVerdict:
    problems = _calibration_problems(plate, qc)
    controls = _controls(plate)
    targets = _targets(qc, accepted)
    violations: list[Violation] = []
    scored: dict[int, tuple[float, str]] = {}
    for analyte in sorted({c.analyte for c in controls}):
        mine = [c for c in controls if c.analyte == analyte]
        before = [c for c in accepted if c.analyte == analyte]
        judged = judge([*before, *mine], targets, qc.rules_for(analyte))
        violations += [v for v in judged.violations if v.control.plate_id == plate_id]
        for s in judged.scored:
            if s.control.plate_id == plate_id:
                broken = [v.rule for v in violations if v.control.ref == s.control.ref]
                scored[s.control.ref] = (s.z, ", ".join(broken))
        for control in judged.untargeted:
            if control.plate_id == plate_id:
                problems.append(_untargeted(control, accepted, qc))
    rejecting = [v for v in violations if v.severity == "reject"]
    problems += [v.text() for v in rejecting]
    if problems:
        reason = f"plate {plate_id} held: " + "; ".join(problems)
        return PlateVerdict(plate_id, "held", reason, violations, scored)
    warnings = [v.text() for v in violations]
    reason = "controls within limits" + (f" (warning: {'; '.join(warnings)})" if warnings else "")
    return PlateVerdict(plate_id, "accepted", reason, violations, scored)


def _untargeted(control: Control, accepted: list[Control], qc: QcConfig) -> str:
    have = sum(1 for c in accepted if c.series == control.series)
    return (
        f"no target for {control.analyte} {control.material} level {control.level}, lot "
        f"{control.lot} yet ({have} of {qc.establish_from} accepted results; declare its "
        f"mean and SD in qc.yaml or accept plates until then)"
    )
