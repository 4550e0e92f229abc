"""trim_heap gives freed heap pages back to the OS (what keeps training's peak RSS down)."""

from __future__ import annotations

import gc
import os
import weakref

import pytest

from labelwise.training import _memory
from labelwise.training._memory import frozen_heap, trim_heap


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(_memory._malloc_trim() is None, reason="no malloc_trim in this C library")
def test_trim_heap_returns_freed_pages() -> None:
    chunks = [bytes(1024) * 4 for _ in range(50_000)]  # ~200 MiB of 4 KiB heap chunks
    keep = bytes(4096)  # allocated last: the heap's top stays in use, so free() alone cannot trim
    del chunks
    before = _rss_mib()
    assert trim_heap() is True
    assert before - _rss_mib() > 100
    assert keep


def test_trim_heap_without_malloc_trim(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_memory, "_malloc_trim", lambda: None)
    assert trim_heap() is False


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_frozen_heap_hides_what_lived_before_and_collects_what_came_after() -> None:
    before = _Node()
    gone_before = weakref.ref(before)
    with frozen_heap():
        assert gc.get_freeze_count() > 0
        during = _Node()
        gone_during = weakref.ref(during)
        del before, during
        trim_heap()
        assert gone_during() is None  # made inside the block: collected
        assert gone_before() is not None  # frozen: not scanned inside the block
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gone_before() is None  # unfrozen after the block: collected again


def test_frozen_heap_nested_leaves_the_thaw_to_the_outermost() -> None:
    with frozen_heap():
        with frozen_heap():
            pass
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
