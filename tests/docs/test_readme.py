"""The README's commands are runnable as written: every command its tables list exists and
accepts every option they name (checked against the command's own --help); every
``nbs ...`` it shows parses with the real command line (each option exists, the required
ones are given); every file it and the cutoff files name exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.core
import typer.main
from typer.testing import CliRunner

from nbs.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| `nbs ([^`]+)` \|")


def _rows() -> list[str]:
    return [m.group(1) for line in README.read_text().splitlines() if (m := ROW.match(line))]


def test_the_readme_lists_the_commands() -> None:
    assert len(_rows()) >= 15


@pytest.mark.parametrize("row", _rows())
def test_every_listed_command_takes_its_options(row: str) -> None:
    words = row.replace("\\|", "|").split()
    command = []
    for word in words:
        if not re.fullmatch(r"[a-z][a-z0-9-]*", word):
            break
        command.append(word)
    shown = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "300"})
    assert shown.exit_code == 0, (command, shown.output)
    for option in re.findall(r"--[a-z][a-z-]*", row):
        assert option in shown.output, f"nbs {' '.join(command)}: no option {option}"


# -- every `nbs ...` the README shows parses with the real command line -------------------

ROOT = typer.main.get_command(app)
#: files the README tells the reader to make (the walkthrough of a new cutoff version)
TO_BE_MADE = {"cutoffs/lns-2026.2.yaml"}
PATH = re.compile(
    r"(?<![\w./~-])((?:tests|nbs|data_samples|cutoffs|analytes|docs|benchmarks|flows|\.ci)"
    r"/[\w./*-]*[\w*/])"
)


def _shown_commands() -> list[str]:
    """Every ``nbs ...`` of the README: code spans (prose and tables) and code-block lines."""
    text = README.read_text(encoding="utf-8")
    fence = re.compile(r"^```[^\n]*\n(.*?)^```", flags=re.M | re.S)
    spans = re.findall(r"`(nbs [^`]+)`", fence.sub("", text))
    lines = [line.strip() for block in fence.findall(text) for line in block.splitlines()]
    return [" ".join(s.split()) for s in spans] + [x for x in lines if x.startswith("nbs ")]


def _words(shown: str) -> list[str]:
    """The command as typed: optional parts (``[...]``) left out, the first of
    alternatives (``a|b``), a shell comment dropped."""
    text = shown.replace("\\|", "|")
    while (shorter := re.sub(r"\[[^\[\]]*\]", "", text)) != text:
        text = shorter
    return [word.split("|")[0] for word in shlex.split(text, comments=True)]


def _problem(shown: str) -> str | None:
    """Why ``shown`` would not parse (None: it parses, or it only names a command). Parsed
    by the command's own parser without converting values, so that placeholders such as
    FILE pass where a path or a number is due."""
    words = _words(shown)[1:]
    command, ctx = ROOT, ROOT.context_class(ROOT, info_name="nbs")
    while words and isinstance(command, typer.core.TyperGroup):
        if words[0] == "...":  # "nbs recalls ...": the group's commands
            return None
        sub = command.get_command(ctx, words[0])
        if sub is None:
            return f"no command {words[0]!r}"
        command, ctx = sub, sub.context_class(sub, info_name=words.pop(0), parent=ctx)
    if not words:  # a command named in prose, e.g. `nbs stats`
        return None
    try:
        given, extra, _ = command.make_parser(ctx).parse_args(args=list(words))
    except Exception as exc:  # click's: no such option, an option without its value
        return f"{type(exc).__name__}: {exc}"
    if extra:
        return f"unexpected {extra}"
    missing = [
        param.opts[0] if param.param_type_name == "option" else str(param.name).upper()
        for param in command.params
        if param.required and given.get(str(param.name)) in (None, ())
    ]
    if missing and not given.get("help"):
        return f"missing {missing}"
    return None


def test_the_readme_command_check_sees_a_missing_or_unknown_option() -> None:
    assert _problem("nbs stats --year 2025 --to 2026") == "missing ['--db']"
    assert "--bogus" in str(_problem("nbs stats --db FILE --year Y --bogus"))
    assert _problem("nbs reevaluate --db FILE --reason T") == "missing ['SPECIMEN']"
    assert _problem("nbs nope") == "no command 'nope'"
    assert _problem("nbs qc chart TSH --db F --out F.svg [--level L] [--lot LOT]") is None


@pytest.mark.parametrize("shown", _shown_commands())
def test_every_command_the_readme_shows_parses(shown: str) -> None:
    assert _problem(shown) is None, shown


def test_the_files_the_readme_and_the_cutoff_files_name_exist() -> None:
    root = README.parent
    texts = [README, *sorted((root / "cutoffs").glob("*.yaml"))]
    named = {(t.name, m) for t in texts for m in PATH.findall(t.read_text(encoding="utf-8"))}
    assert len(named) > 30
    missing = [
        (where, path)
        for where, path in sorted(named)
        if path not in TO_BE_MADE
        and not (any(root.glob(path)) if "*" in path else (root / path).exists())
    ]
    assert missing == []
