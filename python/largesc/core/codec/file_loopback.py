"""Encode and decode a whole recording through a codec in streaming mode, frame chunk by chunk."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..link import frames
from . import TokenCodec


@dataclass
class CodecRun:
    """Result of a file loopback: decoded 24 kHz audio (input length), codes and timings."""
    audio: np.ndarray
    codes: np.ndarray
    encode_s: float
    decode_s: float


def loopback(codec: TokenCodec, x24: np.ndarray, num_codebooks: int = 8, chunk_frames: int = 5,
             progress: bool = False) -> CodecRun:
    """Stream `x24` (24 kHz) through encode then decode of the first `num_codebooks` codebooks.

    The input is zero-padded to whole frames (plus the codec's streaming delay, which flushes its
    look-ahead) and the output trimmed back to the input length.
    """
    n = len(x24)
    nfr = -(-n // frames.FRAME_SAMPLES) + codec.stream_delay_frames
    pcm = np.pad(np.asarray(x24, np.float32), (0, nfr * frames.FRAME_SAMPLES - n))
    codes, out = [], []
    t_enc = t_dec = 0.0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=nfr, unit="frame", desc="codec", leave=False)
    codec.start_streaming()
    try:
        step = chunk_frames * frames.FRAME_SAMPLES
        for i in range(0, len(pcm), step):
            t0 = time.perf_counter()
            c, _ = codec.stream_encode(pcm[i:i + step])
            t1 = time.perf_counter()
            out.append(codec.stream_decode(c[:num_codebooks]))
            t_dec += time.perf_counter() - t1
            t_enc += t1 - t0
            codes.append(c)
            if bar is not None:
                bar.update(c.shape[1])
    finally:
        codec.stop_streaming()
        if bar is not None:
            bar.close()
    audio = np.concatenate(out)[:n] if out else np.zeros(0, np.float32)
    all_codes = np.concatenate(codes, axis=1) if codes else np.zeros((8, 0), np.int64)
    return CodecRun(audio, all_codes, t_enc, t_dec)
