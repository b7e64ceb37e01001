"""What a run did, for people: the summary (printed by the CLI, stored with the run, left
as a Prefect artifact), as markdown and as a rich rendering."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from rich.console import Console
from rich.table import Table

CALL_ORDER = ("referral", "repeat_specimen", "retest", "negative", "not_evaluated")


@dataclass
class RunSummary:
    """What a run did, for people: printed by the CLI, stored with the run, and left as a
    Prefect artifact."""

    run_id: str
    engine: str
    inbox: str
    db: str
    files: list[dict[str, object]] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    #: files read by this run but left in the inbox (changed since), with the reason
    not_archived: list[str] = field(default_factory=list)
    specimen_rows: int = 0
    result_rows: int = 0
    quarantined_rows: int = 0
    quarantine: list[dict[str, object]] = field(default_factory=list)
    warnings: int = 0
    #: the first card warnings (specimen_id, column_name, reason), as the summary lists them
    warning_rows: list[dict[str, object]] = field(default_factory=list)
    already_known_rows: int = 0
    pending_results: int = 0
    pending_cards: int = 0
    pending_specimens: list[str] = field(default_factory=list)
    cards_evaluated: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    new_calls: int = 0
    new_recalls: int = 0
    urgent_recalls: list[dict[str, object]] = field(default_factory=list)
    #: why each plate this run read first is held (its results make no call)
    plates_held: list[str] = field(default_factory=list)
    #: patient-based QC alarms of the run (moving medians beyond their limits)
    patient_qc_alarms: list[str] = field(default_factory=list)
    patient_qc_error: str | None = None
    retests_opened: int = 0
    retests_done: int = 0
    recalls_answered: int = 0
    recalls_escalated: int = 0
    stats_file: str | None = None
    stats_error: str | None = None
    cutoff_versions: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> str:
        """The summary as JSON (stored in ``runs.summary_json``)."""
        return json.dumps(asdict(self), default=str, sort_keys=True)

    @property
    def files_quarantined(self) -> list[dict[str, object]]:
        """Files that could not be read at all."""
        return [f for f in self.files if f["outcome"] == "unreadable"]


def _calls_line(summary: RunSummary) -> str:
    parts = [f"{summary.calls[c]} {c}" for c in CALL_ORDER if summary.calls.get(c)]
    return ", ".join(parts) or "none"


def summary_markdown(summary: RunSummary) -> str:
    """The run summary as markdown (files, rows, quarantine, calls, new recalls)."""
    lines = [
        f"# Screening run `{summary.run_id}`",
        "",
        f"- engine: {summary.engine}; inbox: `{summary.inbox}`; database: `{summary.db}`",
        f"- cutoff set(s): {', '.join(summary.cutoff_versions) or '-'}",
        f"- rows ingested: {summary.specimen_rows} cards, {summary.result_rows} results "
        f"({summary.already_known_rows} already known, not counted again)",
        f"- rows quarantined: {summary.quarantined_rows}; card warnings: {summary.warnings}",
        f"- results pending (card not yet received): {summary.pending_results} "
        f"for {summary.pending_cards} card(s) {', '.join(summary.pending_specimens)}",
        f"- cards evaluated: {summary.cards_evaluated}; calls: {_calls_line(summary)}",
        f"- new recalls: {summary.new_recalls} ({len(summary.urgent_recalls)} urgent); "
        f"retests opened: {summary.retests_opened}, done: {summary.retests_done}",
        f"- officials' statistics file: {summary.stats_file or 'not renewed'}"
        + (f" ({summary.stats_error})" if summary.stats_error else ""),
        f"- repeat-card recalls answered by a later card: {summary.recalls_answered} "
        f"closed (repeat normal), {summary.recalls_escalated} escalated",
        "",
        "## Files",
        "",
        "| file | kind | outcome | rows | quarantined rows | error |",
        "|---|---|---|---|---|---|",
    ]
    for f in summary.files:
        lines.append(
            f"| {f['name']} | {f['kind']} | {f['outcome']} | {f['rows']} | "
            f"{f['rows_quarantined']} | {f['error'] or ''} |"
        )
    if summary.warning_rows:
        lines += ["", "## Card warnings", "", "| card | field | warning |", "|---|---|---|"]
        lines += [
            f"| {w['specimen_id']} | {w['column_name']} | {w['reason']} |"
            for w in summary.warning_rows
        ]
    if summary.ignored_files:
        lines += ["", "Not read, left in the inbox: " + ", ".join(summary.ignored_files)]
    if summary.not_archived:
        lines += ["", "Read, but left in the inbox: " + ", ".join(summary.not_archived)]
    if summary.quarantine:
        lines += [
            "",
            "## Quarantined rows",
            "",
            "| file | row | column | value | reason |",
            "|---|---|---|---|---|",
        ]
        for q in summary.quarantine:
            lines.append(
                f"| {q['file_name']} | {q['row_number']} | {q['column_name']} | "
                f"{q['value'] if q['value'] is not None else ''} | {q['reason']} |"
            )
    if summary.urgent_recalls:
        lines += [
            "",
            "## Urgent recalls",
            "",
            "| specimen | condition | action | reason |",
            "|---|---|---|---|",
        ]
        for r in summary.urgent_recalls:
            lines.append(
                f"| {r['specimen_id']} | {r['condition'] or '-'} | {r['action']} | {r['reason']} |"
            )
    if summary.plates_held:
        lines += ["", "## Plates held (no call from their results)", ""]
        lines += [f"- {reason}" for reason in summary.plates_held]
    if summary.patient_qc_alarms:
        lines += ["", "## Patient-based QC alarms", ""]
        lines += [f"- {alarm}" for alarm in summary.patient_qc_alarms]
    return "\n".join(lines) + "\n"


def print_summary(summary: RunSummary, console: Console) -> None:
    """Print the run summary as rich tables."""
    console.print(
        f"[bold]Screening run[/bold] {summary.run_id} ({summary.engine}, "
        f"{summary.seconds:.2f} s) into {summary.db}"
    )
    console.print(_files_table(summary))
    _print_counts(summary, console)
    if summary.quarantine:
        _print_listed(
            console,
            _quarantine_table(summary),
            len(summary.quarantine),
            f"... and more: see the quarantine table in {summary.db}",
        )
    if summary.warning_rows:
        _print_listed(
            console,
            _warnings_table(summary),
            summary.warnings,
            f"... and more: see the specimen_warnings table in {summary.db}",
        )
    for reason in summary.plates_held:
        console.print(f"[bold red]Plate held[/]: {reason} (no call from its results)")
    for alarm in summary.patient_qc_alarms:
        console.print(f"[bold yellow]Patient-based QC alarm[/]: {alarm}")
    if summary.patient_qc_error:
        console.print(f"patient-based QC failed (the run stands): {summary.patient_qc_error}")


#: rows of the quarantine and of the card warnings printed (the database holds them all)
PRINTED_ROWS = 25


def _print_listed(console: Console, table: Table, total: int, more: str) -> None:
    console.print(table)
    if total > PRINTED_ROWS:
        console.print(more)


def _files_table(summary: RunSummary) -> Table:
    files = Table(
        "file",
        "kind",
        "outcome",
        "rows",
        "quarantined rows",
        "error",
        title="Files",
        title_justify="left",
    )
    for f in summary.files:
        style = "red" if f["outcome"] == "unreadable" else None
        files.add_row(
            str(f["name"]),
            str(f["kind"]),
            str(f["outcome"]),
            str(f["rows"]),
            str(f["rows_quarantined"]),
            str(f["error"] or ""),
            style=style,
        )
    return files


def _print_counts(summary: RunSummary, console: Console) -> None:
    """The files left in the inbox, rows, calls, recalls and the officials' file."""
    if summary.ignored_files:
        console.print("Not read, left in the inbox: " + ", ".join(summary.ignored_files))
    if summary.not_archived:
        console.print(
            "[yellow]Read, but left in the inbox: " + ", ".join(summary.not_archived) + "[/]"
        )
    console.print(
        f"Rows: {summary.specimen_rows} cards, {summary.result_rows} results new; "
        f"{summary.already_known_rows} already known; "
        f"[{'yellow' if summary.quarantined_rows else 'green'}]"
        f"{summary.quarantined_rows} quarantined[/]; {summary.warnings} card warnings; "
        f"{summary.pending_results} results pending their card"
    )
    if summary.pending_specimens:
        console.print("Results waiting for their card: " + ", ".join(summary.pending_specimens))
    console.print(f"Cards evaluated: {summary.cards_evaluated}; calls: {_calls_line(summary)}")
    console.print(
        f"New recalls: {summary.new_recalls} "
        f"([bold red]{len(summary.urgent_recalls)} urgent[/]); "
        f"retests opened {summary.retests_opened}, done {summary.retests_done}"
    )
    if summary.stats_error:
        console.print(f"[yellow]Statistics file not renewed: {summary.stats_error}[/]")
    if summary.recalls_answered or summary.recalls_escalated:
        console.print(
            f"Recalls answered by a repeat card: {summary.recalls_answered} closed "
            f"(repeat normal), [bold red]{summary.recalls_escalated} escalated[/]"
        )


def _quarantine_table(summary: RunSummary) -> Table:
    q = Table(
        "file",
        "row",
        "column",
        "value",
        "reason",
        title="Quarantined rows",
        title_justify="left",
    )
    for row in summary.quarantine[:PRINTED_ROWS]:
        q.add_row(
            str(row["file_name"]),
            str(row["row_number"]),
            str(row["column_name"]),
            "" if row["value"] is None else str(row["value"]),
            str(row["reason"]),
        )
    return q


def _warnings_table(summary: RunSummary) -> Table:
    w = Table("card", "field", "warning", title="Card warnings", title_justify="left")
    for row in summary.warning_rows[:PRINTED_ROWS]:
        w.add_row(str(row["specimen_id"]), str(row["column_name"]), str(row["reason"]))
    return w
