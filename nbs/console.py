"""The ``nbs`` console script: what must happen before polars is imported, then the CLI."""

from __future__ import annotations

import sys


def main() -> None:
    """Tune polars' allocator (it reads its options once, on import), then run ``nbs``."""
    from nbs.run import allocator

    allocator.tune_polars_allocator()
    from nbs.cli import main as cli_main

    cli_main()


def command(*args: str) -> list[str]:
    """``nbs ARGS`` as a child process of this interpreter runs it (whatever is on PATH),
    through this same entry point."""
    return [sys.executable, "-c", "from nbs.console import main; main()", *args]
