"""Keep Python's cyclic garbage collector from stalling a live flowgraph.

A full (generation 2) collection walks every tracked object in the process: with torch, the
codec and GNU Radio's bindings loaded that is about 90 ms with the GIL held, and every Python
block stops for as long (scripts/click_latency.py measured one such pause at the first speech,
which a sink that must never run dry paid on every later frame: 322 ms against 209 ms without
it; docs/latency.md). While a LargeSC codec block runs, the objects alive at its start (models,
modules, the flowgraph) sit in the collector's permanent generation (``gc.freeze``), so later
collections only walk what the stream allocates; when the last such block stops they go back
(``gc.unfreeze``), so nothing frozen stays uncollectable after a run (garbage cycles alive at the
start are collected then; no collection is forced at start, which would itself be a full pass).
Reference counting frees objects as before either way.
"""
from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_running = 0


def freeze_heap() -> None:
    """A block starts: freeze what is alive (the first running block only)."""
    global _running
    with _lock:
        if _running == 0:
            gc.freeze()
        _running += 1


def thaw_heap() -> None:
    """A block stops: unfreeze when no block that froze is still running."""
    global _running
    with _lock:
        if _running == 0:
            return
        _running -= 1
        if _running == 0:
            gc.unfreeze()


def running() -> int:
    """How many started blocks hold the heap frozen."""
    return _running
