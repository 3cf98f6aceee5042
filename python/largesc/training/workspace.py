"""Where the offline work keeps its files: one answer for the trainers, the corpus builder and the
evaluation.

The workspace is a checkout of gr-largesc (it holds `data/heldout.json`, the held-out split, and
gets `cache/` for corpora, features and runs). It is `$LARGESC_WORKSPACE` when set, else the
checkout this package runs from (an editable install), else the current directory. Nothing on the
runtime path (blocks, core) uses it.
"""
import os
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[3]     # python/largesc/training -> the repository


def workspace() -> Path:
    env = os.environ.get("LARGESC_WORKSPACE")
    if env:
        return Path(env)
    if (_CHECKOUT / "data" / "heldout.json").is_file():
        return _CHECKOUT
    return Path.cwd()


WORKSPACE = workspace()
CACHE = WORKSPACE / "cache"
HELDOUT_FILE = WORKSPACE / "data" / "heldout.json"
