"""The wells of a plate that are not a baby's: controls, calibrators and blanks.

A results file (or an instrument export) may carry the optional well columns
(``sample_type``, ``material``, ``material_level``, ``material_lot``, ``nominal``, ``ct``).
Specimen rows go on as results; the other rows are checked here like results (analyte,
unit, value, time) but need no ``specimen_id``, and become the QC rows a plate is judged
by. The material's level and lot may be written in ``material`` itself
(``NBS-CTRL level 2 lot 4411``, ``QC-TREC L1 lot 2207``) when their columns are empty.
"""

from __future__ import annotations

import re

import polars as pl

from analytes import Catalogue
from nbs.validate.check import Checked, validate_results
from nbs.validate.parsing import parse_float

#: the well roles, and the other names instrument software gives them
ROLES = ("specimen", "control", "calibrator", "blank")
SYNONYMS = {
    "sample": "specimen", "patient": "specimen", "unknown": "specimen", "qc": "control",
    "standard": "calibrator", "std": "calibrator", "ntc": "blank",
    "no template control": "blank", "reagent blank": "blank",
}  # fmt: skip

#: typed columns of a checked QC row (value and nominal in the catalogue unit)
QC_TYPES = pl.Schema(
    {
        "row_number": pl.Int64(),
        "plate_id": pl.String(),
        "instrument": pl.String(),
        "well": pl.String(),
        "sample_type": pl.String(),
        "analyte": pl.String(),
        "material": pl.String(),
        "level": pl.String(),
        "lot": pl.String(),
        "value": pl.Float64(),
        "value_text": pl.String(),
        "nominal": pl.Float64(),
        "ct": pl.Float64(),
        "measured_at": pl.Datetime("us"),
    }
)
_LOT = re.compile(r"\blot[\s:#-]*([A-Za-z0-9][\w.-]*)", re.IGNORECASE)
_LEVEL = re.compile(r"\b(?:level|lvl)[\s:#-]*(\w+)|\b(L\d)\b", re.IGNORECASE)


def role(column: pl.Expr) -> pl.Expr:
    """The well role of a ``sample_type`` text (null stays null: a specimen)."""
    text = column.str.strip_chars().str.to_lowercase()
    return text.replace(SYNONYMS)


def split_wells(raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(specimen rows, other wells) of a block; a block without ``sample_type`` is all
    specimens."""
    if "sample_type" not in raw.columns:
        return raw, raw.clear()
    missing = [c for c in _WELL_ONLY if c not in raw.columns]
    raw = raw.with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in missing])
    kind = role(pl.col("sample_type"))
    specimen = kind.is_null() | (kind == "specimen")
    return raw.filter(specimen), raw.filter(~specimen)


def material_parts(text: str | None) -> tuple[str | None, str | None, str | None]:
    """(material, level, lot) of a material text such as ``NBS-CTRL level 2 lot 4411``."""
    if not text:
        return None, None, None
    lot = _LOT.search(text)
    level = _LEVEL.search(text)
    cut = min([m.start() for m in (lot, level) if m] or [len(text)])
    name = text[:cut].strip(" ,;:/-") or text
    return (
        name,
        (level.group(1) or level.group(2)) if level else None,
        lot.group(1) if lot else None,
    )


def validate_block(raw: pl.DataFrame, catalogue: Catalogue) -> tuple[Checked, pl.DataFrame]:
    """Check a results block: its specimen rows as results, and its other wells (roles
    known, then the result checks with the material standing in for the card) in the same
    pass. Returns the specimen rows' check (quarantine: every row's) and the good QC rows
    in ``QC_TYPES``."""
    rows, others = split_wells(raw)
    rows = rows.drop([c for c in _WELL_ONLY if c in rows.columns])
    if others.is_empty():
        return validate_results(rows, catalogue), QC_TYPES.to_frame()
    kinds = others.with_columns(_role=role(pl.col("sample_type")))
    bad_role = kinds.filter(~pl.col("_role").is_in(ROLES)).select(
        "row_number",
        column_name=pl.lit("sample_type"),
        value=pl.col("sample_type"),
        reason=pl.lit("sample_type must be specimen, control, calibrator or blank"),
    )
    wells = kinds.filter(pl.col("_role").is_in(ROLES))
    stand_in = pl.concat_str([pl.lit("QC:"), pl.col("material").fill_null(pl.col("_role"))])
    as_results = wells.with_columns(
        specimen_id=pl.col("specimen_id").fill_null(stand_in),
        replicate=pl.col("replicate").fill_null("1"),
    ).select(rows.columns)
    # one schema pass for the block: pandera's cost is per call, not per row
    checked = validate_results(pl.concat([rows, as_results]), catalogue)
    is_well = pl.col("row_number").is_in(wells["row_number"].implode())
    good = checked.good.filter(is_well).join(wells, on="row_number", how="inner", suffix="_raw")
    quarantine = pl.concat([checked.quarantine, bad_role]).sort("row_number", maintain_order=True)
    return Checked(checked.good.filter(~is_well), quarantine), _typed(good)


_WELL_ONLY = (
    "sample_type", "material", "material_level", "material_lot", "nominal", "ct", "kit_lot",
)  # fmt: skip


def _typed(good: pl.DataFrame) -> pl.DataFrame:
    """QC rows in ``QC_TYPES``: level and lot from their columns or the material's text,
    the nominal value in the catalogue unit (the value's own factor)."""
    parts = [material_parts(t) for t in good["material"].to_list()]
    factor = (
        pl.when(pl.col("value_reported").is_not_null() & (pl.col("value_reported") != 0))
        .then(pl.col("value") / pl.col("value_reported"))
        .otherwise(1.0)
    )
    good = good.with_columns(
        parse_float(good["nominal"]).alias("_nominal"),
        parse_float(good["ct"]).alias("_ct"),
        pl.Series("_material", [p[0] for p in parts], dtype=pl.String),
        pl.Series("_level", [p[1] for p in parts], dtype=pl.String),
        pl.Series("_lot", [p[2] for p in parts], dtype=pl.String),
    )
    return good.with_columns(
        sample_type=pl.col("_role"),
        material=pl.col("_material"),
        level=pl.col("material_level").fill_null(pl.col("_level")),
        lot=pl.col("material_lot").fill_null(pl.col("_lot")),
        value_text=pl.col("value_raw"),
        nominal=pl.col("_nominal") * factor,
        ct=pl.col("_ct"),
    ).select(list(QC_TYPES))
