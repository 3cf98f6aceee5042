"""Per-stage compute timing and observation of the blocks, through observers (no monkeypatching).

A block that runs a core stage (encode, controller, recovery, decode, reassembly) owns a
`StageObservers` and calls its stage through `timed(...)`. Anyone who wants to know (the hier
blocks' compute table, `gr-largesc run`, the soak) adds an observer: a callable taking one
`StageEvent`. With no observer, `timed` is a plain call.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class StageEvent:
    """One call of a stage: its name, compute seconds, and what the block shares about it
    (e.g. `frame_index`/`tokens` for the packetizer, `frames` for the depacketizer, `codes` for
    the decoder; see each block's docstring)."""
    stage: str
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)


class StageObservers:
    """The observers of one block's stages."""

    def __init__(self):
        self._observers: list[Callable[[StageEvent], None]] = []

    def add(self, observer: Callable[[StageEvent], None]) -> None:
        self._observers.append(observer)

    def remove(self, observer: Callable[[StageEvent], None]) -> None:
        self._observers.remove(observer)

    def __bool__(self) -> bool:
        return bool(self._observers)

    def timed(self, stage: str, call: Callable, *args, **info):
        """`call(*args)`; observers then get its time and `info` (and `result`)."""
        if not self._observers:
            return call(*args)
        t0 = time.perf_counter()
        result = None
        try:
            result = call(*args)
            return result
        finally:                                    # a failing call is timed and reported too
            self.notify(StageEvent(stage, time.perf_counter() - t0, {**info, "result": result}))

    def notify(self, event: StageEvent) -> None:
        for observer in list(self._observers):
            observer(event)


class StageTimer:
    """An observer that sums the compute time of the stages it sees (calls, total, max)."""

    def __init__(self):
        self.calls, self.total_s, self.max_s = 0, 0.0, 0.0

    def __call__(self, event: StageEvent) -> None:
        self.calls += 1
        self.total_s += event.seconds
        self.max_s = max(self.max_s, event.seconds)

    def as_dict(self, num_frames):
        return {"calls": self.calls, "total_ms": round(self.total_s * 1e3, 3),
                "ms_per_frame": round(self.total_s * 1e3 / num_frames, 3) if num_frames else 0.0,
                "max_call_ms": round(self.max_s * 1e3, 3)}
