"""GNU Radio block: 24 kHz float audio -> one vector of 8 Mimi tokens per 80 ms frame."""
import collections

import numpy as np
from gnuradio import gr

from .core import codec as codec_mod
from .core import torch_env
from .core.link import frames
from .core.profiles import DEFAULT_PROFILE
from .gr_support.block_params import check_codec_params
from .gr_support.codec_block import CodecBlock

NAME = "mimi_encoder"


class mimi_encoder(CodecBlock, gr.decim_block):
    """Streaming Mimi encoder (decimation 1920).

    Output 0: int32 vector of 8 tokens per frame (codebook 0 semantic, 1..7 acoustic).
    Output 1: float32 activity per frame in dB, from the codec's own source (core.codec.activity_db):
    10*log10(mean square) of the unquantised latent (Mimi profiles), or of the frame's input
    audio (mini, whose latent level does not follow speech); aligned with the frame's tokens. The
    adaptive controller turns it into the frame's content importance.
    Non-finite input samples are replaced by 0, counted and logged.

    Parameters (checked at construction; a bad value raises ValueError naming it):
    profile: mini | kyutai | kyutai-arch | tiny; samp_rate: 24000 only; device: cpu | cuda |
    cuda:N | auto; num_threads: 1..64 torch threads; mimi_weights: '' (the profile's) or an
    existing safetensors file (a folder for mini); stats_interval: 1..10**6 frames.
    """

    def __init__(self, profile=DEFAULT_PROFILE, samp_rate=24000, device="cpu", num_threads=1,
                 mimi_weights="", stats_interval=125):
        check_codec_params(NAME, profile, samp_rate, device, num_threads, mimi_weights, stats_interval)
        gr.decim_block.__init__(self, name="largesc_mimi_encoder", in_sig=[np.float32],
                                out_sig=[(np.int32, frames.NUM_CODEBOOKS), np.float32],
                                decim=frames.FRAME_SAMPLES)
        self._init_codec(profile, mimi_weights, device, num_threads, stats_interval, ("nonfinite_samples",))
        self._audio_activity = codec_mod.activity_source(self.codec) == "audio"
        self._levels = collections.deque()  # input frame levels waiting for their (delayed) tokens

    def start(self):
        self._levels.clear()
        return super().start()

    def work(self, input_items, output_items):
        torch_env.use_threads(self.num_threads)
        n = len(output_items[0])
        pcm = input_items[0][: n * frames.FRAME_SAMPLES]
        bad = ~np.isfinite(pcm)
        if bad.any():
            pcm = np.where(bad, np.float32(0), pcm)
            count = int(bad.sum())
            self._stats["nonfinite_samples"] += count
            self._log.warn("nonfinite", f"replaced {count} NaN/inf input samples with 0")
        codes, latent = self.stage_observers.timed("encode", self.codec.stream_encode, pcm)
        short = n - codes.shape[1]          # a codec with look-ahead returns fewer frames at first
        output_items[0][:short] = 0         # those lead-in frames: token 0, quiet
        output_items[1][:short] = -100.0
        output_items[0][short:n] = codes.T
        if self._audio_activity:
            self._levels.extend(codec_mod.frame_level_db(pcm, n).tolist())
            output_items[1][short:n] = [self._levels.popleft() for _ in range(n - short)]
        else:
            output_items[1][short:n] = codec_mod.latent_activity_db(latent)
        self._count_frames(n)
        return n
