"""The ``nbs`` console script: what must happen before polars is imported, then the CLI."""

from __future__ import annotations

from nbs.web.process import command

__all__ = ["command", "main"]


def main() -> None:
    """Tune polars' allocator (it reads its options once, on import), then run ``nbs``."""
    from nbs.run import allocator

    allocator.tune_polars_allocator()
    from nbs.cli import main as cli_main

    cli_main()
