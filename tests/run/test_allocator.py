"""The run's process keeps large freed blocks for reuse (nbs.run.allocator)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

from nbs.run import allocator


def _thp_always() -> bool:
    """Transparent huge pages for every mapping: a fresh 64 MiB mapping then faults in
    2 MiB pages, and the default's count says little."""
    try:
        setting = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return False
    return "[always]" in setting


GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# a fresh process allocates and fills a block the size of a read block, frees it, and
# counts the page faults of doing it again: reused memory is already mapped
PROBE = r"""
import json, resource, sys
from nbs.run import allocator
applied = allocator.keep_freed_memory() if sys.argv[1] == "tuned" else False
size = 64 * 2**20
block = b"x" * size
del block
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = b"y" * size
after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
print(json.dumps({"applied": applied, "faults": after - before}))
"""


def _python(
    code: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``code`` run in a fresh process, its output captured (the allocators' settings are
    process-wide, and each check needs a process that has not had them yet)."""
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, env=env
    )


def _probe(mode: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(_python(PROBE, mode).stdout)
    return result


@pytest.mark.skipif(not GLIBC or _thp_always(), reason="glibc's mallopt, 4 KiB pages")
def test_a_freed_read_block_is_reused_without_page_faults() -> None:
    default = _probe("default")
    tuned = _probe("tuned")
    assert tuned["applied"] is True
    pages = 64 * 2**20 // 4096
    assert isinstance(default["faults"], int) and isinstance(tuned["faults"], int)
    # glibc's default maps a 64 MiB block afresh: its pages fault again; kept, they do not
    assert default["faults"] > pages // 2
    assert tuned["faults"] * 10 < default["faults"]


def test_without_glibc_nothing_is_set_and_nothing_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False
    assert allocator.keep_freed_memory() is False  # tried once, remembered
    allocator.give_back()  # nothing to give back: no error


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt")
def test_opening_a_run_applies_it(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    code = (
        "import sys; from pathlib import Path; from nbs.run import allocator, steps as pipeline\n"
        "before = allocator._applied\n"
        "with pipeline.open_run(Path(sys.argv[1]), Path(sys.argv[2]), 'local'):\n"
        "    print(before, allocator._applied)\n"
    )
    printed = _python(code, str(tmp_path / "inbox"), str(tmp_path / "nbs.duckdb")).stdout
    assert printed.split() == ["None", "True"]  # not tried before the run opened


GIVE_BACK = r"""
import json
from nbs.run import allocator
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
allocator.keep_freed_memory()
block = b"x" * (64 * 2**20)
del block
kept = rss()
allocator.give_back()
print(json.dumps({"kept": kept, "after": rss()}))
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt")
def test_the_kept_blocks_are_given_back_after_staging() -> None:
    sizes = json.loads(_python(GIVE_BACK).stdout)
    # the freed 64 MiB block stayed resident until given back
    assert sizes["kept"] - sizes["after"] > 32 * 2**20


def _jemalloc_options(code: str, conf: str) -> dict[str, str]:
    """The decay options polars' jemalloc runs with in a fresh process running ``code``:
    jemalloc prints its options at exit when told to (``stats_print``)."""
    out = _python(code, env={**os.environ, allocator.JEMALLOC_CONF_VARIABLE: conf})
    options = {}
    for line in out.stderr.splitlines():
        name, _, value = line.strip().partition(": ")
        if name in ("opt.dirty_decay_ms", "opt.muzzy_decay_ms"):
            options[name.removeprefix("opt.")] = value.split()[0]
    return options


# ``--help`` exits; polars is imported in any case, so that jemalloc loads and reports
CONSOLE = (
    "import sys; sys.argv = ['nbs', '--help']\n"
    "try:\n"
    "    from nbs.console import main; main()\n"
    "finally:\n"
    "    import polars\n"
)
POLARS_ALONE = "import polars"


@pytest.mark.slow
def test_the_console_script_has_polars_keep_freed_memory_longer() -> None:
    plain = _jemalloc_options(POLARS_ALONE, "stats_print:true")
    if not plain:
        pytest.skip("this polars build has no jemalloc (or does not print its options)")
    polars_default = dict(option.split(":") for option in allocator.POLARS_DEFAULT_CONF.split(","))
    assert plain == polars_default, "polars changed its defaults: revisit nbs.run.allocator"
    tuned = _jemalloc_options(CONSOLE, "stats_print:true")
    assert tuned == {"dirty_decay_ms": "5000", "muzzy_decay_ms": "0"}
    # a laboratory's own setting still wins
    own = _jemalloc_options(CONSOLE, "dirty_decay_ms:700,stats_print:true")
    assert own == {"dirty_decay_ms": "700", "muzzy_decay_ms": "0"}
    # started from a process that imported polars: polars' defaults are not the lab's
    inherited = _jemalloc_options(CONSOLE, f"{allocator.POLARS_DEFAULT_CONF},stats_print:true")
    assert inherited == tuned


def test_polars_is_tuned_only_before_it_is_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "polars", types.ModuleType("polars"))
    environ: dict[str, str] = {}
    assert allocator.tune_polars_allocator(environ) is False
    assert environ == {}
    monkeypatch.delitem(sys.modules, "polars")
    ours, polars_default = allocator.POLARS_JEMALLOC_CONF, allocator.POLARS_DEFAULT_CONF
    name = allocator.JEMALLOC_CONF_VARIABLE
    cases = {
        "": ours,
        "dirty_decay_ms:700": f"{ours},dirty_decay_ms:700",
        # inherited from a process that imported polars
        polars_default: ours,
        f"{polars_default},dirty_decay_ms:700": f"{ours},dirty_decay_ms:700",
        # a process started by nbs, before and after polars' import there
        ours: ours,
        f"{polars_default},{ours},stats_print:true": f"{ours},stats_print:true",
    }
    for before, after in cases.items():
        environ = {name: before} if before else {}
        assert allocator.tune_polars_allocator(environ) is True
        assert environ == {name: after}, before


def test_prefect_flow_processes_get_the_same_polars_setting() -> None:
    spec = yaml.safe_load((Path(__file__).resolve().parents[2] / "prefect.yaml").read_text())
    env = spec["definitions"]["work_pool"]["job_variables"]["env"]
    assert env[allocator.JEMALLOC_CONF_VARIABLE] == allocator.POLARS_JEMALLOC_CONF
    assert all(d["work_pool"]["job_variables"]["env"] == env for d in spec["deployments"])
