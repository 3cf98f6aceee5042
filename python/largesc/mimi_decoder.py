"""GNU Radio block: one vector of 8 Mimi tokens per frame -> 1920 samples of 24 kHz audio."""
import numpy as np
from gnuradio import gr

from .core import torch_env
from .core.link import frames
from .core.profiles import DEFAULT_PROFILE
from .gr_support import params as P
from .gr_support.block_params import check_codec_params, check_codec_window
from .gr_support.codec_block import CodecBlock

NAME = "mimi_decoder"


class mimi_decoder(CodecBlock, gr.interp_block):
    """Streaming Mimi decoder (interpolation 1920).

    Decodes the first `num_codebooks` codebooks of each frame (a prefix: fewer codebooks, lower
    rate). With `use_states`, a second input takes the per-codebook states of each frame
    (frames.STATE_*, from the depacketizer or token recovery) and each frame decodes only its
    decodable prefix: the leading codebooks that are known or filled (at least codebook 0).
    Tokens outside [0, 2048) never reach the model: they are set to 0, counted and logged.

    Parameters (checked at construction; a bad value raises ValueError naming it): as
    mimi_encoder, plus num_codebooks: 1..8 (also set_num_codebooks); use_states: bool;
    codec_window: the mini v2 codec's decoder look-ahead in frames, 0..3 (-1: its default, 1);
    other codecs take only -1. overlap (needs use_states): inputs 2 and 3 take, for each frame,
    the provisional next frame (tokens, states) from token recovery's look-ahead outputs, and a
    codec that supports it (mini v2) decodes frame t as soon as it is final, with frame t+1 as
    provisional: its look-ahead and the recovery hold are one wait (docs/latency.md). Other
    codecs ignore inputs 2 and 3 and decode as without overlap.
    """

    def __init__(self, profile=DEFAULT_PROFILE, num_codebooks=8, samp_rate=24000, device="cpu",
                 num_threads=1, mimi_weights="", stats_interval=125, use_states=False, codec_window=-1,
                 overlap=False):
        check_codec_params(NAME, profile, samp_rate, device, num_threads, mimi_weights, stats_interval)
        codec_window = check_codec_window(NAME, profile, mimi_weights, codec_window)
        P.check_int(NAME, "num_codebooks", num_codebooks, 1, frames.NUM_CODEBOOKS)
        use_states = P.check_bool(NAME, "use_states", use_states)
        overlap = P.check_bool(NAME, "overlap", overlap)
        if overlap and not use_states:
            P.fail(NAME, "overlap", "False unless use_states is True (the look-ahead inputs carry states)", overlap)
        k = frames.NUM_CODEBOOKS
        gr.interp_block.__init__(self, name="largesc_mimi_decoder",
                                 in_sig=[(np.int32, k)] + ([(np.uint8, k)] if use_states else [])
                                 + ([(np.int32, k), (np.uint8, k)] if overlap else []),
                                 out_sig=[np.float32],
                                 interp=frames.FRAME_SAMPLES)
        self._init_codec(profile, mimi_weights, device, num_threads, stats_interval, ("invalid_tokens", "prefix_frames"),
                         codec_window)
        self.num_codebooks = int(num_codebooks)
        self.use_states = bool(use_states)
        self.overlap = bool(overlap)

    @property
    def overlap_active(self) -> bool:
        """The look-ahead inputs are used: overlap on and a codec that supports it."""
        return self.overlap and bool(getattr(self.codec, "supports_overlap", False))

    def set_num_codebooks(self, k):
        """Decode only the first k codebooks from now on (1..8)."""
        self.num_codebooks = P.check_int(NAME, "num_codebooks", k, 1, frames.NUM_CODEBOOKS)

    def work(self, input_items, output_items):
        torch_env.use_threads(self.num_threads)
        n = len(output_items[0]) // frames.FRAME_SAMPLES
        codes = np.asarray(input_items[0][:n, : self.num_codebooks], dtype=np.int64).T
        bad = (codes < 0) | (codes >= frames.CODEBOOK_SIZE)
        if bad.any():
            codes = np.where(bad, 0, codes)
            self._stats["invalid_tokens"] += int(bad.sum())
            self._log.warn("invalid", f"{int(bad.sum())} tokens outside [0, 2048) set to 0")
        prefix = None
        if self.use_states:
            prefix = np.clip(frames.decodable_prefixes(input_items[1][:n]), 1, self.num_codebooks)
            self._stats["prefix_frames"] += int((prefix < self.num_codebooks).sum())
        if self.overlap_active:
            nxt = np.asarray(input_items[2][:n, : self.num_codebooks], dtype=np.int64).T
            nxt = np.where((nxt < 0) | (nxt >= frames.CODEBOOK_SIZE), 0, nxt)
            nst = np.array(input_items[3][:n], np.uint8)
            nst[:, self.num_codebooks:] = frames.STATE_NOT_SENT       # a decoded prefix of num_codebooks
            pcm = self.stage_observers.timed("decode", self.codec.stream_decode_overlap, codes, prefix,
                                             input_items[1][:n], nxt, nst, codes=codes)
        else:
            # a codec that tells received from generated tokens (mini v2's state) gets the states too
            args = (codes, prefix, input_items[1][:n]) if self.use_states and self.codec.uses_token_states else (codes, prefix)
            pcm = self.stage_observers.timed("decode", self.codec.stream_decode, *args, codes=codes)
        lead = n * frames.FRAME_SAMPLES - len(pcm)  # a codec with look-ahead returns less at first
        output_items[0][:lead] = 0.0
        output_items[0][lead: n * frames.FRAME_SAMPLES] = pcm
        self._count_frames(n)
        return n * frames.FRAME_SAMPLES
