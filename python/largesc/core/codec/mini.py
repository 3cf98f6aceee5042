"""`mini`: a small Mimi-compatible token codec over WORLD vocoder features (docs/models/mini.md).

Token interface exactly as Mimi's: 24 kHz audio, 80 ms frames (12.5 Hz), 8 codebooks of 2048
entries, coarse to fine (residual VQ, codebook 0 most important), every prefix decodes (trained
with quantizer dropout).

Model (``MiniCodecModel``), per 80 ms frame of 16 WORLD feature frames (5 ms, 28 values, see
``world_features``)::

    features [B, 28, 16F] -> causal conv stack (5 ms) -> strided conv (16) -> [B, D, F]
      -> causal transformer (moshi StreamingTransformer, RoPE, context C frames) -> latent [B, D, F]
      -> moshi ResidualVectorQuantizer (8 x 2048, EMA codebooks)
      -> causal transformer -> transposed conv (x16) -> conv stack with 30 ms look-ahead
      -> heads: mel-cepstrum (25) + log F0 (1) + aperiodicity (1) regressions, voicing logit (1)
      -> WORLD synthesis (``world_features.AlignedWorldSynth``) at 16 kHz -> 24 kHz, the
         resampler's 3 ms synthesised from the first 10 ms of the look-ahead frame (no lag)

Latency of the streaming path (``stream_delay_frames = 2``): the encoder analyses each frame with
one frame (80 ms) of audio look-ahead for WORLD's F0/envelope windows, and the decoder's last conv
stack looks 30 ms into the next frame, so ``stream_encode`` returns the codes of the frame before
the one just fed and ``stream_decode`` returns the audio of the frame before the codes just fed.
The offline ``encode``/``decode`` have no delay: their output is aligned with their input.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import rvq
from . import world_features as W
from .base import TokenCodec

SAMPLE_RATE = 24000
FRAME_SAMPLES = 1920
SUB = W.SUBFRAMES


@dataclass
class MiniConfig:
    feat_dim: int = W.FEAT_DIM
    conv_dim: int = 128
    d_model: int = 256
    num_heads: int = 4
    enc_layers: int = 3
    dec_layers: int = 4
    ff_mult: int = 3
    context: int = 32            # attention span in frames (2.56 s)
    rvq_dim: int = 64
    n_q: int = 8
    bins: int = 2048
    dec_lookahead_convs: int = 3  # kernel-5 convs with symmetric padding: 3 x 2 = 6 subframes (30 ms)
    feat_mean: list = field(default_factory=list)
    feat_std: list = field(default_factory=list)
    arch: str = "transformer"     # frame-level context: "transformer" (moshi StreamingTransformer) or "conv"
    version: int = 1

    @classmethod
    def from_dict(cls, d: dict) -> "MiniConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class CausalConv1d(nn.Conv1d):
    def forward(self, x):
        return super().forward(F.pad(x, ((self.kernel_size[0] - 1) * self.dilation[0], 0), mode="replicate"))


def _check_prefix(prefix, shape):
    """None, or the per-frame prefix clipped to 1..K (one entry per frame)."""
    if prefix is None:
        return None
    p = np.clip(np.asarray(prefix, dtype=np.int64).reshape(-1), 1, shape[0])
    if p.shape != (shape[1],):
        raise ValueError(f"prefix must have one entry per frame ({shape[1]}), got {p.shape}")
    return None if (p == shape[0]).all() else p


class FrameConvStack(nn.Module):
    """Residual causal kernel-3 convs over 80 ms frames ([B, T, D] in and out, like the
    transformer it replaces). Streaming keeps the last ``history`` frames of each layer's input."""

    history = 2

    def __init__(self, d: int, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(nn.Sequential(CausalConv1d(d, 2 * d, 3), nn.GELU(), nn.Conv1d(2 * d, d, 1))
                                    for _ in range(num_layers))
        self.is_streaming = False
        self._hist = None

    def forward(self, x):                # [B, T, D]
        h = x.transpose(1, 2)
        if not self.is_streaming:
            for layer in self.layers:
                h = h + layer(h)
            return h.transpose(1, 2)
        # streaming: prepend each layer's remembered inputs (replicated first frame at start, as
        # the offline replicate padding does) and keep only the new outputs
        if self._hist is None:
            self._hist = [None] * len(self.layers)
        n = h.shape[-1]
        for i, layer in enumerate(self.layers):
            past = self._hist[i] if self._hist[i] is not None else h[..., :1].repeat(1, 1, self.history)
            full = torch.cat([past, h], -1)
            self._hist[i] = full[..., -self.history:]
            h = h + layer(full)[..., -n:]
        return h.transpose(1, 2)

    def streaming_forever(self, batch_size: int):
        self.is_streaming = True
        self._hist = None

    def _stop_streaming(self):
        self.is_streaming = False
        self._hist = None


def _snapshot(tf):
    """A copy of a streaming decoder stage's state (FrameConvStack's history, or a moshi
    streaming transformer's), to run a provisional frame through it and put the state back."""
    import copy
    if hasattr(tf, "get_streaming_state"):
        return copy.deepcopy(tf.get_streaming_state())
    return None if tf._hist is None else list(tf._hist)


def _restore(tf, saved) -> None:
    if hasattr(tf, "set_streaming_state"):
        tf.set_streaming_state(saved)
    else:
        tf._hist = saved


class MiniCodecModel(nn.Module):
    def __init__(self, cfg: MiniConfig):
        super().__init__()
        from moshi.modules.transformer import StreamingTransformer
        from moshi.quantization.vq import ResidualVectorQuantizer
        self.cfg = cfg
        c, d, fd = cfg.conv_dim, cfg.d_model, cfg.feat_dim
        self.register_buffer("mean", torch.tensor(cfg.feat_mean or [0.0] * fd, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(cfg.feat_std or [1.0] * fd, dtype=torch.float32))
        if cfg.arch not in ("transformer", "conv"):
            raise ValueError(f"mini codec: unknown arch {cfg.arch!r} (transformer | conv)")
        self.enc_in = nn.Sequential(CausalConv1d(fd, c, 5), nn.GELU(), CausalConv1d(c, c, 5), nn.GELU(),
                                    CausalConv1d(c, c, 5), nn.GELU())
        self.enc_down = nn.Conv1d(c, d, SUB, stride=SUB)
        if cfg.arch == "transformer":
            tkw = dict(num_heads=cfg.num_heads, dim_feedforward=cfg.ff_mult * d, causal=True, context=cfg.context,
                       positional_embedding="rope", norm="layer_norm", layer_scale=0.1)
            self.enc_tf = StreamingTransformer(d, num_layers=cfg.enc_layers, **tkw)
            self.dec_tf = StreamingTransformer(d, num_layers=cfg.dec_layers, **tkw)
        else:
            # causal kernel-3 convs over 80 ms frames: two frames of history, no look-ahead
            self.enc_tf = FrameConvStack(d, cfg.enc_layers)
            self.dec_tf = FrameConvStack(d, cfg.dec_layers)
        self.quantizer = ResidualVectorQuantizer(dimension=cfg.rvq_dim, input_dimension=d, output_dimension=d,
                                                 n_q=cfg.n_q, bins=cfg.bins, q_dropout=False)
        self.dec_up = nn.ConvTranspose1d(d, c, SUB, stride=SUB)
        layers = []
        for _ in range(cfg.dec_lookahead_convs):
            layers += [nn.GELU(), nn.Conv1d(c, c, 5, padding=2, padding_mode="replicate")]
        self.dec_conv = nn.Sequential(*layers, nn.GELU())
        self.head = nn.Conv1d(c, fd, 1)   # normalised mcep, lf0, vuv logit (slot IDX_VUV), cap

    # ---------------------------------------------------------------- pieces
    def normalize(self, feats):          # [B, N, 28] raw -> [B, 28, N] normalised
        return ((feats - self.mean) / self.std).transpose(1, 2)

    def denormalize(self, out):          # [B, 28, N] head output -> [B, N, 28] raw features (vuv as prob)
        y = out.transpose(1, 2) * self.std + self.mean
        vuv = torch.sigmoid(out[:, W.IDX_VUV, :])
        return torch.cat([y[..., :W.IDX_VUV], vuv[..., None], y[..., W.IDX_VUV + 1:]], -1)

    def encode_latent(self, xn):         # [B, 28, 16F] -> [B, D, F]
        h = self.enc_down(self.enc_in(xn))
        return self.enc_tf(h.transpose(1, 2)).transpose(1, 2)

    def decode_latent(self, q):          # [B, D, F] -> head output [B, 28, 16F]
        h = self.dec_tf(q.transpose(1, 2)).transpose(1, 2)
        return self.head(self.dec_conv(self.dec_up(h)))

    def forward(self, xn, n_q: int | None = None):
        z = self.encode_latent(xn)
        if n_q is not None:
            self.quantizer.set_num_codebooks(n_q)
        r = self.quantizer(z, 12.5)
        return self.decode_latent(r.x), r.penalty, r.codes


def mcep_weights(c0: float = 1.0, low: float = 1.0, n_low: int = 4):
    """Per-coefficient weights of the mel-cepstrum loss (c0 = log energy, c1..n_low = spectral tilt/formants)."""
    w = torch.ones(W.N_MCEP)
    w[0] = c0
    w[1:1 + n_low] = low
    return w


def feature_loss(out, xn, vuv_target, weights=None, mc_w=None, dyn_block: int = 0):
    """Loss on normalised features. out/xn: [B, 28, N]; vuv_target: [B, N] in {0,1}.
    ``mc_w``: optional per-coefficient weights [25] of the mel-cepstrum terms (normalised to mean 1).
    ``dyn_block`` > 0 adds a term ``dyn`` on the envelope's movement at that resolution (subframes):
    L1 between the differences of consecutive block means of output and target. An envelope held
    constant over each 80 ms frame caps STOI near 0.76 while 20 ms blocks keep 0.93 (see
    docs/models/mini.md), so this term asks the model for the movement within a frame; block
    means also average out the 5 ms analysis jitter that plain L1 cannot predict."""
    w = weights or {}
    mc = slice(0, W.N_MCEP)
    cw = torch.ones(W.N_MCEP, device=out.device) if mc_w is None else (mc_w / mc_w.mean()).to(out.device)
    cw = cw[None, :, None]
    l_mc = ((out[:, mc] - xn[:, mc]).abs() * cw).mean()
    l_dyn = torch.zeros((), device=out.device)
    if dyn_block > 0:
        po, px = F.avg_pool1d(out[:, mc], dyn_block), F.avg_pool1d(xn[:, mc], dyn_block)
        l_dyn = (((po[..., 1:] - po[..., :-1]) - (px[..., 1:] - px[..., :-1])).abs() * cw).mean()
    d_out, d_x = out[:, mc, 1:] - out[:, mc, :-1], xn[:, mc, 1:] - xn[:, mc, :-1]
    l_dmc = ((d_out - d_x).abs() * cw).mean()
    v = vuv_target
    l_lf0 = ((out[:, W.IDX_LF0] - xn[:, W.IDX_LF0]).abs() * (0.1 + 0.9 * v)).sum() / (0.1 * v.numel() + 0.9 * v.sum() + 1)
    l_vuv = F.binary_cross_entropy_with_logits(out[:, W.IDX_VUV], v)
    l_cap = (out[:, W.IDX_CAP] - xn[:, W.IDX_CAP]).abs().mean()
    total = (w.get("mc", 1.0) * l_mc + w.get("dmc", 0.5) * l_dmc + w.get("lf0", 1.0) * l_lf0
             + w.get("vuv", 0.5) * l_vuv + w.get("cap", 0.3) * l_cap + w.get("dyn", 1.0) * l_dyn)
    return total, dict(mc=l_mc.item(), dmc=l_dmc.item(), lf0=l_lf0.item(), vuv=l_vuv.item(), cap=l_cap.item(),
                       dyn=l_dyn.item())


# ----------------------------------------------------------------------------- loading / saving

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def save_mini_codec(model: MiniCodecModel, out_dir, dtype=torch.float16, extra: dict | None = None):
    from safetensors.torch import save_file
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sd = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        # keep buffers and codebook statistics in fp32; weights may go to fp16
        keep32 = k in ("mean", "std") or "cluster_usage" in k or "embedding_sum" in k or "_initialized" in k
        sd[k] = (v if keep32 or not v.is_floating_point() else v.to(dtype)).contiguous()
    save_file(sd, str(out_dir / WEIGHTS_NAME))
    cfg = asdict(model.cfg)
    cfg.update({"model_type": "largesc-mini-codec", "sample_rate": SAMPLE_RATE, "frame_samples": FRAME_SAMPLES,
                "weights": WEIGHTS_NAME, "weights_dtype": str(dtype).replace("torch.", "")})
    if extra:
        cfg.update(extra)
    with open(out_dir / CONFIG_NAME, "w") as f:
        json.dump(cfg, f, indent=1)


def load_mini_model(weights_dir, device="cpu") -> MiniCodecModel:
    from safetensors.torch import load_file
    weights_dir = Path(weights_dir)
    cpath, wpath = weights_dir / CONFIG_NAME, weights_dir / WEIGHTS_NAME
    for p in (cpath, wpath):
        if not p.is_file():
            raise FileNotFoundError(f"mini codec: missing file {p}")
    with open(cpath) as f:
        cfg = MiniConfig.from_dict(json.load(f))
    model = MiniCodecModel(cfg)
    sd = load_file(str(wpath))
    sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    model.load_state_dict(sd)
    return model.to(device).eval()


def load_mini_codec(weights_dir, device="cpu", num_codebooks: int = 8) -> "MiniCodec":
    """Load the shipped (or any exported) `mini` codec: ``weights_dir`` holds config.json +
    model.safetensors. A missing file raises FileNotFoundError naming it."""
    return MiniCodec(load_mini_model(weights_dir, device), num_codebooks=num_codebooks, device=device)


# ----------------------------------------------------------------------------- codec interface

class MiniCodec(TokenCodec):
    """Codec interface shared with MimiCodec (see core/codec/): 24 kHz float32 audio <-> int64
    codes [K, F] with K <= 8 codebooks of 2048 entries at 12.5 Hz."""

    sample_rate = SAMPLE_RATE
    frame_samples = FRAME_SAMPLES
    frame_rate = SAMPLE_RATE / FRAME_SAMPLES
    cardinality = 2048
    total_codebooks = 8
    stream_delay_frames = 2       # 1 frame encoder look-ahead (WORLD analysis) + 1 frame decoder look-ahead
    # The controller's activity: the input frame level. This codec's latent level does not follow
    # the speech level (correlation -0.44 on the bundled clip), so the latent rule sees no speech.
    activity_source = "audio"
    encoder_delay_frames = 1
    sub_frame_delay_samples = 0   # WORLD's 16 -> 24 kHz resampler lag (3 ms) is synthesised from the
                                  # decoder's look-ahead (world_features.AlignedWorldSynth)
    supports_overlap = True       # stream_decode_overlap: the provisional next frame as look-ahead
    ENC_HISTORY = 3               # frames of past audio kept for streaming WORLD analysis (240 ms)

    def __init__(self, model: MiniCodecModel, num_codebooks: int = 8, device="cpu"):
        self.model = model.eval()
        self.device = torch.device(device)
        self._nq = 8
        self.num_codebooks = num_codebooks
        self._streaming = False

    # ------------------------------------------------------------ properties
    @property
    def num_codebooks(self) -> int:
        return self._nq

    @num_codebooks.setter
    def num_codebooks(self, n: int):
        n = int(n)
        if not 1 <= n <= 8:
            raise ValueError(f"num_codebooks must be in 1..8, got {n}")
        self._nq = n

    @property
    def latent_dim(self) -> int:
        return self.model.cfg.d_model

    # ------------------------------------------------------------ offline
    @staticmethod
    def _pad(pcm) -> np.ndarray:
        x = np.asarray(pcm, np.float32).reshape(-1)
        n = -(-len(x) // FRAME_SAMPLES) * FRAME_SAMPLES
        return np.concatenate([x, np.zeros(n - len(x), np.float32)])

    @torch.no_grad()
    def _encode_feats(self, feats: np.ndarray):
        m = self.model
        xn = m.normalize(torch.from_numpy(np.asarray(feats, np.float32))[None].to(self.device))
        z = m.encode_latent(xn)
        m.quantizer.set_num_codebooks(self._nq)
        codes = m.quantizer.encode(z)[0]
        return codes, z[0]

    def encode_latent(self, pcm):
        """pcm float32 [T] (24 kHz, padded to whole frames) -> (codes int64 [K, F], latent float32 [D, F])."""
        x = self._pad(pcm)
        if len(x) == 0:
            return np.zeros((self._nq, 0), np.int64), np.zeros((self.latent_dim, 0), np.float32)
        codes, z = self._encode_feats(W.analyze(x))
        return codes.cpu().numpy().astype(np.int64), z.cpu().numpy().astype(np.float32)

    def encode(self, pcm) -> np.ndarray:
        return self.encode_latent(pcm)[0]

    @torch.no_grad()
    def _quantized(self, c: torch.Tensor, prefix=None) -> torch.Tensor:
        """RVQ output for codes [K, F]; with `prefix` [F], codebook k of frame f counts only where
        k < prefix[f] (exact: the RVQ output is a sum of per-codebook embeddings and a bias-free
        projection)."""
        rvq = self.model.quantizer
        if prefix is None:
            return rvq.decode(c[None])
        keep = (torch.arange(c.shape[0], device=c.device)[:, None]
                < torch.as_tensor(prefix, device=c.device)[None, :]).float()
        acc = 0
        for k in range(c.shape[0]):
            acc = acc + rvq.vq.layers[k].decode(c[k][None]) * keep[k][None, None, :]
        return rvq.output_proj(acc)

    def dequantize(self, codes, prefix=None) -> np.ndarray:
        """codes [k, F] -> [64, F]: sum of the RVQ entries of each frame's prefix (before the
        output projection, where the residual chain runs)."""
        return rvq.dequantize(self.model.quantizer.vq.layers, codes, prefix)

    def requantize(self, target, codes, prefix) -> np.ndarray:
        """codes [8, F]: codebooks >= prefix[f] re-chosen by residual quantization of target [64, F]."""
        return rvq.requantize(self.model.quantizer.vq.layers, target, codes, prefix)

    @torch.no_grad()
    def _codes_to_feats(self, codes, prefix=None) -> np.ndarray:
        c = torch.as_tensor(np.asarray(codes), dtype=torch.int64, device=self.device)
        if c.ndim != 2 or not 1 <= c.shape[0] <= 8:
            raise ValueError(f"codes must be [K<=8, F], got {tuple(c.shape)}")
        if c.numel() and (int(c.min()) < 0 or int(c.max()) >= 2048):
            raise ValueError("codes must lie in [0, 2048)")
        m = self.model
        q = self._quantized(c, _check_prefix(prefix, c.shape))
        return m.denormalize(m.decode_latent(q))[0].cpu().numpy()

    def decode(self, codes, prefix=None) -> np.ndarray:
        """codes int64 [k <= 8, F] (any prefix of codebooks) -> float32 pcm [F * 1920] at 24 kHz;
        `prefix` [F] (optional): frame f uses only its first prefix[f] codebooks."""
        codes = np.asarray(codes)
        if codes.shape[-1] == 0:
            return np.zeros(0, np.float32)
        feats = self._codes_to_feats(codes, prefix)
        # WORLD synthesis without its resampler's lag (the last frame's 3 ms from its own features
        # repeated), as the streaming paths give it: the two stay sample-aligned
        return W.AlignedWorldSynth().process(feats)

    # ------------------------------------------------------------ streaming
    def start_streaming(self):
        self._streaming = True
        self.reset()

    def stop_streaming(self):
        self._streaming = False
        self._stop_tf()

    def _stop_tf(self):
        for tf in (self.model.enc_tf, self.model.dec_tf):
            if tf.is_streaming:
                tf._stop_streaming()
        self._enc_state = self._dec_state = None

    def reset(self):
        """Forget all streaming history (both directions)."""
        self._stop_tf()
        self._enc_audio = np.zeros(0, np.float32)       # past + look-ahead audio, 24 kHz
        self._enc_frames_in = 0
        self._synth = W.AlignedWorldSynth()
        self._enc_convbuf = None
        self._dec_hist = None

    @torch.no_grad()
    def stream_encode(self, pcm):
        """Feed whole 80 ms frames; returns (codes [K, n], latent [D, n]) for the frames that are
        complete including their one-frame analysis look-ahead (the first call returns one frame
        fewer than it was fed: ``stream_delay_frames`` counts this)."""
        if not self._streaming:
            raise RuntimeError("call start_streaming() first")
        x = np.asarray(pcm, np.float32).reshape(-1)
        if len(x) % FRAME_SAMPLES:
            raise ValueError("stream_encode takes whole frames of 1920 samples")
        codes_out, lat_out = [], []
        for i in range(0, len(x), FRAME_SAMPLES):
            self._enc_audio = np.concatenate([self._enc_audio, x[i:i + FRAME_SAMPLES]])
            self._enc_frames_in += 1
            # frame to encode: the one before the newest (newest is look-ahead)
            n_buf = len(self._enc_audio) // FRAME_SAMPLES
            if self._enc_frames_in < 2:
                continue
            # F0 over the whole buffer, envelope and aperiodicity of the target frame only
            target = W.analyze(self._enc_audio, slice((n_buf - 2) * SUB, (n_buf - 1) * SUB))
            keep = (self.ENC_HISTORY + 1) * FRAME_SAMPLES
            if len(self._enc_audio) > keep:
                self._enc_audio = self._enc_audio[-keep:]
            c, z = self._stream_encode_feats(target)
            codes_out.append(c)
            lat_out.append(z)
        if not codes_out:
            return np.zeros((self._nq, 0), np.int64), np.zeros((self.latent_dim, 0), np.float32)
        return np.concatenate(codes_out, 1), np.concatenate(lat_out, 1)

    def _stream_encode_feats(self, target):
        m = self.model
        xn = m.normalize(torch.from_numpy(np.ascontiguousarray(target, np.float32))[None].to(self.device))
        # causal convs over 5 ms frames: keep their left context (3 convs x 4 frames)
        ctx = 12
        if self._enc_convbuf is None:
            self._enc_convbuf = xn[..., :1].repeat(1, 1, ctx)
        full = torch.cat([self._enc_convbuf, xn], -1)
        self._enc_convbuf = full[..., -ctx:]
        h = m.enc_in(full)[..., ctx:]
        h = m.enc_down(h)
        if self._enc_state is None:
            m.enc_tf.streaming_forever(1)
            self._enc_state = True
        z = m.enc_tf(h.transpose(1, 2)).transpose(1, 2)
        m.quantizer.set_num_codebooks(self._nq)
        codes = m.quantizer.encode(z)[0]
        return codes.cpu().numpy().astype(np.int64), z[0].cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def stream_decode_overlap(self, codes, prefix, states, next_codes, next_states):
        """Overlap (docs/latency.md): each final frame j comes with the provisional frame j+1
        (next_codes [k, n], next_states [n, 8]; absent when its decodable prefix is empty), and
        frame j is decoded at once: the decoder transformer runs the provisional frame from a copy
        of its streaming state, which is then put back, so only final frames enter its history.
        No lead-in frame; a frame without a provisional successor decodes without look-ahead."""
        from ..link import frames as F_
        if not self._streaming:
            raise RuntimeError("call start_streaming() first")
        c = np.asarray(codes, np.int64)
        prefix = _check_prefix(prefix, c.shape)
        nc = np.asarray(next_codes, np.int64)
        npre = F_.decodable_prefixes(np.asarray(next_states, np.uint8))
        m = self.model
        if self._dec_state is None:
            m.dec_tf.streaming_forever(1)
            self._dec_state = True

        def up_of(col, k):
            q = m.quantizer.decode(torch.from_numpy(col[:k, None].copy())[None].to(self.device))
            return m.dec_up(m.dec_tf(q.transpose(1, 2)).transpose(1, 2))

        out = []
        for j in range(c.shape[1]):
            k = c.shape[0] if prefix is None else int(prefix[j])
            up = up_of(c[:, j], k)
            self._dec_hist = up if self._dec_hist is None else torch.cat([self._dec_hist, up], -1)[..., -2 * SUB:]
            win, look = self._dec_hist, int(min(npre[j], nc.shape[0])) > 0
            if look:
                saved = _snapshot(m.dec_tf)
                win = torch.cat([win, up_of(nc[:, j], int(min(npre[j], nc.shape[0])))], -1)
                _restore(m.dec_tf, saved)
            y = m.head(m.dec_conv(win))
            n = win.shape[-1]
            seg = y[..., n - 2 * SUB:n - SUB] if look else y[..., n - SUB:]
            ahead = y[..., n - SUB:n - SUB + W.AHEAD] if look else None    # the provisional frame's start
            out.append(self._synth.process(m.denormalize(seg)[0].cpu().numpy(),
                                           None if ahead is None else m.denormalize(ahead)[0].cpu().numpy()))
        if not out:
            return np.zeros(0, np.float32)
        return np.concatenate(out).astype(np.float32)

    def decode_overlap(self, codes, prefix, states, next_codes, next_states) -> np.ndarray:
        """Offline twin of stream_decode_overlap (the same code from a fresh decoder state); a
        stream in progress, encoder or decoder, is left as it was."""
        tf = self.model.dec_tf
        live = tf.is_streaming
        saved_tf = _snapshot(tf) if live else None
        keys = ("_streaming", "_dec_hist", "_synth", "_dec_state")
        saved = tuple(getattr(self, k, None) for k in keys)      # a codec never streamed has none yet
        if live:
            tf._stop_streaming()
        self._streaming, self._dec_hist, self._synth, self._dec_state = True, None, W.AlignedWorldSynth(), None
        try:
            return self.stream_decode_overlap(codes, prefix, states, next_codes, next_states)
        finally:
            tf._stop_streaming()
            if live:
                tf.streaming_forever(1)
                _restore(tf, saved_tf)
            for k, v in zip(keys, saved):
                setattr(self, k, v)

    @torch.no_grad()
    def stream_decode(self, codes, prefix=None):
        """Feed codes [k, n]; returns audio for the frames whose one-frame decoder look-ahead has
        arrived (n * 1920 samples once primed; the first frame fed yields nothing)."""
        if not self._streaming:
            raise RuntimeError("call start_streaming() first")
        c = np.asarray(codes, np.int64)
        if c.ndim != 2:
            raise ValueError("codes must be [K, n]")
        prefix = _check_prefix(prefix, c.shape)
        m = self.model
        out = []
        for j in range(c.shape[1]):
            k = c.shape[0] if prefix is None else int(prefix[j])
            q = m.quantizer.decode(torch.from_numpy(c[:k, j:j + 1])[None].to(self.device))   # [1, D, 1]
            if self._dec_state is None:
                m.dec_tf.streaming_forever(1)
                self._dec_state = True
            h = m.dec_tf(q.transpose(1, 2)).transpose(1, 2)
            up = m.dec_up(h)                                                 # [1, C, 16]
            # conv stack with 6-subframe look-ahead: keep the previous two frames of input
            if self._dec_hist is None:
                self._dec_hist = up
                self._dec_first = True
                continue
            self._dec_hist = torch.cat([self._dec_hist, up], -1)[..., -3 * SUB:]
            y = m.head(m.dec_conv(self._dec_hist))
            n = self._dec_hist.shape[-1]
            # the frame before the newest is final (its look-ahead is inside the newest frame);
            # the very first frame also needs its left edge as computed offline (replicate pad)
            s0 = 0 if self._dec_first else n - 2 * SUB
            self._dec_first = False
            seg, ahead = y[..., s0:s0 + SUB], y[..., s0 + SUB:s0 + SUB + W.AHEAD]   # + the newest frame's start
            feats = m.denormalize(seg)[0].cpu().numpy()
            out.append(self._synth.process(feats, m.denormalize(ahead)[0].cpu().numpy()))
        if not out:
            return np.zeros(0, np.float32)
        return np.concatenate(out).astype(np.float32)
