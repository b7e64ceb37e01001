"""The births register: a CSV of every baby born (``baby_id, birth_at, submitter`` and an
optional ``status``), imported so that completeness can be measured (NewSTEPs QI 3: the
babies born without a screened card by the configured day of life; Germany's screening
report counts declined screening and deaths before sampling apart, so both are kept).

A row that cannot be kept is quarantined with a reason naming its row, never dropped;
importing the same file again changes nothing, and a later file's row of a baby replaces
the earlier one (the register corrects itself).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import polars as pl

from nbs import settings, store
from nbs.store import births as births_store
from nbs.store.births import BirthsImported
from nbs.validate.times import parse_datetime

REQUIRED = ("baby_id", "birth_at", "submitter")
#: what the register's ``status`` may say (empty: born, to be screened)
REGISTER_STATUSES = ("declined", "deceased")
#: what a coordinator may record (``unscreened`` withdraws an earlier mark)
MARKS = ("declined", "deceased", "unscreened")


class BirthsError(ValueError):
    """A register file that cannot be read at all (the message says why)."""


def _read(path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise BirthsError(f"{path.name}: not a readable CSV file ({exc})") from exc
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise BirthsError(f"{path.name}: missing column(s) {', '.join(missing)}")
    if "status" not in frame.columns:
        frame = frame.with_columns(status=pl.lit(None, pl.String))
    stripped = pl.col(*REQUIRED, "status").str.strip_chars()
    return frame.with_columns(pl.when(stripped != "").then(stripped))


def _reasons(frame: pl.DataFrame, now: dt.datetime) -> pl.DataFrame:
    """Each row's reason to be quarantined (null: kept); the first problem found."""
    status = pl.col("status").str.to_lowercase()
    first_seen = pl.col("row_number").min().over("baby_id")
    rules = [
        (pl.col("baby_id").is_null(), pl.lit("no baby_id")),
        (pl.col("raw_birth_at").is_null(), pl.lit("no birth_at")),
        (
            pl.col("birth_at").is_null(),
            pl.lit("birth_at is not an ISO-8601 date and time: ") + pl.col("raw_birth_at"),
        ),
        (pl.col("birth_at") > now, pl.lit("birth_at is in the future: ") + pl.col("raw_birth_at")),
        (
            status.is_not_null() & ~status.is_in(REGISTER_STATUSES),
            pl.lit(f"status must be empty or one of {', '.join(REGISTER_STATUSES)}, not ")
            + pl.col("status"),
        ),
        (
            pl.col("row_number") != first_seen,
            pl.lit("baby_id repeated: first at row ") + first_seen.cast(pl.String),
        ),
    ]
    # the first rule that holds gives the reason
    reason = pl.coalesce([pl.when(when).then(then) for when, then in rules])
    return frame.with_columns(
        reason=pl.lit("row ") + pl.col("row_number").cast(pl.String) + pl.lit(": ") + reason
    )


def parse_register(path: Path, now: dt.datetime | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The file's rows to keep and its rows to quarantine (``reason`` names the row:
    ``row 3: ...``, the first data row being row 1)."""
    frame = _read(path)
    raw = frame.select(pl.concat_str(pl.all().fill_null(""), separator=",").alias("raw"))
    frame = frame.with_columns(
        raw["raw"],
        row_number=pl.int_range(1, frame.height + 1, dtype=pl.Int32),
        raw_birth_at=pl.col("birth_at"),
        birth_at=parse_datetime(frame["birth_at"].fill_null("")),
        status=pl.col("status").str.to_lowercase(),
    )
    judged = _reasons(frame, now or store.utc_now())
    kept = judged.filter(pl.col("reason").is_null()).select(
        "baby_id", "birth_at", "submitter", "status",
        file_name=pl.lit(path.name), row_number="row_number",
    )  # fmt: skip
    rejected = judged.filter(pl.col("reason").is_not_null()).select(
        file_name=pl.lit(path.name), row_number="row_number", baby_id="baby_id",
        reason="reason", raw="raw",
    )  # fmt: skip
    return kept, rejected


def import_register(db: Path, path: Path) -> BirthsImported:
    """Import a births register file into ``db`` (created when new)."""
    kept, rejected = parse_register(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    store.ensure_schema(db)
    day = settings.current().births_screened_by_day
    return births_store.import_births(db, kept, rejected, digest, day)


def mark(db: Path, baby_id: str, status: str, by: str, note: str | None = None) -> None:
    """Record a coordinator's ``status`` (declined, deceased, or unscreened to withdraw a
    mark) for a baby of the register."""
    if status not in MARKS:
        raise BirthsError(f"status must be one of {', '.join(MARKS)}, not {status!r}")
    day = settings.current().births_screened_by_day
    if not births_store.mark_birth(db, baby_id, status, by, note, day):
        raise BirthsError(f"no baby {baby_id} in the births register")
