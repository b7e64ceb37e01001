"""Releasing a card: the signer's password checked as a sign-in is, the rules
(:mod:`nbs.release.rules`), the snapshot (:mod:`nbs.release.snapshot`), and the release
row with its audit trail; and which cards are ready, blocked, released or changed since.

A card already released whose content changed since (a correction, new punches, a
reprocessing that changed a call) is released again as an **amendment**, with the reason
and the observations it changes; a card whose content did not change is not released
twice. The check and the write happen under the run lock, so a run cannot change the
card between them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from nbs import store
from nbs.release import rules, snapshot
from nbs.store import releases as release_store
from nbs.web import users

#: the role that may sign a release
SIGNING_ROLE = "lab"
STATUSES = ("blocked", "ready", "released", "changed")
#: cards whose status is worked out from one read
STATUS_CHUNK = 500


class ReleaseRefused(Exception):
    """The release was refused (nothing released); the message says why."""


@dataclass(frozen=True)
class Released:
    """A release made."""

    release_id: int
    specimen_id: str
    seq: int
    kind: str
    changed: list[str]
    acknowledged: list[str]


def verify_signer(
    db: Path,
    username: str,
    password: str,
    specimen_id: str,
    policy: users.ThrottlePolicy | None = None,
    address: str | None = "command line",
) -> None:
    """The signer's password, checked as a sign-in (a wrong one counts towards the
    account's delay and lock-out) and recorded in the sign-in audit trail; the signer must
    be an active laboratory account. ReleaseRefused otherwise."""
    verdict = users.check_sign_in(db, username, password, policy or users.ThrottlePolicy())
    detail = f"password re-entered to release card {specimen_id}"
    users.record_attempts(
        db, [users.Attempt(store.utc_now(), username, address, verdict.outcome, detail)]
    )
    if verdict.outcome != users.SIGNED_IN or verdict.user is None:
        problem = {
            users.THROTTLED: "too many wrong passwords: try again later",
            users.LOCKED: "the account is locked",
        }.get(verdict.outcome, "wrong user name or password")
        release_store.record_refusal(db, specimen_id, username, problem)
        raise ReleaseRefused(f"{problem}: nothing was released")
    if verdict.user.role != SIGNING_ROLE:
        problem = f"{username} is a {verdict.user.role} account: only a lab account signs"
        release_store.record_refusal(db, specimen_id, username, problem)
        raise ReleaseRefused(f"{problem}; nothing was released")


def _refuse(db: Path, specimen_id: str, actor: str, problem: str) -> ReleaseRefused:
    release_store.record_refusal(db, specimen_id, actor, problem)
    return ReleaseRefused(problem)


def _previous(latest: pl.DataFrame) -> tuple[int, str | None, dict[str, Any]]:
    """(seq, digest, snapshot) of a card's last release (``latest``: its row of
    ``ReleaseInputs.latest``); (0, None, {}) if none."""
    if latest.height == 0:
        return 0, None, {}
    row = latest.row(0, named=True)
    return int(row["seq"]), row["content_sha256"], json.loads(row["snapshot"])


def release_card(
    db: Path, specimen_id: str, signer: str, reason: str | None = None, acknowledge: bool = False
) -> Released:
    """Release the card (its password already verified: :func:`verify_signer`); an
    amendment when it was released before and changed since (``reason`` required).
    ``acknowledge``: release over the open exceptions (quarantined rows, warnings), naming
    them. ReleaseRefused with every blocker otherwise."""
    if store.active_role(db, signer) != SIGNING_ROLE:
        raise _refuse(db, specimen_id, signer, f"{signer} is not an active lab account")
    with store.run_lock(db):
        inputs = release_store.release_inputs(db, [specimen_id])
        found = rules.blockers(inputs, specimen_id)
        left = rules.unacknowledged(found, acknowledge)
        if left:
            listed = "; ".join(str(b) for b in left)
            raise _refuse(db, specimen_id, signer, f"card {specimen_id} not released: {listed}")
        current = snapshot.build(inputs, specimen_id)
        digest = snapshot.digest(current)
        seq, last_digest, last = _previous(inputs.latest)
        if digest == last_digest:
            raise _refuse(
                db, specimen_id, signer, f"card {specimen_id} unchanged since release {seq}"
            )
        changed = snapshot.changed_keys(last, current) if seq else []
        if seq and not (reason and reason.strip()):
            raise _refuse(
                db,
                specimen_id,
                signer,
                f"card {specimen_id} changed since release {seq}: "
                f"give the reason for the amendment ({', '.join(changed)})",
            )
        acknowledged = [str(b) for b in found if b.exception]
        new = release_store.NewRelease(
            specimen_id=specimen_id,
            baby_id=current["card"]["baby_id"],
            released_by=signer,
            reason=reason.strip() if reason else None,
            acknowledged=json.dumps(acknowledged, ensure_ascii=False) if acknowledged else None,
            changed=json.dumps(changed) if changed else None,
            content_sha256=digest,
            snapshot=snapshot.to_json(current),
        )
        release_id, seq = release_store.insert_release(db, new, seq)
    kind = "initial" if seq == 1 else "amendment"
    return Released(release_id, specimen_id, seq, kind, changed, acknowledged)


def _status(inputs: release_store.ReleaseInputs, specimen_id: str) -> tuple[str, str]:
    """(status, detail) of one card."""
    found = rules.blockers(inputs, specimen_id)
    hard = "; ".join(str(b) for b in rules.unacknowledged(found, True))
    seq, last_digest, last = _previous(inputs.latest.filter(pl.col("specimen_id") == specimen_id))
    if seq:
        current = snapshot.build(inputs, specimen_id)
        if snapshot.digest(current) == last_digest:
            return "released", f"release {seq}"
        changed = ", ".join(snapshot.changed_keys(last, current))
        detail = f"changed since release {seq}: {changed}"
        if hard:
            return "changed", f"{detail} (blocked: {hard})"
        exceptions = "; ".join(str(b) for b in found if b.exception)
        return "changed", detail + (f" (to acknowledge: {exceptions})" if exceptions else "")
    if hard:
        return "blocked", hard
    listed = "; ".join(str(b) for b in found if b.exception)
    return "ready", f"to acknowledge: {listed}" if listed else ""


def card_statuses(db: Path, which: str = "all") -> pl.DataFrame:
    """Cards with their release status (``blocked`` / ``ready`` / ``released`` /
    ``changed``) and why: ``which`` is ``all``, ``ready`` (never released, nothing but
    exceptions to acknowledge) or ``changed`` (released, changed since)."""
    choice = {"all": "all", "ready": "unreleased", "changed": "released"}[which]
    rows = _statuses(db, release_store.card_ids(db, choice))
    return _frame([row for row in rows if which == "all" or row[2] == which])


#: one card's (id, baby, status, detail)
Row = tuple[str, str | None, str, str]


def _statuses(db: Path, ids: list[str]) -> list[Row]:
    """(card, baby, status, detail) of each card of ``ids``, in their order."""
    rows = []
    # a chunk of cards read at once: each card's rows are then looked up in small frames
    for start in range(0, len(ids), STATUS_CHUNK):
        chunk = ids[start : start + STATUS_CHUNK]
        inputs = release_store.release_inputs(db, chunk)
        babies = dict(zip(inputs.cards["specimen_id"], inputs.cards["baby_id"], strict=True))
        rows += [(s, babies.get(s), *_status(inputs, s)) for s in chunk]
    return rows


def _frame(rows: list[Row]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema=["specimen_id", "baby_id", "status", "detail"], orient="row"
    ).cast(pl.String)


@dataclass(frozen=True)
class CardsOfStatus:
    """The cards of one release status, by id, read a page at a time: only the page's
    cards have their status worked out (and, for the released ones, the cards a run
    touched since their release: those alone may have changed)."""

    db: Path
    status: str
    total: int
    #: the released cards changed since their release, with their statuses
    changed: tuple[Row, ...] = ()

    def page(self, size: int, offset: int) -> pl.DataFrame:
        """``size`` cards from the ``offset``-th on, as :func:`card_statuses` gives them."""
        if self.status == "changed":
            return _frame(list(self.changed[offset : offset + size]))
        if self.status == "released":
            changed = [row[0] for row in self.changed]
            ids = release_store.released_page(self.db, changed, size, offset)
        else:
            blocked = self.status == "blocked"
            ids = release_store.unreleased_page(self.db, blocked, _DECISIVE, size, offset)
        return _frame(_statuses(self.db, ids))


#: the calls that decide a condition (``rules.CALLED``), for the database's selection
_DECISIVE = sorted(rules.CALLED)


def cards_of_status(db: Path, status: str) -> CardsOfStatus:
    """The cards whose release status is ``status`` (one of :data:`STATUSES`), chosen in
    the database: a card never released is ``blocked`` when something only a run can
    clear holds it back, else ``ready``; a released card is ``changed`` when its content
    differs from its last release, which only a run touching it since can have done."""
    if status not in STATUSES:
        raise ValueError(f"a release status is one of {', '.join(STATUSES)}")
    if status in ("ready", "blocked"):
        total = release_store.unreleased_count(db, status == "blocked", _DECISIVE)
        return CardsOfStatus(db, status, total)
    touched = _statuses(db, release_store.touched_since_release(db))
    changed = tuple(row for row in touched if row[2] == "changed")
    if status == "changed":
        return CardsOfStatus(db, status, len(changed), changed)
    return CardsOfStatus(db, status, release_store.released_count(db) - len(changed), changed)
