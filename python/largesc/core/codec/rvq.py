"""Codebook-vector arithmetic on moshi residual VQ layers, for recovery in the quantizer's space.

A frame's quantized vector is the sum of one entry per codebook. `dequantize` gives that sum for
each frame's known prefix of codebooks; `requantize` keeps the known prefix and picks the other
codebooks by residual quantization of a target vector (the same greedy rule the encoder uses).
Both work on a list of moshi `VectorQuantization` layers (one per codebook, same space), on
whatever device the layers are (`layers_device`): numpy in and out, tensors made there.
"""
from __future__ import annotations

import numpy as np
import torch


def _keep(prefix, num_codebooks: int, num_frames: int) -> np.ndarray:
    """[K, F] bool: codebook k of frame f counts (k < prefix[f]); all when prefix is None."""
    if prefix is None:
        return np.ones((num_codebooks, num_frames), bool)
    p = np.asarray(prefix, np.int64).reshape(-1)
    if p.shape != (num_frames,) or (p < 0).any() or (p > num_codebooks).any():
        raise ValueError(f"prefix must be [F] = [{num_frames}] values in 0..{num_codebooks}, got {p}")
    return np.arange(num_codebooks)[:, None] < p[None, :]


def layers_device(layers) -> torch.device:
    """The device of a list of VQ layers (moshi modules, or TensorCodebook): that of their first
    parameter or buffer; CPU for layers without tensors."""
    layer = layers[0]
    entries = getattr(layer, "entries", None)
    if isinstance(entries, torch.Tensor):
        return entries.device
    if isinstance(layer, torch.nn.Module):
        for t in layer.parameters():
            return t.device
        for t in layer.buffers():
            return t.device
    return torch.device("cpu")


class TensorCodebook:
    """A codebook tensor [card, D] with the encode/decode interface of a moshi VQ layer."""

    def __init__(self, entries: torch.Tensor):
        self.entries = entries

    def encode(self, x: torch.Tensor) -> torch.Tensor:           # [1, D, F] -> [1, F]
        return torch.cdist(x[0].T, self.entries).argmin(-1)[None]

    def decode(self, codes: torch.Tensor) -> torch.Tensor:       # [1, F] -> [1, D, F]
        return self.entries[codes[0]].T[None]


@torch.no_grad()
def dequantize(layers, codes: np.ndarray, prefix=None) -> np.ndarray:
    """Sum of the codebook vectors of codes [K, F] (K <= len(layers)) over each frame's prefix -> [D, F]."""
    return _dequantize(layers, codes, prefix, layers_device(layers)).cpu().numpy()


def _dequantize(layers, codes, prefix, device) -> torch.Tensor:
    c = torch.as_tensor(np.asarray(codes, np.int64), device=device)
    k_all, f_all = c.shape
    keep = torch.as_tensor(_keep(prefix, k_all, f_all), device=device)
    acc = None
    for k in range(k_all):
        v = layers[k].decode(c[k][None])[0] * keep[k][None, :]           # [D, F]
        acc = v if acc is None else acc + v
    return acc.float()


@torch.no_grad()
def requantize(layers, target: np.ndarray, codes: np.ndarray, prefix) -> np.ndarray:
    """codes [K, F] with codebooks >= prefix[f] of frame f re-chosen so that the sum approaches
    target [D, F] (residual quantization after the known prefix)."""
    codes = np.array(codes, np.int64, copy=True)
    k_all, f_all = codes.shape
    keep = _keep(prefix, k_all, f_all)
    dev = layers_device(layers)
    r = torch.as_tensor(np.asarray(target, np.float32), device=dev) - _dequantize(layers, codes, prefix, dev)
    for k in range(k_all):
        if keep[k].all():
            continue
        free = torch.as_tensor(~keep[k], device=dev)
        idx = layers[k].encode(r[None])[0]                                # [F]
        codes[k] = np.where(~keep[k], idx.cpu().numpy(), codes[k])
        r = r - layers[k].decode(idx[None])[0] * free[None, :]
    return codes
