"""The one way the pipeline reads a YAML configuration file.

A mapping key given twice is refused: PyYAML keeps the last one silently, so a second
``PKU:`` block in a cutoff file would replace the first without a word (a Phe of 900 was
once called negative that way). A file that is not UTF-8 or not YAML is refused with one
line naming the file, the line and the problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class ConfigFileError(ValueError):
    """A configuration file that cannot be read; the message names file, line and problem."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key repeated within one mapping."""


class _UniqueKeyTextLoader(yaml.BaseLoader):
    """Every scalar as text (">300", "0.10" stay as written); a repeated key is refused."""


def _mapping(loader: yaml.BaseLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[object, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first given on line {seen[key]})",
                key_node.start_mark,
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_UniqueKeyTextLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _problem(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """The line (1-based) and a one-line description of a YAML error."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    text = f"{problem} ({context})" if context and context not in problem else problem
    return line, " ".join(str(text).split())


def load_yaml(path: Path, *, text: bool = False) -> Any:
    """The content of a YAML file; :class:`ConfigFileError` for any problem reading it.
    ``text``: every scalar as the text written (no numbers, booleans or dates)."""
    try:
        content = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = Path(path).read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigFileError(
            f"{path}:{line}: not UTF-8 (byte 0x{exc.object[exc.start]:02x}); save the file as UTF-8"
        ) from None
    try:
        return yaml.load(content, Loader=_UniqueKeyTextLoader if text else _UniqueKeyLoader)
    except yaml.YAMLError as exc:
        at, problem = _problem(exc)
        where = f"{path}:{at}" if at is not None else str(path)
        raise ConfigFileError(f"{where}: {problem}") from None
