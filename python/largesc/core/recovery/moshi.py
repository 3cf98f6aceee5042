"""`moshi` recovery: streaming generation with moshi's `LMGen`, one LM step per 80 ms frame.

Streams. Received speech goes in the Moshi (self) stream, the one the depformer predicts. The
text stream is forced to padding (id 3) and the user stream is -1 (zero embedding).

Steps and frames. moshi delays acoustic codebooks by one step, so step t carries codebook 0 of
frame t and codebooks 1..7 of frame t-1:

    step t plan:   [ cb0(frame t) | cb1..7(frame t-1) ]      (one depformer pass, cb0 first)

Frame t-1 is therefore complete only after step t: `push(frame t)` returns frame t-1 (latency 1)
and `flush()` finishes the last frame with one more step whose codebook 0 is a throw-away sample.

Per step, the depformer (`RecoveryLMGen.depformer_step`, the function LMGen runs for the depth
part) keeps every known codebook and samples each unknown one conditioned on the codebooks
before it, with a per-instance `torch.Generator` (moshi's `sample_token` uses the global RNG,
shared by every thread). Temperature <= 0 is greedy.

Context fed back (`feedback`):
- ``masked`` (default): the temporal transformer sees received tokens and -1 (zero embedding)
  where a token was not received, exactly the corrupted context `train_lora` trains on;
- ``sampled``: it sees the generated tokens instead (classic autoregressive concealment).

Faults. If a step raises, or takes longer than `deadline_ms`, that step's unknown tokens come
from `repeat` (state STATE_FALLBACK, counted). The model state is then suspect (an exception can
leave the transformer's offsets half-advanced), so before the next step the LM is reset and
re-primed by replaying the last `prime_frames` step plans, fallback tokens included.

The LM is in moshi's streaming state only while a stream runs (from the first step to `flush`
or `close`), so one LM can serve several recoveries one after another, never at once.
"""
from __future__ import annotations

import collections
import logging
import time

import numpy as np
import torch
from moshi.models.lm import LMGen, LMModel
from moshi.utils.compile import CUDAGraphed
from moshi.utils.sampling import multinomial

from ..link import frames
from .base import KNOWN, K, Recovery

log = logging.getLogger(__name__)
SAMPLE = -2      # plan value: sample this codebook (moshi's ungenerated_token_id)
MASKED = -1      # plan/cache value: zero embedding (moshi's zero_token_id)
FEEDBACK = ("masked", "sampled")


class DeadlineMiss(RuntimeError):
    """A model step finished later than the deadline."""


class TokenSampler:
    """Temperature / top-k sampling with its own generator (greedy when temperature <= 0)."""

    def __init__(self, temperature: float = 0.8, top_k: int = 250, seed: int = 0,
                 device: torch.device | str = "cpu"):
        self.temperature = float(temperature)
        self.top_k = int(top_k)
        self.generator = torch.Generator(device=device)
        self.seed(seed)

    def seed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """logits [B, card] -> tokens [B] (long)."""
        logits = logits.float()
        if self.temperature <= 0:
            return logits.argmax(-1)
        probs = torch.softmax(logits / self.temperature, dim=-1)
        if 0 < self.top_k < probs.shape[-1]:
            probs, idx = torch.topk(probs, self.top_k, dim=-1)
            return idx.gather(-1, multinomial(probs, 1, generator=self.generator))[:, 0]
        return multinomial(probs, 1, generator=self.generator)[:, 0]


class MmseSampler(TokenSampler):
    """Soft decision: the token whose codebook vector is nearest the LM's expected vector,
    E[c] = sum_j p(j) c_j under the (temperature-scaled) distribution. An unsure LM gives a vector
    near the codebook's mean (little energy: close to decoding the prefix); a sure one gives its
    top token. `vectors[k]` [2048, D]: codebook k's entries in the codec's quantizer space."""

    def __init__(self, vectors: list[torch.Tensor], temperature: float = 1.0, seed: int = 0,
                 device: torch.device | str = "cpu"):
        super().__init__(temperature, 0, seed, device)
        self.vectors = [v.float().to(device) for v in vectors]

    def __call__(self, logits: torch.Tensor, cb: int = 0) -> torch.Tensor:
        t = self.temperature if self.temperature > 0 else 1.0
        probs = torch.softmax(logits.float() / t, dim=-1)                  # [B, card]
        expected = probs @ self.vectors[cb]                                # [B, D]
        return torch.cdist(expected, self.vectors[cb]).argmin(-1)


class RecoveryLMGen(LMGen):
    """LMGen whose depth step keeps known codebooks and samples only unknown ones.

    Before each `step`, set `plan` ([B, dep_q] long): a token to keep, SAMPLE (-2) to sample,
    or MASKED (-1) for a codebook neither kept nor wanted. After it, `decided` holds the kept
    and sampled tokens. With `capture` set to a list, every codebook's logits are appended.
    """

    def __init__(self, lm_model: LMModel, sampler: TokenSampler, feedback: str = "masked"):
        super().__init__(lm_model, use_sampling=False, temp_text=0.0)
        if feedback not in FEEDBACK:
            raise ValueError(f"feedback must be one of {FEEDBACK}, got {feedback!r}")
        self.on_text_hook = self._pad_text
        self.sampler = sampler
        self.feedback = feedback
        self.plan: torch.Tensor | None = None
        self.decided: torch.Tensor | None = None
        self.capture: list | None = None

    def _init_streaming_state(self, batch_size: int):
        state = super()._init_streaming_state(batch_size)
        # The depth step branches on the plan and uses our generator: never CUDA-graph it.
        state.graphed_depth = CUDAGraphed(self.depformer_step, disable=True)
        return state

    def _pad_text(self, text_token: torch.Tensor) -> None:
        text_token.fill_(self.lm_model.text_padding_token_id)

    def depformer_step(self, text_token: torch.Tensor, transformer_out: torch.Tensor) -> torch.Tensor:
        lm = self.lm_model
        plan = self.plan
        assert plan is not None and plan.shape == (text_token.shape[0], lm.dep_q), "set plan before step()"
        unknown = plan == SAMPLE
        decided = plan.clone()
        cols = unknown.any(0).nonzero()
        n = lm.dep_q if self.capture is not None else (int(cols.max()) + 1 if len(cols) else 0)
        if n:
            prev = text_token
            with lm.depformer.streaming(plan.shape[0]):
                for cb in range(n):
                    logits = lm.forward_depformer(cb, prev[:, None, None], transformer_out)[:, 0, 0]
                    if self.capture is not None:
                        self.capture.append(logits.float().cpu())
                    if unknown[:, cb].any():
                        pick = self.sampler(logits, cb) if isinstance(self.sampler, MmseSampler) else self.sampler(logits)
                        decided[:, cb] = torch.where(unknown[:, cb], pick, decided[:, cb])
                    prev = decided[:, cb]
        self.decided = decided
        if self.feedback == "sampled":
            return torch.where(decided == SAMPLE, MASKED, decided)
        return torch.where(unknown, MASKED, decided)


class _Pending:
    """Frame t-1 between the step that decided its codebook 0 and the one deciding the rest."""

    def __init__(self, tokens, states, want, cb0, cb0_fallback):
        self.tokens, self.states, self.want = tokens, states, want
        self.values = np.zeros(K, dtype=np.int64)
        self.values[0] = cb0
        self.fallback = np.zeros(K, dtype=bool)
        self.fallback[0] = cb0_fallback


class MoshiRecovery(Recovery):
    """Streaming Moshi recovery (latency 1 frame); see the module docstring."""

    name = "moshi"
    latency = 1

    def __init__(self, lm: LMModel, *, temperature: float = 0.8, top_k: int = 250, seed: int = 0,
                 fill_not_sent: bool = True, deadline_ms: float = 0.0, prime_frames: int = 16,
                 feedback: str = "masked", codebook_vectors: list | None = None):
        super().__init__(fill_not_sent=fill_not_sent)
        if lm.dep_q != K or lm.n_q < K:
            raise ValueError(f"the LM must generate {K} codebooks (dep_q={lm.dep_q}, n_q={lm.n_q})")
        if lm.training:
            raise ValueError("the LM is in training mode; call lm.eval() first")
        self.lm = lm
        self.device = lm.device
        self.deadline_ms = float(deadline_ms)
        # codebook_vectors (the codec's entries per codebook): the soft (MMSE) decision instead of sampling
        self.sampler = (TokenSampler(temperature, top_k, seed, self.device) if codebook_vectors is None
                        else MmseSampler(codebook_vectors, temperature, seed, self.device))
        self.gen = RecoveryLMGen(lm, self.sampler, feedback)
        self._stream = None       # moshi streaming context, open while a stream is running
        self._user = torch.full((1, lm.n_q - lm.dep_q, 1), MASKED, dtype=torch.long, device=self.device)
        self._history: collections.deque = collections.deque(maxlen=max(1, int(prime_frames)))
        self.reset()

    # -- Recovery interface ------------------------------------------------------------------
    def reset(self) -> None:
        self.close()
        self._history.clear()
        self._pending: _Pending | None = None
        self._last = np.zeros(K, dtype=np.int64)
        self._dirty = False

    def seed(self, seed: int) -> None:
        self.sampler.seed(seed)

    def close(self) -> None:
        """Leave moshi's streaming state (the LM can then stream elsewhere); `flush` does it too."""
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.close()

    def _open(self) -> None:
        if self._stream is None:
            self._stream = self.gen.streaming(1)

    def _push(self, tokens, states):
        known = np.isin(states, KNOWN)
        want = self.wanted(states)
        plan = np.full(K, MASKED, dtype=np.int64)
        plan[0] = tokens[0] if known[0] else (SAMPLE if want[0] else MASKED)
        p = self._pending
        if p is None:
            plan[1:] = 0            # codebooks 1..7 of frame -1: written but never read by the LM
        else:
            plan[1:] = self._plan_of(p)[1:]
        decided, fb = self._step(plan)
        out = [self._finish(p, decided, fb)] if p is not None else []
        self._remember(decided, want, known, p)
        self._pending = _Pending(tokens, states, want, decided[0], fb)
        return out

    def _flush(self):
        p = self._pending
        if p is None:
            return []
        if (p.want[1:] & ~np.isin(p.states[1:], KNOWN)).any():
            plan = self._plan_of(p)
            plan[0] = SAMPLE        # codebook 0 of a frame that never comes: sampled, dropped
            decided, fb = self._step(plan)
        else:
            decided, fb = np.zeros(K, dtype=np.int64), False
        return [self._finish(p, decided, fb)]

    # -- internals ----------------------------------------------------------------------------
    @staticmethod
    def _plan_of(p: _Pending) -> np.ndarray:
        known = np.isin(p.states, KNOWN)
        return np.where(known, p.tokens, np.where(p.want, SAMPLE, MASKED)).astype(np.int64)

    def _finish(self, p: _Pending, decided: np.ndarray, fallback: bool):
        p.values[1:] = decided[1:]
        p.fallback[1:] = fallback
        fill = p.want & ~np.isin(p.states, KNOWN)
        t, s = self.finish(p.tokens, p.states, fill & ~p.fallback, p.values)
        t[fill & p.fallback] = p.values[fill & p.fallback]
        s[fill & p.fallback] = frames.STATE_FALLBACK
        return t, s

    def _remember(self, decided, want, known, p):
        """Track the last emitted token per codebook: the source of the repeat fallback."""
        if want[0] or known[0]:
            self._last[0] = decided[0]
        if p is not None:
            use = (p.want | np.isin(p.states, KNOWN))[1:]
            self._last[1:] = np.where(use, decided[1:], self._last[1:])

    def _step(self, plan: np.ndarray) -> tuple[np.ndarray, bool]:
        """One LM step on `plan`; on error or deadline miss, repeat-fill and mark for re-priming."""
        try:
            if self._dirty:
                self._reprime()
            t0 = time.perf_counter()
            decided, written = self._model_step(plan)
            ms = (time.perf_counter() - t0) * 1e3
            self._history.append(written)
            if self.deadline_ms > 0 and ms > self.deadline_ms:
                self.counters["deadline_misses"] += 1
                raise DeadlineMiss(f"step took {ms:.1f} ms > deadline {self.deadline_ms:g} ms")
            self.counters["model_steps"] += 1
            return decided, False
        except Exception as exc:  # noqa: BLE001 - any model failure falls back, counted and logged
            deadline = isinstance(exc, DeadlineMiss)
            if not deadline:
                self.counters["model_errors"] += 1
            self.counters["fallbacks"] += 1
            n = self.counters["fallbacks"]
            if n <= 5 or n % 100 == 0:
                log.warning("moshi recovery fell back to repeat (%d so far): %s: %s",
                            n, type(exc).__name__, exc)
            decided = np.where(plan == SAMPLE, self._last, plan)
            masked = self.gen.feedback == "masked"
            written = np.where(plan == SAMPLE, MASKED, plan) if masked else decided.copy()
            if deadline:
                # The step ran to the end. With masked feedback the LM saw exactly `written`
                # (known tokens and -1), so its state is still right; otherwise replay.
                self._history[-1] = written
                self._dirty = self._dirty or not masked
            else:
                self._history.append(written)
                self._dirty = True
            return decided, True

    def _model_step(self, plan: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._open()
        self.gen.plan = torch.as_tensor(plan, dtype=torch.long, device=self.device)[None]
        self.gen.step(self._user)
        decided = self.gen.decided[0].cpu().numpy().astype(np.int64)
        written = np.where(plan == SAMPLE, MASKED, decided) if self.gen.feedback == "masked" else decided
        return decided, written

    def _reprime(self) -> None:
        """Reset the LM (fresh streaming state) and replay the remembered step plans."""
        self.close()
        self._open()
        capture, self.gen.capture = self.gen.capture, None
        try:
            for written in list(self._history):
                self.gen.plan = torch.as_tensor(written, dtype=torch.long, device=self.device)[None]
                self.gen.step(self._user)
        finally:
            self.gen.capture = capture
        self._dirty = False
        self.counters["reprimes"] += 1
