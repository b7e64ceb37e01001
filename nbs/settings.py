"""The laboratory's tunables in one typed place.

Each setting has its default here and a one-line description (``nbs settings`` prints them),
and is overridden by an environment variable of its name in capitals with the prefix
``NBS_`` (``lab_time_zone`` -> ``NBS_LAB_TIME_ZONE``). Nothing is read at import: a
process builds :class:`Settings` when it needs them (:func:`current`), so a test or a
Prefect worker that sets a variable first gets it.

Clinical limits are not settings: they live in the cutoff sets (``cutoffs/``), with their
sources, and change by a new version.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Tunables of a laboratory's installation (defaults fit a 2-core machine and a
    national programme of ~6,500 babies a year)."""

    model_config = SettingsConfigDict(
        env_prefix="NBS_", frozen=True, extra="ignore", use_attribute_docstrings=True
    )

    # -- the laboratory --------------------------------------------------------------
    lab_time_zone: str = "Europe/Luxembourg"
    """Time zone of the laboratory: times sent with an offset are converted to it."""

    user: str | None = None
    """Who the audit trail names for command-line changes (default: the login name)."""

    # -- intake ----------------------------------------------------------------------
    inbox_settle_s: float = Field(default=2.0, ge=0)
    """Seconds a file must stay unchanged before a run reads it (0: read at once)."""

    inbox_wait_s: float = Field(default=60.0, ge=0)
    """Seconds a run waits for files still being written before leaving them for the next."""

    block_bytes: int = Field(default=64 << 20, ge=1 << 20)
    """Bytes of a CSV file read, checked and staged at once (bounds memory per file)."""

    parquet_block_rows: int = Field(default=500_000, ge=1_000)
    """Rows of a Parquet file read, checked and staged at once."""

    # -- orders in (HL7) -------------------------------------------------------------
    orders_overdue_days: float = Field(default=5.0, gt=0)
    """Days after its order (else its collection) a card not received is listed overdue."""

    mllp_listen_timeout_s: float = Field(default=60.0, gt=0)
    """Seconds the HL7 listener keeps a silent connection open before closing it."""

    # -- evaluation and commit -------------------------------------------------------
    evaluation_chunk: int = Field(default=100_000, ge=1)
    """Cards evaluated at once (a chunk's frames stay under ~400 MB at 100,000)."""

    evaluation_threads: int = Field(default=3, ge=1)
    """Chunks evaluated at once (one more than the cores: a chunk also waits on Python)."""

    # not lower: below ~4 GB a million-card commit switches its aggregates to DuckDB's
    # slower spilling mode at the same peak memory
    commit_memory: str = "8GB"
    """DuckDB's memory bound during a run's commit; a bigger batch spills to disk."""

    # -- Prefect ---------------------------------------------------------------------
    small_inbox_bytes: int = Field(default=32 << 20, ge=0)
    """An inbox smaller than this is staged by one task; bigger ones a task per file."""

    staging_threads: int = Field(default=2, ge=1)
    """Files staged at once by the Prefect flow (a big file's staging holds ~1.8 GiB)."""

    notify_block: str | None = None
    """Prefect notification block told of a failed run, e.g. ``custom-webhook/lab-alerts``."""

    # -- statistics ------------------------------------------------------------------
    min_cell: int = Field(default=5, ge=1)
    """Counts below this are suppressed in the officials' file (small numbers identify)."""

    # the ACHDNC's and NewSTEPs' target: every result reported by day 7 of life, so a baby
    # without a card by then cannot meet it (NewSTEPs QI 3 leaves the day to the programme)
    births_screened_by_day: int = Field(default=7, ge=1, le=365)
    """Day of life by which a baby of the births register should have a satisfactory card."""

    # -- the review application ------------------------------------------------------
    web_secret: str | None = None
    """The review application's session key (default: kept in ``DB.web-secret``)."""

    session_idle_minutes: float = Field(default=30.0, gt=0)
    """A review session ends after this many minutes without a request."""

    secure_cookies: bool = False
    """Mark the session cookie Secure (behind the laboratory's TLS reverse proxy)."""

    # -- results out -----------------------------------------------------------------
    mllp_timeout_s: float = Field(default=10.0, gt=0)
    """Seconds an MLLP send waits to connect and for the acknowledgement."""

    mllp_retries: int = Field(default=3, ge=0)
    """Further tries of a message the receiver did not accept (no answer, AE, CE)."""

    mllp_retry_delay_s: float = Field(default=2.0, ge=0)
    """Seconds between two tries of the same message."""


def current() -> Settings:
    """The settings of this process, read from the environment now."""
    return Settings()


def describe() -> list[tuple[str, str, object, str]]:
    """(setting, environment variable, default, description) of every setting."""
    rows = []
    for name, field in Settings.model_fields.items():
        rows.append((name, f"NBS_{name.upper()}", field.default, field.description or ""))
    return rows
