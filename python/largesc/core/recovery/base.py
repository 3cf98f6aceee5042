"""Token recovery: turn received frames (tokens + per-codebook states) into complete frames.

Every strategy has one interface, frame by frame:

    out = rec.push(tokens, states)   # frame k in -> list of finished frames (0 or 1 item)
    out += rec.flush()               # end of stream: finish pending frames, then start afresh

A frame is `(tokens int64[8], states uint8[8])` with the `frames.STATE_*` codes. `latency` is
the number of frames a strategy holds back (0 for the baselines, 1 for `moshi`), so that frame k
comes out of the push of frame k + latency, or out of `flush()`. Frames always come out complete
and in order, one per frame pushed. Rules every strategy keeps:

- known tokens (STATE_ORIGINAL / STATE_COPY) are never changed;
- a filled token lies in [0, 2048) and its state becomes STATE_GENERATED (STATE_FALLBACK when
  the model failed);
- a token left unfilled keeps its state (LOST / NOT_SENT) and the value 0; a decoder then uses
  the prefix `decodable_prefix(states)` (see below).

`fill_not_sent` decides the NOT_SENT codebooks (above the controller's N): True fills them
(generative bandwidth extension), False leaves them unfilled so the decoder decodes the prefix.
"""
from __future__ import annotations

import collections

import numpy as np

from ..link import frames
from .registry import LATENCY, STRATEGIES  # noqa: F401  (the one table of strategies)

K = frames.NUM_CODEBOOKS
CARD = frames.CODEBOOK_SIZE
KNOWN = np.array(frames.KNOWN_STATES, dtype=np.uint8)
DECODABLE = np.array(frames.DECODABLE_STATES, dtype=np.uint8)
_STATE_COUNTERS = {s: f"tokens_{n}" for s, n in frames.STATE_NAMES.items()}


def decodable_prefix(states: np.ndarray) -> int:
    """Number of leading codebooks a decoder can use: the run of known or filled tokens."""
    return int(frames.decodable_prefixes(np.asarray(states)[None, :])[0])


class Recovery:
    """Base class: input checks, counters, and the unfilled-token rule. Subclasses fill."""

    name = ""
    latency = 0

    def __init__(self, *, fill_not_sent: bool = True):
        self.fill_not_sent = bool(fill_not_sent)
        self.counters: collections.Counter = collections.Counter()

    # -- public interface -------------------------------------------------------------------
    def push(self, tokens, states) -> list[tuple[np.ndarray, np.ndarray]]:
        """Take frame k; return the frames finished by it (frame k - latency, if any)."""
        t, s = self._check(tokens, states)
        self.counters["frames_in"] += 1
        return self._count(self._push(t, s))

    def flush(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Finish the frames held back, then forget the stream (the next push starts a new one)."""
        out = self._count(self._flush())
        self.reset()
        return out

    def reset(self) -> None:
        """Start a new stream (counters are kept)."""

    def provisional(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The frame held back, filled as well as can be before its successor arrives (the
        decoder's look-ahead with overlap, docs/latency.md); None: nothing held, or no
        provisional fill (the frame is then used as received). Changes no state."""
        return None

    def get_stats(self) -> dict:
        """Counters: frames in/out, tokens by output state, fallbacks and model events."""
        return {"strategy": self.name, **{k: int(v) for k, v in sorted(self.counters.items())}}

    # -- for subclasses ---------------------------------------------------------------------
    def _push(self, tokens: np.ndarray, states: np.ndarray) -> list:
        raise NotImplementedError

    def _flush(self) -> list:
        return []

    def wanted(self, states: np.ndarray) -> np.ndarray:
        """Codebooks to fill: unknown ones, minus NOT_SENT ones when fill_not_sent is off."""
        want = ~np.isin(states, KNOWN)
        if not self.fill_not_sent:
            want &= states != frames.STATE_NOT_SENT
        return want

    @staticmethod
    def finish(tokens: np.ndarray, states: np.ndarray, filled: np.ndarray, values: np.ndarray,
               fill_state: int = frames.STATE_GENERATED) -> tuple[np.ndarray, np.ndarray]:
        """Output frame: known tokens as received, `filled` codebooks from `values`, others 0."""
        known = np.isin(states, KNOWN)
        out_t = np.where(known, tokens, 0).astype(np.int64)
        out_s = states.astype(np.uint8).copy()
        out_t[filled] = values[filled]
        out_s[filled] = fill_state
        return out_t, out_s

    # -- internals --------------------------------------------------------------------------
    def _check(self, tokens, states) -> tuple[np.ndarray, np.ndarray]:
        t = np.asarray(tokens, dtype=np.int64).reshape(-1)
        s = np.asarray(states, dtype=np.int64).reshape(-1)
        if t.shape != (K,) or s.shape != (K,):
            raise ValueError(f"a frame has {K} tokens and {K} states, got {t.shape} and {s.shape}")
        bad_state = (s < 0) | (s > frames.STATE_NOT_SENT)
        known = np.isin(s, KNOWN)
        bad_token = known & ((t < 0) | (t >= CARD))
        if bad_state.any() or bad_token.any():
            self.counters["bad_input_tokens"] += int(bad_state.sum() + bad_token.sum())
            s = np.where(bad_state | bad_token, frames.STATE_LOST, s)
        return np.where(np.isin(s, KNOWN), t, 0), s.astype(np.uint8)

    def _count(self, out: list) -> list:
        for t, s in out:
            self.counters["frames_out"] += 1
            for state, n in zip(*np.unique(s, return_counts=True)):
                self.counters[_STATE_COUNTERS[int(state)]] += int(n)
            if (s == frames.STATE_FALLBACK).any():
                self.counters["frames_fallback"] += 1
            elif (s == frames.STATE_GENERATED).any():
                self.counters["frames_generated"] += 1
            else:
                self.counters["frames_as_received"] += 1
        return out


def recover(rec: Recovery, tokens: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offline helper: run a whole stream [K, F] through `rec` (push every frame, then flush)."""
    tokens, states = np.asarray(tokens), np.asarray(states)
    out = []
    for f in range(tokens.shape[1]):
        out += rec.push(tokens[:, f], states[:, f])
    out += rec.flush()
    if len(out) != tokens.shape[1]:
        raise RuntimeError(f"{rec.name}: {len(out)} frames out for {tokens.shape[1]} in")
    return (np.stack([t for t, _ in out], 1).reshape(K, -1),
            np.stack([s for _, s in out], 1).reshape(K, -1))


def recover_lookahead(rec: Recovery, tokens: np.ndarray, states: np.ndarray):
    """`recover` plus what Token Recovery's look-ahead outputs carry for each output frame k
    (token_recovery.py): frame k+1's provisional fill when it is the frame held back, else frame
    k+1 as received when it was pushed, else all codebooks lost. Returns (tok, st, next_tok,
    next_st), each [K, F]."""
    tokens, states = np.asarray(tokens), np.asarray(states)
    f_all = tokens.shape[1]
    lost = (np.zeros(K, np.int64), np.full(K, frames.STATE_LOST, np.uint8))
    out, nxt = [], []
    for f in range(f_all):
        done = rec.push(tokens[:, f], states[:, f])
        prov = rec.provisional()
        for fr in done:
            j = len(out) + 1                      # the successor of this output frame
            out.append(fr)
            if j == f and prov is not None:
                nxt.append(prov)
            elif j <= f:
                nxt.append(received(tokens[:, j], states[:, j]))
            else:
                nxt.append(lost)
    for fr in rec.flush():
        out.append(fr)
        nxt.append(lost)
    if len(out) != f_all:
        raise RuntimeError(f"{rec.name}: {len(out)} frames out for {f_all} in")

    def stack(items):
        return (np.stack([t for t, _ in items], 1).reshape(K, -1).astype(np.int64),
                np.stack([s for _, s in items], 1).reshape(K, -1).astype(np.uint8))
    return (*stack(out), *stack(nxt))


def received(tokens, states) -> tuple[np.ndarray, np.ndarray]:
    """A frame as received, for a look-ahead: unknown or invalid tokens 0, invalid states lost."""
    s = np.asarray(states, np.int64)
    s = np.where((s < 0) | (s > frames.STATE_NOT_SENT), frames.STATE_LOST, s)
    t = np.asarray(tokens, np.int64)
    known = np.isin(s, KNOWN)
    bad = known & ((t < 0) | (t >= CARD))
    s = np.where(bad, frames.STATE_LOST, s).astype(np.uint8)
    return np.where(np.isin(s, KNOWN), t, 0).astype(np.int64), s


def token_accuracy(ref: np.ndarray, out: np.ndarray, mask: np.ndarray) -> float:
    """Share of positions in `mask` where `out` equals the reference tokens (nan if none)."""
    mask = np.asarray(mask, dtype=bool)
    return float((np.asarray(ref)[mask] == np.asarray(out)[mask]).mean()) if mask.any() else float("nan")
