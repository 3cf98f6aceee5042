"""Model profiles: one name selects the codec (and the LM) everywhere.

- ``kyutai``: Kyutai's released Mimi (and Moshi) from the Hugging Face cache or local files.
- ``kyutai-arch``: the same full-size architecture with random weights (speed and shape tests).
- ``tiny``: a small random Mimi-like config, 8 codebooks x 2048 entries, for tests.
- ``mini``: the small model family trained in this repository (models/mini/).
"""
import copy
from pathlib import Path

from moshi.models import loaders

KYUTAI_REPO = loaders.DEFAULT_REPO
KYUTAI_MIMI_FILE = loaders.MIMI_NAME
REPO_ROOT = Path(__file__).resolve().parents[3]

PROFILES = {
    "kyutai": "Kyutai's released Mimi/Moshi weights (Hugging Face cache or local files; needs a download once)",
    "kyutai-arch": "full-size Mimi/Moshi architecture, random weights (timing and shape tests only)",
    "tiny": "small random Mimi-like model, 8 x 2048 codebooks (tests only: output is noise)",
    "mini": "small codec + LM + recovery LoRA trained in this repository (the offline default)",
}


def check_profile(name: str) -> str:
    """Return `name` if it is a known profile, else raise ValueError listing the choices."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return name


def mimi_config(profile: str) -> dict:
    """Mimi architecture config for a profile (kyutai/kyutai-arch share moshi's default)."""
    if profile in ("kyutai", "kyutai-arch"):
        return copy.deepcopy(loaders._mimi_config)
    if profile == "tiny":
        return tiny_mimi_config()
    raise ValueError(f"profile {profile!r} has no Mimi config")


def tiny_mimi_config() -> dict:
    """A small Mimi: same frame geometry (24 kHz, 12.5 Hz, hop 1920) and 8 x 2048 codebooks."""
    cfg = copy.deepcopy(loaders._mimi_config)
    dim = 64
    cfg["seanet"].update(dimension=dim, n_filters=8)
    cfg["quantizer"].update(dimension=32, n_q=8, input_dimension=dim, output_dimension=dim)
    cfg["transformer"].update(d_model=dim, num_heads=4, num_layers=1, dim_feedforward=128,
                              input_dimension=dim, output_dimensions=[dim], context=32)
    return cfg
