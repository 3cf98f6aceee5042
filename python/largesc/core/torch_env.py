"""Process-level torch settings for model blocks: compilation off on CPU, device choice, threads.

Import this module before moshi: it sets NO_TORCH_COMPILE=1 unless the user chose otherwise,
so that a GRC-generated script never stalls on an inductor build the first time a model runs.
"""
import os
import threading

os.environ.setdefault("NO_TORCH_COMPILE", "1")

import torch  # noqa: E402

_thread_state = threading.local()


def resolve_device(device: str = "cpu") -> torch.device:
    """'cpu', 'cuda', 'cuda:N' or 'auto' (CUDA when available) -> torch.device; clear error otherwise."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device '{device}' requested but CUDA is not available; use 'cpu' or 'auto'")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")
    return torch.device(device)


def disable_compile_on_cpu(device: torch.device) -> None:
    """Turn moshi's lazy torch.compile off for the whole process when running on CPU."""
    if device.type == "cpu":
        from moshi.utils import compile as moshi_compile
        moshi_compile._compile_disabled = True


def use_threads(num_threads: int) -> None:
    """Set torch's intra-op threads for the calling thread (GNU Radio runs each block in its own)."""
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    if getattr(_thread_state, "num_threads", None) != num_threads:
        torch.set_num_threads(num_threads)
        _thread_state.num_threads = num_threads
