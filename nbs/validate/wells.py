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
from nbs.validate.contract import QUARANTINE_SCHEMA
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


def validate_wells(raw: pl.DataFrame, catalogue: Catalogue) -> Checked:
    """Check the non-specimen wells of a block: roles known, then the result checks
    (with the material standing in for the card). Good rows in ``QC_TYPES``."""
    if raw.is_empty():
        return Checked(QC_TYPES.to_frame(), QUARANTINE_SCHEMA.to_frame())
    kinds = raw.with_columns(_role=role(pl.col("sample_type")))
    unknown = kinds.filter(~pl.col("_role").is_in(ROLES))
    bad_role = unknown.select(
        "row_number",
        column_name=pl.lit("sample_type"),
        value=pl.col("sample_type"),
        reason=pl.lit("sample_type must be specimen, control, calibrator or blank"),
    )
    rows = kinds.filter(pl.col("_role").is_in(ROLES))
    stand_in = pl.concat_str([pl.lit("QC:"), pl.col("material").fill_null(pl.col("_role"))])
    checked = validate_results(
        rows.with_columns(
            specimen_id=pl.col("specimen_id").fill_null(stand_in),
            replicate=pl.col("replicate").fill_null("1"),
        ).drop([c for c in rows.columns if c.startswith("_") or c in _WELL_ONLY]),
        catalogue,
    )
    good = checked.good.join(rows, on="row_number", how="inner", suffix="_raw")
    return Checked(_typed(good), pl.concat([bad_role, checked.quarantine]))


_WELL_ONLY = ("sample_type", "material", "material_level", "material_lot", "nominal", "ct")


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
