"""The code's shape: modules small enough to hold in one's head, functions of one job, no
import cycle, and a README layout table that names the folders as they are."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("nbs", "flows", "analytes", "cutoffs", "data_samples")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
#: declarative schemas: one column per line, read as a table rather than as steps
DECLARATIVE = {"specimen_schema", "result_schema"}


def _modules() -> Iterator[tuple[str, Path]]:
    """(dotted name, file) of every module of the installed packages."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join(parts), path


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports anywhere in its file (in functions and under
    TYPE_CHECKING too: a cycle hidden in a function is still a cycle of the design)."""

    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        for target in targets:
            resolved = resolve(target)
            # a module importing its own package's __init__ is how packages work
            if resolved and resolved != name and not name.startswith(resolved + "."):
                found.add(resolved)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_there_is_no_import_cycle() -> None:
    modules = dict(_modules())
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    assert sum(len(edges) for edges in graph.values()) > 100  # the walk saw the imports
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_modules_are_small_enough_to_hold_in_ones_head() -> None:
    big = {
        str(path.relative_to(ROOT)): lines
        for _, path in _modules()
        if (lines := len(path.read_text("utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert big == {}


def test_functions_do_one_job() -> None:
    long = []
    for _, path in _modules():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES and node.name not in DECLARATIVE:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} {lines}")
    assert long == []


def test_the_readme_layout_table_names_the_folders_as_they_are() -> None:
    text = (ROOT / "README.md").read_text("utf-8")
    table = text[text.index("## Layout") :]
    table = table[: table.index("\n\n", table.index("|---"))]
    named = set(re.findall(r"^\| `([\w/]+)/`", table, re.MULTILINE))
    packages = {
        str(path.parent.relative_to(ROOT))
        for path in (ROOT / "nbs").glob("*/__init__.py")
        if path.parent.name != "__pycache__"
    }
    # every sub-package of nbs is in the table (or a folder inside it, as integrations/prefect)
    missing = {p for p in packages if not any(f == p or f.startswith(p + "/") for f in named)}
    assert missing == set()
    assert all((ROOT / folder).is_dir() for folder in named), named
