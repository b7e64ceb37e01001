"""``nbs cutoffs`` (the versioned cutoff sets) and ``nbs conditions`` (the plug-ins)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from nbs.cli.common import Format, UserError, console, err, load_config, print_frame

if TYPE_CHECKING:
    from cutoffs.model import CutoffSet
    from nbs.config import ConditionRules, ScreeningConfig

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
    if not file.is_file():
        raise UserError(f"{file} is not a file")
    config = load_config(None)
    proposed, rules, problems = _check_file(file, config)
    if problems or proposed is None:
        for problem in problems:
            text = " ".join(problem.split())
            # a YAML error already begins with the file's name (and its line)
            where = "" if text.startswith(f"{file}:") else f"{file}: "
            err.print(f"error: {where}{text}", soft_wrap=True, markup=False, highlight=False)
        err.print(f"{len(problems)} problem(s): the cutoff set was not accepted")
        raise SystemExit(1)
    clash = [s for s in config.cutoff_sets if s.version == proposed.version]
    note = f" (replaces the installed {proposed.version})" if clash else ""
    limits = sum(len(r.first) + len(r.second) for r in rules.values())
    console.print(
        f"OK: {proposed.version}{note}, in force from {proposed.effective_from}: "
        f"{len(rules)} conditions ({', '.join(rules)}), {limits} criteria"
    )


def _check_file(
    file: Path, config: ScreeningConfig
) -> tuple[CutoffSet | None, dict[str, ConditionRules], list[str]]:
    """The checked set and its rules, or every problem of the file: those of its
    structure and, even where the top of the file fails (a missing date, a null version),
    those of each condition that is well formed."""
    from pydantic import ValidationError

    from cutoffs import load_cutoff_file
    from nbs.config import CutoffSetError, check_cutoff_set
    from nbs.rules.registry import validation_problems
    from nbs.yamlfile import load_yaml

    try:
        proposed = load_cutoff_file(file)
    except ValidationError as exc:
        return None, {}, validation_problems(exc) + _condition_problems(load_yaml(file), config)
    except ValueError as exc:  # not YAML, not UTF-8, not a mapping
        return None, {}, [str(exc)]
    try:
        return proposed, check_cutoff_set(proposed, config.registry, config.catalogue), []
    except CutoffSetError as exc:
        return proposed, {}, exc.problems


def _condition_problems(data: dict[str, Any], config: ScreeningConfig) -> list[str]:
    """The problems of the well-formed condition blocks against the catalogue, the rule
    kinds and the plug-ins (the malformed ones are named by the structure check)."""
    from pydantic import ValidationError

    from cutoffs.model import ConditionCutoffs, CutoffSet
    from nbs.config import CutoffSetError, check_cutoff_set

    blocks = data.get("conditions")
    conditions = {}
    for code, block in blocks.items() if isinstance(blocks, dict) else ():
        try:
            conditions[str(code)] = ConditionCutoffs.model_validate(block)
        except ValidationError:
            continue
    version = data.get("version")
    stand_in = CutoffSet.model_construct(
        version=version if isinstance(version, str) and version else "(no version)",
        conditions=conditions,
    )
    try:
        check_cutoff_set(stand_in, config.registry, config.catalogue)
    except CutoffSetError as exc:
        return exc.problems
    return []


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
