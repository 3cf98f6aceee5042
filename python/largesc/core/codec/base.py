"""The token-codec interface: audio <-> 8 codebooks of 11-bit tokens per 80 ms frame.

`TokenCodec` is what every codec implements (Mimi, `mini`), so nothing downstream knows which
codec it has; the helpers here give the controller its per-frame activity and check codes.
"""
from __future__ import annotations

import numpy as np

from ..link import frames


class ModelFileError(RuntimeError):
    """A weight or config file is missing, unreadable or does not fit the architecture."""


class TokenCodec:
    """Interface: 24 kHz mono float32 audio <-> int64 codes [K, F] (K codebooks, F frames)."""

    sample_rate = frames.SAMPLE_RATE
    frame_samples = frames.FRAME_SAMPLES
    stream_delay_frames = 0   # frames of algorithmic delay the streaming path adds
    encoder_delay_frames = 0  # of which the encoder's look-ahead (the rest is the decoder's)
    sub_frame_delay_samples = 0   # delay below one frame (24 kHz samples): analysis windows, vocoder, resamplers
    # True for a codec whose decode/stream_decode take `states` ([F, 8] frames.STATE_* codes) and
    # treat received and generated tokens differently (mini v2: only a received state starts
    # its decoder); callers pass states only to such a codec.
    uses_token_states = False
    # True for a codec that can decode frame t from frames t..t+W-1 as final and frame t+W as
    # provisional (what a receiver already has of it), so that a recovery hold of one frame and
    # the decoder's look-ahead are the same wait (stream_decode_overlap; docs/latency.md).
    supports_overlap = False
    latent_dim: int
    num_codebooks: int

    def encode(self, pcm: np.ndarray) -> np.ndarray:
        return self.encode_latent(pcm)[0]

    def encode_latent(self, pcm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def decode(self, codes: np.ndarray, prefix: np.ndarray | None = None) -> np.ndarray:
        """codes [k, F] -> pcm [F * 1920]; `prefix` [F] (optional): use only the first prefix[f]
        codebooks of frame f (1..k), so frames with different numbers of known codebooks decode
        in one call."""
        raise NotImplementedError

    def start_streaming(self) -> None:
        raise NotImplementedError

    def stop_streaming(self) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def stream_encode(self, pcm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def stream_decode(self, codes: np.ndarray, prefix: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    # Recovery in the quantizer's space (core/codec/rvq.py): latent-domain strategies use these.
    def dequantize(self, codes: np.ndarray, prefix: np.ndarray | None = None) -> np.ndarray:
        """codes [k, F] -> the quantized vector of each frame's prefix [Dq, F] (sum of codebook entries)."""
        raise NotImplementedError

    def requantize(self, target: np.ndarray, codes: np.ndarray, prefix: np.ndarray) -> np.ndarray:
        """codes [8, F] with codebooks >= prefix[f] re-chosen to approach target [Dq, F]."""
        raise NotImplementedError

    def codebook_vectors(self, k: int) -> np.ndarray:
        """[2048, Dq]: codebook k's entries in the quantizer space (each token's contribution)."""
        n = frames.CODEBOOK_SIZE
        codes = np.zeros((k + 1, n), np.int64)
        codes[k] = np.arange(n)
        return (self.dequantize(codes, np.full(n, k + 1)) - self.dequantize(codes, np.full(n, k))).T


def latent_activity_db(latent: np.ndarray) -> np.ndarray:
    """Per-frame activity of an unquantised latent [D, F]: 10*log10(mean square) in dB -> [F]."""
    return (10.0 * np.log10(np.mean(np.square(latent, dtype=np.float64), axis=0) + 1e-10)).astype(np.float32)


def frame_level_db(pcm: np.ndarray, num_frames: int | None = None) -> np.ndarray:
    """Per-frame input level of 24 kHz audio: 10*log10(mean square) of each 80 ms frame (dBFS) -> [F].
    The audio is zero-padded to `num_frames` frames (default: its whole frames)."""
    pcm = np.asarray(pcm, np.float64)
    nfr = len(pcm) // frames.FRAME_SAMPLES if num_frames is None else int(num_frames)
    x = np.pad(pcm, (0, max(0, nfr * frames.FRAME_SAMPLES - len(pcm))))[: nfr * frames.FRAME_SAMPLES]
    return (10.0 * np.log10(np.mean(x.reshape(nfr, frames.FRAME_SAMPLES) ** 2, axis=1) + 1e-10)).astype(np.float32)


def activity_source(codec) -> str:
    """What the controller's per-frame activity comes from for `codec`: "latent" (Mimi: the
    unquantised latent's level) or "audio" (the input frame level; codecs whose latent does not
    follow the speech level say so with a class attribute `activity_source = "audio"`)."""
    return getattr(codec, "activity_source", "latent")


def activity_db(codec, pcm: np.ndarray, latent: np.ndarray) -> np.ndarray:
    """The controller's activity (dB) per frame of a clip encoded offline: [F], F = latent frames."""
    if activity_source(codec) == "audio":
        return frame_level_db(pcm, latent.shape[1])
    return latent_activity_db(latent)


def check_codes(codes: np.ndarray, max_codebooks: int = frames.NUM_CODEBOOKS) -> np.ndarray:
    """Validate a [k, F] code array for decoding: 1 <= k <= max_codebooks, values in [0, 2048)."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or not 1 <= codes.shape[0] <= max_codebooks:
        raise ValueError(f"codes must have shape [k, F] with 1 <= k <= {max_codebooks}, got {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= frames.CODEBOOK_SIZE):
        raise ValueError(f"codes must lie in [0, {frames.CODEBOOK_SIZE}); got range [{codes.min()}, {codes.max()}]")
    return codes.astype(np.int64, copy=False)
