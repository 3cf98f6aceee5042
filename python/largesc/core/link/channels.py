"""Packet erasure channels, seeded and reproducible: Bernoulli, Gilbert-Elliott, trace replay.

Each channel answers `drop() -> bool` once per packet and counts `sent` / `dropped`.
`set_p(p)` changes the mean loss while running (the Gilbert-Elliott channel keeps its mean
burst length). The same seed gives the same loss pattern.
"""
import math
import random
from typing import Iterable, List, Optional


def _check_p(p: float) -> float:
    p = float(p)
    if not (math.isfinite(p) and 0.0 <= p <= 1.0):
        raise ValueError(f"loss probability {p} not in [0, 1]")
    return p


class _Channel:
    def __init__(self, seed: Optional[int] = 0):
        self.rng = random.Random(seed)
        self.counters = {"sent": 0, "dropped": 0}

    def drop(self) -> bool:
        lost = self._lost()
        self.counters["sent"] += 1
        self.counters["dropped"] += lost
        return lost

    def _lost(self) -> bool:
        raise NotImplementedError


class BernoulliChannel(_Channel):
    """Each packet is lost independently with probability p."""

    def __init__(self, p: float = 0.0, seed: Optional[int] = 0):
        super().__init__(seed)
        self.p = _check_p(p)

    def set_p(self, p: float) -> None:
        self.p = _check_p(p)

    def _lost(self) -> bool:
        return self.rng.random() < self.p


class GilbertElliottChannel(_Channel):
    """Two-state burst channel: Good (no loss) / Bad (loss), mean loss p, mean burst length L.

    P(Bad -> Good) = 1 / L and P(Good -> Bad) = p / (L (1 - p)), so the stationary loss rate
    is p and a loss burst lasts L packets on average. Needs p <= L / (L + 1) (p = 1: always
    Bad). The first state is drawn from the stationary distribution.
    """

    def __init__(self, p: float = 0.0, mean_burst: float = 2.0, seed: Optional[int] = 0):
        super().__init__(seed)
        if not (math.isfinite(mean_burst) and mean_burst >= 1.0):
            raise ValueError("mean burst length must be >= 1")
        self.mean_burst = float(mean_burst)
        self.set_p(p)
        self.bad = self.rng.random() < self.p

    def set_p(self, p: float) -> None:
        p = _check_p(p)
        L = self.mean_burst
        if p < 1.0 and p > L / (L + 1.0) + 1e-12:
            raise ValueError(f"p={p} needs mean burst >= {p / (1 - p):.3g}")
        self.p = p
        self.p_bg = 0.0 if p >= 1.0 else 1.0 / L
        self.p_gb = 1.0 if p >= 1.0 else min(1.0, p / (L * (1.0 - p)))

    def _lost(self) -> bool:
        u = self.rng.random()
        self.bad = (u >= self.p_bg) if self.bad else (u < self.p_gb)
        return self.bad


def read_trace(path: str) -> List[bool]:
    """Loss trace file: '0' (delivered) / '1' (lost) characters; whitespace, ',' and '#' comments
    ignored. Raises ValueError on anything else or an empty trace."""
    out: List[bool] = []
    with open(path, "r", encoding="ascii", errors="strict") as f:
        for line in f:
            for ch in line.split("#", 1)[0]:
                if ch in "01":
                    out.append(ch == "1")
                elif not (ch.isspace() or ch == ","):
                    raise ValueError(f"bad character {ch!r} in loss trace {path}")
    if not out:
        raise ValueError(f"empty loss trace {path}")
    return out


class TraceChannel(_Channel):
    """Replays a loss pattern (list of bools or a trace file), looping at its end.

    `set_p` is not meaningful for a trace; it raises ValueError. `seed` picks a start offset
    (seed None or 0: start at the beginning).
    """

    def __init__(self, trace, seed: Optional[int] = 0, loop: bool = True):
        super().__init__(seed)
        self.trace = read_trace(trace) if isinstance(trace, str) else [bool(x) for x in trace]
        if not self.trace:
            raise ValueError("empty loss trace")
        self.pos = self.rng.randrange(len(self.trace)) if seed else 0
        self.loop = bool(loop)
        self.p = sum(self.trace) / len(self.trace)

    def set_p(self, p: float) -> None:
        raise ValueError("a trace channel has no settable p")

    def _lost(self) -> bool:
        if self.pos >= len(self.trace):
            if not self.loop:
                return False
            self.pos = 0
        lost = self.trace[self.pos]
        self.pos += 1
        return lost


def make_channel(model: str = "bernoulli", p: float = 0.0, mean_burst: float = 2.0,
                 trace: Optional[Iterable] = None, seed: Optional[int] = 0) -> _Channel:
    """Factory used by the block: model in {'bernoulli', 'gilbert_elliott', 'trace'}."""
    if model == "bernoulli":
        return BernoulliChannel(p, seed)
    if model in ("gilbert_elliott", "ge"):
        return GilbertElliottChannel(p, mean_burst, seed)
    if model == "trace":
        if trace is None or trace == "":
            raise ValueError("trace model needs a trace file")
        return TraceChannel(trace, seed)
    raise ValueError(f"unknown channel model {model!r}")
