"""Screening: a run over an inbox, the demo, and reprocessing under another cutoff set."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from nbs.cli.common import (
    DbOption,
    EngineChoice,
    Format,
    SummaryFormat,
    UserError,
    console,
    err,
    existing_db,
    load_config,
    print_frame,
)


def exit_status_help() -> str:
    from nbs.run.errors import EXIT_STATUS_HELP

    return EXIT_STATUS_HELP


def _refuse_the_committed_sample(inbox: Path) -> None:
    """A run archives its inbox's files: pointed at the committed sample inbox (the tests'
    and the demo's fixture) it would consume it. Say how to proceed instead."""
    from data_samples import SAMPLE_INBOX

    if inbox.resolve() == SAMPLE_INBOX.resolve():
        raise UserError(
            f"{inbox} is the committed sample inbox, which a run would move into its "
            "archive: run `nbs demo` (it copies the sample), or copy it first, e.g. "
            f"`cp -r {inbox} /tmp/inbox && nbs run /tmp/inbox --db lab.duckdb`"
        )


def run(
    inbox: Annotated[Path, typer.Argument(help="inbox folder with *.specimens.* / *.results.*")],
    db: DbOption,
    engine: Annotated[
        EngineChoice, typer.Option(help="prefect, local, dask (Prefect on Dask), or auto")
    ] = EngineChoice.auto,
    cutoffs: Annotated[Path | None, typer.Option(help="folder of cutoff set files")] = None,
    output: Annotated[
        SummaryFormat, typer.Option("--format", help="summary as table or json")
    ] = SummaryFormat.table,
    dask_address: Annotated[
        str | None,
        typer.Option(help="with --engine dask: scheduler address (default: a local cluster)"),
    ] = None,
) -> None:
    """One screening run over the inbox; prints a summary (with --format json: only the
    JSON on standard output, every other message on standard error)."""
    import signal

    from nbs.run import engines
    from nbs.run.summary import print_summary

    if not inbox.is_dir():
        raise UserError(f"inbox {inbox} is not a folder")
    _refuse_the_committed_sample(inbox)
    config = load_config(cutoffs)
    # a service manager's stop (SIGTERM) ends the run as Ctrl+C does: the run says what it
    # leaves (rolled back, or committed and not archived) instead of dying without a word
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with err.status("screening run in progress...", spinner="dots") as status:
        summary = engines.run(
            inbox,
            db,
            config,
            engine.value,
            cutoffs,
            progress=lambda message: status.update(message),
            dask_address=dask_address,
        )
    out = console
    if output == SummaryFormat.json:
        # written as it is: a console would wrap a long reason across lines inside a string
        sys.stdout.write(
            json.dumps(json.loads(summary.to_json()), indent=2, ensure_ascii=False) + "\n"
        )
        out = err
    else:
        print_summary(summary, console)
    if summary.quarantined_rows or summary.files_quarantined:
        out.print(
            f"[yellow]Some input was quarantined: {summary.quarantined_rows} row(s), "
            f"{len(summary.files_quarantined)} unreadable file(s). "
            f"The run succeeded for everything else.[/]"
        )


def demo(
    folder: Annotated[
        Path | None,
        typer.Option("--dir", help="where to put the demo (default: a new temporary folder)"),
    ] = None,
    cards: Annotated[int, typer.Option(help="extra synthetic cards to generate")] = 300,
    seed: Annotated[int, typer.Option(help="generator seed")] = 2026,
    engine: Annotated[
        EngineChoice, typer.Option(help="prefect, local, or auto")
    ] = EngineChoice.local,
) -> None:
    """Make synthetic sample data, run it, and show the recall list."""
    from data_samples.generator import generate_cohort, write_inbox
    from data_samples.make_sample_inbox import copy_recent, measured_recently
    from nbs import store
    from nbs.run import engines
    from nbs.run.summary import print_summary

    base = folder or Path(tempfile.mkdtemp(prefix="nbs-demo-"))
    inbox = base / "inbox"
    if inbox.exists() and any(inbox.iterdir()):
        raise UserError(f"{inbox} is not empty: choose another --dir")
    # the sample's cards and the generated ones dated the last days before now: the
    # statistics measure up to the time a card is reported (this run, stored in UTC), so
    # months-old demo cards would read as months late
    now = store.utc_now()
    copy_recent(inbox, now)
    if cards > 0:
        start = now.date() - dt.timedelta(days=14)
        cohort = generate_cohort(cards, seed=seed, start=start, days=7, censored=True)
        write_inbox(measured_recently(cohort, now, seed), inbox, name="generated")
    db = base / "nbs.duckdb"
    console.print(f"[bold]Demo[/bold]: synthetic data (never real patients) in {inbox}")
    config = load_config(None)
    # the demo wrote its inbox itself, just now: no need to wait for the files to settle
    os.environ.setdefault("NBS_INBOX_SETTLE_S", "0")
    with console.status("screening run in progress...", spinner="dots"):
        summary = engines.run(inbox, db, config, engine.value)
    print_summary(summary, console)
    frame = store.recall_list(db, "open").select(
        "recall_id", "specimen_id", "condition", "action", "urgency", "reason"
    )
    print_frame(frame, Format.table, f"Open recall list ({frame.height})")
    console.print(f"\nDatabase: [bold]{db}[/bold]")
    console.print(f"Inbox (files now archived): {inbox}")
    console.print(f"Try: nbs recalls list --db {db} --format csv")


def reprocess(
    db: DbOption,
    cutoff_version: Annotated[str, typer.Option(help="the cutoff version to judge by")],
    specimen: Annotated[
        list[str] | None, typer.Option(help="a card to re-evaluate (repeatable)")
    ] = None,
    collected_from: Annotated[
        str | None, typer.Option("--from", help="first collection date, YYYY-MM-DD")
    ] = None,
    collected_to: Annotated[
        str | None, typer.Option("--to", help="last collection date, YYYY-MM-DD")
    ] = None,
    cutoffs: Annotated[Path | None, typer.Option(help="folder of cutoff set files")] = None,
) -> None:
    """Re-evaluate stored cards under another cutoff version; new calls are kept beside the
    old ones (the recall list does not change). See the view reprocess_comparison."""
    import datetime as dt

    from nbs.run.reprocess import reprocess as run_reprocess

    try:
        summary = run_reprocess(
            existing_db(db),
            load_config(cutoffs),
            cutoff_version,
            specimen,
            dt.date.fromisoformat(collected_from) if collected_from else None,
            dt.date.fromisoformat(collected_to) if collected_to else None,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    console.print(
        f"{summary.run_id}: {summary.cards} card(s) under {summary.cutoff_version}, "
        f"{summary.calls_added} new call(s), {summary.changed} differ from the screening call"
    )


def reevaluate(
    specimen: Annotated[list[str], typer.Argument(help="the cards to evaluate again")],
    db: DbOption,
    reason: Annotated[str, typer.Option(help="why (kept with the request)")],
    cutoffs: Annotated[Path | None, typer.Option(help="folder of cutoff set files")] = None,
) -> None:
    """Evaluate stored cards again in the clinical record, under the cutoff sets in force
    (e.g. after correcting one): calls, recalls and worklist follow; a released card whose
    call changes is amended on its next release. Compare first with `nbs reprocess`."""
    from nbs.followup.lifecycle import current_user
    from nbs.run.release import reevaluate as run_reevaluate

    try:
        done = run_reevaluate(
            existing_db(db), specimen, reason, current_user(), load_config(cutoffs)
        )
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    console.print(f"{done.run_id}: {done.cards_evaluated} card(s) evaluated again")
