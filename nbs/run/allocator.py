"""How the C allocator of a run's process treats large blocks of memory.

A run reads its inbox files in blocks of 64 MiB (the ``block_bytes`` setting), each a
Python ``bytes`` object that glibc's ``malloc`` serves. By default glibc maps every
allocation above 32 MiB freshly from the kernel and unmaps it when freed, so each block
costs ~16,000 page faults to touch again, and freed memory at the top of the heap is given
back at 128 KiB. Kept in the heap instead, the next block reuses the same pages: at a
million cards the staging takes ~40 % fewer page faults and ~10 % less time, at about the
same peak memory (figures in benchmarks/README.md).

Only blocks read on the main thread gain: glibc gives other threads heaps of at most
64 MiB, which a block does not fit (the local engine reads on the main thread; the
Prefect flow stages big files in task threads). polars allocates with its own jemalloc
and is not affected; DuckDB allocates with glibc too, and its commit is the same either
way. The kept memory is given back once the staging is done (:func:`give_back`).

polars' own jemalloc is tuned separately (:func:`tune_polars_allocator`): it can only be
configured before polars is first imported, so the ``nbs`` console script does it first.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import MutableMapping

#: allocations up to this size come from the heap, not from a fresh mapping (the blocks of
#: 64 MiB and their copies, with room for a longer last block)
MMAP_THRESHOLD_BYTES = 256 * 2**20
#: free memory at the top of the heap kept for reuse up to this much before it is given
#: back to the kernel (a few blocks and their copies)
TRIM_THRESHOLD_BYTES = 512 * 2**20

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: None until tried; then whether the settings are in force
_applied: bool | None = None


def _libc() -> ctypes.CDLL | None:
    """The process's own C library (its symbols, as ``dlopen(NULL)`` sees them)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def keep_freed_memory() -> bool:
    """Have glibc keep large freed blocks for reuse (see the module's docstring).

    Process-wide; tried once (called when a run opens, not at import). Returns whether
    the settings are in force: False where the C library is not glibc (macOS, musl) or
    refuses them (older glibc capped the threshold at 32 MiB), which then keeps its own
    behaviour: only speed differs, never a result.
    """
    global _applied
    if _applied is not None:
        return _applied
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        _applied = False
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 for a value it refuses
    _applied = bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
    return _applied


def give_back() -> None:
    """Return the heap's free memory to the kernel (glibc's ``malloc_trim``): after the
    staging, the blocks kept for reuse are not needed, and the evaluation and DuckDB's
    commit allocate elsewhere. Does nothing where the settings are not in force."""
    if not _applied:
        return
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim.argtypes = [ctypes.c_size_t]
        trim.restype = ctypes.c_int
        trim(0)


#: how long polars' jemalloc keeps freed memory for reuse before giving it back ("dirty"
#: pages, milliseconds), and none kept lazily after that ("muzzy", 0: given back at once)
POLARS_JEMALLOC_CONF = "dirty_decay_ms:5000,muzzy_decay_ms:0"
#: the variable polars' jemalloc reads its options from (polars adds its own defaults in
#: front of it, and the last value of an option wins)
JEMALLOC_CONF_VARIABLE = "_RJEM_MALLOC_CONF"
#: what polars (2.1) puts in front of the variable when it is imported: a process started
#: by one that imported polars inherits the variable with this in front
POLARS_DEFAULT_CONF = "dirty_decay_ms:500,muzzy_decay_ms:1000"


def tune_polars_allocator(environ: MutableMapping[str, str] | None = None) -> bool:
    """Have polars keep the memory it frees for 5 s instead of 0.5 s.

    polars sets its jemalloc to give freed memory back to the kernel after 0.5 s (dirty
    pages, ``dirty_decay_ms:500``), then 1 s more lazily (``muzzy_decay_ms:1000``). A
    run's evaluation frees and allocates the same sizes chunk after chunk, ~0.7 s apart,
    so with those defaults most of its memory would come back from the kernel afresh,
    page fault by page fault. Kept 5 s, a million cards' run takes about a third fewer
    page faults and a third less kernel time, for a slightly higher peak (figures in
    benchmarks/README.md and docs/stack-notes.md).

    Only works before polars is imported (jemalloc reads its options once, when polars'
    library loads): returns False, changing nothing, if it already is. A laboratory's own
    options in ``_RJEM_MALLOC_CONF`` come after these and win; polars' defaults, which a
    process inherits from a parent that imported polars, are not taken for the
    laboratory's. Changes the environment of this process (and so of the processes it
    starts), which is why only the console script calls it. Prefect's flow processes get
    the same value from ``prefect.yaml``.
    """
    if "polars" in sys.modules:
        return False
    env = os.environ if environ is None else environ
    own = env.get(JEMALLOC_CONF_VARIABLE, "")
    own = own.removeprefix(POLARS_DEFAULT_CONF).lstrip(",")
    # a process started by ``nbs`` (or a Prefect flow's) already has the setting
    tuned = own if POLARS_JEMALLOC_CONF in own else f"{POLARS_JEMALLOC_CONF},{own}"
    env[JEMALLOC_CONF_VARIABLE] = tuned.rstrip(",")
    return True
