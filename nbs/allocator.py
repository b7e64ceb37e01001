"""How the C allocator of a run's process treats large blocks of memory.

A run reads its inbox files in blocks of 64 MiB (``ingest.BLOCK_BYTES``), each a Python
``bytes`` object that glibc's ``malloc`` serves. By default glibc maps every allocation
above 32 MiB freshly from the kernel and unmaps it when freed, so each block costs
~16,000 page faults to touch again, and freed memory at the top of the heap is given back
at 128 KiB. Kept in the heap instead, the next block reuses the same pages: a million
cards' staging went from ~1.0 M page faults to ~0.6 M, and from 5.6 s to 5.1 s (results
file) and 1.43 s to 1.25 s (specimens file), with the same peak memory (measured
2026-11-24, see benchmarks/README.md). polars and DuckDB bring their own allocators and are
not affected.
"""

from __future__ import annotations

import ctypes
import ctypes.util
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

_applied = False


def keep_freed_memory() -> bool:
    """Have glibc keep large freed blocks for reuse (see the module's docstring).

    Process-wide and idempotent: called when a run opens, not at import. Returns whether
    the setting is in force; False where the C library is not glibc (macOS, musl), which
    then keeps its own behaviour: only speed differs, never a result.
    """
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 for a value it refuses
    _applied = bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
    return _applied
