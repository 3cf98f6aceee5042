"""Train the `latent` recovery predictor on the codec's tokens (core/recovery/latent_predictor.py).

    gr-largesc train-latent [--cache cache/corpus/dred] [--codec models/mini/codec] \
        [--out python/largesc/models/mini/recovery/latent] [--steps 12000]

Data: the train split of the DRED cache (training/dred_cache.py), quantized by the codec; the
valid split for the held-back loss (held-out clips are never read). Each example is a frame t
with what a receiver could have: the last `context` frames (at a random decodable prefix, all 8
codebooks most of the time), frame t's known prefix m (0..7; m = 0 a whole lost frame, drawn
most often) and frame t+1 at its own prefix, present or not. Target: the rest of frame t's
quantized vector beyond its prefix (MSE). The log compares the held-back error on lost frames
with `repeat` (the last vector) and `interp` (the mean of the neighbours).
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..core.codec import mini2
from ..core.profiles import models_dir
from ..core.recovery.latent_predictor import LatentPredictor, PredictorConfig, save_predictor
from . import dred_cache
from .workspace import CACHE

LOG = logging.getLogger("largesc.train_latent")
K = mini2.K


def codec_sha(codec_dir: Path) -> str:
    return hashlib.sha256((Path(codec_dir) / mini2.WEIGHTS_NAME).read_bytes()).hexdigest()


def entries(cache: Path, codec_dir: Path, splits) -> tuple[torch.Tensor, np.ndarray]:
    """Per-frame codebook entries [N, 8, D] (normalised quantizer space) of the clips in `splits`,
    concatenated, and each frame's clip start index [N]."""
    model = mini2.load_mini2(codec_dir).model
    es, starts, n = [], [], 0
    for _, z, s, _ in dred_cache.load_split(cache, splits):
        vn = (torch.from_numpy(np.concatenate([z, s], 1)).float() - model.v_mean) / model.v_std
        with torch.no_grad():
            codes = model.quantize(vn)
        es.append(torch.stack([model.codebooks[k][codes[:, k]] for k in range(K)], 1))
        starts.append(np.full(len(z), n))
        n += len(z)
    if not es:
        raise SystemExit(f"no cached clips in {cache} for {splits}: run gr-largesc cache-dred")
    return torch.cat(es).float(), np.concatenate(starts)


class Batches:
    """Random training examples over the concatenated clips (see the module docstring)."""

    def __init__(self, e: torch.Tensor, starts: np.ndarray, context: int, seed: int, p_lost: float = 0.4,
                 p_next: float = 0.7, p_past_full: float = 0.75, p_next_full: float = 0.6):
        self.e, self.starts, self.c = e, starts, context
        uniq = np.unique(starts)
        ends = np.r_[uniq[1:], len(starts)]
        self.last = ends[np.searchsorted(uniq, starts, "right") - 1] - 1     # each frame's clip end
        self.rng = np.random.default_rng(seed)
        self.p_lost, self.p_next, self.p_past_full, self.p_next_full = p_lost, p_next, p_past_full, p_next_full

    def _prefix_vec(self, idx: np.ndarray, m: np.ndarray) -> torch.Tensor:
        cum = torch.cat([torch.zeros(len(idx), 1, self.e.shape[2]), self.e[idx].cumsum(1)], 1)
        return cum[torch.arange(len(idx)), torch.from_numpy(m)]

    def _draw_prefix(self, n: int, p_full: float, low: int) -> np.ndarray:
        m = self.rng.integers(low, K, n)
        return np.where(self.rng.random(n) < p_full, K, m)

    def sample(self, b: int, m: np.ndarray | None = None):
        r = self.rng
        t = r.integers(0, len(self.starts), b)
        if m is None:
            m = np.where(r.random(b) < self.p_lost, 0, r.integers(1, K, b))
        past = []
        for j in range(self.c, 0, -1):
            tj = t - j
            ok = tj >= self.starts[t]
            v = self._prefix_vec(np.where(ok, tj, t), self._draw_prefix(b, self.p_past_full, 1))
            past.append(v * torch.from_numpy(ok)[:, None].float())
        past = torch.stack(past, 1)
        own = self._prefix_vec(t, m)
        has = (r.random(b) < self.p_next) & (t < self.last[t])
        m_next = np.where(has, self._draw_prefix(b, self.p_next_full, 1), 0)
        nxt = self._prefix_vec(np.minimum(t + 1, self.last[t]), m_next)
        full = self.e[t].sum(1)
        return (past, own, torch.from_numpy(m), nxt, torch.from_numpy(m_next), torch.from_numpy(has)), full - own


def baselines_mse(batch, target) -> dict:
    """Held-back error of repeat (last vector) and interp (mean of neighbours) on these examples."""
    past, own, m, nxt, m_next, has = batch
    full = own + target
    rep = past[:, -1]
    interp = torch.where(has[:, None], 0.5 * (rep + nxt), rep)
    mse = lambda v: float(((v - full) ** 2).sum(1).mean())  # noqa: E731
    return {"repeat": mse(rep), "interp": mse(interp), "mean": mse(torch.zeros_like(full))}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gr-largesc train-latent", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=str(CACHE / "corpus" / "dred"))
    ap.add_argument("--codec", default=str(models_dir() / "mini" / "codec"))
    ap.add_argument("--out", default=str(CACHE / "train" / "latent" / "export"),
                    help="weight folder (ship it as models/mini/recovery/latent)")
    ap.add_argument("--steps", type=int, default=12000)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--context", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--evaluate", default=None, metavar="DIR",
                    help="only print the held-back error on lost frames of the predictor in DIR, with and "
                         "without the next frame, against repeat / interp / the mean (docs/models/mini.md)")
    return ap


def evaluate(weights: Path, cache: Path, codec: Path, seed: int = 7) -> dict:
    """Held-back error on whole lost frames, the next frame present or not (valid split)."""
    from ..core.recovery.latent_predictor import load_predictor
    model = load_predictor(weights)
    ev, sv = entries(cache, codec, ("valid",))
    out = {}
    for p_next, label in ((1.0, "next frame received"), (0.0, "next frame lost (causal)")):
        b = Batches(ev, sv, model.cfg.context, seed, p_next=p_next, p_past_full=1.0, p_next_full=1.0)
        batch, target = b.sample(8192, m=np.zeros(8192, np.int64))
        with torch.no_grad():
            mse = float(((model(*batch) - target) ** 2).sum(1).mean())
        out[label] = {"predictor": mse, **baselines_mse(batch, target)}
    return out


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()
    cache, codec = Path(args.cache), Path(args.codec)
    if args.evaluate:
        for label, r in evaluate(Path(args.evaluate), cache, codec).items():
            print(f"{label}: " + ", ".join(f"{k} {v:.1f}" for k, v in r.items()))
        return 0
    e, starts = entries(cache, codec, ("train",))
    ev, sv = entries(cache, codec, ("valid",))
    LOG.info("%d train frames, %d valid frames (%.0f s)", len(e), len(ev), time.time() - t0)
    cfg = PredictorConfig(dim=e.shape[2], num_codebooks=K, context=args.context, hidden=args.hidden,
                          layers=args.layers, codec_sha256=codec_sha(codec))
    model = LatentPredictor(cfg)
    train, valid = Batches(e, starts, args.context, args.seed), Batches(ev, sv, args.context, args.seed + 1)
    vb, vt = valid.sample(8192, m=np.zeros(8192, np.int64))            # held back: whole lost frames
    vb_any, vt_any = valid.sample(8192)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, s / 500) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps))))

    def held_back() -> dict:
        model.eval()
        with torch.no_grad():
            lost = float(((model(*vb) - vt) ** 2).sum(1).mean())
            anyp = float(((model(*vb_any) - vt_any) ** 2).sum(1).mean())
        model.train()
        return {"lost": lost, "any": anyp}

    base = baselines_mse(vb, vt)
    LOG.info("held-back MSE on lost frames: repeat %.3f, interp %.3f, mean %.3f", base["repeat"], base["interp"], base["mean"])
    for step in range(1, args.steps + 1):
        batch, target = train.sample(args.batch)
        loss = ((model(*batch) - target) ** 2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 1000 == 0 or step == args.steps:
            h = held_back()
            LOG.info("step %d: train %.3f, held-back lost %.3f (any prefix %.3f), %.0f s",
                     step, float(loss.detach()), h["lost"], h["any"], time.time() - t0)
    h = held_back()
    save_predictor(model, args.out, {"steps": args.steps, "batch": args.batch, "train_frames": int(len(e)),
                                     "valid_mse_lost": round(h["lost"], 4), "valid_mse_any": round(h["any"], 4),
                                     "valid_mse_lost_repeat": round(base["repeat"], 4),
                                     "valid_mse_lost_interp": round(base["interp"], 4),
                                     "train_s": round(time.time() - t0), "seed": args.seed})
    LOG.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
