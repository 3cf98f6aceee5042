"""Recovery in the codec's quantizer space: estimate the lost part of a frame's latent vector,
then choose its unknown codebooks by residual quantization after the known prefix.

`interp` (latent interpolation): a lost frame's vector is the mean of its neighbours' vectors
when the next frame has arrived (the one-frame hold lets it see it), else the last vector pulled
half-way to the running mean of the stream (so a burst decays to an average frame rather than
repeating one frame; repeating has the larger latent error). Known codebooks (originals,
copies) are kept, and the target only chooses the codebooks after them. It needs the codec's
`dequantize` / `requantize` (core/codec/rvq.py), not a model: the baseline that a generative
strategy has to beat (docs/recovery.md).

`latent` (the learned predictor, latent_predictor.py): the same one-frame hold and re-quantization,
with the target predicted by an MLP from the last frames out, the frame's known prefix and the
next frame (received tokens, including its state codebook, which carries the lost frame's past).
Like `prefix`, it fills lost codebooks only, not those the sender left out (fill_not_sent off:
filling them too scored lower at p = 0.2 and in bursts, docs/recovery.md).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..link import frames
from .base import KNOWN, K, Recovery


def known_prefix(states: np.ndarray) -> int:
    """Number of leading codebooks received (original or copy)."""
    k = np.isin(np.asarray(states), KNOWN)
    return int(np.argmin(k)) if not k.all() else K


class _QuantizerSpaceHold(Recovery):
    """A strategy in the codec's quantizer space that holds one frame: frame k is filled
    (`_fill(tokens, states, nxt)`) when frame k+1 arrives, or at flush with nxt None."""

    latency = 1
    codec = None
    _held = None

    def _push(self, tokens, states):
        held, self._held = self._held, (tokens, states)
        return [] if held is None else [self._fill(*held, nxt=(tokens, states))]

    def _flush(self):
        held, self._held = self._held, None
        return [] if held is None else [self._fill(*held, nxt=None)]

    def _vector(self, tokens, prefix: int) -> np.ndarray:
        return self.codec.dequantize(tokens[:, None], np.array([prefix]))[:, 0]

    def _fill(self, tokens, states, nxt):
        raise NotImplementedError


class InterpRecovery(_QuantizerSpaceHold):
    """Latent interpolation across a gap, with a one-frame hold (see the module docstring)."""

    name = "interp"

    def __init__(self, codec, *, fill_not_sent: bool = True, pull: float = 0.5, mean_frames: float = 50.0):
        super().__init__(fill_not_sent=fill_not_sent)
        if not hasattr(codec, "requantize"):
            raise ValueError("strategy 'interp' needs a codec with dequantize/requantize (core/codec)")
        if not 0.0 <= pull <= 1.0:
            raise ValueError(f"pull must be in [0, 1], got {pull}")
        self.codec, self.pull, self.alpha = codec, float(pull), 1.0 / max(1.0, float(mean_frames))
        self.reset()

    def reset(self) -> None:
        self._held = None          # (tokens, states) of the frame waiting for its successor
        self._prev = None          # vector of the last frame out
        self._mean = None          # running mean of received frames' vectors

    def _fill(self, tokens, states, nxt):
        m, want = known_prefix(states), self.wanted(states)
        values = np.zeros(K, np.int64)
        if want.any():
            target = self._target(tokens, m, nxt)
            if target is not None:                      # else nothing known yet: code 0
                values = self.codec.requantize(target[:, None], tokens[:, None], np.array([m]))[:, 0]
        out_t, out_s = self.finish(tokens, states, want, values)
        n = int(frames.decodable_prefixes(out_s[None, :])[0])
        if m > 0:                                       # a frame with a received prefix updates the mean
            v = self._vector(out_t, n)
            self._mean = v if self._mean is None else self._mean + self.alpha * (v - self._mean)
        self._prev = (out_t, n)
        return out_t, out_s

    def _target(self, tokens, m: int, nxt) -> np.ndarray | None:
        """The vector the frame should have: its known prefix plus an estimate of the rest."""
        neighbours = []
        if self._prev is not None:
            neighbours.append(self._prev)
        if nxt is not None and known_prefix(nxt[1]) > m:
            neighbours.append((nxt[0], known_prefix(nxt[1])))
        if m == 0:                                      # nothing of this frame: its whole vector
            if not neighbours:
                return self._mean
            vs = [self._vector(t, n) for t, n in neighbours]
            if len(vs) == 2:
                return 0.5 * (vs[0] + vs[1])
            return vs[0] if self._mean is None else vs[0] + self.pull * (self._mean - vs[0])
        # a known prefix: keep it, and add the neighbours' parts beyond it (their mean)
        own = self._vector(tokens, m)
        rest = [self._vector(t, n) - self._vector(t, m) for t, n in neighbours if n > m]
        return own + (np.mean(rest, axis=0) if rest else 0.0)


class LatentRecovery(_QuantizerSpaceHold):
    """The learned latent predictor with a one-frame hold (see the module docstring)."""

    name = "latent"

    def __init__(self, codec, predictor, *, fill_not_sent: bool = False):
        # build() never fills not-sent codebooks: filling them lowered PLCMOS (docs/models/mini.md);
        # the keyword is for that comparison (scripts/latent_fill_probe.py)
        super().__init__(fill_not_sent=fill_not_sent)
        if not hasattr(codec, "requantize"):
            raise ValueError("strategy 'latent' needs a codec with dequantize/requantize (core/codec)")
        cfg = predictor.cfg
        dim = codec.dequantize(np.zeros((K, 1), np.int64)).shape[0]
        if cfg.dim != dim or cfg.num_codebooks != K:
            raise ValueError(f"latent predictor is for {cfg.dim}-d vectors x {cfg.num_codebooks} codebooks; "
                             f"the codec has {dim}-d x {K}: train it for this codec (gr-largesc train-latent)")
        self.codec, self.model = codec, predictor
        self.reset()

    def reset(self) -> None:
        self._held = None
        self._past = np.zeros((self.model.cfg.context, self.model.cfg.dim), np.float32)

    def provisional(self):
        """The held frame filled from the past alone (its successor has not arrived): the
        decoder's look-ahead with overlap."""
        if self._held is None:
            return None
        return self._estimate(*self._held, None)

    def _estimate(self, tokens, states, nxt):
        m, want = known_prefix(states), self.wanted(states)
        values = np.zeros(K, np.int64)
        if want.any():
            m_next = known_prefix(nxt[1]) if nxt is not None else 0
            v_next = self._vector(nxt[0], m_next) if m_next > 0 else None
            target = self.model.predict(self._past, self._vector(tokens, m), m, v_next, m_next)
            values = self.codec.requantize(target[:, None], tokens[:, None], np.array([m]))[:, 0]
        return self.finish(tokens, states, want, values)

    def _fill(self, tokens, states, nxt):
        out_t, out_s = self._estimate(tokens, states, nxt)
        n = int(frames.decodable_prefixes(out_s[None, :])[0])
        self._past = np.concatenate([self._past[1:], self._vector(out_t, n)[None].astype(np.float32)])
        return out_t, out_s


def predictor_dir(profile: str) -> Path:
    """Where a profile's latent predictor lives: models/<profile>/recovery/latent."""
    from ..profiles import models_dir
    return models_dir() / profile / "recovery" / "latent"
