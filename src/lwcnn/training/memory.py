"""Keep the memory a training step frees for the next step, instead of handing it back to the kernel.

glibc's ``malloc`` serves every block above its mmap threshold (128 KiB to 32 MiB) with a fresh
``mmap`` and unmaps it on ``free``. A CPU training step allocates the same large activation and
gradient tensors every time (the first feature map of 64 images of 256 x 256, 16 channels at 128 x
128, is 64 MiB), so every step maps them again and the kernel zeroes every page on first touch: a
classifier step of lw@0.35 at 256 x 256, batch 64, spent 28% of its CPU time in the kernel (``python
-m benchmarks.training_step_memory``, a 2-core Intel Xeon, 2026-12-05; docs/results.md). With mmap
off and trimming off, freed blocks stay in the heap and the next step reuses them.

Only the training processes call this (``lwcnn train``, ``lwcnn pretrain``); the inspection
runtime is left with glibc's defaults. The cost: the heap keeps the high-water mark of the run's
memory until the process ends, which a training process reaches anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

#: mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Tell glibc's allocator to keep freed memory in the process (no mmap for large blocks, no
    trimming). Returns whether it took effect (False off Linux or without glibc: nothing changed)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success
    return mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
