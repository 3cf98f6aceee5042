"""Train the `mini` codec (docs/models/mini.md): ``gr-largesc train-codec`` / ``python -m gnuradio.largesc.training.train_codec``.

Input: WORLD feature shards made by ``feature_cache`` from the corpus (``cache/corpus/feats``);
new shards are picked up while training runs. Held-out clips are never in those shards, and the
trainer checks every clip path against data/heldout.json's held-out speakers before using it.

Checkpoints (every ``--ckpt-minutes`` and at exit) go to ``--run-dir``:
``model.safetensors`` (fp32), ``optim.safetensors`` (AdamW moments), ``state.json`` (step, config,
losses, RNG seeds, best validation loss) and ``best/`` (exported like the shipped model:
config.json + model.safetensors). Running the same command again resumes from the checkpoint.
Ctrl-C / SIGTERM save a checkpoint before exiting. ``--export DIR`` writes the best (or last)
checkpoint as a shippable fp16 model and exits.

Uses CUDA when present (``--device``), else CPU with ``--threads`` torch threads (default 1).
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np

from .workspace import CACHE

LOG = logging.getLogger("largesc.train_codec")


class ShardData:
    """Random training segments from feature shards; rescans the folder for new shards."""

    def __init__(self, feat_dir: Path, seg_frames: int, seed: int, held: dict):
        self.dir = Path(feat_dir)
        self.seg = seg_frames * 16
        self.rng = np.random.default_rng(seed)
        self.loaded: set[str] = set()
        self.train: list[np.ndarray] = []
        self.valid: list[np.ndarray] = []
        self.held_speakers = set(held.get("heldout_real_speakers", []))
        self.refresh()

    def refresh(self) -> int:
        from .feature_cache import list_shards, load_shard
        new = 0
        for p in list_shards(self.dir):
            if p.name in self.loaded:
                continue
            feats, paths, splits = load_shard(p)
            for f, path, split in zip(feats, paths, splits):
                if any(f"/{s}/" in path for s in self.held_speakers) or split == "heldout":
                    raise RuntimeError(f"held-out clip in training shards: {path}")
                if len(f) < 16:
                    continue
                (self.valid if split == "valid" else self.train).append(f)
            self.loaded.add(p.name)
            new += 1
        if new:
            self.weights = np.array([len(f) for f in self.train], np.float64)
            self.weights /= self.weights.sum()
        return new

    def frames(self) -> int:
        return int(sum(len(f) for f in self.train))

    def _segment(self, pool, weights=None):
        out = []
        need = self.seg
        while need > 0:
            f = pool[self.rng.choice(len(pool), p=weights)]
            if len(f) > need:
                s = self.rng.integers(0, len(f) - need + 1)
                out.append(f[s:s + need])
                need = 0
            else:
                out.append(f)
                need -= len(f)
        return np.concatenate(out)

    def batch(self, n: int) -> np.ndarray:
        return np.stack([self._segment(self.train, self.weights) for _ in range(n)])

    def valid_batches(self, n_batches: int, n: int, seed: int = 123) -> list[np.ndarray]:
        rng_state = self.rng
        self.rng = np.random.default_rng(seed)
        pool = self.valid or self.train[:50]
        out = [np.stack([self._segment(pool) for _ in range(n)]) for _ in range(n_batches)]
        self.rng = rng_state
        return out


def sample_nq(rng: random.Random) -> int:
    """Quantizer dropout: half the steps use all 8 codebooks, 40 % 4..7, 10 % 1..3."""
    r = rng.random()
    if r < 0.5:
        return 8
    if r < 0.9:
        return rng.randint(4, 7)
    return rng.randint(1, 3)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="train-codec", description=__doc__.split("\n\n")[0])
    ap.add_argument("--feats", default=str(CACHE / "corpus" / "feats"))
    ap.add_argument("--run-dir", default=str(CACHE / "train" / "codec_mini"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default=None, help="cuda / cpu (default: cuda if available)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seg-frames", type=int, default=24, help="training segment in 80 ms frames")
    ap.add_argument("--lr", type=float, default=8e-4)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--total-steps", type=int, default=30000, help="cosine decay to 10%% at this step")
    ap.add_argument("--schedule-minutes", type=float, default=None,
                    help="cosine decay by training wall time instead of steps: reach 10%% of --lr after this many "
                         "minutes of (accumulated) training; then keep training at 10%% until --max-minutes/--max-steps")
    ap.add_argument("--max-steps", type=int, default=None, help="stop after this step (default: total)")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop after this much wall time")
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--valid-every", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--commit-weight", type=float, default=0.05,
                    help="weight of the RVQ commitment loss (1.0 collapses the latent onto codebook 0)")
    ap.add_argument("--c0-weight", type=float, default=6.0, help="loss weight of mel-cepstrum c0 (energy)")
    ap.add_argument("--low-weight", type=float, default=2.0, help="loss weight of mel-cepstrum c1..c4")
    ap.add_argument("--no-quant-rate", type=float, default=0.3,
                    help="share of training examples passed unquantised (as Mimi), keeps the latent rich")
    ap.add_argument("--dyn-block", type=int, default=0,
                    help="add the envelope-movement loss at this resolution in 5 ms subframes (4 = 20 ms; 0 = off)")
    ap.add_argument("--dyn-weight", type=float, default=1.0, help="weight of the envelope-movement loss")
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--conv-dim", type=int, default=128)
    ap.add_argument("--enc-layers", type=int, default=3)
    ap.add_argument("--dec-layers", type=int, default=4)
    ap.add_argument("--arch", choices=("transformer", "conv"), default="transformer",
                    help="frame-level context of encoder and decoder (a new run only; a resumed run keeps its own)")
    ap.add_argument("--export", default=None, help="export best checkpoint (fp16) to this folder and exit")
    ap.add_argument("--export-last", action="store_true", help="with --export: last instead of best")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("NO_TORCH_COMPILE", "1")
    import torch
    from safetensors.torch import load_file

    from ..core.codec import world_features as W
    from ..core.codec.mini import MiniCodecModel, MiniConfig, feature_loss, mcep_weights, save_mini_codec
    from .corpus import load_heldout
    from .run_folder import load_optim, open_run, save_run

    dev, run, state = open_run(a.run_dir, a.threads, a.device)

    if a.export:
        if state is None:
            LOG.error("no checkpoint in %s", run)
            return 2
        src = run / ("model.safetensors" if a.export_last or not (run / "best").exists() else "best/model.safetensors")
        cfg = MiniConfig.from_dict(state["config"])
        model = MiniCodecModel(cfg)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in load_file(str(src)).items()})
        info = {"train_step": state["step"] if a.export_last else state.get("best_step", state["step"]),
                "train_wall_s": round(state["wall_s"]), "valid_loss": state.get("best_valid")}
        save_mini_codec(model, a.export, extra={"training": info})
        LOG.info("exported %s -> %s", src, a.export)
        return 0

    held = load_heldout()
    data = ShardData(Path(a.feats), a.seg_frames, a.seed + (state["step"] if state else 0), held)
    while not data.train:
        LOG.info("waiting for feature shards in %s ...", a.feats)
        time.sleep(30)
        data.refresh()
    if state is None:
        allf = np.concatenate(data.train[:2000])
        mean, std = allf.mean(0), allf.std(0) + 1e-3
        mean[W.IDX_VUV], std[W.IDX_VUV] = 0.0, 1.0      # voicing stays 0/1 (target of a logit)
        cfg = MiniConfig(arch=a.arch, d_model=a.d_model, conv_dim=a.conv_dim, enc_layers=a.enc_layers, dec_layers=a.dec_layers,
                         feat_mean=[float(v) for v in mean], feat_std=[float(v) for v in std])
        state = {"step": 0, "wall_s": 0.0, "config": cfg.__dict__, "best_valid": None, "best_step": None,
                 "history": [], "args": vars(a)}
    cfg = MiniConfig.from_dict(state["config"])
    model = MiniCodecModel(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.8, 0.99), weight_decay=0.01)
    if (run / "model.safetensors").exists():
        model.load_state_dict(load_file(str(run / "model.safetensors"), device=str(dev)))
        load_optim(opt, run, state, dev)
        LOG.info("resumed from step %d (%.0f s trained)", state["step"], state["wall_s"])
        changed = {k: getattr(a, k) for k in ("dyn_block", "dyn_weight", "c0_weight", "low_weight", "lr")
                   if state["args"].get(k) != getattr(a, k)}
        if changed:
            state.setdefault("notes", []).append(f"step {state['step']}: resumed with {changed}")
            state["args"].update(changed)
    model.quantizer.no_quantization_rate = a.no_quant_rate
    mc_w = mcep_weights(a.c0_weight, a.low_weight).to(dev)
    nparams = sum(p.numel() for p in model.parameters())
    LOG.info("model %.2f M params, device %s, threads %d, %d train clips (%.1f h)", nparams / 1e6, dev,
             a.threads, len(data.train), data.frames() * 0.005 / 3600)
    valid = [torch.from_numpy(b).to(dev) for b in data.valid_batches(4, 16)]

    def save(tag="ckpt"):
        t = time.time()
        save_run(run, state, model, opt)
        LOG.info("%s saved at step %d (%.1f s)", tag, state["step"], time.time() - t)

    @torch.no_grad()
    def validate():
        model.eval()
        res = {}
        for nq in (8, 4):
            tot = 0.0
            for b in valid:
                xn = model.normalize(b)
                out, _, _ = model(xn, n_q=nq)
                loss, _ = feature_loss(out, xn, b[..., W.IDX_VUV], mc_w=mc_w)
                tot += loss.item()
            res[nq] = tot / len(valid)
        model.train()
        return res

    stop = {"flag": False}

    def on_signal(signum, frame):
        stop["flag"] = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    pyrng = random.Random(a.seed * 1000 + state["step"])
    max_steps = a.max_steps or (10 ** 9 if a.schedule_minutes else a.total_steps)
    t_start, t_ckpt = time.time(), time.time()
    wall0 = state["wall_s"]
    model.train()
    try:
        from tqdm import tqdm
        bar = tqdm(total=max_steps if max_steps < 10 ** 9 else None, initial=state["step"], mininterval=30, file=sys.stderr, dynamic_ncols=False)
    except ImportError:
        bar = None
    ema = None
    while state["step"] < max_steps and not stop["flag"]:
        step = state["step"]
        if a.max_minutes and time.time() - t_start > a.max_minutes * 60:
            break
        lr = a.lr * min(1.0, (step + 1) / a.warmup)
        if a.schedule_minutes:
            prog = min(1.0, state["wall_s"] / (60.0 * a.schedule_minutes))
        else:
            prog = min(1.0, step / max(1, a.total_steps))
        lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * prog))
        for g in opt.param_groups:
            g["lr"] = lr
        b = torch.from_numpy(data.batch(a.batch)).to(dev)
        # level augmentation: +-6 dB on the log-gain term of the mel-cepstrum
        b[..., 0] += torch.empty(b.shape[0], 1, device=dev).uniform_(-0.7, 0.7)
        xn = model.normalize(b)
        nq = sample_nq(pyrng)
        out, pen, _ = model(xn, n_q=nq)
        loss, parts = feature_loss(out, xn, b[..., W.IDX_VUV], mc_w=mc_w, dyn_block=a.dyn_block,
                                   weights={"dyn": a.dyn_weight})
        total = loss + (a.commit_weight * pen if pen is not None else 0.0)
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state["step"] = step + 1
        state["wall_s"] = wall0 + time.time() - t_start
        if nq == 8:
            ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{ema or 0:.3f}", nq=nq, lr=f"{lr:.1e}", refresh=False)
        if state["step"] % 100 == 0:
            LOG.info("step %d loss8(ema) %.4f last(nq=%d) %.4f %s commit %.4f lr %.2e wall %.0f s", state["step"],
                     ema or 0, nq, loss.item(), {k: round(v, 3) for k, v in parts.items()},
                     float(pen) if pen is not None else 0.0, lr, state["wall_s"])
        if state["step"] % a.valid_every == 0:
            v = validate()
            state["history"].append({"step": state["step"], "wall_s": round(state["wall_s"]),
                                     "valid8": round(v[8], 4), "valid4": round(v[4], 4), "train8": round(ema or 0, 4)})
            LOG.info("valid step %d: nq8 %.4f nq4 %.4f", state["step"], v[8], v[4])
            if state["best_valid"] is None or v[8] < state["best_valid"]:
                state["best_valid"], state["best_step"] = v[8], state["step"]
                save_mini_codec(model, run / "best", dtype=torch.float32,
                                extra={"training": {"train_step": state["step"], "train_wall_s": round(state["wall_s"]),
                                                    "valid_loss": v[8]}})
            n = data.refresh()
            if n:
                LOG.info("picked up %d new shards: %d clips (%.1f h)", n, len(data.train), data.frames() * 0.005 / 3600)
        if time.time() - t_ckpt > a.ckpt_minutes * 60:
            save()
            t_ckpt = time.time()
    save("final" if state["step"] >= max_steps else "checkpoint")
    return 0


if __name__ == "__main__":
    sys.exit(main())
