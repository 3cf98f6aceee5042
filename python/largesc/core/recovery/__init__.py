"""Token recovery: strategies that fill lost tokens, behind one factory, `build()`.

`registry` is the one table of strategies (names, labels, holds, needs), `base` the interface
and its rules (see its docstring), `baselines` the zero / repeat / prefix strategies, `latent` the latent-domain `interp`, `moshi` the LM strategy (Moshi's LMModel, + LoRA), `lm` the LM loading.
"""
from __future__ import annotations

from .base import (  # noqa: F401
    CARD,
    DECODABLE,
    KNOWN,
    LATENCY,
    STRATEGIES,
    K,
    Recovery,
    decodable_prefix,
    received,
    recover,
    recover_lookahead,
    token_accuracy,
)
from .baselines import PrefixRecovery, RepeatRecovery, ZeroRecovery  # noqa: F401


def build(strategy: str, *, lm=None, codec=None, profile: str | None = None, device: str = "cpu",
          lora: str | None = None, lm_weights: str | None = None, lm_config: str | None = None,
          lm_seed: int = 0, force_cpu: bool = False, fill_not_sent: bool = True,
          zero_code: int = 0, latent_weights: str | None = None, **moshi_kwargs) -> Recovery:
    """A strategy by name (`STRATEGIES`), with its model for `moshi`.

    `moshi-mmse` is `moshi` with the soft decision (the token nearest the LM's expected
    codebook vector, MmseSampler), which needs the codec of `profile` (or `codec=`) too.
    `interp` and `latent` work in the codec's quantizer space: they take a codec object (`codec=`)
    or load the codec of `profile`; `latent` loads its predictor from models/<profile>/recovery/latent
    (or `latent_weights`) and, like `prefix`, never fills not-sent codebooks. `moshi` takes an LM object (`lm=`), or loads the LM of `profile` (default: the default
    profile, core.profiles) + LoRA; the full-size profiles refuse to start on CPU unless
    `force_cpu`. `moshi_kwargs` go to `MoshiRecovery` (temperature, top_k, seed, deadline_ms,
    prime_frames, feedback).
    """
    from .registry import REGISTRY
    if strategy not in REGISTRY:
        raise ValueError(f"unknown recovery strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if not REGISTRY[strategy].uses_codec:
        codec = None                           # only the latent-space strategies use a codec
    if strategy == "zero":
        return ZeroRecovery(code=zero_code, fill_not_sent=fill_not_sent)
    if strategy == "repeat":
        return RepeatRecovery(fill_not_sent=fill_not_sent)
    if strategy == "prefix":
        return PrefixRecovery()
    if strategy == "interp":
        from .latent import InterpRecovery
        if codec is None:
            from ..codec import load_codec
            from ..profiles import DEFAULT_PROFILE
            codec = load_codec(profile or DEFAULT_PROFILE, device=device)
        return InterpRecovery(codec, fill_not_sent=fill_not_sent)
    if strategy == "latent":
        from ..profiles import DEFAULT_PROFILE
        from .latent import LatentRecovery, predictor_dir
        from .latent_predictor import load_predictor
        profile = profile or DEFAULT_PROFILE
        if codec is None:
            from ..codec import load_codec
            codec = load_codec(profile, device=device)
        return LatentRecovery(codec, load_predictor(latent_weights or predictor_dir(profile)))
    if strategy == "moshi-mmse":              # soft decision: the LM's expected codebook vector
        strategy, moshi_kwargs["mmse"] = "moshi", True
    if strategy != "moshi":
        raise ValueError(f"unknown recovery strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    from .moshi import MoshiRecovery
    if moshi_kwargs.pop("mmse", False):      # soft decision: the codec's codebook vectors
        import torch
        if codec is None:
            from ..codec import load_codec
            from ..profiles import DEFAULT_PROFILE
            codec = load_codec(profile or DEFAULT_PROFILE, device=device)
        moshi_kwargs["codebook_vectors"] = [torch.from_numpy(codec.codebook_vectors(k)) for k in range(K)]
    if lm is None:
        from ..profiles import DEFAULT_PROFILE
        from . import lm as lm_mod
        profile = profile or DEFAULT_PROFILE
        lm_mod.check_realtime(profile, device, force_cpu)
        lm = lm_mod.load_lm(profile, weights=lm_weights or None, config=lm_config or None,
                            lora=lora or None, device=device, seed=lm_seed)
    return MoshiRecovery(lm, fill_not_sent=fill_not_sent, **moshi_kwargs)
