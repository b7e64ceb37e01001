"""Every SQL statement lives in ``nbs.store``: no other module of the package or of the
Prefect flows imports DuckDB or holds SQL text. A query elsewhere is a store function
with a name and a docstring."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "nbs" / "store"

#: SQL as the code writes it (upper-case keywords), whole statements or fragments of one
SQL = re.compile(
    r"\b(SELECT|INSERT (OR \w+ )?INTO|UPDATE \w+ SET|DELETE FROM|"
    r"CREATE (OR REPLACE )?(TEMP )?(TABLE|VIEW|MACRO|SEQUENCE)|DROP (TABLE|VIEW)|ALTER TABLE|"
    r"(SEMI |ANTI |LEFT |INNER )?JOIN \w+( \w+)? (USING|ON)|ORDER BY|GROUP BY|"
    r"FROM \w+ WHERE|WHERE \w+(\.\w+)? (=|<>|IN|IS|BETWEEN|LIKE)|LIMIT \?)"
)

#: (module, text) of literals that look like SQL but are not run: none today
ALLOWED: set[tuple[str, str]] = set()


def _modules() -> list[Path]:
    found = sorted((ROOT / "nbs").rglob("*.py")) + sorted((ROOT / "flows").rglob("*.py"))
    return [p for p in found if STORE not in p.parents]


def _problems(source: str, name: str) -> list[str]:
    """What in ``source`` belongs in the store: DuckDB imports and SQL-like literals."""
    problems = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        else:
            modules = []
        problems += [
            f"{name}:{node.lineno}: imports {m}" for m in modules if m.split(".")[0] == "duckdb"
        ]
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = SQL.search(node.value)
            if match and (name, node.value) not in ALLOWED:
                problems.append(f"{name}:{node.lineno}: SQL {match.group(0)!r} in {node.value!r}")
    return problems


def test_no_module_outside_the_store_imports_duckdb_or_holds_sql() -> None:
    modules = _modules()
    assert len(modules) > 50  # the walk found the package
    problems = [
        problem
        for path in modules
        for problem in _problems(path.read_text("utf-8"), str(path.relative_to(ROOT)))
    ]
    assert problems == [], "move these into nbs/store:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "source",
    [
        "import duckdb",
        "import duckdb.typing",
        "from duckdb import IOException",
        'q = "SELECT 1"',
        'q = f"SELECT {cols} FROM t"',
        'q = "SELECT a, b "\n"FROM t WHERE a = ?"',
        'store.run("INSERT INTO users VALUES (?)")',
        'store.run("INSERT OR IGNORE INTO t SELECT * FROM s")',
        'store.run("UPDATE recalls SET stage = ?")',
        'store.run("DELETE FROM login_guard")',
        'store.run("CREATE OR REPLACE VIEW v AS SELECT 1")',
        'w = "WHERE status = ?"',
        'w = f"retest_worklist {where} LIMIT ? OFFSET ?"',
        'j = "FROM calls c JOIN specimens s USING (specimen_id)"',
        'o = f"x ORDER BY created_at"',
    ],
)
def test_the_check_finds_duckdb_and_sql(source: str) -> None:
    assert _problems(source, "example.py")


@pytest.mark.parametrize(
    "source",
    [
        '"""Select the cards; the view reprocess_comparison shows them."""',
        'message = "Order by urgency, then group by condition"',
        'path = db.with_name(db.stem + ".stats.duckdb")',
        "from nbs import store",
    ],
)
def test_the_check_leaves_prose_alone(source: str) -> None:
    assert _problems(source, "example.py") == []
