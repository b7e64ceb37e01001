"""``nbs release``: a card's results released (signed with the password), the cards ready
or changed since release; ``nbs hl7 export`` (ORU^R01 files, MLLP sending) and
``nbs fhir export`` (FHIR R4 Bundles)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer

from nbs.cli.common import DbOption, Format, UserError, console, existing_db, print_frame

fhir_app = typer.Typer(help="FHIR R4: released results out.", no_args_is_help=True)

SinceOption = Annotated[
    str | None, typer.Option(help="only releases made at or after this ISO time (UTC)")
]


def release(
    target: Annotated[str, typer.Argument(help="the card (SPECIMEN_ID), or `list`")],
    db: DbOption,
    user: Annotated[
        str | None, typer.Option("--user", help="the lab account signing the release")
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="why: required for an amendment (a changed card)")
    ] = None,
    acknowledge: Annotated[
        bool,
        typer.Option("--acknowledge", help="release over the card's quarantined rows and warnings"),
    ] = False,
    ready: Annotated[bool, typer.Option("--ready", help="list: cards ready to release")] = False,
    changed: Annotated[
        bool, typer.Option("--changed", help="list: cards changed since their release")
    ] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
    output: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """Release a card's results (asks for the signer's password), or `nbs release list`:
    every card's release status (--ready, --changed)."""
    db = existing_db(db)
    if target == "list":
        _list(db, ready, changed, output)
        return
    if ready or changed:
        raise UserError("--ready and --changed go with `nbs release list`")
    if not user:
        raise UserError("give --user: the lab account signing the release")
    from nbs.release import service

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt(f"Password of {user}", hide_input=True)
    try:
        service.verify_signer(db, user, password, target)
        done = service.release_card(db, target, user, reason, acknowledge)
    except service.ReleaseRefused as exc:
        raise UserError(str(exc)) from exc
    line = f"card {target}: {done.kind} release {done.seq} by {user} (release {done.release_id})"
    if done.changed:
        line += f"; changed: {', '.join(done.changed)}"
    if done.acknowledged:
        line += f"; {len(done.acknowledged)} exception(s) acknowledged"
    console.print(line, markup=False, highlight=False)


def _list(db: Path, ready: bool, changed: bool, output: Format) -> None:
    from nbs.release import service

    if ready and changed:
        raise UserError("choose --ready or --changed, not both")
    which = "ready" if ready else "changed" if changed else "all"
    frame = service.card_statuses(db, which)
    print_frame(frame, output, f"Cards: release status ({which})")


def _since(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise UserError(f"--since: not an ISO time: {text!r}") from exc
    return when.astimezone(dt.UTC).replace(tzinfo=None) if when.tzinfo else when


def _destination(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--to: HOST:PORT, not {text!r}")
    return host, int(port)


def export_hl7(
    db: DbOption,
    out: Annotated[Path, typer.Option(help="folder the ORU^R01 files are written to")],
    since: SinceOption = None,
    to: Annotated[
        str | None, typer.Option(help="HOST:PORT: send each message over MLLP too")
    ] = None,
) -> None:
    """One ORU^R01 v2.5.1 file per release (and amendment); with --to, each message not
    yet acknowledged there is sent over MLLP (retried; every try logged)."""
    from nbs import settings
    from nbs.release import export

    db = existing_db(db)
    when = _since(since)
    target = _destination(to) if to else None
    files = export.write_hl7(db, out, when)
    console.print(
        f"{len(files.files)} ORU^R01 message(s) in {out} ({files.written} written)",
        markup=False,
    )
    if target is None:
        return
    tunables = settings.current()
    policy = export.SendPolicy(
        target[0],
        target[1],
        tunables.mllp_timeout_s,
        tunables.mllp_retries,
        tunables.mllp_retry_delay_s,
    )
    sent = export.send_hl7(db, policy, when)
    console.print(
        f"sent to {policy.destination}: {len(sent.accepted)} acknowledged, "
        f"{len(sent.rejected)} rejected, {len(sent.failed)} without an answer, "
        f"{sent.skipped} acknowledged before",
        markup=False,
    )
    if sent.rejected or sent.failed:
        listed = ", ".join(sent.rejected + sent.failed)
        raise UserError(f"not accepted by {policy.destination}: {listed} (see sent_messages)")


@fhir_app.command("export")
def export_fhir(
    db: DbOption,
    out: Annotated[Path, typer.Option(help="folder the Bundles are written to")],
    since: SinceOption = None,
) -> None:
    """One FHIR R4 Bundle (JSON) per release (and amendment)."""
    from nbs.release import export

    db = existing_db(db)
    files = export.write_fhir(db, out, _since(since))
    console.print(
        f"{len(files.files)} FHIR Bundle(s) in {out} ({files.written} written)", markup=False
    )
