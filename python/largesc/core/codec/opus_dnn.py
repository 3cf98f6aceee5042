"""Opus 1.5's speech DNNs through ctypes: LPCNet feature analysis + the DRED RDO-VAE encoder
(16 kHz audio -> 20 features per 10 ms, a 21-d latent per 20 ms) and the FARGAN vocoder
(20 features per 10 ms -> 16 kHz audio). BSD-3-Clause, Xiph.Org and contributors.

The library is native/largesc_opus_dnn.c linked against libopus 1.5.2 built from Debian's
source tarball by scripts/build_opus_dnn.sh (the installer runs it for the `mini` codec). It is
looked up at $LARGESC_OPUS_DNN_LIB, then <venv>/lib/gr-largesc/liblargesc_opus_dnn.so.
"""
from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

import numpy as np

LATENT_DIM = 21          # DRED_LATENT_DIM: one latent per 20 ms step
STATE_DIM = 19
NUM_FEATURES = 20        # LPCNet features per 10 ms: 18 cepstral bands, pitch period, pitch correlation
FEATURE_HOP = 160        # samples at 16 kHz per feature frame
DFRAME = 320             # samples per encoder step (20 ms)
FARGAN_PRIME = 5         # feature frames FARGAN takes to start
LIB_NAME = "liblargesc_opus_dnn.so"

_FP = ctypes.POINTER(ctypes.c_float)
_LIB = None


class OpusDnnMissing(RuntimeError):
    """The native library is not built."""


def library_path() -> Path:
    env = os.environ.get("LARGESC_OPUS_DNN_LIB")
    return Path(env) if env else Path(sys.prefix) / "lib" / "gr-largesc" / LIB_NAME


def _lib():
    global _LIB
    if _LIB is None:
        path = library_path()
        if not path.is_file():
            raise OpusDnnMissing(f"{path} not found: build it with scripts/build_opus_dnn.sh {path.parent} "
                                 "(the installer does this for the mini codec), or set LARGESC_OPUS_DNN_LIB")
        lib = ctypes.CDLL(str(path))
        for name in ("ld_enc_create", "ld_fargan_create"):
            getattr(lib, name).restype = ctypes.c_void_p
        for name in ("ld_enc_destroy", "ld_fargan_destroy"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
        lib.ld_enc_dframe.argtypes = [ctypes.c_void_p, _FP, _FP, _FP, _FP]
        lib.ld_fargan_cont.argtypes = [ctypes.c_void_p, _FP, _FP]
        lib.ld_fargan_synth.argtypes = [ctypes.c_void_p, _FP, _FP]
        lib.ld_dec_all.argtypes = [_FP, _FP, ctypes.c_int, _FP]
        sizes = [ctypes.c_int() for _ in range(4)]
        lib.ld_sizes(*[ctypes.byref(s) for s in sizes])
        if [s.value for s in sizes] != [LATENT_DIM, STATE_DIM, NUM_FEATURES, FEATURE_HOP]:
            raise OpusDnnMissing(f"{path}: unexpected sizes {[s.value for s in sizes]}")
        _LIB = lib
    return _LIB


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(_FP)


class Analyzer:
    """Streaming LPCNet features + DRED latents of 16 kHz audio, 20 ms at a time."""

    def __init__(self):
        self._lib = _lib()
        self._h = self._lib.ld_enc_create()
        if not self._h:
            raise MemoryError("ld_enc_create failed")
        self._buf = np.zeros(0, np.float32)

    def __del__(self):
        if getattr(self, "_h", None):
            self._lib.ld_enc_destroy(self._h)
            self._h = None

    def process(self, x16: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feed audio ([-1, 1]); returns (features [2n, 20], latents [n, 21]) for the n whole 20 ms
        steps now complete (the rest waits for the next call); `self.states` [n, 19] the encoder's
        states after each step."""
        self._buf = np.concatenate([self._buf, np.asarray(x16, np.float32).reshape(-1)])
        n = len(self._buf) // DFRAME
        feats = np.zeros((n, 2, NUM_FEATURES), np.float32)
        lat = np.zeros((n, LATENT_DIM), np.float32)
        states = np.zeros((n, STATE_DIM), np.float32)
        scaled = self._buf[: n * DFRAME] * np.float32(32768.0)
        for i in range(n):
            fr = np.ascontiguousarray(scaled[i * DFRAME:(i + 1) * DFRAME])
            self._lib.ld_enc_dframe(self._h, _ptr(fr), _ptr(feats[i]), _ptr(lat[i]), _ptr(states[i]))
        self._buf = self._buf[n * DFRAME:]
        self.states = states
        return feats.reshape(-1, NUM_FEATURES), lat


class Vocoder:
    """Streaming FARGAN: 20 features per 10 ms -> 160 samples of 16 kHz audio. It starts after
    FARGAN_PRIME frames (their audio is silence)."""

    def __init__(self):
        self._lib = _lib()
        self._h = self._lib.ld_fargan_create()
        if not self._h:
            raise MemoryError("ld_fargan_create failed")
        self._prime: list[np.ndarray] = []

    def __del__(self):
        if getattr(self, "_h", None):
            self._lib.ld_fargan_destroy(self._h)
            self._h = None

    def process(self, feats: np.ndarray) -> np.ndarray:
        feats = np.asarray(feats, np.float32).reshape(-1, NUM_FEATURES)
        out = np.zeros((len(feats), FEATURE_HOP), np.float32)
        for i, f in enumerate(feats):
            f = np.ascontiguousarray(f)
            if len(self._prime) < FARGAN_PRIME:
                self._prime.append(f)
                if len(self._prime) == FARGAN_PRIME:
                    self._lib.ld_fargan_cont(self._h, _ptr(np.zeros(2 * FEATURE_HOP, np.float32)),
                                             _ptr(np.ascontiguousarray(np.stack(self._prime))))
                continue
            self._lib.ld_fargan_synth(self._h, _ptr(f), _ptr(out[i]))
        return out.reshape(-1)


def available() -> bool:
    try:
        _lib()
        return True
    except OpusDnnMissing:
        return False


def dred_decode(state: np.ndarray, latents_newest_first: np.ndarray) -> np.ndarray:
    """Opus's own DRED decoder: from an encoder state (19) back through n latents (newest
    first) -> features [4 n, 20], oldest first (libopus decodes its redundancy this way)."""
    lib = _lib()
    lat = np.ascontiguousarray(latents_newest_first, np.float32)
    n = len(lat)
    out = np.zeros((n, 4, NUM_FEATURES), np.float32)
    lib.ld_dec_all(_ptr(np.ascontiguousarray(state, np.float32)), _ptr(lat), n, _ptr(out))
    return out[::-1, ::-1].reshape(-1, NUM_FEATURES).copy()
