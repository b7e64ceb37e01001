"""The ``nbs`` command line."""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from nbs.config import ScreeningConfig

app = typer.Typer(
    help="Newborn screening laboratory pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
recalls_app = typer.Typer(help="The recall list.", no_args_is_help=True)
app.add_typer(recalls_app, name="recalls")
cutoffs_app = typer.Typer(help="The versioned cutoff sets.", no_args_is_help=True)
app.add_typer(cutoffs_app, name="cutoffs")
users_app = typer.Typer(help="Accounts of the review application.", no_args_is_help=True)
app.add_typer(users_app, name="users")

console = Console()
err = Console(stderr=True, soft_wrap=True)


class EngineChoice(enum.StrEnum):
    auto = "auto"
    prefect = "prefect"
    local = "local"
    dask = "dask"


class Format(enum.StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


class SummaryFormat(enum.StrEnum):
    """A run's summary is a document, not a table: printed, or as JSON."""

    table = "table"
    json = "json"


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


DbOption = Annotated[Path, typer.Option("--db", help="DuckDB file", dir_okay=False)]


def _existing_db(db: Path) -> Path:
    """The database, upgraded to this software's schema if an older version made it."""
    if not db.is_file():
        raise UserError(f"database {db} does not exist (run `nbs run INBOX --db {db}` first)")
    from nbs import store

    try:
        applied = store.ensure_schema(db)
    except store.DatabaseIOError as exc:  # e.g. a reader without the right to write the file
        raise UserError(
            f"database {db} was made by an older version and needs upgrading, which this "
            f"user cannot do ({exc}); run any nbs command on it once as its owner"
        ) from exc
    if applied:
        err.print(f"database {db} upgraded: migration(s) {', '.join(map(str, applied))}")
    return db


def _load_config(cutoffs: Path | None) -> ScreeningConfig:
    from nbs.config import load_config

    try:
        return load_config(cutoffs)
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(f"configuration: {exc}") from exc


def _exit_status_help() -> str:
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


@app.command(epilog=_exit_status_help())
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
    config = _load_config(cutoffs)
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


def _print_frame(frame: pl.DataFrame, fmt: Format, title: str) -> None:
    if fmt == Format.csv:
        sys.stdout.write(frame.write_csv())
    elif fmt == Format.json:
        sys.stdout.write(json.dumps(frame.to_dicts(), default=str, indent=1) + "\n")
    else:
        table = Table(*frame.columns, title=title, title_justify="left")
        for row in frame.iter_rows():
            style = "bold red" if "urgent" in row else None
            table.add_row(*("" if v is None else str(v) for v in row), style=style)
        console.print(table)


@recalls_app.command("list")
def recalls_list(
    db: DbOption,
    status: Annotated[
        str | None,
        typer.Option(help="open, closed, or a stage: contacted, sample_requested, referred"),
    ] = None,
    condition: Annotated[str | None, typer.Option(help="e.g. PKU")] = None,
    urgency: Annotated[str | None, typer.Option(help="urgent or routine")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="only overdue recalls")] = False,
    output: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """The recall list, urgent first, overdue flagged."""
    from nbs.conditions import load_registry
    from nbs.followup.lifecycle import STAGES, list_recalls, load_followup

    stages = tuple(s for s in STAGES if s not in ("open", "closed"))
    for name, value, allowed in (
        ("status", status, ("open", "closed", *stages)),
        ("urgency", urgency, ("urgent", "routine")),
        ("condition", condition, load_registry().codes()),
    ):
        if value is not None and value not in allowed:
            raise UserError(f"--{name} must be one of {', '.join(allowed)}; not {value!r}")
    frame = list_recalls(
        _existing_db(db),
        load_followup(),
        status=None if status in stages else status,
        stage=status if status in stages else None,
        condition=condition,
        urgency=urgency,
        overdue=overdue,
    )
    if output == Format.table:
        frame = frame.select(
            "recall_id",
            "specimen_id",
            "condition",
            "action",
            "urgency",
            "stage",
            "overdue",
            "days_open",
            "reason",
        )
    _print_frame(frame, output, f"Recall list ({frame.height})")


def _recall_action(func: Callable[..., None], *args: object) -> None:
    from nbs import store
    from nbs.followup.lifecycle import RecallError

    try:
        func(*args)
    except (RecallError, store.RecallChanged) as exc:
        raise UserError(str(exc)) from exc


ByOption = Annotated[str | None, typer.Option("--by", help="who (default: NBS_USER or login)")]


@recalls_app.command("close")
def recalls_close(
    recall_id: Annotated[str, typer.Argument()],
    outcome: Annotated[str, typer.Option(help="confirmed, false_positive, repeat_normal, ...")],
    db: DbOption,
    note: Annotated[str | None, typer.Option(help="a note kept with the change")] = None,
    by: ByOption = None,
) -> None:
    """Close a recall with its outcome (recorded with who and when)."""
    from nbs.followup.lifecycle import close_recall, current_user, load_followup

    _recall_action(
        close_recall,
        _existing_db(db),
        recall_id,
        outcome,
        by or current_user(),
        note,
        load_followup(),
    )
    console.print(f"{recall_id} closed: {outcome}")


@recalls_app.command("update")
def recalls_update(
    recall_id: Annotated[str, typer.Argument()],
    db: DbOption,
    status: Annotated[
        str | None, typer.Option(help="contacted, sample_requested or referred")
    ] = None,
    note: Annotated[str | None, typer.Option(help="a note")] = None,
    by: ByOption = None,
) -> None:
    """Move a recall forward (contacted, sample_requested, referred) and/or add a note."""
    from nbs.followup.lifecycle import add_note, current_user, set_stage

    if status is None and note is None:
        raise UserError("give --status and/or --note")
    actor = by or current_user()
    if status is not None:
        _recall_action(set_stage, _existing_db(db), recall_id, status, actor, note)
    elif note is not None:
        _recall_action(add_note, _existing_db(db), recall_id, note, actor)
    console.print(f"{recall_id} updated")


@recalls_app.command("reopen")
def recalls_reopen(
    recall_id: Annotated[str, typer.Argument()],
    reason: Annotated[str, typer.Option(help="why it is reopened (kept in the audit)")],
    db: DbOption,
    by: ByOption = None,
) -> None:
    """Reopen a closed recall, with a reason."""
    from nbs.followup.lifecycle import current_user, reopen_recall

    _recall_action(reopen_recall, _existing_db(db), recall_id, reason, by or current_user())
    console.print(f"{recall_id} reopened")


@recalls_app.command("show")
def recalls_show(recall_id: Annotated[str, typer.Argument()], db: DbOption) -> None:
    """One recall: the card, the values against their limits, the explanation, the history."""
    from nbs import store

    row = store.recall(_existing_db(db), recall_id)
    if row is None:
        raise UserError(f"no recall {recall_id}")
    specimen = str(row["specimen_id"])
    console.print(
        f"[bold]{recall_id}[/bold] {row['action']} ({row['urgency']}) "
        f"{row['condition'] or 'repeat card'}: {row['stage']}"
        + (f", outcome {row['outcome']}" if row["outcome"] else "")
    )
    console.print(f"Reason: {row['reason']}")
    card = store.card(db, specimen)
    if card.height:
        fields = card.drop("file_sha256", "row_number", "run_id").row(0, named=True)
        _print_pairs(fields, "Card")
    for warning in store.card_warnings(db, specimen):
        console.print(f"Warning: {warning}")
    _print_frame(_readable_results(store.card_results(db, specimen)), Format.table, "Results")
    if row["condition"]:
        call = store.screening_call(db, specimen, str(row["condition"]))
        if call.height and call["explanation"][0]:
            criteria = json.loads(call["explanation"][0]).get("criteria") or []
            _print_frame(
                _readable_criteria(criteria),
                Format.table,
                f"Against the limits ({call['basis'][0]})",
            )
    history = store.recall_events(db, recall_id)
    opened = pl.DataFrame(
        [{"event_at": row["created_at"], "actor": "pipeline", "field": "created",
          "old_value": None, "new_value": row["action"], "note": f"run {row['run_id']}"}],
        schema=history.schema,
    )  # fmt: skip
    events = pl.concat([opened, history]).with_columns(
        pl.col("event_at").dt.strftime("%Y-%m-%d %H:%M")
    )
    _print_frame(events, Format.table, "History")


#: the tiers as a reason names them
TIER_NAMES = {0: "below", 1: "retest", 2: "repeat card", 3: "referral"}


def _print_pairs(fields: dict[str, object], title: str) -> None:
    """A record as two columns (field, value): readable at 100 columns."""
    table = Table("field", "value", title=title, title_justify="left")
    for key, value in fields.items():
        if isinstance(value, dt.datetime):
            value = value.strftime("%Y-%m-%d %H:%M")
        table.add_row(key.replace("_", " "), "" if value is None else str(value))
    console.print(table)


def _readable_results(results: pl.DataFrame) -> pl.DataFrame:
    """A card's results as a reader wants them: rounded, with the text as reported."""
    number = pl.col("value").map_elements(lambda v: f"{v:.4g}", return_dtype=pl.String)
    return results.select(
        "analyte",
        punch="replicate",
        value=pl.concat_str([number.fill_null(""), pl.lit(" "), pl.col("unit")]),
        reported=pl.concat_str(
            [pl.col("value_text").fill_null(""), pl.lit(" "), pl.col("unit_reported").fill_null("")]
        ),
        flag=pl.col("flag").fill_null(""),
        measured=pl.col("measured_at").dt.strftime("%Y-%m-%d %H:%M"),
    )


def _tier_name(tier: object) -> str:
    return TIER_NAMES.get(tier, "") if isinstance(tier, int) else "no value"


def _readable_criteria(criteria: list[dict[str, object]]) -> pl.DataFrame:
    """A call's criteria with rounded values and the tier by name."""
    return pl.DataFrame(
        [
            {
                "criterion": c.get("criterion"),
                "value": "" if c.get("value") is None else f"{float(str(c['value'])):.4g}",
                "limits": c.get("limits"),
                "stratum": c.get("stratum") or "",
                "tier": _tier_name(c.get("tier")),
            }
            for c in criteria
        ],
        schema=dict.fromkeys(("criterion", "value", "limits", "stratum", "tier"), pl.String),
    )


@recalls_app.command("urgent")
def recalls_urgent(
    db: DbOption,
    out: Annotated[Path | None, typer.Option(help="CSV file (default: standard output)")] = None,
) -> None:
    """The open urgent recalls as CSV, for the phone round (with the submitting unit)."""
    from nbs import store

    frame = store.urgent_recalls(_existing_db(db))
    if out is None:
        sys.stdout.write(frame.write_csv())
    else:
        frame.write_csv(out)
        console.print(f"{frame.height} urgent recall(s) written to {out}")


@cutoffs_app.command("show")
def cutoffs_show(
    cutoffs: Annotated[Path | None, typer.Option(help="folder of cutoff set files")] = None,
    version: Annotated[str | None, typer.Option(help="only this cutoff version")] = None,
    output: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """The resolved cutoff table: condition, marker, stratum, limits per tier, source."""
    from nbs.rules.cutoff_table import cutoff_table

    config = _load_config(cutoffs)
    sets = tuple(s for s in config.cutoff_sets if version in (None, s.version))
    if not sets:
        known = ", ".join(s.version for s in config.cutoff_sets)
        raise UserError(f"no cutoff set {version!r} (known: {known})")
    frame = cutoff_table(sets, config.registry)
    if output == Format.table:
        frame = frame.drop("effective_from")
    _print_frame(frame, output, "Cutoff table (limits inclusive; ≥ rising, ≤ falling markers)")


@cutoffs_app.command("check")
def cutoffs_check(
    file: Annotated[Path, typer.Argument(help="a proposed cutoff set (YAML)")],
) -> None:
    """Check a proposed cutoff set against the catalogue, the rule kinds and the plug-ins."""
    import yaml
    from pydantic import ValidationError

    from cutoffs import load_cutoff_file
    from nbs.config import CutoffSetError, check_cutoff_set
    from nbs.rules.registry import validation_problems

    if not file.is_file():
        raise UserError(f"{file} is not a file")
    config = _load_config(None)
    try:
        proposed = load_cutoff_file(file)
        rules = check_cutoff_set(proposed, config.registry, config.catalogue)
    except ValidationError as exc:
        problems = validation_problems(exc)
    except CutoffSetError as exc:
        problems = exc.problems
    except (ValueError, yaml.YAMLError) as exc:
        problems = [str(exc)]
    else:
        problems = []
    if problems:
        for problem in problems:
            err.print(f"error: {file}: {' '.join(problem.split())}", soft_wrap=True)
        err.print(f"{len(problems)} problem(s): the cutoff set was not accepted")
        raise SystemExit(1)
    clash = [s for s in config.cutoff_sets if s.version == proposed.version]
    note = f" (replaces the installed {proposed.version})" if clash else ""
    limits = sum(len(r.first) + len(r.second) for r in rules.values())
    console.print(
        f"OK: {proposed.version}{note}, in force from {proposed.effective_from}: "
        f"{len(rules)} conditions ({', '.join(rules)}), {limits} criteria"
    )


@app.command()
def conditions(
    cutoffs: Annotated[Path | None, typer.Option(help="folder of cutoff set files")] = None,
) -> None:
    """The screening conditions loaded from plug-ins, with versions."""
    config = _load_config(cutoffs)
    table = Table("code", "name", "version", "provided by", "in cutoff sets")
    for code, plugin in config.registry.conditions.items():
        sets = [s.version for s in config.cutoff_sets if code in s.conditions]
        table.add_row(
            code, plugin.name, plugin.version, config.registry.sources[code], ", ".join(sets) or "-"
        )
    console.print(table)


@app.command()
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
    from data_samples.make_sample_inbox import copy_recent
    from nbs import store
    from nbs.run import engines
    from nbs.run.summary import print_summary

    base = folder or Path(tempfile.mkdtemp(prefix="nbs-demo-"))
    inbox = base / "inbox"
    if inbox.exists() and any(inbox.iterdir()):
        raise UserError(f"{inbox} is not empty: choose another --dir")
    # the sample's cards and the generated ones dated the last weeks before today: the
    # statistics measure up to the time a card is reported (today), so months-old demo
    # cards would read as months late
    today = dt.date.today()
    copy_recent(inbox, today)
    if cards > 0:
        # born over a week, the last cards received by yesterday (collection up to 3.5
        # days after birth, receipt up to 4 days after collection)
        start = today - dt.timedelta(days=16)
        cohort = generate_cohort(cards, seed=seed, start=start, days=7, censored=True)
        write_inbox(cohort, inbox, name="generated")
    db = base / "nbs.duckdb"
    console.print(f"[bold]Demo[/bold]: synthetic data (never real patients) in {inbox}")
    config = _load_config(None)
    # the demo wrote its inbox itself, just now: no need to wait for the files to settle
    os.environ.setdefault("NBS_INBOX_SETTLE_S", "0")
    with console.status("screening run in progress...", spinner="dots"):
        summary = engines.run(inbox, db, config, engine.value)
    print_summary(summary, console)
    frame = store.recall_list(db, "open").select(
        "recall_id", "specimen_id", "condition", "action", "urgency", "reason"
    )
    _print_frame(frame, Format.table, f"Open recall list ({frame.height})")
    console.print(f"\nDatabase: [bold]{db}[/bold]")
    console.print(f"Inbox (files now archived): {inbox}")
    console.print(f"Try: nbs recalls list --db {db} --format csv")


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="lower-case name, e.g. anne.muller")],
    role: Annotated[str, typer.Option(help="lab, coordinator or official")],
    db: DbOption,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
    by: ByOption = None,
) -> None:
    """Create an account for the review application (asks for the password twice)."""
    from nbs.followup.lifecycle import current_user
    from nbs.web import users

    _existing_db(db)  # an account belongs to a laboratory's database, never a new empty one
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        users.add_user(db, username, role, password, by or current_user())
    except users.UserError as exc:
        raise UserError(str(exc)) from exc
    console.print(f"user {username} ({role}) created")


@users_app.command("list")
def users_list(db: DbOption) -> None:
    """The accounts (never their passwords)."""
    from nbs.web import users

    _print_frame(pl.DataFrame(users.list_users(_existing_db(db))), Format.table, "Users")


@users_app.command("disable")
def users_disable(
    username: Annotated[str, typer.Argument()],
    db: DbOption,
    enable: Annotated[bool, typer.Option("--enable", help="re-enable instead")] = False,
) -> None:
    """Disable an account (kept, so the history's names still resolve); --enable undoes it."""
    from nbs.web import users

    try:
        users.set_disabled(_existing_db(db), username, not enable)
    except users.UserError as exc:
        raise UserError(str(exc)) from exc
    console.print(f"user {username} {'enabled' if enable else 'disabled'}")


@users_app.command("unlock")
def users_unlock(
    username: Annotated[str, typer.Argument()],
    db: DbOption,
    by: ByOption = None,
) -> None:
    """Lift the lock-out that failed sign-ins put on an account (kept in the audit trail)."""
    from nbs.followup.lifecycle import current_user
    from nbs.web import users

    try:
        was_locked = users.unlock(_existing_db(db), username, by or current_user())
    except users.UserError as exc:
        raise UserError(str(exc)) from exc
    state = "unlocked" if was_locked else "was not locked; its failed sign-ins are forgotten"
    console.print(f"user {username} {state}")


class StatsTable(enum.StrEnum):
    yield_ = "yield"
    quality = "quality"
    unsatisfactory = "unsatisfactory"
    markers = "markers"


@app.command()
def stats(
    db: DbOption,
    year: Annotated[int, typer.Option(help="the year (or the first year with --to)")],
    to: Annotated[int | None, typer.Option(help="last year of a range")] = None,
    table: Annotated[StatsTable, typer.Option(help="which figures")] = StatsTable.yield_,
    output: Annotated[Format, typer.Option("--format", help="table, csv or json")] = Format.table,
    cutoffs: Annotated[Path | None, typer.Option(help="folder of cutoff set files")] = None,
) -> None:
    """Yearly statistics: yield per condition (default), quality indicators, unsatisfactory
    cards by reason, or marker percentiles of screen-negative babies."""
    from nbs.stats import statistics

    db = _existing_db(db)
    last = year if to is None else to
    try:
        statistics.years_between(year, last)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    if table is StatsTable.yield_:
        codes = list(_load_config(cutoffs).conditions)
        frame = statistics.yield_table(db, year, last, codes)
    elif table is StatsTable.quality:
        frame = statistics.quality_table(db, year, last)
    elif table is StatsTable.unsatisfactory:
        frame = statistics.unsatisfactory_table(db, year, last)
    else:
        frame = statistics.marker_table(db, year, last)
    span = str(year) if last == year else f"{year}-{last}"
    _print_frame(frame, output, f"{table.value} {span}")


@app.command()
def report(
    db: DbOption,
    year: Annotated[int, typer.Option(help="the year reported")],
    out: Annotated[Path, typer.Option(help="folder for the HTML page and the CSV files")],
    suppress_below: Annotated[
        int | None,
        typer.Option(help="for publication: show counts below N as <N and withhold their rates"),
    ] = None,
    cutoffs: Annotated[Path | None, typer.Option(help="folder of cutoff set files")] = None,
) -> None:
    """The annual report for officials: one self-contained HTML page plus CSV of each table."""
    from nbs.stats.report import write_report

    files = write_report(
        _existing_db(db), year, out, list(_load_config(cutoffs).conditions), suppress_below
    )
    console.print(f"report written: {files.html} (+ {len(files.csvs)} CSV files)")


@app.command("export-stats")
def export_stats_command(
    db: DbOption,
    out: Annotated[
        Path | None, typer.Option(help="statistics file (default: NAME.stats.duckdb beside --db)")
    ] = None,
    min_cell: Annotated[
        int, typer.Option(help="smallest submitter-level count shown (smaller: suppressed)")
    ] = 5,
) -> None:
    """Write the officials' identifier-free statistics file (DuckDB), openable with any SQL
    client without touching the live database."""
    from nbs.stats import statistics

    target = out or statistics.default_stats_path(db)
    result = statistics.export_stats(_existing_db(db), target, min_cell)
    console.print(
        f"statistics written to {result.path} "
        + ", ".join(f"{name} ({rows})" for name, rows in result.tables.items())
    )


@app.command()
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
            _existing_db(db),
            _load_config(cutoffs),
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


@app.command("prefect-up")
def prefect_up(
    home: Annotated[Path, typer.Option(help="Prefect's home folder (database, logs)")] = Path(
        "/var/lib/nbs/prefect"
    ),
    port: Annotated[int, typer.Option(help="loopback port of the server and its UI")] = 4200,
    prefect_file: Annotated[
        Path | None,
        typer.Option(help="the lab's copy of prefect.yaml (default: the one shipped with nbs)"),
    ] = None,
) -> None:
    """Set up and keep running Prefect on this lab machine: a local server (SQLite,
    127.0.0.1), the process work pool, every deployment of prefect.yaml, and a worker.
    Ctrl+C (or SIGTERM from the service manager) stops them."""
    import signal as signals
    import time

    from nbs.integrations.prefect.ops import PREFECT_FILE, PrefectSite, running_site

    if prefect_file is not None and not prefect_file.is_file():
        raise UserError(f"{prefect_file} does not exist")
    chosen = PREFECT_FILE if prefect_file is None else prefect_file.resolve()
    site = PrefectSite(home=home, port=port, prefect_file=chosen)
    signals.signal(signals.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        with running_site(site):
            console.print(
                f"Prefect running: UI http://127.0.0.1:{port}/ , API {site.api_url}; "
                f"deployments of {site.prefect_file} on pool nbs-lab; "
                f"logs in {home}. Ctrl+C stops."
            )
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopped")
    except RuntimeError as exc:
        raise UserError(str(exc)) from exc


@app.command()
def serve(
    db: DbOption,
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    host: Annotated[
        str, typer.Option(help="address to listen on (loopback by default; put TLS in front)")
    ] = "127.0.0.1",
    secure_cookies: Annotated[
        bool,
        typer.Option(
            "--secure-cookies",
            envvar="NBS_SECURE_COOKIES",
            help="send the session cookie over HTTPS only (behind the lab's TLS proxy)",
        ),
    ] = False,
    idle_minutes: Annotated[
        float,
        typer.Option(
            "--idle-minutes",
            envvar="NBS_SESSION_IDLE_MINUTES",
            min=0.01,
            help="sign a session out after this many minutes without a request",
        ),
    ] = 30.0,
) -> None:
    """The review web application for coordinators, the lab and officials (login required)."""
    import uvicorn

    from nbs.followup.lifecycle import load_followup
    from nbs.web.app import WebSettings, create_app, load_secret_key

    _existing_db(db)  # upgraded to this version's schema if need be
    settings = WebSettings(
        db=db,
        secret_key=load_secret_key(db),
        followup=load_followup(),
        https_only=secure_cookies,
        session_idle_minutes=idle_minutes,
    )
    note = "; Secure cookie: open it through the TLS proxy" if secure_cookies else ""
    console.print(f"NBS review on http://{host}:{port}/ (database {db}{note}); Ctrl+C stops it")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


def main() -> None:
    """Console-script entry point: one-line errors (no traceback), and an exit status for
    each kind of failure (``nbs.run.errors``; README "Exit status")."""
    from nbs import store
    from nbs.run import errors

    def fail(message: object, status: int) -> NoReturn:
        err.print(f"error: {errors.one_line(str(message))}", markup=False, highlight=False)
        raise SystemExit(status) from None

    try:
        app()
    except errors.RunFailed as exc:
        fail(exc, exc.exit_code)
    except (
        UserError,
        store.MigrationFailed,
        errors.NotAScreeningDatabase,
        FileNotFoundError,
    ) as exc:
        fail(exc, errors.EXIT_USAGE)
    except (store.DatabaseBusy, store.RunInProgress) as exc:
        fail(exc, errors.EXIT_BUSY)
    except (OSError, store.DatabaseError) as exc:  # the machine's: disk, permissions, the file
        if os.environ.get("NBS_DEBUG"):
            raise
        fail(errors.describe(exc), errors.EXIT_NOT_COMMITTED)
