"""Audio rates the hier blocks take, and their resampling ratio to the codec's 24 kHz."""
import math

from ..core.link import frames
from . import params as P

MIN_RATE, MAX_RATE = 1000, 384000        # audio rates (Hz) the hier blocks take


def check_samp_rate(block, samp_rate):
    """An integer rate in 1000..384000 Hz that resamples to 24 kHz with a ratio <= 1000."""
    sr = P.check_int(block, "samp_rate", samp_rate, MIN_RATE, MAX_RATE, "Hz")
    try:
        rational_ratio(sr)
    except ValueError as exc:
        P.fail(block, "samp_rate", f"a rate that resamples to 24 kHz ({exc})", samp_rate)
    return sr


def rational_ratio(samp_rate):
    """(interpolation, decimation) that takes `samp_rate` to 24 kHz."""
    sr = int(samp_rate)
    if sr != samp_rate or sr <= 0:
        raise ValueError(f"samp_rate must be a positive integer rate in Hz, got {samp_rate}")
    g = math.gcd(frames.SAMPLE_RATE, sr)
    interp, decim = frames.SAMPLE_RATE // g, sr // g
    if max(interp, decim) > 1000:
        raise ValueError(f"samp_rate {sr} Hz: resampling ratio {interp}/{decim} too large; "
                         f"use a rate that is a multiple of 25 Hz (8000, 16000, 44100, 48000, ...)")
    return interp, decim
