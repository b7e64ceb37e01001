"""How the C allocator of a run's process treats large blocks of memory.

A run reads its inbox files in blocks of 64 MiB (``ingest.BLOCK_BYTES``), each a Python
``bytes`` object that glibc's ``malloc`` serves. By default glibc maps every allocation
above 32 MiB freshly from the kernel and unmaps it when freed, so each block costs
~16,000 page faults to touch again, and freed memory at the top of the heap is given back
at 128 KiB. Kept in the heap instead, the next block reuses the same pages: a million
cards' staging went from ~1.0 M page faults to ~0.6 M, and from 5.6 s to 5.1 s (results
file) and 1.43 s to 1.25 s (specimens file), at the same peak memory (measured
2026-11-24, see benchmarks/README.md; at 100,000 cards the peak rose 1.05 → 1.14 GiB).

Only blocks read on the main thread gain: glibc gives other threads heaps of at most
64 MiB, which a block does not fit (the local engine reads on the main thread; the
Prefect flow stages big files in task threads). polars allocates with its own jemalloc
and is not affected; DuckDB allocates with glibc too, and its commit measured the same
either way. The kept memory is given back once the staging is done (:func:`give_back`).
"""

from __future__ import annotations

import ctypes
import sys

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
