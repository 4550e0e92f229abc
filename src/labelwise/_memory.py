"""Giving freed memory back to the operating system.

CPython and PyTorch free memory into the C allocator, and glibc keeps most of what is freed
inside its heap, so a process's resident size stays at its highest point. Before the
model is built (pandas frames and audit tables of preflight are garbage by then) and
before each evaluation (gradients and activations of training are freed, and evaluation
imports scikit-learn), :func:`trim_heap` hands those pages back, so they do not add to the
peak. It is a no-op where the C library has no ``malloc_trim``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache
from typing import Any

__all__ = ["trim_heap"]


@cache
def _malloc_trim() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


def trim_heap() -> bool:
    """Collect garbage and return free heap pages to the OS; ``True`` if pages were
    released."""
    gc.collect()
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
