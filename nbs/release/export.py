"""The exports of released results: HL7 ORU^R01 and FHIR Bundle files, and sending the
ORU messages over MLLP.

* Files: one per release (the initial release and each amendment), named
  ``CARD-NN.oru.hl7`` / ``CARD-NN.fhir.json`` (NN the release's number). A message is
  built from the release's snapshot and time only, so exporting again writes the same
  bytes: files are (re)written idempotently, atomically, and only when their content
  differs.
* Sending: a release whose message the destination acknowledged (AA, or CA) is never
  sent again; a rejection (AR / CR) is final for this export (logged, reported, not
  retried); no answer or an error (AE / CE) is tried again ``mllp_retries`` times,
  ``mllp_retry_delay_s`` apart. Every try is logged in ``sent_messages`` with the
  message's control id and the answer.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analytes import load_catalogue
from nbs.release import mllp
from nbs.release.codes import load_reporting
from nbs.release.fhir import build_bundle
from nbs.release.oru import build_oru, control_id
from nbs.store import releases as release_store

#: acknowledgement codes: accepted, and rejected for good (the others are tried again)
ACCEPTED = frozenset({"AA", "CA"})
REJECTED = frozenset({"AR", "CR"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def releases(db: Path, since: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The releases made at or after ``since`` (all: None), snapshots decoded, in order."""
    out = []
    for row in release_store.releases_since(db, since).iter_rows(named=True):
        row["snapshot"] = json.loads(row["snapshot"])
        row["changed"] = json.loads(row["changed"]) if row["changed"] else []
        out.append(row)
    return out


def file_stem(release: dict[str, Any]) -> str:
    """``CARD-NN``: the card's id (characters unsafe in a file name replaced) and the
    release's number."""
    return f"{_UNSAFE.sub('_', release['specimen_id'])}-{int(release['seq']):02d}"


def _write(path: Path, data: bytes) -> bool:
    """Write atomically when the content differs; whether it was written."""
    if path.exists() and path.read_bytes() == data:
        return False
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


@dataclass
class FileExport:
    """What a file export did."""

    files: list[Path] = field(default_factory=list)
    written: int = 0


def oru_text(release: dict[str, Any]) -> str:
    """The release's ORU^R01 (ER7, segments separated by CR)."""
    return str(build_oru(release, load_reporting(), load_catalogue()).to_er7())


def write_hl7(db: Path, out: Path, since: dt.datetime | None = None) -> FileExport:
    """One ``.oru.hl7`` file per release (segments separated by CR, a CR at the end)."""
    out.mkdir(parents=True, exist_ok=True)
    done = FileExport()
    for release in releases(db, since):
        path = out / f"{file_stem(release)}.oru.hl7"
        done.written += _write(path, (oru_text(release) + "\r").encode("utf-8"))
        done.files.append(path)
    return done


def write_fhir(db: Path, out: Path, since: dt.datetime | None = None) -> FileExport:
    """One ``.fhir.json`` Bundle per release."""
    out.mkdir(parents=True, exist_ok=True)
    reporting, catalogue = load_reporting(), load_catalogue()
    done = FileExport()
    for release in releases(db, since):
        bundle = build_bundle(release, reporting, catalogue)
        path = out / f"{file_stem(release)}.fhir.json"
        done.written += _write(path, (bundle.model_dump_json(indent=2) + "\n").encode())
        done.files.append(path)
    return done


@dataclass(frozen=True)
class SendPolicy:
    """How a message is sent: where, how long to wait, how many further tries."""

    host: str
    port: int
    timeout_s: float = 10.0
    retries: int = 3
    retry_delay_s: float = 2.0

    @property
    def destination(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class SendSummary:
    """What sending did: control ids acknowledged, rejected, left unanswered, skipped."""

    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: int = 0


def _send_one(
    db: Path, release: dict[str, Any], policy: SendPolicy, sleep: Callable[[float], None]
) -> str:
    """Send one release's message until it is answered for good; its outcome."""
    cid = control_id(int(release["release_id"]))
    text = oru_text(release)
    code: str | None
    for attempt in range(1, policy.retries + 2):
        if attempt > 1:
            sleep(policy.retry_delay_s)
        try:
            ack = mllp.send(policy.host, policy.port, text, policy.timeout_s)
            code, answer = ack.code, ack.raw
            if ack.control_id and ack.control_id != cid:
                code, answer = None, f"acknowledgement of {ack.control_id}, not {cid}: {answer}"
        except mllp.MllpError as exc:
            code, answer = None, str(exc)
        release_store.log_sent(
            db,
            release_store.SentMessage(
                cid,
                int(release["release_id"]),
                release["specimen_id"],
                policy.destination,
                attempt,
                code,
                answer,
            ),
        )
        if code in ACCEPTED:
            return "accepted"
        if code in REJECTED:
            return "rejected"
    return "failed"


def send_hl7(
    db: Path,
    policy: SendPolicy,
    since: dt.datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SendSummary:
    """Send every release's ORU^R01 the destination has not acknowledged yet."""
    done = release_store.acknowledged_ids(db, policy.destination)
    summary = SendSummary()
    for release in releases(db, since):
        if int(release["release_id"]) in done:
            summary.skipped += 1
            continue
        outcome = _send_one(db, release, policy, sleep)
        getattr(summary, outcome).append(control_id(int(release["release_id"])))
    return summary
