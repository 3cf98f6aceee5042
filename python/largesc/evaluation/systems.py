"""Systems by name: LargeSC, its ablations, and the baselines, each a function of
(16 kHz audio, loss trace, condition) -> (16 kHz audio, info).

| name | what | packet |
|---|---|---|
| largesc | profile's codec, adaptive controller (rate + in-band UEP, p as its loss estimate), `moshi` recovery (or --recovery) | 80 ms |
| largesc-no-uep | the adaptive allocation with each frame's copy tokens spent on its own codebooks instead (N' = min(8, N + R + carry), R = 0): same payload rate, equal protection | 80 ms |
| largesc-fixed-n | no controller: N = min(8, floor(B / 137.5)) every frame, R = 0 | 80 ms |
| largesc-repeat / -zero / -prefix | adaptive controller, baseline recovery | 80 ms |
| opus | libopus 6 kbps VBR, 16 kHz, in-band FEC on, loss hint = p, PLC | 20 ms |
| opus-nofec | the same without in-band FEC (PLC only); libopus sends no LBRR below about 16 kbps, so at 6 kbps its packets equal `opus`'s | 20 ms |
| opus-dred | libopus 1.5.2 (the opus-dnn build) 20 kbps VBR, 16 kHz, DRED 1 s, loss hint = p, deep PLC: DRED takes its bits out of the total and gets none below 12 kbps (16 kbps: none on the bundled clip) | 20 ms |
| aac | AAC-LC (FFmpeg) 8 kbps requested (~9.3 kbps out), 16 kHz, zero-fill | 64 ms |
| codec2-700c / -1300 / -3200 | Codec 2 via libcodec2, 8 kHz, repeat last frame on loss | 40 / 40 / 20 ms |
| reference | the input itself (p = 0 only): the metrics' ceiling | - |
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.link.packet_formats import DEFAULT_FORMAT
from ..core.profiles import DEFAULT_PROFILE, MINI_FAMILY
from ..core.recovery.base import LATENCY

RATE_COLUMNS = ("payload_bps", "header_bps", "on_air_bps")   # codec payload, header + CRC + pad, sum


@dataclass(frozen=True)
class System:
    name: str
    kind: str                       # largesc | opus | opus-dred | aac | codec2 | reference
    params: dict = field(default_factory=dict)
    uses_bandwidth: bool = False    # only LargeSC follows the budget B
    packet_ms: float = 0.0

    def key(self) -> dict:
        return {"name": self.name, "kind": self.kind, **self.params}


def _lsc(name, **kw):
    return System(name, "largesc", {"allocation": "adaptive", "recovery": None, **kw}, True, 80.0)


SYSTEMS = {s.name: s for s in [
    _lsc("largesc"),
    _lsc("largesc-no-uep", allocation="no_uep"),
    _lsc("largesc-fixed-n", allocation="fixed"),
    _lsc("largesc-repeat", recovery="repeat"),
    _lsc("largesc-zero", recovery="zero"),
    _lsc("largesc-prefix", recovery="prefix"),
    _lsc("largesc-interp", recovery="interp"),
    _lsc("largesc-oracle", recovery="oracle"),
    System("opus", "opus", {"bitrate": 6000, "fec": True}, False, 20.0),
    System("opus-nofec", "opus", {"bitrate": 6000, "fec": False}, False, 20.0),
    System("opus-dred", "opus-dred", {"bitrate": 20000, "dred_ms": 1000}, False, 20.0),
    System("aac", "aac", {"bitrate": 8000}, False, 64.0),
    System("codec2-700c", "codec2", {"mode": "700C"}, False, 40.0),
    System("codec2-1300", "codec2", {"mode": "1300"}, False, 40.0),
    System("codec2-3200", "codec2", {"mode": "3200"}, False, 20.0),
    System("reference", "reference", {}, False, 0.0),
]}


def get(name: str) -> System:
    if name not in SYSTEMS:
        raise ValueError(f"unknown system {name!r}; choose from {', '.join(SYSTEMS)}")
    return SYSTEMS[name]


def run(system: System, x16: np.ndarray, trace, *, p: float, bandwidth_bps: float, profile: str,
        recovery: str, lora: str | None, seed: int, activity: str = "codec",
        temperature: float | None = None, packet_format: str = DEFAULT_FORMAT) -> tuple[np.ndarray, dict]:
    """(y, info); info has payload_bps, and for LargeSC also header_bps and on_air_bps (the
    baselines' own framing, e.g. RTP/UDP, is not modelled: their header and on-air rates are blank)."""
    k, prm = system.kind, system.params
    if k == "reference":
        return np.asarray(x16, np.float32), {"payload_bps": float("nan"), "packet_ms": 0.0, "packets": 0, "lost": 0}
    if k == "largesc":
        from . import largesc_system
        return largesc_system.run(x16, trace, profile=profile, bandwidth_bps=bandwidth_bps, p=p,
                                  allocation=prm["allocation"], recovery=prm["recovery"] or recovery,
                                  lora=lora, seed=seed, activity=activity, temperature=temperature,
                                  packet_format=packet_format)
    from . import baselines
    if k == "opus":
        return baselines.opus(x16, trace, bitrate=prm["bitrate"], p_hint=p, fec=prm["fec"])
    if k == "opus-dred":
        return baselines.opus_dred(x16, trace, bitrate=prm["bitrate"], p_hint=p, dred_ms=prm["dred_ms"])
    if k == "aac":
        return baselines.aac(x16, trace, bitrate=prm["bitrate"])
    if k == "codec2":
        return baselines.codec2(x16, trace, mode=prm["mode"])
    raise ValueError(k)


def algorithmic_latency_ms(system: System, recovery: str = "moshi", profile: str = DEFAULT_PROFILE) -> dict:
    """Sender + receiver algorithmic delay (no processing or network time): packetisation,
    codec lookahead, and the receiver's wait for copies / recovery look-ahead."""
    k, prm = system.kind, system.params
    if k == "largesc":
        rec = prm["recovery"] or recovery
        look, ov, dec = 0.0, 0, 0
        if profile in MINI_FAMILY:  # the codec's declared look-ahead (v1: 2 frames; v2: its window)
            from ..gr_support.latency import decoder_delay_frames, overlap_frames
            from .largesc_system import get_codec
            c = get_codec(profile)
            look = 80.0 * c.stream_delay_frames + 1000.0 * c.sub_frame_delay_samples / c.sample_rate
            ov, dec = overlap_frames(c, LATENCY.get(rec, 0)), decoder_delay_frames(c)
        # the reassembler holds a missing frame until packet f + d_max (d = d_max = 1) arrives; with
        # the overlap (docs/latency.md) that wait and the recovery hold share the decoder's look-ahead
        wait = 1 if not ov else max(0, 1 - max(LATENCY.get(rec, 0), dec))
        out = {"packet": 80.0, "lookahead": look, "receiver_wait": 80.0 * wait,
               "recovery": 80.0 * LATENCY.get(rec, 0)}
        if ov:
            out["overlap"] = -80.0 * ov
        return out
    if k == "opus":
        return {"packet": 20.0, "lookahead": 6.5, "receiver_wait": 20.0 if prm["fec"] else 0.0, "recovery": 0.0}
    if k == "opus-dred":    # a gap is filled from the next packet's DRED: one packet's wait for a single loss
        return {"packet": 20.0, "lookahead": 6.5, "receiver_wait": 20.0, "recovery": 0.0}
    if k == "aac":
        return {"packet": 64.0, "lookahead": 64.0, "receiver_wait": 0.0, "recovery": 0.0}
    if k == "codec2":
        return {"packet": 20.0 if prm["mode"] == "3200" else 40.0, "lookahead": 0.0, "receiver_wait": 0.0,
                "recovery": 0.0}
    return {"packet": 0.0, "lookahead": 0.0, "receiver_wait": 0.0, "recovery": 0.0}
