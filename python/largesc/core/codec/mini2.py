"""`mini` v2: Mimi's token interface over Opus 1.5's DRED representation, voiced by FARGAN.

    24 kHz -> 16 kHz -> LPCNet features -> DRED RDO-VAE encoder (Opus 1.5, frozen; opus_dnn.py)
      -> per 80 ms frame: the latents of 20 ms steps 1 and 3 (2 x 21, each covering 40 ms of
         features) and the encoder state after step 3 (19)
      -> tokens (8 codebooks x 2048, k-means, fitted here: training/train_mini2.py):
         7 residual codebooks on the two latents (one global scale: the dimensions keep their
         spread) and 1 codebook on the state (z-scored, weighted per dimension by its effect on
         the decoded features); the state codebook sits at position `state_index` of the order
      -> decode frame t from the window t..t+W: Opus's DRED decoder starts from frame t+W's
         state and runs back over the latents of frames t+W..t; frame t's eight 10 ms feature
         frames are kept
      -> FARGAN (Opus 1.5, frozen) -> 16 kHz -> 24 kHz

Look-ahead: W frames in the decoder (`window`, 0..3, default from config.json), none in the
encoder, plus the LPCNet analysis window, FARGAN and the resamplers (`sub_frame_delay_samples`).
Every prefix of codebooks decodes: the state of a frame whose prefix lacks the state codebook is
taken from the newest frame of the window that has it, else the mean state. Offline and
streaming run the same code over the same windows, so they give the same codes and samples;
offline, the last W frames of a clip decode from the shorter window that exists.

Overlap (docs/latency.md): `stream_decode_overlap` decodes frame t from the final frames t..t+W-1
and a *provisional* frame t+W (what the receiver already has of it: its received codebooks,
state included, or nothing), so a recovery that holds one frame for frame t+1 and the decoder's
look-ahead wait for the same packet. `features_overlap` is the offline twin.

Quantizer space (for recovery, core/codec/rvq.py): a 61-d vector [latents (42) / g ; weighted
state (19)], each codebook entry non-zero only in its own part, so residual (re)quantization and
latent interpolation work unchanged. Weights: models/mini/codec/ (config.json + model.safetensors).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..link import frames
from . import opus_dnn, rvq
from .base import TokenCodec

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
LAT = opus_dnn.LATENT_DIM
Z_DIM = 2 * LAT                                  # [latent step 1, latent step 3]
VEC_DIM = Z_DIM + opus_dnn.STATE_DIM             # + the state after step 3
FEATS = 8                                        # 10 ms feature frames per 80 ms
K = frames.NUM_CODEBOOKS
CARD = frames.CODEBOOK_SIZE
MAX_WINDOW = 3


@dataclass
class Mini2Config:
    version: int = 2
    decoder: str = "dred"
    state_index: int = 1          # position of the state codebook in the token order (-1: none)
    window: int = 1               # frames of decoder look-ahead by default (0..3)

    @classmethod
    def from_dict(cls, d: dict) -> "Mini2Config":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class Mini2Model(torch.nn.Module):
    """The trained parameters: the vector's normalisation (v = vn * v_std + v_mean) and the
    codebooks [8, 2048, 61] (latent codebooks zero in the state part, the state codebook zero in
    the latent part)."""

    def __init__(self, cfg: Mini2Config | None = None):
        super().__init__()
        self.cfg = cfg or Mini2Config()
        self.register_buffer("v_mean", torch.zeros(VEC_DIM))
        self.register_buffer("v_std", torch.ones(VEC_DIM))
        self.register_buffer("codebooks", torch.zeros(K, CARD, VEC_DIM))

    def quantize(self, vn: torch.Tensor, n_q: int = K) -> torch.Tensor:
        """[N, 61] normalised -> codes [N, n_q] (greedy residual quantization)."""
        r, codes = vn, []
        for k in range(n_q):
            idx = torch.cdist(r, self.codebooks[k]).argmin(-1)
            codes.append(idx)
            r = r - self.codebooks[k][idx]
        return torch.stack(codes, -1)

    def dequantize(self, codes: torch.Tensor, prefix: torch.Tensor | None = None) -> torch.Tensor:
        """codes [N, k] (+ prefix [N]) -> [N, 61] normalised: the sum over each frame's prefix."""
        out = torch.zeros(codes.shape[0], VEC_DIM, dtype=self.codebooks.dtype, device=self.codebooks.device)
        for k in range(codes.shape[1]):
            v = self.codebooks[k][codes[:, k]]
            out = out + (v if prefix is None else v * (k < prefix)[:, None].to(v.dtype))
        return out

    def has_state(self, prefix: np.ndarray) -> np.ndarray:
        """[F] bool: the frame's prefix includes the state codebook."""
        si = self.cfg.state_index
        return np.zeros(len(prefix), bool) if si < 0 else np.asarray(prefix) > si


def save_mini2(model: Mini2Model, out_dir, extra: dict | None = None) -> None:
    from safetensors.torch import save_file
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sd = {"v_mean": model.v_mean.float(), "v_std": model.v_std.float(),
          "codebooks": model.codebooks.to(torch.float16)}
    save_file({k: v.contiguous() for k, v in sd.items()}, str(out / WEIGHTS_NAME))
    (out / CONFIG_NAME).write_text(json.dumps({**asdict(model.cfg), **(extra or {})}, indent=1))


def load_mini2(weights_dir, device: str = "cpu", num_codebooks: int = K, window: int | None = None) -> "Mini2Codec":
    from safetensors.torch import load_file
    d = Path(weights_dir)
    model = Mini2Model(Mini2Config.from_dict(json.loads((d / CONFIG_NAME).read_text())))
    sd = {k: v.float() for k, v in load_file(str(d / WEIGHTS_NAME)).items()}
    model.load_state_dict(sd)
    return Mini2Codec(model.eval(), num_codebooks=num_codebooks, window=window,
                      description=f"mini v2 codec {d}")


class StreamResampler:
    """Rational resampler with carried state (FIR by scipy.signal.lfilter): the same samples
    whether fed at once or frame by frame. 24 -> 16 kHz (up 2, down 3) and back (3, 2) keep
    whole 80 ms frames whole (1920 <-> 1280 samples)."""

    def __init__(self, up: int, down: int, taps: int = 24):
        from scipy.signal import firwin
        self.up, self.down = up, down
        self.h = (firwin(taps * max(up, down) + 1, 0.92 / max(up, down)) * up).astype(np.float64)
        self.zi = np.zeros(len(self.h) - 1)
        self.phase = 0

    @property
    def delay(self) -> float:
        """Group delay in output samples."""
        return (len(self.h) - 1) / 2 / self.down

    def process(self, x: np.ndarray) -> np.ndarray:
        from scipy.signal import lfilter
        x = np.asarray(x, np.float64).reshape(-1)
        u = np.zeros(len(x) * self.up)
        u[:: self.up] = x
        y, self.zi = lfilter(self.h, 1.0, u, zi=self.zi)
        out = y[self.phase:: self.down]
        self.phase = (self.phase - len(u)) % self.down
        return out.astype(np.float32)


class Mini2Codec(TokenCodec):
    """The TokenCodec of `mini` v2 (see the module docstring). Offline and streaming run the same
    code over the same windows, so they give the same codes and the same samples."""

    activity_source = "audio"
    uses_token_states = True
    supports_overlap = True
    encoder_delay_frames = 0
    # Below one frame: LPCNet analysis + FARGAN + the two resamplers, measured on speech by
    # envelope cross-correlation of copy synthesis (tests/test_mini2_codec.py checks it).
    sub_frame_delay_samples = 373      # 15.5 ms

    def __init__(self, model: Mini2Model, num_codebooks: int = K, description: str = "",
                 window: int | None = None, device: str = "cpu"):
        self.model = model.to("cpu")      # the codebooks are tiny; Opus's DNNs run on the CPU
        self.description = description
        self.num_codebooks = num_codebooks
        self.latent_dim = VEC_DIM
        self.window = model.cfg.window if window is None else window
        self._streaming = False
        opus_dnn._lib()                  # fail early, naming the library, if it is not built
        self.reset()

    @property
    def window(self) -> int:
        return self._window

    @window.setter
    def window(self, w: int) -> None:
        w = int(w)
        if not 0 <= w <= MAX_WINDOW:
            raise ValueError(f"window must be 0..{MAX_WINDOW} frames of decoder look-ahead, got {w}")
        self._window = w

    @property
    def stream_delay_frames(self) -> int:
        return self._window

    # -- encoder ------------------------------------------------------------------------------
    @torch.no_grad()
    def _encode(self, x24: np.ndarray, rs: StreamResampler, an) -> tuple[np.ndarray, np.ndarray]:
        _, lat = an.process(rs.process(x24))
        n = len(lat) // 4
        v = np.concatenate([lat[: 4 * n].reshape(n, 4, LAT)[:, [1, 3]].reshape(n, Z_DIM),
                            an.states[: 4 * n].reshape(n, 4, -1)[:, 3]], 1)
        m = self.model
        vn = (torch.from_numpy(v) - m.v_mean) / m.v_std
        return m.quantize(vn, self.num_codebooks).T.numpy().astype(np.int64), vn.T.numpy()

    def encode_latent(self, pcm):
        x = np.asarray(pcm, np.float32).reshape(-1)
        x = np.pad(x, (0, (-len(x)) % frames.FRAME_SAMPLES))
        return self._encode(x, StreamResampler(2, 3), opus_dnn.Analyzer())

    def stream_encode(self, pcm):
        if not self._streaming:
            raise RuntimeError("call start_streaming() first")
        x = np.asarray(pcm, np.float32).reshape(-1)
        if len(x) % frames.FRAME_SAMPLES:
            raise ValueError("stream_encode takes whole frames of 1920 samples")
        return self._encode(x, self._rs_in, self._an)

    # -- decoder ------------------------------------------------------------------------------
    def vectors(self, codes, prefix=None, states=None) -> tuple[np.ndarray, np.ndarray]:
        """codes [k, F] (+ prefix [F]) -> (de-normalised vectors [F, 61], has_state [F]).
        `states` [F, 8] (frames.STATE_*, optional): a state codebook that was generated by
        recovery rather than received does not start the decoder (the window takes the newest
        received state instead; its vector still carries the frame's estimated latents)."""
        codes = np.asarray(codes, np.int64)
        if codes.ndim != 2 or not 1 <= codes.shape[0] <= K:
            raise ValueError(f"codes must be [k <= 8, F], got {codes.shape}")
        if codes.size and (codes.min() < 0 or codes.max() >= CARD):
            raise ValueError("codes must lie in [0, 2048)")
        n = codes.shape[1]
        p = np.full(n, codes.shape[0]) if prefix is None else np.clip(np.asarray(prefix, np.int64), 1, codes.shape[0])
        if len(p) != n:
            raise ValueError(f"prefix needs {n} values, got {len(p)}")
        m = self.model
        with torch.no_grad():
            vn = m.dequantize(torch.from_numpy(codes.T.copy()), torch.from_numpy(p))
            v = (vn * m.v_std + m.v_mean).numpy()
        hs = m.has_state(p)
        if states is not None and m.cfg.state_index >= 0:
            st = np.asarray(states)
            if st.shape != (n, K):
                raise ValueError(f"states must be [F, 8] = [{n}, 8], got {st.shape}")
            hs = hs & np.isin(st[:, m.cfg.state_index], frames.KNOWN_STATES)
        return v, hs

    @staticmethod
    def window_features(v: np.ndarray, has_state: np.ndarray) -> np.ndarray:
        """Features [8, 20] of the window's first frame: Opus's DRED decoder from the state of the
        newest frame that has one (else the mean state in the newest frame's vector), back over
        the latents of the window's frames up to it."""
        e = len(v) - 1
        known = np.flatnonzero(has_state)
        if len(known):
            e = int(known[-1])
        lat = v[: e + 1, :Z_DIM].reshape(-1, LAT)[::-1]                # newest first
        return opus_dnn.dred_decode(v[e, Z_DIM:], lat)[:FEATS]

    def features(self, codes, prefix=None, states=None) -> np.ndarray:
        """codes [k, F] -> LPCNet features [8 F, 20]: frame t from the window t..min(t+W, F-1)."""
        v, hs = self.vectors(codes, prefix, states)
        out = np.zeros((len(v), FEATS, opus_dnn.NUM_FEATURES), np.float32)
        for t in range(len(v)):
            e = min(t + self._window, len(v) - 1) + 1
            out[t] = self.window_features(v[t:e], hs[t:e])
        return out.reshape(-1, opus_dnn.NUM_FEATURES)

    def _provisional(self, codes, states) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Provisional frames (codes [k, F], states [F, 8]) -> (vectors, has_state, present [F]):
        a frame without a decodable codebook 0 is absent (the window stops before it)."""
        st = np.asarray(states, np.uint8)
        pre = frames.decodable_prefixes(st)
        present = pre > 0
        c = np.where(np.arange(np.asarray(codes).shape[0])[:, None] < pre[None, :], codes, 0)
        v, hs = self.vectors(c, np.maximum(pre, 1), st)
        return v, hs & present, present

    def _overlap_window(self, finals_v, finals_hs, prov_v, prov_hs, present) -> np.ndarray:
        if present:
            finals_v = np.concatenate([finals_v, prov_v[None]])
            finals_hs = np.concatenate([finals_hs, [prov_hs]])
        return self.window_features(finals_v, finals_hs)

    def features_overlap(self, codes, prefix, states, next_codes, next_states) -> np.ndarray:
        """Offline twin of stream_decode_overlap: frame t from the finals t..t+W-1 and the
        provisional frame given with final t+W-1 (next_* [.., F]: column j is what the receiver
        had of frame j+1 when frame j was final). The last W-1 frames use the finals that exist."""
        v, hs = self.vectors(codes, prefix, states)
        pv, phs, pres = self._provisional(next_codes, next_states)
        n, w = len(v), self._window
        out = np.zeros((n, FEATS, opus_dnn.NUM_FEATURES), np.float32)
        for t in range(n):
            if w == 0:
                out[t] = self.window_features(v[t:t + 1], hs[t:t + 1])
                continue
            j = t + w - 1                                   # the final that came with the provisional
            if j < n:
                out[t] = self._overlap_window(v[t:j + 1], hs[t:j + 1], pv[j], phs[j], pres[j])
            else:
                out[t] = self.window_features(v[t:], hs[t:])
        return out.reshape(-1, opus_dnn.NUM_FEATURES)

    def decode_overlap(self, codes, prefix, states, next_codes, next_states) -> np.ndarray:
        st = self._new_decoder()
        return st["rs"].process(st["voc"].process(self.features_overlap(codes, prefix, states, next_codes, next_states)))

    def stream_decode_overlap(self, codes, prefix, states, next_codes, next_states):
        """Feed final frames codes [k, n] (+ prefix, states) with, for each, the provisional next
        frame (next_codes [k, n], next_states [n, 8]); returns the audio of the frames whose
        look-ahead is covered: W - 1 frames of lead-in, not W."""
        if not self._streaming:
            raise RuntimeError("call start_streaming() first")
        st = self._dec
        v, hs = self.vectors(codes, prefix, states)
        pv, phs, pres = self._provisional(next_codes, next_states)
        w, feats = self._window, []
        for i in range(len(v)):
            st["v"] = np.concatenate([st["v"], v[i:i + 1]])
            st["hs"] = np.concatenate([st["hs"], hs[i:i + 1]])
            if w == 0:
                feats.append(self.window_features(st["v"][:1], st["hs"][:1]))
            elif len(st["v"]) >= w:
                feats.append(self._overlap_window(st["v"][:w], st["hs"][:w], pv[i], phs[i], pres[i]))
            else:
                continue
            st["v"], st["hs"] = st["v"][1:], st["hs"][1:]
        if not feats:
            return np.zeros(0, np.float32)
        return st["rs"].process(st["voc"].process(np.concatenate(feats)))

    @staticmethod
    def _new_decoder() -> dict:
        return {"voc": opus_dnn.Vocoder(), "rs": StreamResampler(3, 2), "v": np.zeros((0, VEC_DIM)),
                "hs": np.zeros(0, bool)}

    def decode(self, codes, prefix=None, states=None) -> np.ndarray:
        st = self._new_decoder()
        return st["rs"].process(st["voc"].process(self.features(codes, prefix, states)))

    def stream_decode(self, codes, prefix=None, states=None):
        """Feed codes [k, n]; returns the audio of the frames whose W frames of look-ahead have
        arrived (the first W frames fed yield nothing)."""
        if not self._streaming:
            raise RuntimeError("call start_streaming() first")
        st = self._dec
        v, hs = self.vectors(codes, prefix, states)
        st["v"] = np.concatenate([st["v"], v])
        st["hs"] = np.concatenate([st["hs"], hs])
        w = self._window
        feats = []
        while len(st["v"]) > w:
            feats.append(self.window_features(st["v"][: w + 1], st["hs"][: w + 1]))
            st["v"], st["hs"] = st["v"][1:], st["hs"][1:]
        if not feats:
            return np.zeros(0, np.float32)
        return st["rs"].process(st["voc"].process(np.concatenate(feats)))

    # -- streaming state ----------------------------------------------------------------------
    def start_streaming(self):
        self._streaming = True
        self.reset()

    def stop_streaming(self):
        self._streaming = False

    def reset(self):
        self._an = opus_dnn.Analyzer()
        self._rs_in = StreamResampler(2, 3)
        self._dec = self._new_decoder()

    # -- quantizer space (recovery) ------------------------------------------------------------
    def _layers(self) -> list:
        return [rvq.TensorCodebook(cb) for cb in self.model.codebooks]

    def dequantize(self, codes, prefix=None) -> np.ndarray:
        return rvq.dequantize(self._layers(), codes, prefix)

    def requantize(self, target, codes, prefix) -> np.ndarray:
        return rvq.requantize(self._layers(), target, codes, prefix)
