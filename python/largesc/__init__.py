"""gr-largesc: LargeSC speech over lossy links, as a GNU Radio out-of-tree module.

Blocks are imported lazily, so `from gnuradio import largesc` stays cheap and torch/moshi load
only when a block is built.
"""
import importlib
import os

os.environ.setdefault("NO_TORCH_COMPILE", "1")   # before moshi is imported anywhere

_BLOCKS = {
    "mimi_encoder": ".mimi_encoder",
    "mimi_decoder": ".mimi_decoder",
    "adaptive_controller": ".adaptive_controller",
    "depacketizer": ".depacketizer",
    "packet_erasure_channel": ".packet_erasure_channel",
}

__all__ = list(_BLOCKS)


def __getattr__(name):
    if name in _BLOCKS:
        obj = getattr(importlib.import_module(_BLOCKS[name], __name__), name)
        globals()[name] = obj
        return obj
    raise AttributeError(f"module 'gnuradio.largesc' has no attribute {name!r}")
