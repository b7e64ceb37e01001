"""The run's process keeps large freed blocks for reuse (nbs.allocator)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# a fresh process allocates and fills a block the size of a read block, frees it, and
# counts the page faults of doing it again: reused memory is already mapped
PROBE = r"""
import json, resource, sys
from nbs import allocator
applied = allocator.keep_freed_memory() if sys.argv[1] == "tuned" else False
size = 64 * 2**20
block = b"x" * size
del block
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = b"y" * size
after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
print(json.dumps({"applied": applied, "faults": after - before}))
"""


def _probe(mode: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_freed_read_block_is_reused_without_page_faults() -> None:
    default = _probe("default")
    tuned = _probe("tuned")
    assert tuned["applied"] is True
    pages = 64 * 2**20 // 4096
    # glibc's default maps a 64 MiB block afresh: every page faults again
    assert isinstance(default["faults"], int) and default["faults"] > pages // 2
    assert isinstance(tuned["faults"], int) and tuned["faults"] < pages // 10


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_opening_a_run_applies_it(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    code = (
        "import sys; from pathlib import Path; from nbs import allocator, pipeline\n"
        "before = allocator._applied\n"
        "with pipeline.open_run(Path(sys.argv[1]), Path(sys.argv[2]), 'local'):\n"
        "    print(before, allocator._applied)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "inbox"), str(tmp_path / "nbs.duckdb")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["False", "True"]
