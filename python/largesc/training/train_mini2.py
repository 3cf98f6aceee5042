"""Train the `mini` v2 codec (core/codec/mini2.py): k-means residual VQ over DRED latents, then
the feature decoder. ``gr-largesc train-codec2`` / ``python -m gnuradio.largesc.training.train_mini2``.

    --stage rvq      fit 8 x 2048 codebooks (k-means, stage by stage on the residual) on the
                     normalised 42-d frame latents of the train split
    --stage decoder  train the GRU decoder: dequantized vectors of a random codebook prefix
                     (+ look-ahead) -> the eight 10 ms LPCNet feature frames; MSE on normalised
                     features, pitch weighted up. Resumable (run folder: training/run_folder.py).
    --stage export   write config.json + model.safetensors to --out

Data: training/dred_cache.py (cache/corpus/dred). Real speech is sampled twice as often as TTS.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..core.codec import mini2
from ..core.profiles import models_dir
from . import dred_cache
from .workspace import CACHE

LOG = logging.getLogger("largesc.train_mini2")
FEATURE_WEIGHTS = torch.tensor([1.0] * 18 + [3.0, 1.0])     # pitch period counts more


def load_data(cache: Path, splits=("train",)):
    clips = dred_cache.load_split(cache, splits)
    if not clips:
        raise SystemExit(f"no cached clips in {cache} for {splits}: run python -m gnuradio.largesc.training.dred_cache")
    z = [c[1] for c in clips]
    f = [c[2] for c in clips]
    real = np.array([r["source"] not in ("espeak-ng", "flite", "festival") and "synth" not in r["source"]
                     for r, _, _ in clips])
    return clips, z, f, real


def kmeans(x: torch.Tensor, k: int, iters: int, gen: torch.Generator) -> torch.Tensor:
    """Lloyd's k-means, initialised on random points; empty clusters re-seeded from far points."""
    c = x[torch.randperm(len(x), generator=gen)[:k]].clone()
    for it in range(iters):
        idx = torch.cat([torch.cdist(x[i:i + 65536], c).argmin(-1) for i in range(0, len(x), 65536)])
        counts = torch.bincount(idx, minlength=k).float()
        sums = torch.zeros_like(c).index_add_(0, idx, x)
        empty = counts == 0
        c = torch.where(empty[:, None], c, sums / counts.clamp(min=1)[:, None])
        if empty.any():
            far = torch.randperm(len(x), generator=gen)[: int(empty.sum())]
            c[empty] = x[far]
    return c


def fit_rvq(args, model: mini2.Mini2Model, z_all: np.ndarray) -> None:
    gen = torch.Generator().manual_seed(args.seed)
    z = torch.from_numpy(z_all)
    model.z_mean.copy_(z.mean(0))
    model.z_std.copy_(z.std(0) + 1e-6)
    r = (z - model.z_mean) / model.z_std
    if len(r) > args.rvq_points:
        r = r[torch.randperm(len(r), generator=gen)[: args.rvq_points]]
    total = float((r ** 2).sum())
    for k in range(mini2.K):
        t0 = time.time()
        cb = kmeans(r, mini2.CARD, args.kmeans_iters, gen)
        model.codebooks[k].copy_(cb)
        idx = torch.cat([torch.cdist(r[i:i + 65536], cb).argmin(-1) for i in range(0, len(r), 65536)])
        r = r - cb[idx]
        LOG.info("codebook %d: residual energy %.4f of the input (%.0f s)", k, float((r ** 2).sum()) / total,
                 time.time() - t0)


def batches(z, f, real, model, args, gen: np.random.Generator):
    """Random windows of `frames` frames: (input [B, T, *], target [B, 8 T, 20] normalised)."""
    w = np.where(real, 2.0, 1.0) * np.array([len(a) for a in z], float)
    w /= w.sum()
    T = args.frames
    while True:
        xs, ys, ps = [], [], []
        for i in gen.choice(len(z), args.batch, p=w):
            n = len(z[i])
            s = int(gen.integers(0, max(1, n - T)))
            zz, ff = z[i][s:s + T], f[i][8 * s:8 * (s + T)]
            if len(zz) < T:
                zz = np.pad(zz, ((0, T - len(zz)), (0, 0)))
                ff = np.pad(ff, ((0, 8 * T - len(ff)), (0, 0)))
            xs.append(zz)
            ys.append(ff)
            mode = gen.random()
            if mode < 0.5:
                p = np.full(T, mini2.K)
            elif mode < 0.8:
                p = np.full(T, int(gen.integers(1, mini2.K + 1)))
            else:
                p = gen.integers(1, mini2.K + 1, T)
            ps.append(p)
        zn = (torch.from_numpy(np.stack(xs)) - model.z_mean) / model.z_std
        p = torch.from_numpy(np.stack(ps))
        with torch.no_grad():
            codes = model.quantize(zn.reshape(-1, mini2.Z_DIM)).reshape(len(xs), T, -1)
            q = model.dequantize(codes.reshape(-1, mini2.K), p.reshape(-1)).reshape(len(xs), T, -1)
        y = (torch.from_numpy(np.stack(ys)) - model.f_mean) / model.f_std
        yield model.decoder_input(q, p), y


def train_decoder(args, model, z, f, real, run_dir: Path) -> None:
    from safetensors.torch import load_file

    from .run_folder import load_optim, open_run, save_run
    torch.manual_seed(args.seed)
    fa = np.concatenate(f)
    model.f_mean.copy_(torch.from_numpy(fa.mean(0)))
    model.f_std.copy_(torch.from_numpy(fa.std(0) + 1e-6))
    params = [p for n, p in model.named_parameters()]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    dev, run, state = open_run(run_dir, args.threads, "cpu")
    step = 0
    if args.resume and state:
        model.load_state_dict(load_file(str(run / "model.safetensors")))
        load_optim(opt, run, state, dev)
        step = int(state["step"])
    gen = np.random.default_rng(args.seed + step)
    t0 = time.time()
    it = batches(z, f, real, model, args, gen)
    losses = []
    while step < args.steps:
        lr = args.lr * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = next(it)
        pred, _ = model.decode_feats(x)
        loss = ((pred - y) ** 2 * FEATURE_WEIGHTS).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(loss))
        step += 1
        if step % 50 == 0:
            LOG.info("step %d loss %.4f lr %.2e (%.1f s/step)", step, np.mean(losses[-50:]), lr,
                     (time.time() - t0) / 50)
            t0 = time.time()
        if step % args.save_every == 0 or step == args.steps:
            save_run(run, {"step": step, "loss": float(np.mean(losses[-50:]))}, model, opt)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gr-largesc train-codec2", description=__doc__.split("\n\n")[0])
    ap.add_argument("--stage", choices=["rvq", "decoder", "export", "all"], default="all")
    ap.add_argument("--cache", default=str(CACHE / "corpus" / "dred"))
    ap.add_argument("--run-dir", default=str(CACHE / "train" / "codec_mini2"))
    ap.add_argument("--out", default=str(models_dir() / "mini" / "codec2"))
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--sub-hidden", type=int, default=0, help="> 0: a second GRU at the 10 ms rate")
    ap.add_argument("--lookahead", type=int, default=0, help="frames of future vectors the decoder sees (0 or 1)")
    ap.add_argument("--rvq-points", type=int, default=200000)
    ap.add_argument("--kmeans-iters", type=int, default=12)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--save-every", type=int, default=200)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = mini2.Mini2Config(hidden=args.hidden, layers=args.layers, lookahead=args.lookahead, sub_hidden=args.sub_hidden)
    model = mini2.Mini2Model(cfg)
    rvq_file = run_dir / "rvq.pt"
    _, z, f, real = load_data(Path(args.cache))
    if args.stage in ("rvq", "all") and not (rvq_file.is_file() and args.resume):
        fit_rvq(args, model, np.concatenate(z))
        torch.save({k: getattr(model, k) for k in ("z_mean", "z_std", "codebooks")}, rvq_file)
    saved = torch.load(rvq_file)
    for k, v in saved.items():
        getattr(model, k).copy_(v)
    if args.stage in ("decoder", "all"):
        train_decoder(args, model, z, f, real, run_dir)
    if args.stage in ("export", "all"):
        from safetensors.torch import load_file
        model.load_state_dict(load_file(str(run_dir / "model.safetensors")))
        for k, v in saved.items():
            getattr(model, k).copy_(v)
        mini2.save_mini2(model, args.out, {"trained_steps": args.steps, "lookahead": cfg.lookahead})
        LOG.info("exported %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
