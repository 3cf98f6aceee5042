"""`mini` v2: Mimi's token interface over Opus's DRED latents, voiced by FARGAN.

    24 kHz -> 16 kHz -> LPCNet features + DRED RDO-VAE encoder (Opus 1.5, frozen; opus_dnn.py)
      -> two 21-d latents per 80 ms frame (42-d, normalised)
      -> residual VQ, 8 codebooks x 2048 (k-means, trained here): the tokens
      -> decoder trained here: a GRU over the dequantized vectors (+ `lookahead` frames)
         -> eight 10 ms LPCNet feature frames per 80 ms
      -> FARGAN (Opus 1.5, frozen) -> 16 kHz -> 24 kHz

Every prefix of codebooks decodes (the decoder is trained on random prefixes), codebook 0 is
the coarsest. The encoder looks ahead by the LPCNet analysis window only (no frame); the decoder
by `lookahead` frames (config); FARGAN adds its 15 ms (FARGAN_DELAY). Weights:
models/mini/codec2/ (config.json + model.safetensors); trained by training/train_mini2.py.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..link import frames
from . import opus_dnn
from .base import TokenCodec

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FEATS = 8                       # 10 ms feature frames per 80 ms
Z_DIM = 2 * opus_dnn.LATENT_DIM
K = frames.NUM_CODEBOOKS
CARD = frames.CODEBOOK_SIZE


@dataclass
class Mini2Config:
    hidden: int = 384
    layers: int = 2
    lookahead: int = 0          # frames of future vectors the decoder sees
    sub_hidden: int = 0         # > 0: a second GRU at the 10 ms feature rate (conditioned per sub-frame)
    sub_cond: int = 64
    version: int = 2

    @classmethod
    def from_dict(cls, d: dict) -> "Mini2Config":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class Mini2Model(nn.Module):
    """Normalisation, codebooks and the feature decoder (all the trained parameters)."""

    def __init__(self, cfg: Mini2Config):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("z_mean", torch.zeros(Z_DIM))
        self.register_buffer("z_std", torch.ones(Z_DIM))
        self.register_buffer("f_mean", torch.zeros(opus_dnn.NUM_FEATURES))
        self.register_buffer("f_std", torch.ones(opus_dnn.NUM_FEATURES))
        self.register_buffer("codebooks", torch.zeros(K, CARD, Z_DIM))
        self.gru = nn.GRU(Z_DIM * (1 + cfg.lookahead) + K, cfg.hidden, cfg.layers, batch_first=True)
        if cfg.sub_hidden:
            self.cond = nn.Linear(cfg.hidden, FEATS * cfg.sub_cond)
            self.sub = nn.GRU(cfg.sub_cond, cfg.sub_hidden, 1, batch_first=True)
            self.out = nn.Linear(cfg.sub_hidden, opus_dnn.NUM_FEATURES)
        else:
            self.out = nn.Linear(cfg.hidden, FEATS * opus_dnn.NUM_FEATURES)

    # -- quantizer (normalised latent space) ---------------------------------------------------
    def quantize(self, zn: torch.Tensor, n_q: int = K) -> torch.Tensor:
        """[N, 42] normalised -> codes [N, n_q] (greedy residual quantization)."""
        r = zn
        codes = []
        for k in range(n_q):
            cb = self.codebooks[k]
            idx = torch.cdist(r, cb).argmin(-1)
            codes.append(idx)
            r = r - cb[idx]
        return torch.stack(codes, -1)

    def dequantize(self, codes: torch.Tensor, prefix: torch.Tensor | None = None) -> torch.Tensor:
        """codes [N, k] (+ prefix [N]) -> [N, 42] normalised: the sum over each prefix."""
        out = torch.zeros(codes.shape[0], Z_DIM, dtype=self.codebooks.dtype, device=codes.device)
        for k in range(codes.shape[1]):
            v = self.codebooks[k][codes[:, k]]
            if prefix is not None:
                v = v * (k < prefix)[:, None].to(v.dtype)
            out = out + v
        return out

    # -- decoder ------------------------------------------------------------------------------
    def decoder_input(self, q: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """q [B, T, 42] dequantized, prefix [B, T] -> GRU input [B, T, 42 (1 + L) + 8]."""
        parts = [q]
        for j in range(1, self.cfg.lookahead + 1):
            parts.append(torch.cat([q[:, j:], q[:, -1:].expand(-1, j, -1)], 1))
        parts.append(nn.functional.one_hot((prefix - 1).clamp(0, K - 1).long(), K).to(q.dtype))
        return torch.cat(parts, -1)

    def decode_feats(self, x: torch.Tensor, h=None):
        """GRU input [B, T, *] -> (normalised features [B, T * 8, 20], state)."""
        h1, h2 = h if h is not None else (None, None)
        y, h1 = self.gru(x, h1)
        if not self.cfg.sub_hidden:
            return self.out(y).reshape(x.shape[0], -1, opus_dnn.NUM_FEATURES), (h1, None)
        c = torch.tanh(self.cond(y)).reshape(x.shape[0], -1, self.cfg.sub_cond)
        y2, h2 = self.sub(c, h2)
        return self.out(y2), (h1, h2)


def save_mini2(model: Mini2Model, out_dir, extra: dict | None = None) -> None:
    from safetensors.torch import save_file
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().to(torch.float16 if k == "codebooks" else torch.float32).contiguous()
          for k, v in model.state_dict().items()}
    save_file(sd, str(out / WEIGHTS_NAME))
    (out / CONFIG_NAME).write_text(json.dumps({**asdict(model.cfg), **(extra or {})}, indent=1))


def load_mini2(weights_dir, device: str = "cpu", num_codebooks: int = K) -> "Mini2Codec":
    from safetensors.torch import load_file
    d = Path(weights_dir)
    cfg = Mini2Config.from_dict(json.loads((d / CONFIG_NAME).read_text()))
    model = Mini2Model(cfg)
    sd = {k: v.float() for k, v in load_file(str(d / WEIGHTS_NAME)).items()}
    model.load_state_dict(sd)
    return Mini2Codec(model.eval(), num_codebooks=num_codebooks, description=f"mini v2 codec {d}")


class StreamResampler:
    """Rational resampler with carried state (FIR by scipy.signal.lfilter): the same samples
    whether fed at once or frame by frame. 24 -> 16 kHz (up 2, down 3) and back (3, 2) keep
    whole 80 ms frames whole (1920 <-> 1280 samples)."""

    def __init__(self, up: int, down: int, taps: int = 96):
        from scipy.signal import firwin
        self.up, self.down = up, down
        self.h = (firwin(taps * max(up, down) + 1, 0.92 / max(up, down)) * up).astype(np.float64)
        self.zi = np.zeros(len(self.h) - 1)
        self.phase = 0

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
    stateful path, so they give the same codes and the same samples."""

    activity_source = "audio"
    encoder_delay_frames = 0

    def __init__(self, model: Mini2Model, num_codebooks: int = K, description: str = ""):
        self.model = model
        self.description = description
        self.num_codebooks = num_codebooks
        self.latent_dim = Z_DIM
        self.stream_delay_frames = model.cfg.lookahead
        self._streaming = False
        opus_dnn._lib()                  # fail early, naming the library, if it is not built
        self.reset()

    # -- encoder ------------------------------------------------------------------------------
    @staticmethod
    def _frames(pcm) -> np.ndarray:
        x = np.asarray(pcm, np.float32).reshape(-1)
        if len(x) % frames.FRAME_SAMPLES:
            raise ValueError("takes whole frames of 1920 samples")
        return x

    @torch.no_grad()
    def _encode(self, x24: np.ndarray, rs: StreamResampler, an) -> tuple[np.ndarray, np.ndarray]:
        _, lat = an.process(rs.process(x24))
        n = len(lat) // 4
        z = lat[: 4 * n].reshape(n, 4, -1)[:, [1, 3]].reshape(n, Z_DIM)
        m = self.model
        zn = (torch.from_numpy(z) - m.z_mean) / m.z_std
        return m.quantize(zn, self.num_codebooks).T.numpy().astype(np.int64), zn.T.numpy()

    def encode_latent(self, pcm):
        x = np.asarray(pcm, np.float32).reshape(-1)
        x = np.pad(x, (0, (-len(x)) % frames.FRAME_SAMPLES))
        return self._encode(x, StreamResampler(2, 3), opus_dnn.Analyzer())

    def stream_encode(self, pcm):
        if not self._streaming:
            raise RuntimeError("call start_streaming() first")
        return self._encode(self._frames(pcm), self._rs_in, self._an)

    # -- decoder ------------------------------------------------------------------------------
    @torch.no_grad()
    def _decode_frames(self, st: dict, codes: np.ndarray, prefix, final: bool) -> np.ndarray:
        """Push frames through decoder state `st`; 24 kHz audio of the frames now final."""
        m, L = self.model, self.model.cfg.lookahead
        codes = np.asarray(codes, np.int64)
        if codes.ndim != 2 or not 1 <= codes.shape[0] <= K:
            raise ValueError(f"codes must be [k <= 8, F], got {codes.shape}")
        if codes.size and (codes.min() < 0 or codes.max() >= CARD):
            raise ValueError("codes must lie in [0, 2048)")
        n = codes.shape[1]
        p = np.full(n, codes.shape[0]) if prefix is None else np.clip(np.asarray(prefix, np.int64), 1, codes.shape[0])
        if len(p) != n:
            raise ValueError(f"prefix needs {n} values, got {len(p)}")
        if n:
            c = torch.from_numpy(np.pad(codes, ((0, K - codes.shape[0]), (0, 0))).T)
            q = m.dequantize(c, torch.from_numpy(p))
            st["q"] = torch.cat([st["q"], q])
            st["p"] = torch.cat([st["p"], torch.from_numpy(p)])
        ready = len(st["q"]) - (0 if final else L)
        if ready <= 0:
            return np.zeros(0, np.float32)
        q, pp = st["q"], st["p"]
        if final and L:                                   # the stream's end: repeat the last vector
            q = torch.cat([q, q[-1:].expand(L, -1)])
            pp = torch.cat([pp, pp[-1:].expand(L)])
        x = m.decoder_input(q[None], pp[None])[:, :ready]
        ys = []
        for j in range(ready):            # one frame per GRU call, offline too: the same numbers
            y, st["h"] = m.decode_feats(x[:, j:j + 1], st["h"])
            ys.append(y[0])
        st["q"], st["p"] = st["q"][ready:], st["p"][ready:]
        feats = (torch.cat(ys) * m.f_std + m.f_mean).numpy()
        return st["rs"].process(st["voc"].process(feats))

    @staticmethod
    def _new_decoder() -> dict:
        return {"q": torch.zeros(0, Z_DIM), "p": torch.zeros(0, dtype=torch.long), "h": None,
                "voc": opus_dnn.Vocoder(), "rs": StreamResampler(3, 2)}

    def decode(self, codes, prefix=None) -> np.ndarray:
        return self._decode_frames(self._new_decoder(), codes, prefix, final=True)

    def stream_decode(self, codes, prefix=None):
        if not self._streaming:
            raise RuntimeError("call start_streaming() first")
        return self._decode_frames(self._dec, codes, prefix, final=False)

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
    def dequantize(self, codes, prefix=None) -> np.ndarray:
        c = torch.as_tensor(np.asarray(codes, np.int64)).T
        p = None if prefix is None else torch.as_tensor(np.asarray(prefix))
        with torch.no_grad():
            return self.model.dequantize(c, p).T.numpy()

    def requantize(self, target, codes, prefix) -> np.ndarray:
        m = self.model
        codes = np.array(codes, np.int64, copy=True)
        p = np.asarray(prefix, np.int64)
        with torch.no_grad():
            r = torch.from_numpy(np.asarray(target, np.float32)).T - m.dequantize(
                torch.from_numpy(codes).T, torch.from_numpy(p))
            for k in range(codes.shape[0]):
                free = torch.from_numpy(p <= k)
                if not bool(free.any()):
                    continue
                idx = torch.cdist(r, m.codebooks[k]).argmin(-1)
                codes[k] = torch.where(free, idx, torch.from_numpy(codes[k])).numpy()
                r = r - m.codebooks[k][idx] * free[:, None]
        return codes
