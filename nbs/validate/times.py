"""Date-times as the files send them -> naive laboratory time.

Accepted: ISO-8601 with a ``T`` or a space, with or without a fraction of a second, with
or without seconds; with an offset (``Z``, ``+01:00``, ``+0100``, ``+01``) the time is
converted to the laboratory's time zone (the setting ``lab_time_zone``, read when a file
is validated).
"""

from __future__ import annotations

import polars as pl

from nbs import settings
from nbs.validate.parsing import fix_nulls

_NAIVE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
)
#: the usual form of the first, tried alone first: polars has a fast parser for it
_FAST_FORMAT = "%Y-%m-%dT%H:%M:%S"
_FAST_LENGTH = len("2026-01-05T08:00:00")

#: the accepted forms with an offset, once a space between date and time is made a ``T``.
#: ``%#z`` is chrono's lenient offset: ``Z``, ``+01:00``, ``+0100`` or ``+01``
_ZONED_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M%#z")


def _naive(text: pl.Expr) -> pl.Expr:
    """The accepted forms without an offset, the first that parses."""
    return pl.coalesce(
        [text.str.to_datetime(f, strict=False, time_unit="us") for f in _NAIVE_FORMATS]
    )


def _zoned(text: pl.Expr) -> pl.Expr:
    """The accepted forms with an offset, converted to laboratory time (naive):
    ``2026-01-12 04:43:00+01:00``, ``...Z``, and a time-zone-aware Parquet timestamp, which
    arrives as ``2026-01-12 03:43:00.000000+00:00``."""
    lab_time_zone = settings.current().lab_time_zone
    iso = text.str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T")
    return pl.coalesce(
        [
            iso.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC")
            .dt.convert_time_zone(lab_time_zone)
            .dt.replace_time_zone(None)
            for f in _ZONED_FORMATS
        ]
    )


def _datetime_formats(text: pl.Expr) -> pl.Expr:
    """Each accepted form in turn, the first that parses (null where none does)."""
    return pl.coalesce([_naive(text), _zoned(text)])


def parse_datetime(text: pl.Series) -> pl.Series:
    """ISO-8601 text -> naive local datetime (null where it does not parse).

    The usual form is tried on every row and the accepted forms only on the rows it did
    not parse: the same result as trying those in turn (the first that parses wins),
    without five more passes over a column in which nearly every text has the usual form.
    The usual form, whole seconds without a fraction (``_FAST_FORMAT``), has a fast parser
    in polars, several times faster than the first accepted form (``%.f``: an optional
    fraction), and nearly every time a file sends has that form. It is given only texts of
    that form's length without a leading sign; of those, a text it parses, the accepted
    forms parse to the same time (property test)."""
    t = pl.col("t")
    # only texts of the usual form's length and without a sign: polars' fast parser reads
    # "--026-01-05T08:00:00" as the year 26, where no accepted form parses it
    usual = (t.str.len_bytes() == _FAST_LENGTH) & ~t.str.starts_with("-")
    fast = text.to_frame("t").select(
        pl.when(usual).then(t.str.to_datetime(_FAST_FORMAT, strict=False, time_unit="us"))
    )
    return fix_nulls(
        fast.to_series().rename(text.name),
        text,
        # the forms without an offset, then those with one only where none parsed: a
        # Parquet file's timestamps (``2026-01-12 03:43:00.000000``) miss the fast form,
        # and would otherwise all go through the offset forms too
        lambda rest: fix_nulls(
            rest.to_frame("t").select(_naive(pl.col("t"))).to_series(),
            rest,
            lambda left: left.to_frame("t").select(_zoned(pl.col("t"))).to_series(),
        ),
    )
