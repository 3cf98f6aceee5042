"""GNU Radio block: token recovery (received frames -> complete frames), one frame per frame.

Inputs: stream 0 = int32 vector of 8 tokens (0 where unknown), stream 1 = uint8 vector of 8
per-codebook states (frames.STATE_*), as the depacketizer emits them. Outputs: the same two
streams, complete: filled codebooks carry STATE_GENERATED (or STATE_FALLBACK), known tokens are
untouched, output frame k is input frame k.

Latency and end of stream. Strategies that look one frame ahead (`moshi`, `moshi-mmse`, `latent`,
`interp`; core/recovery/registry.py) finish frame k one frame later, so the block holds one
frame back. GNU Radio tells a block
nothing when its upstream finishes, so the end of a stream is marked in-band: a stream tag with
key ``eos`` on the last frame (either input) makes the block finish that frame in the same
call, pass the tag on with it, and start the next stream afresh. Without the tag the last frame
of such a stream stays held back. The baselines (zero, repeat, prefix) hold nothing back.

Look-ahead outputs (`lookahead`): outputs 2 and 3 carry, for output frame k, the provisional
frame k+1: the strategy's provisional fill of it when it is the frame held back (`latent`: filled
from the past alone), else its tokens and states as received, or all codebooks lost when frame
k+1 has not arrived (strategies that hold nothing back, end of stream); as
core.recovery.recover_lookahead. A decoder with overlap (mimi_decoder) uses it as its look-ahead, so the hold and the
look-ahead are one wait (docs/latency.md).

Input tags are re-emitted at the same item offset (output k = input k); frames with filled
tokens get a ``generated`` or ``fallback`` tag whose value is the number of such tokens.
Messages out: ``stats`` (counters, every `stats_interval` frames, at eos and at stop).
"""
import threading
import time

import numpy as np
import pmt
from gnuradio import gr

from .core import torch_env
from .core.link import frames
from .core.profiles import DEFAULT_PROFILE, resolve_recovery
from .core.recovery import build as build_recovery
from .core.recovery import received
from .gr_support import params as P
from .gr_support.block_params import (
    FEEDBACK_MODES,
    check_deadline_ms,
    check_recovery_params,
    check_temperature,
    check_top_k,
)
from .gr_support.ports import STATS
from .gr_support.stage_timing import StageEvent, StageObservers
from .gr_support.stats import RateLimitedLog, stats_to_pmt

K = frames.NUM_CODEBOOKS
NAME = "token_recovery"
MAX_PRIME_FRAMES = 256


EOS = pmt.intern("eos")
TAG_GENERATED = pmt.intern("generated")
TAG_FALLBACK = pmt.intern("fallback")


class token_recovery(gr.basic_block):
    """Fill lost and not-sent tokens with a recovery strategy (core/recovery/base.py STRATEGIES).

    Args:
        profile: the model profile (core/profiles.py); an LM profile for `moshi` / `moshi-mmse`.
        strategy: auto (the profile's measured best, profiles.AUTO_RECOVERY) | zero | repeat |
            prefix | interp | latent | moshi | moshi-mmse.
        temperature: sampling temperature in [0, 10] (0: greedy).  top_k: 0..2048 (0: no
            top-k cut, sample the whole distribution).
        seed: sampling seed 0..2**32-1 (same seed, same input -> same output bytes).
        device: cpu | cuda | cuda:N | auto.  num_threads: torch threads of this block, 1..64.
        lora: LoRA adapter (safetensors file or folder, moshi or peft format); '' for none.
        fill_not_sent: generate codebooks the controller did not send (True) or leave them for
            a prefix decode (False).
        deadline_ms: a model step slower than this falls back to repeat, 0..10000 ms (0: no
            deadline).
        lm_weights, lm_config: local Moshi LM files (safetensors + config.json) instead of the
            profile's; '' for none.
        force_cpu: run a full-size LM on CPU anyway (far slower than real time).
        stats_interval: 1..10**6 frames.  prime_frames: 1..256 steps replayed after a fault.
        feedback: masked | sampled (what the LM sees where a token was not received).
        lookahead: add outputs 2 and 3, the provisional next frame of each output frame (above).
        codec: (Python only) the decoder's TokenCodec for interp / latent / moshi-mmse; None: the profile's.

    Every parameter is checked at construction (the sampling ones also by their setters); a
    bad value raises ValueError naming it, before any model is loaded. profile must be an LM
    profile (core/profiles.py LM_PROFILES) for `moshi` / `moshi-mmse`; the baselines ignore it.
    """

    def __init__(self, profile=DEFAULT_PROFILE, strategy="auto", temperature=0.8, top_k=250, seed=0,
                 device="cpu", num_threads=1, lora="", fill_not_sent=True, deadline_ms=0.0,
                 lm_weights="", lm_config="", force_cpu=False, stats_interval=125, prime_frames=16,
                 feedback="masked", codec=None, lookahead=False):
        strategy = resolve_recovery(profile, strategy)
        check_recovery_params(NAME, profile, strategy, temperature, top_k, seed, device, num_threads,
                              lora, fill_not_sent, deadline_ms, lm_weights, lm_config, force_cpu)
        P.check_int(NAME, "stats_interval", stats_interval, 1, P.MAX_STATS_INTERVAL, "frames")
        P.check_int(NAME, "prime_frames", prime_frames, 1, MAX_PRIME_FRAMES, "frames")
        P.check_choice(NAME, "feedback", feedback, FEEDBACK_MODES)
        if codec is not None and not hasattr(codec, "requantize"):
            P.fail(NAME, "codec", "None or a token codec (core/codec; Python only)", codec)
        lookahead = P.check_bool(NAME, "lookahead", lookahead)
        gr.basic_block.__init__(self, name="largesc_token_recovery",
                                in_sig=[(np.int32, K), (np.uint8, K)],
                                out_sig=[(np.int32, K), (np.uint8, K)] * (2 if lookahead else 1))
        self.lookahead = lookahead
        self._raw: dict[int, tuple] = {}       # absolute input index -> (tokens, states) pushed, for the look-ahead
        self.num_threads = int(num_threads)
        self.strategy = strategy
        self.rec = build_recovery(
            strategy, profile=profile, device=device, lora=lora or None, lm_weights=lm_weights or None,
            lm_config=lm_config or None, force_cpu=bool(force_cpu), fill_not_sent=bool(fill_not_sent), codec=codec,
            **({"temperature": float(temperature), "top_k": int(top_k), "seed": int(seed),
                "deadline_ms": float(deadline_ms), "prime_frames": int(prime_frames), "feedback": feedback}
               if strategy in ("moshi", "moshi-mmse") else {}))
        self.stats_interval = max(1, int(stats_interval))
        self.set_tag_propagation_policy(gr.TPP_DONT)
        self.message_port_register_out(STATS)
        self._lock = threading.Lock()
        self.stage_observers = StageObservers()   # "recovery": each push (+ flush at eos)
        self._log = RateLimitedLog(self.logger)
        self._tags: dict[int, list] = {}      # absolute frame index -> [(port, key, value, srcid)]
        self._emitted = 0                      # frames written so far (= absolute output index)
        self._time = {"push_ms_total": 0.0, "push_ms_max": 0.0}
        self._fallbacks_seen = 0

    # -- run-time settings (GRC callbacks) ------------------------------------------------------
    def set_temperature(self, temperature):
        """Sampling temperature in [0, 10] (0: greedy); no effect on the baselines."""
        t = check_temperature(NAME, temperature)
        with self._lock:
            if hasattr(self.rec, "sampler"):
                self.rec.sampler.temperature = t

    def set_top_k(self, top_k):
        """top-k in 0..2048 (0: no cut); no effect on the baselines."""
        k = check_top_k(NAME, top_k)
        with self._lock:
            if hasattr(self.rec, "sampler"):
                self.rec.sampler.top_k = k

    def set_fill_not_sent(self, fill_not_sent):
        fill = P.check_bool(NAME, "fill_not_sent", fill_not_sent)
        with self._lock:
            if self.strategy != "prefix":
                self.rec.fill_not_sent = fill

    def set_deadline_ms(self, deadline_ms):
        """Step deadline in 0..10000 ms (0: none); no effect on the baselines."""
        ms = check_deadline_ms(NAME, deadline_ms)
        with self._lock:
            if hasattr(self.rec, "deadline_ms"):
                self.rec.deadline_ms = ms

    # -- counters -----------------------------------------------------------------------------
    def get_stats(self) -> dict:
        """Core counters (frames in/out, tokens by state, fallbacks, ...) plus push timing."""
        with self._lock:
            stats = self.rec.get_stats()
            n = max(1, stats.get("frames_in", 0))
            stats["push_ms_mean"] = round(self._time["push_ms_total"] / n, 3)
            stats["push_ms_max"] = round(self._time["push_ms_max"], 3)
            stats["latency_frames"] = self.rec.latency
            return stats

    def stop(self):
        self.message_port_pub(STATS, stats_to_pmt(self.get_stats()))
        return True

    # -- scheduling ---------------------------------------------------------------------------
    def forecast(self, noutput_items, ninputs):
        # A held-back frame lets n outputs come from n - latency inputs (at eos); asking for
        # n inputs would cap noutput at the inputs left and starve the eos flush.
        return [max(1, noutput_items - self.rec.latency)] * ninputs

    def _tags_in(self, n_in):
        """Input tags of the next n_in frames: {absolute offset: [(port, key, value, srcid)]}."""
        found: dict[int, list] = {}
        for port in (0, 1):
            for tag in self.get_tags_in_window(port, 0, n_in):
                found.setdefault(tag.offset, []).append((port, tag.key, tag.value, tag.srcid))
        return found

    def _write(self, out, j, tokens, states, held=None, prov=None):
        out[0][j] = tokens
        out[1][j] = states
        if self.lookahead:                     # the successor: provisional fill, as received, or lost
            succ = self._emitted + 1
            nxt = prov if (succ == held and prov is not None) else self._raw.get(succ)
            for k in [k for k in self._raw if k < succ]:
                del self._raw[k]
            out[2][j] = nxt[0] if nxt is not None else 0
            out[3][j] = nxt[1] if nxt is not None else frames.STATE_LOST
        offset = self.nitems_written(0) + j
        for port, key, value, srcid in self._tags.pop(self._emitted, []):
            self.add_item_tag(port, offset, key, value, srcid)
        n_fb = int((states == frames.STATE_FALLBACK).sum())
        n_gen = int((states == frames.STATE_GENERATED).sum())
        if n_fb:
            self.add_item_tag(0, offset, TAG_FALLBACK, pmt.from_long(n_fb))
        elif n_gen:
            self.add_item_tag(0, offset, TAG_GENERATED, pmt.from_long(n_gen))
        self._emitted += 1

    def general_work(self, input_items, output_items):
        torch_env.use_threads(self.num_threads)
        n_in = min(len(input_items[0]), len(input_items[1]))
        space = min(len(output_items[0]), len(output_items[1]))
        first = self.nitems_read(0)
        tags = self._tags_in(n_in)
        produced = consumed = 0
        with self._lock:
            while consumed < n_in:
                frame_tags = tags.get(first + consumed, [])
                at_eos = any(pmt.eq(key, EOS) for _, key, _, _ in frame_tags)
                if produced + 1 + (self.rec.latency if at_eos else 0) > space:
                    break
                if frame_tags:      # kept until this frame goes out (output k = input k)
                    self._tags[first + consumed] = frame_tags
                if self.lookahead:
                    self._raw[first + consumed] = received(input_items[0][consumed], input_items[1][consumed])
                t0 = time.perf_counter()
                done = self.rec.push(input_items[0][consumed], input_items[1][consumed])
                prov = self.rec.provisional() if self.lookahead else None
                n_pushed = len(done)
                if at_eos:
                    done += self.rec.flush()
                ms = (time.perf_counter() - t0) * 1e3
                self._time["push_ms_total"] += ms
                self._time["push_ms_max"] = max(self._time["push_ms_max"], ms)
                if self.stage_observers:
                    self.stage_observers.notify(StageEvent("recovery", ms / 1e3, {"frames": done}))
                for i, (tokens, states) in enumerate(done):
                    self._write(output_items, produced, tokens, states,
                                first + consumed if i < n_pushed else None, prov)
                    produced += 1
                    if self._emitted % self.stats_interval == 0 and not at_eos:
                        self.message_port_pub(STATS, stats_to_pmt(self.rec.get_stats()))
                if at_eos:
                    self.message_port_pub(STATS, stats_to_pmt(self.rec.get_stats()))
                consumed += 1
            fallbacks = self.rec.counters.get("fallbacks", 0)
        if fallbacks > self._fallbacks_seen:
            self._log.warn("fallback", f"token_recovery: model fell back to repeat "
                                       f"({fallbacks} steps so far; see get_stats())")
            self._fallbacks_seen = fallbacks
        self.consume(0, consumed)
        self.consume(1, consumed)
        return produced
