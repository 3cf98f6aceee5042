"""LargeSC at the core level, one utterance at a time, on the common loss trace.

    audio 16 kHz -> 24 kHz -> codec.encode_latent -> per-frame activity (dB)
      -> controller allocation (N, R) per frame    [adaptive | no-UEP | fixed N]
      -> Packetizer (one 80 ms frame per packet, copy distance d)
      -> loss trace (packet of frame f spans [80 f, 80 f + 80) ms)
      -> Reassembler (sequence-clocked, flush to the sent frame count)
      -> token recovery (moshi | interp | latent | repeat | zero | prefix | oracle)
      -> codec.decode with the per-frame decodable prefix -> 24 kHz -> 16 kHz

Allocation variants (the ablations):
- ``adaptive``: AdaptiveController(B), fed the condition's loss rate p as its estimate (as Opus
  gets p as its loss hint; the live system would estimate it from feedback);
- ``no_uep``: the adaptive allocation with its copies' tokens given to originals instead
  (:func:`equal_protection`): N' = min(8, N + R + carry), R' = 0, the tokens that do not fit
  carried to the next frames. Same payload rate, equal protection;
- ``fixed``: no controller: N = min(8, floor(B / 137.5)) on every frame, R = 0.

``oracle`` is not a strategy a receiver can run: it fills every unknown token with the true one
(the ceiling of recovery, docs/recovery.md). ``info["frame_class"]`` says per frame what the
channel left: 0 all sent codebooks received, 1 partial (codebook 0 known, e.g. from a copy),
2 nothing (codebook 0 lost).

Models (codec, LM) are built once per process and reused; recovery is re-seeded per utterance
so that a result never depends on which utterances ran before it in the same process.
"""
from __future__ import annotations

import hashlib
import logging

import numpy as np

from ..core.audio_io import resample
from ..core.link import frames
from ..core.link.controller import AdaptiveController
from ..core.link.packet import Packetizer
from ..core.link.packet_formats import DEFAULT_FORMAT, get_format
from ..core.link.reassembly import Reassembler, frames_to_arrays
from ..core.profiles import DEFAULT_PROFILE, MINI_FAMILY
from ..core.recovery.registry import REGISTRY

log = logging.getLogger(__name__)
FS = 16000
FRAME_MS = 1000.0 * frames.FRAME_SECONDS
ALLOCATIONS = ("adaptive", "no_uep", "fixed")
_CODECS: dict = {}
_RECOVERY: dict = {}
_ENCODED: dict = {}


def get_codec(profile: str, seed: int = 0):
    key = (profile, seed)
    if key not in _CODECS:
        import torch
        torch.set_num_threads(1)
        from ..core.codec import load_codec
        _CODECS[key] = load_codec(profile, seed=seed)
    return _CODECS[key]


def get_recovery(strategy: str, profile: str, lora: str | None = None, temperature: float | None = None):
    key = (strategy, profile, lora, temperature)
    if key not in _RECOVERY:
        from ..core.recovery import build as build_recovery
        kw = {}
        if strategy in ("moshi", "moshi-mmse"):
            kw = {"profile": profile, "lora": lora, **({} if temperature is None else {"temperature": temperature})}
            if strategy == "moshi-mmse":
                kw["codec"] = get_codec(profile)
        elif strategy in REGISTRY and REGISTRY[strategy].uses_codec:
            kw = {"codec": get_codec(profile), **({"profile": profile} if strategy == "latent" else {})}
        _RECOVERY[key] = build_recovery(strategy, **kw)
    return _RECOVERY[key]


def model_description(profile: str, recovery: str = "moshi", lora: str | None = None) -> str:
    c = get_codec(profile)
    desc = getattr(c, "description", "") or profile
    if profile in MINI_FAMILY:
        from ..core.codec import mini_weights_dir
        w = mini_weights_dir(profile=profile) / "model.safetensors"
        if w.is_file():
            h = hashlib.sha256(w.read_bytes()).hexdigest()[:16]
            desc = f"{profile} codec {w.parent} (model.safetensors sha256 {h}...)"
    if recovery == "latent":
        from ..core.recovery.latent import predictor_dir
        w = predictor_dir(profile) / "model.safetensors"
        if w.is_file():
            desc += f"; latent predictor {w.parent} (sha256 {hashlib.sha256(w.read_bytes()).hexdigest()[:16]}...)"
    if recovery in ("moshi", "moshi-mmse"):
        from ..core.recovery.lm import MINI_LM_DIR, MINI_LORA_DIR, PEFT_ADAPTER_FILE
        lm_w = MINI_LM_DIR / "model.safetensors"
        lm_sha = (f" (LM sha256 {hashlib.sha256(lm_w.read_bytes()).hexdigest()[:16]}...)"
                  if profile == "mini-v1" and lm_w.is_file() else "")
        if isinstance(lora, str) and lora.lower() == "none":
            desc += f"; LM: {profile} (base, no LoRA){lm_sha}"
        elif lora:
            desc += f"; LM: {profile} + LoRA {lora}{lm_sha}"
        else:
            ad = MINI_LORA_DIR / PEFT_ADAPTER_FILE
            shipped = profile == "mini-v1" and ad.is_file()
            desc += f"; LM: {profile}" + (" + its shipped LoRA" if shipped else "") + lm_sha
            if shipped:
                desc += f" (LoRA sha256 {hashlib.sha256(ad.read_bytes()).hexdigest()[:16]}...)"
    return desc


def encode(profile: str, x24: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes [8, F], the codec's activity dB [F]) for a clip, memoised per process by content hash."""
    from ..core.codec import activity_db
    h = hashlib.sha256(np.ascontiguousarray(x24, np.float32).tobytes()).hexdigest()
    key = (profile, h)
    if key not in _ENCODED:
        codes, latent = get_codec(profile).encode_latent(x24)
        if len(_ENCODED) > 64:
            _ENCODED.clear()
        _ENCODED[key] = (codes, activity_db(get_codec(profile), x24, latent))
    return _ENCODED[key]


def audio_activity_db(x24: np.ndarray, nfr: int) -> np.ndarray:
    """Per-frame input level (dB): the activity source `activity="audio"` forces, also for codecs
    whose own source is the latent (the random-weight `tiny` profile has no speech/silence
    contrast in its latent)."""
    from ..core.codec import frame_level_db
    return frame_level_db(x24, nfr)


def allocations(activity: np.ndarray, allocation: str, bandwidth_bps: float, p: float,
                d: int = 1) -> list[tuple[int, int]]:
    """Per-frame (N, R) for one of ALLOCATIONS."""
    if allocation == "fixed":
        n = min(frames.NUM_CODEBOOKS, max(1, frames.bps_to_tokens(bandwidth_bps)))
        return [(n, 0)] * len(activity)
    ctrl = AdaptiveController(bandwidth_bps, d=d)
    out = []
    for a in activity:
        al = ctrl.step(float(a), p)
        out.append((al.n_send, al.n_repeat))
    if allocation == "no_uep":
        out = equal_protection(out)
    return out


def equal_protection(allocs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The same tokens with no copies: each frame sends N' = min(8, N + R + carry) originals and
    the tokens that do not fit (frames already at 8) carry to the next frames. So the payload
    rate equals the UEP allocation's, token for token, except for a carry left at the end when
    every later frame is already at 8 codebooks (B above 1100 bps)."""
    out, carry = [], 0
    for n, r in allocs:
        t = n + r + carry
        n2 = min(frames.NUM_CODEBOOKS, t)
        carry = t - n2
        out.append((n2, 0))
    return out


def frame_classes(states: np.ndarray) -> np.ndarray:
    """[F] per frame: 0 every sent codebook received, 1 partial (codebook 0 known), 2 lost."""
    known = np.isin(states, frames.KNOWN_STATES)
    lost = ~known & (states != frames.STATE_NOT_SENT)
    return np.where(~known[0], 2, np.where(lost.any(0), 1, 0)).astype(np.int8)


def oracle(codes: np.ndarray, tokens: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The recovery ceiling: every lost token is the true one (not-sent codebooks stay unsent)."""
    fill = ~np.isin(states, frames.KNOWN_STATES) & (states != frames.STATE_NOT_SENT)
    tok = np.where(fill, codes[: tokens.shape[0]], tokens)
    st = np.where(fill, frames.STATE_GENERATED, states).astype(np.uint8)
    return tok, st


def decode_recovered(codec, tok: np.ndarray, st: np.ndarray, nxt=None) -> tuple[np.ndarray, bool]:
    """(24 kHz audio, prefix_decode) of recovered tokens and states [8, F]: each frame decodes its
    decodable prefix (the leading codebooks received or filled), as LargeSC RX's decoder does
    (tests/test_rx_matches_eval.py); prefix_decode is False for a codec without per-frame
    prefixes, whose unknown tokens are then code 0. `nxt` (core.recovery.recover_lookahead's
    next_tok, next_st): decode overlapped, each frame with its provisional successor (a codec
    with supports_overlap)."""
    prefix = np.clip(frames.decodable_prefixes(st.T), 1, frames.NUM_CODEBOOKS)
    tok = np.where(np.arange(frames.NUM_CODEBOOKS)[:, None] < prefix[None, :], tok, 0)
    if nxt is not None and getattr(codec, "supports_overlap", False):
        return codec.decode_overlap(tok, prefix, st.T, nxt[0], nxt[1].T), True
    if getattr(codec, "uses_token_states", False):
        return codec.decode(tok, prefix, states=st.T), True
    if (prefix == frames.NUM_CODEBOOKS).all():
        return codec.decode(tok), True
    try:
        return codec.decode(tok, prefix), True
    except TypeError:
        return codec.decode(tok), False


def run(x16: np.ndarray, trace, *, profile: str = DEFAULT_PROFILE, bandwidth_bps: float = 1100.0,
        p: float = 0.0, allocation: str = "adaptive", recovery: str = "moshi", d: int = 1,
        lora: str | None = None, seed: int = 0, activity: str = "codec",
        temperature: float | None = None, packet_format: str = DEFAULT_FORMAT,
        overlap: bool = True) -> tuple[np.ndarray, dict]:
    """One utterance through LargeSC; returns (y float32 16 kHz, info).

    overlap: as LargeSC RX's `overlap` (docs/latency.md): with a strategy that holds a frame and
    a codec that supports it, each frame decodes with its provisional successor; False: the
    sequential order.

    packet_format: v1 | compact | compact_crc (core.link.packet_formats); info reports
    payload_bps (token bits), header_bps (header + CRC + pad) and on_air_bps (their sum).

    activity: what the controller's content importance is computed from: ``codec`` (the codec's
    own source, as the blocks do: Mimi's latent level, mini's input level; core.codec.activity_db)
    or ``audio`` (always the input frame level)."""
    from ..core.recovery import recover, recover_lookahead
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}")
    codec = get_codec(profile)
    x24 = resample(np.asarray(x16, np.float32), FS, frames.SAMPLE_RATE)
    codes, act = encode(profile, x24)
    nfr = codes.shape[1]
    if activity == "audio":
        act = audio_activity_db(x24, nfr)
    elif activity != "codec":
        raise ValueError("activity must be 'codec' or 'audio'")
    allocs = allocations(act, allocation, bandwidth_bps, p, d)
    pk = Packetizer(d=d, epoch=0, fmt=get_format(packet_format))
    ra = Reassembler(d=d, packet_format=packet_format)
    out_frames = []
    lost = 0
    for f in range(nfr):
        n, r = allocs[f]
        pkt = pk.push(codes[:, f], n, r)
        if pkt is None:
            continue
        if trace.lost(f * FRAME_MS, (f + 1) * FRAME_MS):
            lost += 1
            continue
        out_frames += ra.push(pkt)
    out_frames += ra.flush(until=nfr)
    tokens, states = frames_to_arrays(out_frames[:nfr])
    frame_class = frame_classes(states)
    nxt = None
    if recovery == "oracle":
        tok, st = oracle(codes, tokens, states)
    else:
        rec = get_recovery(recovery, profile, lora, temperature)
        if hasattr(rec, "seed"):
            rec.seed(seed)
        rec.reset()
        if overlap and rec.latency > 0 and getattr(codec, "supports_overlap", False):
            tok, st, *nxt = recover_lookahead(rec, tokens, states)
        else:
            tok, st = recover(rec, tokens, states)
    y24, prefix_decode = decode_recovered(codec, tok, st, nxt)
    y16 = resample(y24, frames.SAMPLE_RATE, FS)[:len(x16)]
    dur = nfr * frames.FRAME_SECONDS
    info = {"payload_bps": pk.counters["payload_bits"] / dur,
            "overhead_bps": pk.counters["overhead_bits"] / dur,
            "header_bps": pk.counters["overhead_bits"] / dur,
            "on_air_bps": (pk.counters["payload_bits"] + pk.counters["overhead_bits"]) / dur,
            "packet_ms": FRAME_MS, "packets": pk.counters["packets"], "lost": lost,
            "mean_n": float(np.mean([a[0] for a in allocs])) if allocs else 0.0,
            "mean_r": float(np.mean([a[1] for a in allocs])) if allocs else 0.0,
            "frames_lost": int(ra.counters["frames_lost"]),
            "copies_used": int(ra.counters["copies_used"]), "prefix_decode": int(prefix_decode),
            "frame_class": frame_class}
    return y16.astype(np.float32), info
