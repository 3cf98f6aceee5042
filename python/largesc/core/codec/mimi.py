"""Kyutai's Mimi (moshi.models.MimiModel) behind the TokenCodec interface: the `kyutai`,
`kyutai-arch` and `tiny` profiles (real weights, random full-size, random small)."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch  # noqa: E402
from moshi.models import loaders  # noqa: E402

from .. import torch_env  # noqa: F401  (sets NO_TORCH_COMPILE before moshi is imported)
from ..link import frames  # noqa: E402
from . import rvq  # noqa: E402
from .base import ModelFileError, TokenCodec, check_codes  # noqa: E402

KYUTAI_REPO = loaders.DEFAULT_REPO
KYUTAI_MIMI_FILE = loaders.MIMI_NAME


def mimi_config(profile: str) -> dict:
    """Mimi architecture config for a profile (kyutai/kyutai-arch share moshi's default)."""
    if profile in ("kyutai", "kyutai-arch"):
        return copy.deepcopy(loaders._mimi_config)
    if profile == "tiny":
        return tiny_mimi_config()
    raise ValueError(f"profile {profile!r} has no Mimi config")


def tiny_mimi_config() -> dict:
    """A small Mimi: same frame geometry (24 kHz, 12.5 Hz, hop 1920) and 8 x 2048 codebooks."""
    cfg = copy.deepcopy(loaders._mimi_config)
    dim = 64
    cfg["seanet"].update(dimension=dim, n_filters=8)
    cfg["quantizer"].update(dimension=32, n_q=8, input_dimension=dim, output_dimension=dim)
    cfg["transformer"].update(d_model=dim, num_heads=4, num_layers=1, dim_feedforward=128,
                              input_dimension=dim, output_dimensions=[dim], context=32)
    return cfg


class MimiCodec(TokenCodec):
    """Kyutai's Mimi (moshi.models.MimiModel) behind the TokenCodec interface.

    Streaming mode keeps convolution and transformer state between calls; every call takes whole
    80 ms frames. The latent is taken once per call (`encode_to_latent(quantize=False)`) and
    quantised here, because each encode call advances the streaming state.
    """

    def __init__(self, model, device: torch.device, num_codebooks: int = frames.NUM_CODEBOOKS,
                 description: str = ""):
        self.model = model
        self.device = device
        self.description = description
        self._streaming = False
        self.num_codebooks = num_codebooks

    @property
    def num_codebooks(self) -> int:
        return self._num_codebooks

    @num_codebooks.setter
    def num_codebooks(self, k: int) -> None:
        if not 1 <= int(k) <= frames.NUM_CODEBOOKS:
            raise ValueError(f"num_codebooks must be in 1..{frames.NUM_CODEBOOKS}, got {k}")
        self._num_codebooks = int(k)
        self.model.set_num_codebooks(self._num_codebooks)

    @property
    def latent_dim(self) -> int:
        return int(self.model.dimension)

    def _tensor(self, pcm: np.ndarray) -> torch.Tensor:
        pcm = np.asarray(pcm, dtype=np.float32).reshape(-1)
        return torch.from_numpy(np.ascontiguousarray(pcm)).to(self.device)[None, None, :]

    @torch.no_grad()
    def _latent_and_codes(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        emb = self.model.encode_to_latent(x, quantize=False)
        codes = self.model.quantizer.encode(emb)
        return codes[0].cpu().numpy().astype(np.int64), emb[0].float().cpu().numpy()

    def encode_latent(self, pcm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Offline: pcm [T] -> (codes [K, ceil(T/1920)], unquantised latent [D, F])."""
        if self._streaming:
            raise RuntimeError("encode_latent() is offline; this codec is streaming (use stream_encode)")
        n = len(pcm)
        pad = (-n) % self.frame_samples
        pcm = np.pad(np.asarray(pcm, dtype=np.float32).reshape(-1), (0, pad))
        return self._latent_and_codes(self._tensor(pcm))

    @torch.no_grad()
    def decode(self, codes: np.ndarray, prefix: np.ndarray | None = None) -> np.ndarray:
        """codes [k, F] (any prefix k of the codebooks) -> pcm [F * 1920]; see TokenCodec.decode."""
        codes = check_codes(codes)
        nfr = codes.shape[1]
        if nfr == 0:
            return np.zeros(0, dtype=np.float32)
        codes_t = torch.from_numpy(codes).to(self.device)[None]
        if prefix is not None:
            prefix = np.clip(np.asarray(prefix, dtype=np.int64).reshape(-1), 1, codes.shape[0])
            if prefix.shape != (nfr,):
                raise ValueError(f"prefix must have one entry per frame ({nfr}), got {prefix.shape}")
            if (prefix == codes.shape[0]).all():
                prefix = None
        if prefix is None:
            out = self.model.decode(codes_t)
        else:
            out = self._decode_latent(self._masked_latent(codes_t, torch.from_numpy(prefix).to(self.device)))
        return out[0, 0, : nfr * self.frame_samples].float().cpu().numpy()

    def _masked_latent(self, codes: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """Quantiser output with codebook k of frame f kept only where k < prefix[f].

        Equal to `quantizer.decode(codes[:, :k])` for a uniform prefix k: the split RVQ output is a
        sum of per-codebook embeddings followed by bias-free 1x1 projections, so masking is exact.
        """
        q = self.model.quantizer
        keep = (torch.arange(codes.shape[1], device=codes.device)[:, None] < prefix[None, :]).float()

        def part(rvq, first: int, count: int) -> torch.Tensor:
            acc = 0
            for i in range(count):
                emb = rvq.vq.layers[i].decode(codes[:, first + i])          # [1, D, F]
                acc = acc + emb * keep[first + i][None, None, :]
            return rvq.output_proj(acc)

        n_sem = q.n_q_semantic
        latent = part(q.rvq_first, 0, n_sem)
        if codes.shape[1] > n_sem:
            latent = latent + part(q.rvq_rest, n_sem, codes.shape[1] - n_sem)
        return latent

    def _decode_latent(self, emb: torch.Tensor) -> torch.Tensor:
        """The part of `MimiModel.decode` after the quantiser (same streaming-state handling)."""
        m, state = self.model, self.model._streaming_state
        emb = m._to_encoder_framerate(emb)
        if m.decoder_transformer is not None:
            (emb,) = state.graphed_tr_dec(emb) if state is not None else m.decoder_transformer(emb)
        return state.graphed_decoder(emb).clone() if state is not None else m.decoder(emb)

    def start_streaming(self) -> None:
        if not self._streaming:
            self.model.streaming_forever(1)
            self._streaming = True

    def stop_streaming(self) -> None:
        if self._streaming:
            self.model._stop_streaming()
            self._streaming = False

    def reset(self) -> None:
        """Forget all history: clears the streaming state (if streaming)."""
        if self._streaming:
            self.model.reset_streaming()

    def stream_encode(self, pcm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Streaming: pcm of whole frames -> (codes [K, F], latent [D, F])."""
        if not self._streaming:
            raise RuntimeError("call start_streaming() first")
        if len(pcm) == 0 or len(pcm) % self.frame_samples:
            raise ValueError(f"streaming input must be a positive multiple of {self.frame_samples} samples, got {len(pcm)}")
        return self._latent_and_codes(self._tensor(pcm))

    def stream_decode(self, codes: np.ndarray, prefix: np.ndarray | None = None) -> np.ndarray:
        if not self._streaming:
            raise RuntimeError("call start_streaming() first")
        return self.decode(codes, prefix)

    # Mimi's split RVQ: codebook 0 (rvq_first, semantic) and codebooks 1..7 (rvq_rest, a residual
    # chain) quantize the same latent in two spaces; their vectors are concatenated here.
    def _split_layers(self):
        q = self.model.quantizer
        return q.rvq_first.vq.layers[:1], q.rvq_rest.vq.layers[: frames.NUM_CODEBOOKS - 1]

    def dequantize(self, codes: np.ndarray, prefix: np.ndarray | None = None) -> np.ndarray:
        """codes [k, F] -> [D0 + D1, F]: codebook 0's entry, then the sum of codebooks 1.. over each prefix."""
        first, rest = self._split_layers()
        codes = np.asarray(codes, np.int64)
        f_all = codes.shape[1]
        p = np.full(f_all, codes.shape[0]) if prefix is None else np.asarray(prefix, np.int64)
        v0 = rvq.dequantize(first, codes[:1], np.minimum(p, 1))
        if codes.shape[0] > 1:
            v1 = rvq.dequantize(rest, codes[1:], np.maximum(p - 1, 0))
        else:
            v1 = np.zeros((_dim(rest), f_all), np.float32)
        return np.concatenate([v0, v1], 0)

    def requantize(self, target: np.ndarray, codes: np.ndarray, prefix: np.ndarray) -> np.ndarray:
        """codes [8, F]: codebooks >= prefix[f] re-chosen to approach target [D0 + D1, F]."""
        first, rest = self._split_layers()
        codes = np.asarray(codes, np.int64)
        p = np.asarray(prefix, np.int64)
        d0 = _dim(first)
        out = codes.copy()
        out[:1] = rvq.requantize(first, target[:d0], codes[:1], np.minimum(p, 1))
        out[1:] = rvq.requantize(rest, target[d0:], codes[1:], np.maximum(p - 1, 0))
        return out


def _dim(layers) -> int:
    """Dimension of a VQ layer list's space (decoding one code on the layers' device)."""
    return layers[0].decode(torch.zeros(1, 1, dtype=torch.long, device=rvq.layers_device(layers))).shape[1]


def _randomise_codebooks(model, generator: torch.Generator) -> None:
    """Random-init Mimi codebooks are all zeros (every code 0): draw entries at the scale of the
    quantiser's input, so that tokens vary with the audio as they do in a trained model."""
    from moshi.quantization.core_vq import EuclideanCodebook
    probe = torch.randn(1, 1, 4 * frames.FRAME_SAMPLES, generator=generator) * 0.1
    with torch.no_grad():
        emb = model.encode_to_latent(probe, quantize=False)
        for rvq in (model.quantizer.rvq_first, model.quantizer.rvq_rest):
            scale = float(rvq.input_proj(emb).std()) if rvq.input_proj is not None else float(emb.std())
            for cb in rvq.modules():
                if isinstance(cb, EuclideanCodebook):
                    entries = torch.randn(cb.embedding_sum.shape, generator=generator) * scale
                    cb.embedding_sum.data.copy_(entries.to(cb.embedding_sum))
                    cb.cluster_usage.data.fill_(1.0)
                    cb._initialized.data.fill_(1.0)
                    cb._embedding = None


def _random_mimi(config: dict, device: torch.device, seed: int):
    from moshi.models import loaders
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = loaders.get_mimi(None, config, device="cpu")
        gen = torch.Generator().manual_seed(seed)
        _randomise_codebooks(model, gen)
    return model.to(device)


def _kyutai_mimi_file(mimi_weights: str | Path | None) -> Path:
    """Local Mimi weights: an explicit path, or the Hugging Face cache (downloading if online)."""
    if mimi_weights is not None:
        path = Path(mimi_weights).expanduser()
        if not path.is_file():
            raise ModelFileError(f"Mimi weights not found: {path}")
        return path
    from huggingface_hub import hf_hub_download
    try:
        return Path(hf_hub_download(KYUTAI_REPO, KYUTAI_MIMI_FILE))
    except Exception as exc:  # offline, no cache, no network: say which file and how to get it
        raise ModelFileError(
            f"Kyutai Mimi weights '{KYUTAI_MIMI_FILE}' from '{KYUTAI_REPO}' are not in the "
            f"Hugging Face cache and could not be downloaded ({type(exc).__name__}). On a machine with network "
            f"run: huggingface-cli download {KYUTAI_REPO} {KYUTAI_MIMI_FILE}, or pass the file "
            f"with --mimi-weights / mimi_weights=") from exc


def _load_mimi_file(path: Path, config: dict, device: torch.device):
    from moshi.models import loaders
    if path.suffix not in (".safetensors", ".sft", ".sfts"):
        raise ModelFileError(f"refusing to load {path}: weights load from safetensors files only")
    try:
        return loaders.get_mimi(path, config, device=device)
    except Exception as exc:
        raise ModelFileError(f"cannot load Mimi weights {path}: {type(exc).__name__}: {exc}") from exc
