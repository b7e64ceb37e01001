"""Releases and the messages that carry them out (migration 020): what a release needs to
know of a card, the release rows themselves, their audit trail, and the log of sent
messages. The rules that decide whether a card may be released are ``nbs.release``'s."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from nbs.store.connection import connect, fetch, fetch_with, query, transaction, utc_now

#: every card, or only those never released / already released
CARD_CHOICES = ("all", "unreleased", "released")


@dataclass(frozen=True)
class ReleaseInputs:
    """Everything the release rules and the snapshot read of a set of cards, one frame
    per kind, each with ``specimen_id``."""

    cards: pl.DataFrame
    calls: pl.DataFrame
    results: pl.DataFrame
    plates: pl.DataFrame
    quarantined: pl.DataFrame
    warnings: pl.DataFrame
    markers: pl.DataFrame
    latest: pl.DataFrame
    card_recalls: pl.DataFrame


class ReleaseConflict(RuntimeError):
    """Someone released the card meanwhile: nothing was written."""


_IDS = "(SELECT specimen_id FROM ids)"

_CARDS = f"""
SELECT specimen_id, baby_id, birth_at, collected_at, received_at, sex, birth_weight_g,
       gestational_age_weeks, transfusion, parenteral_nutrition, consent_cf,
       specimen_quality, submitter, last_transfusion_at,
       coalesce(first_of_baby, true) AS first_of_baby
FROM specimens WHERE specimen_id IN {_IDS} ORDER BY specimen_id"""

# each condition's current screening call: the clinical record that recalls follow. A
# reprocessing is a comparison only; a correction is a re-evaluation (nbs reevaluate),
# whose screening calls a changed card's amendment then carries
_CALLS = f"""
SELECT specimen_id, condition, call, urgency, basis, reason, rule_version, kind, run_id
FROM (
    SELECT *, row_number() OVER (PARTITION BY specimen_id, condition
                                 ORDER BY run_seq DESC, evaluated_at DESC) AS rn
    FROM calls WHERE kind = 'screening' AND specimen_id IN {_IDS}
) WHERE rn = 1 ORDER BY specimen_id, condition"""

_RESULTS = f"""
SELECT specimen_id, analyte, replicate, value, unit, value_text, censored, flag, plate_id,
       measured_at
FROM result_details WHERE specimen_id IN {_IDS} ORDER BY specimen_id, analyte, replicate"""

_PLATES = f"""
SELECT DISTINCT d.specimen_id, d.plate_id, p.status
FROM result_details d LEFT JOIN plates p USING (plate_id)
WHERE d.specimen_id IN {_IDS} ORDER BY ALL"""

# quarantined rows that name the card (its card row or one of its results)
_QUARANTINED = f"""
SELECT w.specimen_id, q.file_name, q.row_number, q.column_name, q.value, q.reason
FROM quarantine q JOIN raw_result_rows w USING (file_sha256, row_number)
WHERE w.specimen_id IN {_IDS}
UNION ALL
SELECT w.specimen_id, q.file_name, q.row_number, q.column_name, q.value, q.reason
FROM quarantine q JOIN raw_specimen_rows w USING (file_sha256, row_number)
WHERE w.specimen_id IN {_IDS}
ORDER BY ALL"""

_WARNINGS = f"""
SELECT specimen_id, column_name, reason FROM specimen_warnings
WHERE specimen_id IN {_IDS} ORDER BY ALL"""

# the card's own requests (condition NULL: a new card for the card's sake)
_CARD_RECALLS = f"""
SELECT specimen_id, action, urgency, reason FROM recalls
WHERE condition IS NULL AND specimen_id IN {_IDS} ORDER BY specimen_id, created_at, reason"""

_LATEST = f"""
SELECT release_id, specimen_id, seq, kind, released_by, released_at, reason,
       content_sha256, snapshot
FROM releases WHERE specimen_id IN {_IDS}
QUALIFY row_number() OVER (PARTITION BY specimen_id ORDER BY seq DESC) = 1"""


def card_ids(db: Path, which: str = "all") -> list[str]:
    """The stored cards' ids: ``all``, ``unreleased`` or ``released``."""
    if which not in CARD_CHOICES:
        raise ValueError(f"which cards: one of {', '.join(CARD_CHOICES)}")
    where = {
        "all": "",
        "unreleased": "WHERE specimen_id NOT IN (SELECT specimen_id FROM releases)",
        "released": "WHERE specimen_id IN (SELECT specimen_id FROM releases)",
    }[which]
    frame = query(db, f"SELECT specimen_id FROM specimens {where} ORDER BY specimen_id")
    return list(frame["specimen_id"])


# -- the release list a page at a time ---------------------------------------------------

#: the cards never released that something only a run can clear keeps from a release
#: (the hard blockers of ``nbs.release.rules``: no condition evaluated, one pending, a
#: plate of its results neither accepted nor rejected); ``?``: the calls that decide
_HELD_BACK = """
WITH unreleased AS (
    SELECT specimen_id FROM specimens
    WHERE specimen_id NOT IN (SELECT specimen_id FROM releases)
),
current AS (
    SELECT specimen_id, call, basis FROM (
        SELECT specimen_id, call, basis,
               row_number() OVER (PARTITION BY specimen_id, condition
                                  ORDER BY run_seq DESC, evaluated_at DESC) AS rn
        FROM calls WHERE kind = 'screening' AND specimen_id IN (SELECT * FROM unreleased)
    ) WHERE rn = 1
)
SELECT specimen_id FROM unreleased WHERE specimen_id NOT IN (SELECT specimen_id FROM current)
UNION
SELECT specimen_id FROM current
WHERE NOT (list_contains(?::VARCHAR[], call)
           OR (call = 'not_evaluated' AND coalesce(basis, '') <> ''))
UNION
SELECT d.specimen_id FROM result_details d LEFT JOIN plates p USING (plate_id)
WHERE d.specimen_id IN (SELECT * FROM unreleased)
  AND (p.status IS NULL OR p.status NOT IN ('accepted', 'rejected'))
"""

#: the released cards a run may have changed since their last release: a run committed
#: at or after it (a run and a release never overlap: both hold the run lock; whole
#: seconds, so the same second counts) wrote a screening call, a result or a card request
#: of the card, or an earlier card of its baby (which makes it no longer the first)
_TOUCHED_SINCE_RELEASE = """
WITH last AS (
    SELECT specimen_id, max(released_at) AS released_at FROM releases GROUP BY specimen_id
),
later AS (
    SELECT run_id, committed_at FROM runs
    WHERE committed_at >= (SELECT min(released_at) FROM last)
),
touched AS (
    SELECT specimen_id, run_id FROM calls
    WHERE kind = 'screening' AND run_id IN (SELECT run_id FROM later)
    UNION ALL
    SELECT specimen_id, run_id FROM results WHERE run_id IN (SELECT run_id FROM later)
    UNION ALL
    SELECT specimen_id, run_id FROM recalls
    WHERE condition IS NULL AND run_id IN (SELECT run_id FROM later)
    UNION ALL
    SELECT o.specimen_id, n.run_id FROM specimens n JOIN specimens o
      ON o.baby_id = n.baby_id
     AND (n.collected_at, n.specimen_id) < (o.collected_at, o.specimen_id)
    WHERE n.run_id IN (SELECT run_id FROM later)
)
SELECT DISTINCT t.specimen_id FROM touched t
JOIN later r USING (run_id) JOIN last l USING (specimen_id)
WHERE r.committed_at >= l.released_at ORDER BY 1
"""


def unreleased_count(db: Path, held_back: bool, decisive_calls: list[str]) -> int:
    """Cards never released that are held back (``held_back``) or not, by the hard
    blockers (``decisive_calls``: the calls a receiver can act on)."""
    sql = f"SELECT count(*) FROM ({_unreleased_sql(held_back)})"
    return int(query(db, sql, [decisive_calls]).item())


def unreleased_page(
    db: Path, held_back: bool, decisive_calls: list[str], size: int, offset: int
) -> list[str]:
    """A page of :func:`unreleased_count`'s cards, by id."""
    sql = f"{_unreleased_sql(held_back)} ORDER BY specimen_id LIMIT ? OFFSET ?"
    return list(query(db, sql, [decisive_calls, size, offset])["specimen_id"])


def _unreleased_sql(held_back: bool) -> str:
    if held_back:
        return f"SELECT specimen_id FROM ({_HELD_BACK})"
    return (
        "SELECT specimen_id FROM specimens "
        "WHERE specimen_id NOT IN (SELECT specimen_id FROM releases) "
        f"AND specimen_id NOT IN ({_HELD_BACK})"
    )


def touched_since_release(db: Path) -> list[str]:
    """The released cards a run may have changed since their last release (a run is the
    only writer of what a release carries); every other is as it was released."""
    return list(query(db, _TOUCHED_SINCE_RELEASE)["specimen_id"])


def released_count(db: Path) -> int:
    """Cards released at least once."""
    return int(query(db, "SELECT count(DISTINCT specimen_id) FROM releases").item())


def released_page(db: Path, excluding: list[str], size: int, offset: int) -> list[str]:
    """A page of the released cards but ``excluding``, by id."""
    frame = query(
        db,
        "SELECT DISTINCT specimen_id FROM releases "
        "WHERE NOT list_contains(?::VARCHAR[], specimen_id) ORDER BY specimen_id LIMIT ? OFFSET ?",
        [excluding, size, offset],
    )
    return list(frame["specimen_id"])


def release_inputs(db: Path, specimen_ids: list[str]) -> ReleaseInputs:
    """What the rules and the snapshot need of these cards, read in one connection."""
    ids = pl.DataFrame({"specimen_id": specimen_ids}, schema={"specimen_id": pl.String})
    with connect(db, read_only=True) as con:

        def read(sql: str) -> pl.DataFrame:
            return fetch_with(con, sql, {"ids": ids})

        return ReleaseInputs(
            cards=read(_CARDS),
            calls=read(_CALLS),
            results=read(_RESULTS),
            plates=read(_PLATES),
            quarantined=read(_QUARANTINED),
            warnings=read(_WARNINGS),
            markers=fetch(con, "SELECT condition, marker FROM condition_markers ORDER BY ALL"),
            latest=read(_LATEST),
            card_recalls=read(_CARD_RECALLS),
        )


@dataclass(frozen=True)
class NewRelease:
    """A release to record (the sequence number is the next of the card's)."""

    specimen_id: str
    baby_id: str
    released_by: str
    reason: str | None
    acknowledged: str | None
    changed: str | None
    content_sha256: str
    snapshot: str


def insert_release(db: Path, new: NewRelease, after_seq: int) -> tuple[int, int]:
    """Record a release as the one after release ``after_seq`` of the card (0: none), and
    its audit row, in one transaction; (release_id, seq). Refused with
    :class:`ReleaseConflict` when the card's last release is no longer ``after_seq``."""
    now = utc_now()
    with connect(db) as con, transaction(con):
        row = con.execute(
            "SELECT coalesce(max(seq), 0) FROM releases WHERE specimen_id = ?", [new.specimen_id]
        ).fetchone()
        if (int(row[0]) if row else 0) != after_seq:
            raise ReleaseConflict(f"card {new.specimen_id} was released meanwhile")
        seq = after_seq + 1
        kind = "initial" if seq == 1 else "amendment"
        got = con.execute(
            "INSERT INTO releases (specimen_id, baby_id, seq, kind, released_by, released_at, "
            "reason, acknowledged, changed, content_sha256, snapshot) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING release_id",
            [
                new.specimen_id,
                new.baby_id,
                seq,
                kind,
                new.released_by,
                now,
                new.reason,
                new.acknowledged,
                new.changed,
                new.content_sha256,
                new.snapshot,
            ],
        ).fetchone()
        assert got is not None
        con.execute(
            "INSERT INTO release_attempts VALUES (?, ?, ?, 'released', ?)",
            [now, new.specimen_id, new.released_by, f"{kind} release {seq}"],
        )
    return int(got[0]), seq


def record_refusal(db: Path, specimen_id: str, actor: str, detail: str) -> None:
    """A release asked for and refused, with why (the audit trail)."""
    with connect(db) as con:
        con.execute(
            "INSERT INTO release_attempts VALUES (?, ?, ?, 'refused', ?)",
            [utc_now(), specimen_id, actor, detail[:2000]],
        )


def release_attempts(db: Path, specimen_id: str) -> pl.DataFrame:
    """The card's release audit trail, oldest first."""
    return query(
        db,
        "SELECT attempt_at, actor, outcome, detail FROM release_attempts "
        "WHERE specimen_id = ? ORDER BY attempt_at, outcome",
        [specimen_id],
    )


def card_releases(db: Path, specimen_id: str) -> pl.DataFrame:
    """Every release of the card, first first."""
    return query(
        db,
        "SELECT release_id, seq, kind, released_by, released_at, reason, acknowledged, "
        "changed, content_sha256 FROM releases WHERE specimen_id = ? ORDER BY seq",
        [specimen_id],
    )


def releases_since(db: Path, since: dt.datetime | None) -> pl.DataFrame:
    """Every release (with its snapshot) made at or after ``since`` (all: None), in order."""
    where, params = ("WHERE released_at >= ?", [since]) if since else ("", [])
    return query(
        db,
        "SELECT release_id, specimen_id, baby_id, seq, kind, released_by, released_at, "
        f"reason, changed, snapshot FROM releases {where} ORDER BY release_id",
        list(params),
    )


def acknowledged_ids(db: Path, destination: str) -> set[int]:
    """The releases whose message ``destination`` acknowledged with AA (or CA)."""
    frame = query(
        db,
        "SELECT DISTINCT release_id FROM sent_messages "
        "WHERE destination = ? AND ack_code IN ('AA', 'CA')",
        [destination],
    )
    return set(frame["release_id"])


@dataclass(frozen=True)
class SentMessage:
    """One try at sending a message, and its answer."""

    control_id: str
    release_id: int
    specimen_id: str
    destination: str
    attempt: int
    ack_code: str | None
    answer: str | None


def log_sent(db: Path, sent: SentMessage, fmt: str = "hl7v2") -> None:
    """Append one try to ``sent_messages``."""
    with connect(db) as con:
        con.execute(
            "INSERT INTO sent_messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                sent.control_id,
                sent.release_id,
                sent.specimen_id,
                fmt,
                sent.destination,
                sent.attempt,
                utc_now(),
                sent.ack_code,
                (sent.answer or "")[:4000] or None,
            ],
        )


def sent_messages(db: Path) -> pl.DataFrame:
    """The log of every message sent, in order."""
    return query(
        db,
        "SELECT control_id, release_id, specimen_id, format, destination, attempt, sent_at, "
        "ack_code, answer FROM sent_messages ORDER BY sent_at, control_id, attempt",
    )
