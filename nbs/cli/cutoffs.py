"""``nbs cutoffs`` (the versioned cutoff sets) and ``nbs conditions`` (the plug-ins)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nbs.cli.common import Format, UserError, console, err, load_config, print_frame

cutoffs_app = typer.Typer(help="The versioned cutoff sets.", no_args_is_help=True)


@cutoffs_app.command("show")
def cutoffs_show(
    cutoffs: Annotated[Path | None, typer.Option(help="folder of cutoff set files")] = None,
    version: Annotated[str | None, typer.Option(help="only this cutoff version")] = None,
    output: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """The resolved cutoff table: condition, marker, stratum, limits per tier, source."""
    from nbs.rules.cutoff_table import cutoff_table

    config = load_config(cutoffs)
    sets = tuple(s for s in config.cutoff_sets if version in (None, s.version))
    if not sets:
        known = ", ".join(s.version for s in config.cutoff_sets)
        raise UserError(f"no cutoff set {version!r} (known: {known})")
    frame = cutoff_table(sets, config.registry)
    if output == Format.table:
        frame = frame.drop("effective_from")
    print_frame(frame, output, "Cutoff table (limits inclusive; ≥ rising, ≤ falling markers)")


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
    config = load_config(None)
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


def conditions(
    cutoffs: Annotated[Path | None, typer.Option(help="folder of cutoff set files")] = None,
) -> None:
    """The screening conditions loaded from plug-ins, with versions."""
    config = load_config(cutoffs)
    table = Table("code", "name", "version", "provided by", "in cutoff sets")
    for code, plugin in config.registry.conditions.items():
        sets = [s.version for s in config.cutoff_sets if code in s.conditions]
        table.add_row(
            code, plugin.name, plugin.version, config.registry.sources[code], ", ".join(sets) or "-"
        )
    console.print(table)
