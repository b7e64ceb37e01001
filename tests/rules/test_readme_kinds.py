"""The README's table of rule kinds is generated from the kinds' docstrings: a kind added
or reworded shows here until the README says the same."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
from pathlib import Path

import nbs.rules
from nbs.rules.kinds import builtin_kinds, kinds_in, kinds_markdown

README = Path(__file__).parents[2] / "README.md"
TABLE = re.compile(r"(<!-- rule-kinds:start -->\n)(.*?)(<!-- rule-kinds:end -->)", re.DOTALL)


def test_readme_rule_kind_table_matches_the_code() -> None:
    """After adding or rewording a kind: UPDATE_README=1 ./dev test
    tests/rules/test_readme_kinds.py, and commit the README."""
    text = README.read_text()
    match = TABLE.search(text)
    assert match, "README.md lacks the <!-- rule-kinds:start/end --> markers"
    current = kinds_markdown(builtin_kinds())
    if os.environ.get("UPDATE_README"):
        text = text[: match.start(2)] + current + text[match.end(2) :]
        README.write_text(text)
        match = TABLE.search(text)
        assert match
    assert match.group(2) == current, "rule kinds changed: review, then UPDATE_README=1"


def test_every_kind_defined_in_the_rules_package_is_built_in() -> None:
    """A kind written in any module of nbs/rules is collected, once: no module is missed."""
    defined = []
    for info in pkgutil.iter_modules(nbs.rules.__path__, "nbs.rules."):
        defined += [kind.name for kind in kinds_in(importlib.import_module(info.name))]
    names = [kind.name for kind in builtin_kinds()]
    assert sorted(defined) == sorted(names)
    assert len(set(names)) == len(names)


def test_every_builtin_kind_has_a_summary_and_details() -> None:
    for kind in builtin_kinds():
        summary, _, details = kind.doc.partition("\n\n")
        assert len(summary) > 20 and len(details) > 20, kind.name
