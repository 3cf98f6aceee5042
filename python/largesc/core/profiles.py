"""Model profiles: the one place that names them, says what each has, and picks the default.

One name selects the codec (and the recovery LM) everywhere: CLI flags, block parameters, GRC
YAML defaults, examples, benchmarks and the evaluation (a test checks that they agree).

- ``mini``: the default: the v2 codec trained in this repository (models/mini/codec: Opus DRED
  latents + a state codebook, voiced by FARGAN) and its latent recovery predictor; no LM yet;
- ``mini-v1``: the first small family trained here (models/mini-v1/: WORLD codec + LM + LoRA);
- ``kyutai``: Kyutai's released Mimi (and Moshi) from the Hugging Face cache or local files;
- ``kyutai-arch``: the same full-size architecture with random weights (speed and shape tests);
- ``tiny``: a small random Mimi-like config, 8 codebooks x 2048 entries, for tests.

Plain Python: importing this module loads neither torch nor GNU Radio.
"""
import os
from pathlib import Path

DEFAULT_PROFILE = "mini"

PROFILES = {
    "mini": "v2 codec trained in this repository (DRED latents + state, FARGAN; learned latent recovery, no LM) (the default)",
    "mini-v1": "first codec (WORLD) + LM + recovery LoRA trained in this repository",
    "kyutai": "Kyutai's released Mimi/Moshi weights (Hugging Face cache or local files; needs a download once)",
    "kyutai-arch": "full-size Mimi/Moshi architecture, random weights (timing and shape tests only)",
    "tiny": "small random Mimi-like model, 8 x 2048 codebooks (tests only: output is noise)",
}
PROFILE_NAMES = tuple(PROFILES)                 # CLI choices, in this order
LM_PROFILES = ("tiny", "kyutai-arch", "kyutai", "mini-v1")   # profiles with a recovery LM
DEFAULT_LM_PROFILE = "mini-v1"                  # LM trainers' default until the v2 codec has an LM
MINI_FAMILY = ("mini", "mini-v1")               # weights trained here, in models/<profile>/
# `--recovery auto`: the measured best strategy per profile (docs/recovery.md); LM profiles not
# listed use `moshi`. `mini` (v2) has no LM yet: its learned latent predictor (no LM).
AUTO_RECOVERY = {"mini": "latent", "mini-v1": "moshi-mmse"}
FULL_SIZE = ("kyutai", "kyutai-arch")           # Kyutai's architecture (Mimi 24 kHz + Moshi 7B)
RANDOM_WEIGHTS = ("tiny", "kyutai-arch")        # no trained weights: output is noise


def check_profile(name: str) -> str:
    """Return `name` if it is a known profile, else raise ValueError listing the choices."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return name


def auto_recovery(name: str) -> str:
    """The recovery strategy `auto` stands for with this profile (an unknown profile gets a
    model-free one, so that the caller's profile check reports the profile)."""
    if not isinstance(name, str) or name not in PROFILES:
        return "prefix"
    return AUTO_RECOVERY.get(name) or ("moshi" if name in LM_PROFILES else "prefix")


def resolve_recovery(name: str, strategy: str) -> str:
    """`strategy`, with `auto` replaced by the profile's measured best (AUTO_RECOVERY)."""
    return auto_recovery(name) if strategy == "auto" else strategy


def has_lm(name: str) -> bool:
    return name in LM_PROFILES


def no_lm_message(name: str) -> str:
    return (f"profile {name!r} has no recovery LM yet (its codec's tokens differ from mini-v1's): use a "
            f"strategy without an LM (latent, interp, prefix, repeat, zero) or a profile with an LM ({', '.join(LM_PROFILES)})")


def models_dir() -> Path:
    """Where the weights of the `mini` family live: $LARGESC_MODELS, else the package's models/."""
    return Path(os.environ.get("LARGESC_MODELS", Path(__file__).resolve().parents[1] / "models"))
