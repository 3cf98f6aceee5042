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
"""
from __future__ import annotations

import hashlib
import math

import numpy as np

SLOT_MS = 20.0
SLOT_RULES = ("last", "any")
LOSS_MODELS = ("bernoulli", "gilbert_elliott")


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
    n = int(math.ceil((duration_s + margin_s) * 1000.0 / SLOT_MS))
    return LossTrace(slot_trace(n, model, p, trace_seed(seed, utterance, model, p, burst_ms), burst_ms), rule)
