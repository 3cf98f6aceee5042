"""Baseline strategies: `zero` (a fixed code), `repeat` (the last known token of each
codebook) and `prefix` (decode only the received codebooks; fill codebook 0 if it is lost)."""
from __future__ import annotations

import numpy as np

from .base import CARD, DECODABLE, KNOWN, K, Recovery


class ZeroRecovery(Recovery):
    """Baseline: every unknown token becomes the fixed code `code`."""

    name = "zero"

    def __init__(self, *, code: int = 0, fill_not_sent: bool = True):
        super().__init__(fill_not_sent=fill_not_sent)
        if not 0 <= code < CARD:
            raise ValueError(f"code must be in [0, {CARD}), got {code}")
        self.code = code

    def _push(self, tokens, states):
        return [self.finish(tokens, states, self.wanted(states), np.full(K, self.code))]


class RepeatRecovery(Recovery):
    """Baseline: each unknown token repeats the last token emitted for that codebook."""

    name = "repeat"

    def __init__(self, *, fill_not_sent: bool = True):
        super().__init__(fill_not_sent=fill_not_sent)
        self.reset()

    def reset(self) -> None:
        self.last = np.zeros(K, dtype=np.int64)

    def _push(self, tokens, states):
        t, s = self.finish(tokens, states, self.wanted(states), self.last)
        self.last = np.where(np.isin(s, DECODABLE), t, self.last)
        return [(t, s)]


class PrefixRecovery(Recovery):
    """Baseline: decode only the received prefix of codebooks; nothing is generated.

    The only fill: a frame whose codebook 0 is unknown repeats the last codebook 0, so that a
    decoder always has a prefix of at least one codebook.
    """

    name = "prefix"

    def __init__(self):
        super().__init__(fill_not_sent=False)
        self.reset()

    def reset(self) -> None:
        self.last0 = 0

    def _push(self, tokens, states):
        fill = np.zeros(K, dtype=bool)
        fill[0] = not np.isin(states[0], KNOWN)
        t, s = self.finish(tokens, states, fill, np.full(K, self.last0))
        self.last0 = int(t[0])
        return [(t, s)]
