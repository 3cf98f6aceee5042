"""Fit the `mini` v2 codec (core/codec/mini2.py): k-means residual VQ, 8 x 2048, over the
normalised 61-d frame vectors (two DRED latents + the encoder state) of the train split.
``gr-largesc train-codec2`` / ``python -m gnuradio.largesc.training.train_mini2 [--out DIR]``.

Data: training/dred_cache.py (cache/corpus/dred). Real speech is sampled twice as often as TTS.
The encoder, decoder and vocoder are Opus's (frozen): the codebooks are all that is fitted.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..core.codec import mini2
from . import dred_cache
from .workspace import CACHE

LOG = logging.getLogger("largesc.train_mini2")
SYNTH_SOURCES = ("espeak-ng", "flite", "festival")


def load_vectors(cache: Path, splits=("train",), seed: int = 0) -> np.ndarray:
    """[N, 61] frame vectors; real speech appears twice (weighted above TTS)."""
    clips = dred_cache.load_split(cache, splits)
    if not clips:
        raise SystemExit(f"no cached clips in {cache}: run python -m gnuradio.largesc.training.dred_cache")
    out = []
    for r, z, s, _ in clips:
        v = np.concatenate([z, s], 1)
        synth = any(t in r.get("source", "") for t in SYNTH_SOURCES) or "synth" in r.get("source", "")
        out += [v] if synth else [v, v]
    return np.concatenate(out).astype(np.float32)


def kmeans(x: torch.Tensor, k: int, iters: int, gen: torch.Generator) -> torch.Tensor:
    """Lloyd's k-means from random points; empty clusters re-seeded from random points."""
    c = x[torch.randperm(len(x), generator=gen)[:k]].clone()
    for _ in range(iters):
        idx = assign(x, c)
        counts = torch.bincount(idx, minlength=k).float()
        sums = torch.zeros_like(c).index_add_(0, idx, x)
        empty = counts == 0
        c = torch.where(empty[:, None], c, sums / counts.clamp(min=1)[:, None])
        if empty.any():
            c[empty] = x[torch.randperm(len(x), generator=gen)[: int(empty.sum())]]
    return c


def assign(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.cdist(x[i:i + 65536], c).argmin(-1) for i in range(0, len(x), 65536)])


def fit(v: np.ndarray, points: int, iters: int, seed: int, state_weight: float = 1.0) -> mini2.Mini2Model:
    """k-means RVQ; `state_weight` > 1 makes errors on the encoder state (to which Opus's DRED
    decoder is very sensitive) cost more than errors on the latents."""
    gen = torch.Generator().manual_seed(seed)
    model = mini2.Mini2Model()
    x = torch.from_numpy(v)
    model.v_mean.copy_(x.mean(0))
    std = x.std(0) + 1e-6
    std[2 * mini2.LAT:] /= state_weight
    model.v_std.copy_(std)
    r = (x - model.v_mean) / model.v_std
    if len(r) > points:
        r = r[torch.randperm(len(r), generator=gen)[:points]]
    total = float((r ** 2).sum())
    for k in range(mini2.K):
        t0 = time.time()
        cb = kmeans(r, mini2.CARD, iters, gen)
        model.codebooks[k].copy_(cb)
        r = r - cb[assign(r, cb)]
        LOG.info("codebook %d: residual energy %.4f of the input (%.0f s)", k, float((r ** 2).sum()) / total,
                 time.time() - t0)
    return model


def export_tokens(cache: Path, codec_dir: Path, out: Path) -> int:
    """Tokens of the train and valid clips -> out/<clip>_<split>.npy (int16 [8, F]), for
    `gr-largesc train-lm --tokens out` (held-out clips are never written)."""
    import json
    model = mini2.load_mini2(codec_dir).model
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for r, z, s, _ in dred_cache.load_split(cache, ("train", "valid")):
        if len(z) < 2:
            continue
        vn = (torch.from_numpy(np.concatenate([z, s], 1)) - model.v_mean) / model.v_std
        with torch.no_grad():
            codes = model.quantize(vn).T.numpy().astype(np.int16)
        np.save(out / f"{r['key']}_{r['split']}.npy", codes)
        n += 1
    (out / "DONE").write_text(json.dumps({"codec": str(codec_dir), "files": n}))
    return n


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gr-largesc train-codec2", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=str(CACHE / "corpus" / "dred"))
    ap.add_argument("--out", default=str(CACHE / "train" / "codec_mini2" / "export"),
                    help="weight folder (load it with --profile mini --mimi-weights DIR)")
    ap.add_argument("--points", type=int, default=250000, help="frames sampled for k-means")
    ap.add_argument("--iters", type=int, default=15, help="Lloyd iterations per codebook")
    ap.add_argument("--state-weight", type=float, default=1.0, help="weight of the state dims in the k-means")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--export-tokens", default=None, metavar="DIR",
                    help="only write the train/valid tokens of the codec at --out to DIR (for train-lm --tokens)")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    if args.export_tokens:
        LOG.info("wrote %d token files", export_tokens(Path(args.cache), Path(args.out), Path(args.export_tokens)))
        return 0
    v = load_vectors(Path(args.cache))
    LOG.info("%d frame vectors (real speech counted twice)", len(v))
    model = fit(v, args.points, args.iters, args.seed, args.state_weight)
    mini2.save_mini2(model, args.out, {"frames": int(len(v)), "points": args.points, "iters": args.iters,
                                       "seed": args.seed, "state_weight": args.state_weight})
    LOG.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
