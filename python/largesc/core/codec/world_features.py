"""WORLD vocoder features for the `mini` codec (docs/models/mini.md).

Analysis runs at 16 kHz with a 5 ms hop, so one 80 ms codec frame (1920 samples at 24 kHz) holds
exactly ``SUBFRAMES = 16`` feature frames. Per feature frame (``FEAT_DIM = 28`` values):

====== ============================================================================
0..24  mel-cepstrum of the WORLD (CheapTrick) spectral envelope, order 24, alpha 0.42
25     log F0 in log(Hz), linearly interpolated through unvoiced frames (continuous)
26     voicing, 1.0 voiced / 0.0 unvoiced (DIO + StoneMask, 60..500 Hz)
27     coded band aperiodicity (D4C; one band at 16 kHz), dB
====== ============================================================================

Synthesis (``synthesize``) turns features back into 24 kHz audio with WORLD's synthesis algorithm
(pulse train + minimum-phase spectra, band aperiodicity mixed with noise), resampled from 16 kHz.
``WorldSynth`` is a streaming re-implementation of that synthesis in numpy with explicit state
(F0 phase, overlap tail, noise generator): feeding features in chunks gives exactly the same
samples as one call on the whole sequence. 16 kHz analysis/synthesis was chosen over 24 kHz
because almost all training speech is band-limited to 4..8 kHz (asterisk 8 kHz, TTS 16 kHz) and
STOI/Whisper look at <= 8 kHz; see docs/models/mini.md for the measurement.
"""
from __future__ import annotations

import copy

import numpy as np

ANALYSIS_FS = 16000
OUTPUT_FS = 24000
FRAME_PERIOD_MS = 5.0
HOP = 80                      # 5 ms at 16 kHz
SUBFRAMES = 16                # feature frames per 80 ms codec frame
MCEP_ORDER = 24
ALPHA = 0.42
FFT_SIZE = 1024
F0_FLOOR, F0_CEIL = 60.0, 500.0
N_MCEP = MCEP_ORDER + 1
IDX_LF0, IDX_VUV, IDX_CAP = N_MCEP, N_MCEP + 1, N_MCEP + 2
FEAT_DIM = N_MCEP + 3
DEFAULT_LF0 = float(np.log(150.0))


def to_16k(x24: np.ndarray) -> np.ndarray:
    from scipy.signal import resample_poly
    return resample_poly(np.asarray(x24, np.float64), 2, 3)


def to_24k(x16: np.ndarray) -> np.ndarray:
    from scipy.signal import resample_poly
    return resample_poly(np.asarray(x16, np.float64), 3, 2)


_WARP: dict = {}


def _warp_matrix(n_in: int, n_out: int, alpha: float) -> np.ndarray:
    """pysptk.freqt is linear in its input: cache it as a matrix [n_in, n_out + 1]."""
    key = (n_in, n_out, alpha)
    if key not in _WARP:
        import pysptk
        eye = np.eye(n_in)
        _WARP[key] = np.stack([pysptk.freqt(np.ascontiguousarray(e), n_out, alpha) for e in eye])
    return _WARP[key]


def sp2mc(sp: np.ndarray) -> np.ndarray:
    """Vectorised pysptk.sp2mc(sp, MCEP_ORDER, ALPHA) (same numbers, ~50x faster on whole utterances)."""
    c = np.fft.irfft(np.log(sp), axis=-1)
    c[:, 0] /= 2.0
    return c @ _warp_matrix(c.shape[1], MCEP_ORDER, ALPHA)


def mc2sp(mc: np.ndarray, fftlen: int = FFT_SIZE) -> np.ndarray:
    """Vectorised pysptk.mc2sp(mc, ALPHA, fftlen)."""
    c = mc @ _warp_matrix(mc.shape[1], fftlen // 2, -ALPHA)
    c[:, 0] *= 2.0
    sym = np.zeros((len(mc), fftlen))
    sym[:, :fftlen // 2 + 1] = c
    sym[:, fftlen // 2 + 1:] = c[:, 1:fftlen // 2][:, ::-1]
    return np.exp(np.fft.rfft(sym, axis=-1).real)


def analyze16(x16: np.ndarray, n_frames: int | None = None, rows: slice | None = None) -> np.ndarray:
    """16 kHz float audio -> features [N, FEAT_DIM] float32 (N = n_frames if given, else len/HOP).

    rows: only these feature frames (the F0 track is still estimated on the whole signal, so the
    rows equal those of the full analysis; the envelope and aperiodicity, per frame, are the
    cost this saves: the streaming encoder needs 16 of the buffer's 80)."""
    import pyworld as pw
    x = np.ascontiguousarray(np.asarray(x16, np.float64))
    if n_frames is None:
        n_frames = len(x) // HOP
    need = n_frames * HOP
    if len(x) < need:
        x = np.concatenate([x, np.zeros(need - len(x))])
    # tiny dither: WORLD's envelope estimate is undefined on digital silence
    rng = np.random.default_rng(len(x))
    x = x + 1e-5 * rng.standard_normal(len(x))
    f0, t = pw.dio(x, ANALYSIS_FS, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=FRAME_PERIOD_MS)
    f0 = pw.stonemask(x, f0, t, ANALYSIS_FS)
    vuv = (f0 > 0).astype(np.float64)
    lf0 = np.full(len(f0), DEFAULT_LF0)
    if vuv.any():
        idx = np.arange(len(f0))
        lf0 = np.interp(idx, idx[vuv > 0], np.log(f0[vuv > 0]))
    # rows past the F0 track repeat its last frame (as the full analysis pads)
    sel = np.arange(n_frames)[rows if rows is not None else slice(None)]
    src = np.minimum(sel, len(f0) - 1)
    keep = np.unique(src)
    sp = pw.cheaptrick(x, np.ascontiguousarray(f0[keep]), np.ascontiguousarray(t[keep]), ANALYSIS_FS,
                       fft_size=FFT_SIZE)
    ap = pw.d4c(x, np.ascontiguousarray(f0[keep]), np.ascontiguousarray(t[keep]), ANALYSIS_FS, fft_size=FFT_SIZE)
    mc = sp2mc(sp)
    cap = pw.code_aperiodicity(ap, ANALYSIS_FS)
    feats = np.concatenate([mc, lf0[keep, None], vuv[keep, None], cap[:, :1]], 1).astype(np.float32)
    return feats[np.searchsorted(keep, src)]


def analyze(x24: np.ndarray, rows: slice | None = None) -> np.ndarray:
    """24 kHz audio -> features [16 * F, FEAT_DIM], F = whole 80 ms frames (audio zero-padded);
    `rows`: only those feature frames (see analyze16)."""
    x24 = np.asarray(x24, np.float32)
    n = -(-len(x24) // 1920)
    x24 = np.concatenate([x24, np.zeros(n * 1920 - len(x24), np.float32)])
    return analyze16(to_16k(x24), n * SUBFRAMES, rows)


def unpack(feats: np.ndarray):
    """features -> (f0 Hz with 0 for unvoiced, spectral envelope [N, FFT/2+1], aperiodicity [N, FFT/2+1])."""
    import pyworld as pw
    f = np.asarray(feats, np.float64)
    mc = np.ascontiguousarray(f[:, :N_MCEP])
    sp = mc2sp(mc)
    cap = np.ascontiguousarray(np.minimum(f[:, IDX_CAP:IDX_CAP + 1], -1e-3))
    ap = pw.decode_aperiodicity(cap, ANALYSIS_FS, FFT_SIZE)
    f0 = np.where(f[:, IDX_VUV] > 0.5, np.exp(np.clip(f[:, IDX_LF0], np.log(F0_FLOOR), np.log(F0_CEIL))), 0.0)
    return np.ascontiguousarray(f0), np.ascontiguousarray(sp), np.ascontiguousarray(ap)


def synthesize_pyworld16(feats: np.ndarray) -> np.ndarray:
    """Reference WORLD synthesis (pyworld, whole utterance) at 16 kHz, len = N * HOP."""
    import pyworld as pw
    f0, sp, ap = unpack(feats)
    y = pw.synthesize(f0, sp, ap, ANALYSIS_FS, FRAME_PERIOD_MS)
    n = len(feats) * HOP
    return np.pad(y, (0, max(0, n - len(y))))[:n]


AHEAD = 2     # feature frames (10 ms) of look-ahead that cover LAG_24 (3 ms) of 16 kHz input and its pulses


class AlignedWorldSynth:
    """``WorldSynth`` with the resampler's lag taken out: each call returns the audio of exactly
    the feature frames it is fed (120 samples each, no lag). The last ``LAG_24`` samples of a call
    need the start of the next frames: ``ahead`` (the decoder's look-ahead, ``AHEAD`` feature
    frames, or the last frame repeated when there is none) is synthesised from a copy of the state
    and dropped from the state, and the next call drops the first ``LAG_24`` samples it makes
    (the same samples, now from the final features). Where ``ahead`` is what comes next, the
    output is ``WorldSynth``'s shifted by ``LAG_24``, sample for sample."""

    def __init__(self, seed: int = 0):
        self.ws = WorldSynth(seed)

    def process(self, feats: np.ndarray, ahead: np.ndarray | None = None) -> np.ndarray:
        feats = np.asarray(feats)
        if len(feats) == 0:
            return np.zeros(0, np.float32)
        y = self.ws.process(feats)[LAG_24:]
        if ahead is None or len(ahead) < AHEAD:
            ahead = np.repeat(feats[-1:], AHEAD, 0)
        tail = copy.deepcopy(self.ws).process(np.asarray(ahead)[:AHEAD])[:LAG_24]
        return np.concatenate([y, tail]).astype(np.float32)


def synthesize(feats: np.ndarray, method: str = "stream") -> np.ndarray:
    """Features [N, FEAT_DIM] -> 24 kHz float32 audio of N * 120 samples."""
    if method == "pyworld":
        y16 = synthesize_pyworld16(feats)
        return to_24k(y16).astype(np.float32)[: len(feats) * 120]
    s = WorldSynth()
    return s.process(feats)


# ----------------------------------------------------------------------------- streaming synthesis

def _min_phase_spectrum(log_amp: np.ndarray) -> np.ndarray:
    """Minimum-phase complex spectra (rfft bins) from log amplitude spectra [M, FFT/2+1], via the cepstrum."""
    n = FFT_SIZE
    c = np.fft.irfft(log_amp, n=n, axis=-1)
    fold = np.zeros_like(c)
    fold[:, 0] = c[:, 0]
    fold[:, 1:n // 2] = 2 * c[:, 1:n // 2]
    fold[:, n // 2] = c[:, n // 2]
    return np.exp(np.fft.rfft(fold, axis=-1))


class _Resampler16to24:
    """Streaming 2 -> 3 polyphase resampler (FIR, exact w.r.t. a whole-signal resample with zero history)."""

    def __init__(self, taps: int = 96):
        from scipy.signal import firwin
        self.h = firwin(taps * 3, 1.0 / 3 * 0.92, window=("kaiser", 8.0)) * 3.0
        self.delay = (len(self.h) - 1) // 2      # in 48 kHz samples
        self.reset()

    def reset(self):
        self.hist = np.zeros(len(self.h) - 1)
        self.phase = 0

    def process(self, x16: np.ndarray) -> np.ndarray:
        from scipy.signal import lfilter
        up = np.zeros(len(x16) * 3)
        up[::3] = x16
        y, self.hist = lfilter(self.h, [1.0], up, zi=self.hist)
        # keep every 2nd sample of the 48 kHz stream, continuing the global decimation phase
        start = self.phase
        out = y[start::2]
        self.phase = (start - len(y)) % 2
        return out


LAG_24 = (96 * 3 - 1) // 2 // 2


class WorldSynth:
    """Streaming WORLD-style synthesis with state; 16 kHz internally, 24 kHz out.

    ``process(feats)`` takes any number of 5 ms feature frames and returns 120 output samples per
    frame. Each output sample depends only on features up to its own frame; the only latency is
    the fixed lag of the 16->24 kHz resampling filter (``LAG_24`` = 72 samples, 3 ms), the same for
    a whole-sequence call and for any chunking.
    """

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.rs = _Resampler16to24()
        self.reset()

    def reset(self):
        self.rng = np.random.default_rng(self.seed)
        self.phase = 0.0                 # F0 phase in cycles, runs across calls
        self.tail = np.zeros(FFT_SIZE)   # overlap-add tail beyond the emitted samples
        self.last_f0 = 0.0
        self.rs.reset()
        self.prev = None                 # last feature frame (for interpolation at block starts)

    def _pulses(self, f0_frames: np.ndarray):
        """Pulse times (16 kHz sample index within the block) and their frame index."""
        n = len(f0_frames) * HOP
        t = np.arange(n)
        fidx = np.minimum((t + HOP // 2) // HOP, len(f0_frames) - 1)   # nearest frame centre
        f0 = f0_frames[fidx]
        voiced = f0 > 0
        inst = np.where(voiced, f0, 200.0) / ANALYSIS_FS       # cycles per sample; unvoiced: 200 Hz noise grid
        ph = self.phase + np.cumsum(inst)
        wraps = np.nonzero(np.floor(ph[1:]) > np.floor(ph[:-1]))[0] + 1
        if np.floor(ph[0]) > np.floor(self.phase):
            wraps = np.concatenate([[0], wraps])
        self.phase = float(ph[-1] - np.floor(ph[-1]))
        return wraps, fidx[wraps] if len(wraps) else wraps, voiced

    def process16(self, feats: np.ndarray) -> np.ndarray:
        feats = np.asarray(feats, np.float64)
        if len(feats) == 0:
            return np.zeros(0)
        f0, sp, ap = unpack(feats)
        pos, fr, voiced_s = self._pulses(f0)
        n = len(feats) * HOP
        buf = np.zeros(n + FFT_SIZE)
        buf[:FFT_SIZE] += self.tail
        if len(pos):
            spp, app = sp[fr], np.clip(ap[fr], 0.0, 1.0)
            vo = f0[fr] > 0
            # periodic part: min-phase pulse response of sp * (1 - ap^2), scaled like WORLD
            # (energy per pulse = period), only for voiced frames
            period = np.where(vo, ANALYSIS_FS / np.maximum(f0[fr], 1.0), ANALYSIS_FS / 200.0)
            per_amp = np.where(vo[:, None], np.sqrt(np.maximum(spp * (1 - app ** 2), 1e-16)), 1e-8)
            per = np.fft.irfft(_min_phase_spectrum(np.log(per_amp)), n=FFT_SIZE, axis=-1)
            per *= np.sqrt(period)[:, None] * vo[:, None]
            # aperiodic part: white noise of one period, filtered by min-phase sp * ap^2
            ape_amp = np.sqrt(np.maximum(spp * np.where(vo[:, None], app ** 2, 1.0), 1e-16))
            noise = np.zeros((len(pos), FFT_SIZE))
            plen = np.maximum(1, np.round(period).astype(int))
            for k in range(len(pos)):
                noise[k, :plen[k]] = self.rng.standard_normal(plen[k])
            noise -= noise.sum(1, keepdims=True) / plen[:, None] * (np.arange(FFT_SIZE)[None] < plen[:, None])
            ape = np.fft.irfft(np.fft.rfft(noise, axis=-1) * _min_phase_spectrum(np.log(ape_amp)), n=FFT_SIZE, axis=-1)
            resp = per + ape
            for k in range(len(pos)):
                buf[pos[k]:pos[k] + FFT_SIZE] += resp[k]
        self.tail = buf[n:n + FFT_SIZE].copy()
        return buf[:n]

    def process(self, feats: np.ndarray) -> np.ndarray:
        """Features -> 24 kHz float32, 120 samples per feature frame. The resampling filter adds a
        fixed lag of ``LAG_24`` samples (3 ms), the same for offline and streaming use.

        Work is done in blocks of ``SUBFRAMES`` feature frames (one codec frame), so any call
        pattern that feeds whole codec frames gives bit-identical output."""
        feats = np.asarray(feats)
        out = [self.rs.process(self.process16(feats[i:i + SUBFRAMES])) for i in range(0, len(feats), SUBFRAMES)]
        return (np.concatenate(out) if out else np.zeros(0)).astype(np.float32)
