"""Wav file input/output and resampling to and from Mimi's 24 kHz (scipy's polyphase resampler)."""
from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np

from .link import frames


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a PCM wav (8/16/24/32-bit int; stereo is averaged) -> (float32 mono in [-1, 1], rate)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        with wave.open(str(path), "rb") as w:
            rate, width, nch, n = w.getframerate(), w.getsampwidth(), w.getnchannels(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{path}: not a PCM wav file ({exc})") from exc
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        x = ((b[:, 0].astype(np.int32) | (b[:, 1].astype(np.int32) << 8) | (b[:, 2].astype(np.int32) << 16))
             << 8 >> 8).astype(np.float32) / 8388608.0
    elif width == 4:
        x = np.frombuffer(raw, "<i4").astype(np.float32) / 2147483648.0
    else:
        raise ValueError(f"{path}: unsupported sample width {width} bytes")
    x = x.reshape(-1, nch).mean(axis=1) if nch > 1 else x
    return x.astype(np.float32), rate


def write_wav(path: str | Path, x: np.ndarray, rate: int) -> None:
    """Write float audio as 16-bit PCM mono wav (clipped to [-1, 1], NaN written as 0)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    pcm = (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(pcm.tobytes())


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling (scipy.signal.resample_poly) between integer rates."""
    if rate_in == rate_out:
        return np.asarray(x, dtype=np.float32)
    from scipy.signal import resample_poly
    g = math.gcd(int(rate_in), int(rate_out))
    return resample_poly(x, rate_out // g, rate_in // g).astype(np.float32)


def to_codec_rate(x: np.ndarray, rate: int) -> np.ndarray:
    """Audio at any rate -> 24 kHz float32."""
    return resample(x, rate, frames.SAMPLE_RATE)
