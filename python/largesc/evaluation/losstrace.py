"""One seeded loss process on a common 20 ms slot grid, shared by every system.

For a condition (loss model, p, seed) and an utterance, one trace of 20 ms slots is drawn with
the core channels (`core.link.channels.make_channel`: Bernoulli, or Gilbert-Elliott with a mean burst
given in milliseconds and converted to slots). Every system sees that same trace.

Packet rule (default ``last``): a packet carrying the audio interval [t0, t1) is sent in the slot
where its audio ends, slot ceil(t1 / 20 ms) - 1, and is lost if and only if that slot is lost.
So 20, 40, 64 and 80 ms packets all see a packet loss rate of p, from the same channel
realisation (the 80 ms packets see every 4th slot). The alternative rule ``any`` (lost if any
slot it spans is lost) gives longer packets a higher loss rate, 1 - (1 - p)^(D / 20 ms) on a
Bernoulli channel; it is available with --slot-rule any.

A loss model name may carry its own mean burst: ``gilbert_elliott@400`` is Gilbert-Elliott with a
400 ms mean burst whatever --burst-ms says (5 LargeSC packets of 80 ms, 20 Opus packets of 20 ms),
so one sweep can hold several burst lengths (preset ``bursts``: 400 ms and 1 s).
"""
from __future__ import annotations

import hashlib
import math

import numpy as np

SLOT_MS = 20.0
SLOT_RULES = ("last", "any")
LOSS_MODELS = ("bernoulli", "gilbert_elliott")
MAX_BURST_MS = 60000.0


def parse_model(name: str, burst_ms: float = 160.0) -> tuple[str, float]:
    """'gilbert_elliott@400' -> ('gilbert_elliott', 400.0); a plain name keeps `burst_ms`.
    Raises ValueError on an unknown model or a burst outside [20, 60000] ms."""
    base, sep, burst = str(name).partition("@")
    if base not in LOSS_MODELS or (sep and base != "gilbert_elliott"):
        raise ValueError(f"unknown loss model {name!r}: one of {', '.join(LOSS_MODELS)}, or "
                         "gilbert_elliott@<mean burst ms>")
    if sep:
        try:
            burst_ms = float(burst)
        except ValueError:
            raise ValueError(f"loss model {name!r}: the burst must be a number of ms") from None
        if not SLOT_MS <= burst_ms <= MAX_BURST_MS:
            raise ValueError(f"loss model {name!r}: the burst must lie in [{SLOT_MS:g}, {MAX_BURST_MS:g}] ms")
    return base, burst_ms


def trace_seed(seed: int, utterance: str, model: str, p: float, burst_ms: float) -> int:
    """A 32-bit seed for one (utterance, condition), independent of the system."""
    key = f"{seed}|{utterance}|{model}|{p:.6f}|{burst_ms:.3f}".encode()
    return int(hashlib.sha256(key).hexdigest()[:8], 16)


def slot_trace(n_slots: int, model: str, p: float, seed: int, burst_ms: float = 160.0) -> np.ndarray:
    """Bool [n_slots]: True where the 20 ms slot is lost."""
    from ..core.link.channels import make_channel
    if p <= 0:
        return np.zeros(n_slots, bool)
    burst = max(1.0, burst_ms / SLOT_MS)
    ch = make_channel("gilbert_elliott" if model in ("gilbert_elliott", "ge") else "bernoulli",
                      p=p, mean_burst=burst, seed=seed)
    return np.fromiter((ch.drop() for _ in range(n_slots)), bool, count=n_slots)


class LossTrace:
    """A slot trace plus the packet rule; `lost(t0_ms, t1_ms)` answers for one packet."""

    def __init__(self, slots: np.ndarray, rule: str = "last"):
        if rule not in SLOT_RULES:
            raise ValueError(f"slot rule must be one of {SLOT_RULES}")
        self.slots = np.asarray(slots, bool)
        self.rule = rule

    @classmethod
    def none(cls, n_slots: int = 0) -> "LossTrace":
        return cls(np.zeros(n_slots, bool))

    def _slot(self, i: int) -> bool:
        return bool(self.slots[i]) if 0 <= i < len(self.slots) else False

    def lost(self, t0_ms: float, t1_ms: float) -> bool:
        last = max(0, math.ceil(t1_ms / SLOT_MS - 1e-9) - 1)
        if self.rule == "last":
            return self._slot(last)
        first = int(math.floor(t0_ms / SLOT_MS + 1e-9))
        return any(self._slot(i) for i in range(first, last + 1))

    def mask(self, n_packets: int, packet_ms: float) -> np.ndarray:
        """Loss mask of n consecutive packets of equal duration starting at t = 0."""
        return np.array([self.lost(i * packet_ms, (i + 1) * packet_ms) for i in range(n_packets)], bool)

    def digest(self) -> str:
        return hashlib.sha256(np.packbits(self.slots).tobytes() + self.rule.encode()
                              + str(len(self.slots)).encode()).hexdigest()[:16]


def make_trace(utterance: str, duration_s: float, model: str, p: float, seed: int,
               burst_ms: float = 160.0, rule: str = "last", margin_s: float = 1.0) -> LossTrace:
    """The trace of one (utterance, condition); `model` may name its burst (parse_model)."""
    base, burst_ms = (model, burst_ms) if model == "none" else parse_model(model, burst_ms)   # none: reference
    n = int(math.ceil((duration_s + margin_s) * 1000.0 / SLOT_MS))
    seed = trace_seed(seed, utterance, model, p, burst_ms)      # the name (with @burst) keys the seed
    return LossTrace(slot_trace(n, base, p, seed, burst_ms), rule)
