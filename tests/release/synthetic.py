"""Synthetic cards for the release list's paging tests (no file behind them): cards with
no condition evaluated (blocked) or with one negative call (ready to release)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from nbs import store

AT = dt.datetime(2026, 3, 2, 8, 0)


def add_cards(db: Path, prefix: str, count: int, negative: bool) -> list[str]:
    """``count`` cards ``PREFIX0000``...; ``negative``: each with a negative PKU call
    (nothing holds it back), else without any call. Returns their ids."""
    with store.connect(db) as con:
        con.execute(
            "INSERT INTO specimens (specimen_id, baby_id, birth_at, collected_at, received_at, "
            "sex, specimen_quality, file_sha256, row_number, run_id) "
            "SELECT printf('%s%04d', ?, i), printf('B-%s%04d', ?, i), ?, ?, ?, 'F', 'ok', "
            "'sha-synthetic', i, 'run-synthetic' FROM range(?) t(i)",
            [prefix, prefix, AT - dt.timedelta(days=2), AT, AT, count],
        )
        if negative:
            con.execute(
                "INSERT INTO calls (specimen_id, baby_id, condition, call, reason, run_id, "
                "run_seq, evaluated_at, kind) SELECT printf('%s%04d', ?, i), "
                "printf('B-%s%04d', ?, i), 'PKU', 'negative', 'synthetic', 'run-synthetic', "
                "0, ?, 'screening' FROM range(?) t(i)",
                [prefix, prefix, AT, count],
            )
    return [f"{prefix}{i:04d}" for i in range(count)]
