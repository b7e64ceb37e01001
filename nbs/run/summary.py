"""A run summary for people: markdown (Prefect artifact) and a rich rendering (CLI)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from nbs.run.steps import RunSummary

CALL_ORDER = ("referral", "repeat_specimen", "retest", "negative", "not_evaluated")


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
    return "\n".join(lines) + "\n"


def print_summary(summary: RunSummary, console: Console) -> None:
    """Print the run summary as rich tables."""
    console.print(
        f"[bold]Screening run[/bold] {summary.run_id} ({summary.engine}, "
        f"{summary.seconds:.2f} s) into {summary.db}"
    )
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
    console.print(files)
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
    if summary.quarantine:
        q = Table(
            "file",
            "row",
            "column",
            "value",
            "reason",
            title="Quarantined rows",
            title_justify="left",
        )
        for row in summary.quarantine[:25]:
            q.add_row(
                str(row["file_name"]),
                str(row["row_number"]),
                str(row["column_name"]),
                "" if row["value"] is None else str(row["value"]),
                str(row["reason"]),
            )
        console.print(q)
        if len(summary.quarantine) > 25:
            console.print(f"... and more: see the quarantine table in {summary.db}")
    if summary.warning_rows:
        w = Table("card", "field", "warning", title="Card warnings", title_justify="left")
        for row in summary.warning_rows[:25]:
            w.add_row(str(row["specimen_id"]), str(row["column_name"]), str(row["reason"]))
        console.print(w)
        if summary.warnings > 25:
            console.print(f"... and more: see the specimen_warnings table in {summary.db}")
