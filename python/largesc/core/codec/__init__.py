"""Token codecs: audio <-> 8 codebooks of 11-bit tokens per 80 ms frame.

`base.TokenCodec` is the interface every codec implements (`mimi.MimiCodec` for the Kyutai
profiles, `mini.MiniCodec` for `mini`), so nothing downstream knows which codec it has.
`load_codec` builds one from a profile name (core.profiles) or explicit local files.
"""
from __future__ import annotations

import logging
from pathlib import Path

from .. import profiles, torch_env
from ..link import frames
from . import mimi as _mimi
from .base import (  # noqa: F401
    ModelFileError,
    TokenCodec,
    activity_db,
    activity_source,
    check_codes,
    frame_level_db,
    latent_activity_db,
)
from .mimi import MimiCodec, _kyutai_mimi_file, _load_mimi_file, _random_mimi  # noqa: F401

log = logging.getLogger(__name__)


def load_codec(profile: str = profiles.DEFAULT_PROFILE, *, mimi_weights: str | Path | None = None,
               mimi_config: str | Path | dict | None = None, device: str = "cpu",
               num_codebooks: int = frames.NUM_CODEBOOKS, seed: int = 0, window: int | None = None) -> TokenCodec:
    """Build the codec of a profile, or of explicit local files (weights + optional config json).
    `window`: frames of decoder look-ahead of the mini v2 codec (0..3; None: its config's default);
    other codecs have a fixed look-ahead and refuse a value."""
    import json
    profiles.check_profile(profile)
    dev = torch_env.resolve_device(device)
    torch_env.disable_compile_on_cpu(dev)
    if profile in profiles.MINI_FAMILY and _mini_version(mini_weights_dir(mimi_weights, profile)) == 2:
        from . import mini2
        folder = mini_weights_dir(mimi_weights, profile)
        if window is not None and not 0 <= int(window) <= mini2.MAX_WINDOW:
            raise ValueError(f"codec window must be 0..{mini2.MAX_WINDOW} frames, got {window}")
        try:
            return mini2.load_mini2(folder, device=str(dev), num_codebooks=num_codebooks, window=window)
        except Exception as exc:   # missing library or files: one error naming them
            raise ModelFileError(f"cannot load the mini v2 codec from {folder}: {type(exc).__name__}: {exc}") from exc
    if window is not None:
        raise ValueError(f"a codec window applies to the mini v2 codec only; profile {profile!r} has a fixed look-ahead")
    if profile in profiles.MINI_FAMILY:
        try:
            from . import mini as mini_codec
        except ImportError as exc:
            raise RuntimeError(f"profile 'mini' needs the WORLD vocoder packages ({exc.name}): "
                               "install them with LARGESC_EXTRAS=mini scripts/install_env.sh") from exc
        folder = mini_weights_dir(mimi_weights, profile)
        try:
            return mini_codec.load_mini_codec(folder, device=str(dev), num_codebooks=num_codebooks)
        except Exception as exc:   # missing, truncated or mismatched files: one error naming them
            raise ModelFileError(f"cannot load the mini codec from {folder} "
                                 f"({mini_codec.CONFIG_NAME} + {mini_codec.WEIGHTS_NAME}): "
                                 f"{type(exc).__name__}: {exc}") from exc
    if isinstance(mimi_config, (str, Path)):
        cfg_path = Path(mimi_config)
        if not cfg_path.is_file():
            raise ModelFileError(f"Mimi config not found: {cfg_path}")
        try:
            config = json.loads(cfg_path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelFileError(f"cannot read Mimi config {cfg_path}: {exc}") from exc
        if not isinstance(config, dict):
            raise ModelFileError(f"Mimi config {cfg_path} is not a JSON object")
    else:
        config = mimi_config if mimi_config is not None else _mimi.mimi_config(profile)
    if profile == "kyutai" or mimi_weights is not None:
        path = _kyutai_mimi_file(mimi_weights)
        model = _load_mimi_file(path, config, dev)
        desc = f"Mimi weights {path}"
    else:
        model = _random_mimi(config, dev, seed)
        desc = f"{profile}: random weights (seed {seed})"
    return MimiCodec(model, dev, num_codebooks, description=desc)


def _mini_version(folder: Path) -> int:
    """The `mini` codec generation a weight folder holds (config.json "version"; 1 when absent)."""
    import json
    try:
        return int(json.loads((Path(folder) / "config.json").read_text()).get("version", 1))
    except (OSError, ValueError, AttributeError):
        return 1


def mini_weights_dir(override: str | Path | None = None, profile: str = "mini") -> Path:
    """Where a `mini`-family codec lives: `override`, else $LARGESC_MODELS/<profile>/codec, else the
    package's models/<profile>/codec."""
    if override is not None:
        return Path(override)
    return profiles.models_dir() / profile / "codec"
