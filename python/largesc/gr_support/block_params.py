"""Parameter checks that several blocks share: the codec blocks (and the hier blocks that hold
them) and the recovery block (and largesc_rx). The generic checks are in `params`."""
from ..core.link import frames
from ..core.profiles import LM_PROFILES, MINI_FAMILY, PROFILES
from ..core.recovery.registry import REGISTRY, STRATEGIES
from . import params as P

FEEDBACK_MODES = ("masked", "sampled")
MAX_TEMPERATURE = 10.0
MAX_DEADLINE_MS = 10000.0


def check_codec_params(block, profile, samp_rate, device, num_threads, mimi_weights, stats_interval):
    """Shared by the encoder and decoder: see mimi_encoder's docstring for the ranges."""
    P.check_choice(block, "profile", profile, tuple(PROFILES))
    if P.check_int(block, "samp_rate", samp_rate, 1, 10 ** 6) != frames.SAMPLE_RATE:
        P.fail(block, "samp_rate", f"{frames.SAMPLE_RATE} (Mimi's rate; resample outside the block, "
               f"e.g. filter.rational_resampler_fff)", samp_rate)
    P.check_device(block, "device", device)
    P.check_int(block, "num_threads", num_threads, 1, P.MAX_THREADS)
    if profile in MINI_FAMILY:  # a mini codec is a folder: config.json + model.safetensors
        P.check_file(block, "mimi_weights", mimi_weights, allow_dir=True,
                     suffixes=P.SAFETENSORS_SUFFIXES)
    else:
        P.check_file(block, "mimi_weights", mimi_weights, suffixes=P.SAFETENSORS_SUFFIXES)
    P.check_int(block, "stats_interval", stats_interval, 1, P.MAX_STATS_INTERVAL, "frames")


def check_codec_window(block, profile, mimi_weights, value) -> int:
    """-1 (the codec's default) or, for the mini v2 codec, 0..3 frames of decoder look-ahead."""
    w = P.check_int(block, "codec_window", value, -1, 3, "frames; -1: the codec's default")
    if w >= 0:
        from ..core.codec import _mini_version, mini_weights_dir
        if profile not in MINI_FAMILY or _mini_version(mini_weights_dir(mimi_weights or None, profile)) != 2:
            P.fail(block, "codec_window", "-1 (a window applies to the mini v2 codec only)", value)
    return w


def check_temperature(block, value):
    return P.check_float(block, "temperature", value, 0.0, MAX_TEMPERATURE, what="0: greedy")


def check_top_k(block, value):
    return P.check_int(block, "top_k", value, 0, frames.CODEBOOK_SIZE, "0: no top-k cut")


def check_deadline_ms(block, value):
    return P.check_float(block, "deadline_ms", value, 0.0, MAX_DEADLINE_MS, what="ms; 0: no deadline")


def check_recovery_params(block, profile, strategy, temperature, top_k, seed, device, num_threads,
                          lora, fill_not_sent, deadline_ms, lm_weights, lm_config, force_cpu,
                          profile_name="profile", strategy_name="strategy"):
    """The checks token_recovery and largesc_rx share (see token_recovery's docstring)."""
    P.check_choice(block, strategy_name, strategy, STRATEGIES)
    P.check_choice(block, profile_name, profile, LM_PROFILES if REGISTRY[strategy].uses_lm else tuple(PROFILES))
    check_temperature(block, temperature)
    check_top_k(block, top_k)
    P.check_int(block, "seed", seed, 0, P.MAX_SEED)
    P.check_device(block, "device", device)
    P.check_int(block, "num_threads", num_threads, 1, P.MAX_THREADS)
    P.check_file(block, "lora", lora, allow_dir=True, suffixes=P.SAFETENSORS_SUFFIXES)
    P.check_bool(block, "fill_not_sent", fill_not_sent)
    check_deadline_ms(block, deadline_ms)
    P.check_file(block, "lm_weights", lm_weights, suffixes=P.SAFETENSORS_SUFFIXES)
    P.check_file(block, "lm_config", lm_config)
    P.check_bool(block, "force_cpu", force_cpu)
