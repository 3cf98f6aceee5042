"""Fit the `mini` v2 codec (core/codec/mini2.py): 7 residual k-means codebooks on the two DRED
latents of each frame and 1 k-means codebook on its encoder state, 2048 entries each.
``gr-largesc train-codec2`` / ``python -m gnuradio.largesc.training.train_mini2 [--out DIR]``.

Data: training/dred_cache.py (cache/corpus/dred), train split only (every real source: the
asterisk prompts at 24 kHz and the game dialogue at 5.5 kHz; TTS, when cached, sampled half as
often as real speech). Opus's encoder, decoder and vocoder are frozen: the normalisation and the
codebooks are all that is fitted.

* Latents: the mean removed and ONE global scale (``--latent-norm global``; ``zscore`` divides
  each dimension by its own spread, which spends as many bits on near-empty dimensions as on
  informative ones; ``dred-qN`` weights by Opus's own DRED quantiser scales at level N).
* State: z-scored, then weighted per dimension by its measured effect on the decoded features
  (``--state-weight effect``: mean feature MSE of frame t when dimension d of the state that
  decodes it moves by +-0.5 std, decoding over the default window), so that k-means spends its
  entries where the DRED decoder is sensitive (unweighted, W = 1 decodes at 38 % WER).
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..core.codec import mini2, opus_dnn
from . import dred_cache
from .workspace import CACHE

LOG = logging.getLogger("largesc.train_mini2")
SYNTH_SOURCES = ("espeak-ng", "flite", "festival")
OPUS_STATS = Path(sys.prefix) / "lib" / "gr-largesc" / "build" / "opus-1.5.2" / "dnn" / "dred_rdovae_stats_data.c"


def load_frames(cache: Path, splits=("train",)) -> tuple[np.ndarray, np.ndarray, list]:
    """(z [N, 42], s [N, 19], clips): real speech twice, TTS once (real weighted above TTS)."""
    clips = dred_cache.load_split(cache, splits)
    if not clips:
        raise SystemExit(f"no cached clips in {cache}: run python -m gnuradio.largesc.training.dred_cache")
    zs, ss = [], []
    for r, z, s, _ in clips:
        synth = any(t in r.get("source", "") for t in SYNTH_SOURCES) or "synth" in r.get("source", "")
        for _ in range(1 if synth else 2):
            zs.append(z)
            ss.append(s)
    return np.concatenate(zs).astype(np.float32), np.concatenate(ss).astype(np.float32), clips


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


def opus_quant_scales(kind: str, level: int) -> np.ndarray:
    """Opus's DRED quantiser scales (q8) at one of its 16 levels: 'latent' [21] or 'state' [19]."""
    text = OPUS_STATS.read_text()
    m = re.search(rf"dred_{kind}_quant_scales_q8\[\d+\] = \{{(.*?)\}};", text, re.S)
    if not m:
        raise SystemExit(f"{OPUS_STATS}: no dred_{kind}_quant_scales_q8")
    a = np.array([int(t) for t in m.group(1).replace("\n", " ").split(",") if t.strip()], np.float32)
    return a.reshape(16, -1)[level] / 256.0


def latent_scale(z: np.ndarray, norm: str) -> np.ndarray:
    """Per-dimension divisor [42] of the mean-removed latents."""
    std = z.std(0) + 1e-6
    if norm == "zscore":
        return std
    if norm == "global":
        return np.full(z.shape[1], float(np.sqrt(np.mean(std ** 2))), np.float32)
    m = re.fullmatch(r"dred-q(\d+)", norm)
    if m:
        w = np.tile(np.maximum(opus_quant_scales("latent", int(m.group(1))), 1e-3), 2)
        g = float(np.sqrt(np.mean((std * w) ** 2)))
        return (g / w).astype(np.float32)            # vn = (z - mean) * w / g
    raise SystemExit(f"unknown --latent-norm {norm!r}")


def state_effect(clips, s_mean: np.ndarray, s_std: np.ndarray, window: int, frames: int, seed: int) -> np.ndarray:
    """[19]: mean squared change of frame t's decoded features when dimension d of the state
    that decodes it (frame t+window's) moves by +-0.5 std, over `frames` random windows."""
    rng = np.random.default_rng(seed)
    pool = [(z, s) for _, z, s, _ in clips if len(z) > window]
    eff = np.zeros(len(s_std))
    for _ in range(frames):
        z, s = pool[rng.integers(len(pool))]
        t = int(rng.integers(0, len(z) - window))
        lat = z[t:t + window + 1].reshape(-1, mini2.LAT)[::-1]
        st = s[t + window]
        base = opus_dnn.dred_decode(st, lat)[: mini2.FEATS]
        for d in range(len(st)):
            for sign in (-0.5, 0.5):
                p = st.copy()
                p[d] += sign * s_std[d]
                eff[d] += np.mean((opus_dnn.dred_decode(p, lat)[: mini2.FEATS] - base) ** 2)
    return eff / (2 * frames)


def fit(z: np.ndarray, s: np.ndarray, clips, *, points: int, iters: int, seed: int, latent_norm: str = "global",
        state_weight: str = "effect", state_index: int = 1, window: int = 1, effect_frames: int = 400,
        state_codebooks: int = 1) -> tuple[mini2.Mini2Model, dict]:
    """The fitted model and what was measured on the way (residual energies, state weights)."""
    gen = torch.Generator().manual_seed(seed)
    model = mini2.Mini2Model(mini2.Mini2Config(state_index=state_index if state_codebooks else -1, window=window))
    info: dict = {"latent_norm": latent_norm, "state_weight": state_weight}
    z_mean, s_mean = z.mean(0), s.mean(0)
    s_std = s.std(0) + 1e-6
    z_div = latent_scale(z, latent_norm)
    if state_weight == "effect":
        t0 = time.time()
        eff = state_effect(clips, s_mean, s_std, window, effect_frames, seed)
        w = np.sqrt(eff / eff.mean())
        info["state_effect"] = [round(float(e), 5) for e in eff]
        LOG.info("state effect per dimension (%.0f s): %s", time.time() - t0, np.round(eff / eff.sum(), 3))
    elif state_weight == "none":
        w = np.ones_like(s_std)
    elif (m := re.fullmatch(r"dred-q(\d+)", state_weight)):
        q = np.maximum(opus_quant_scales("state", int(m.group(1))), 1e-3)
        w = q * s_std / np.sqrt(np.mean((q * s_std) ** 2))
    else:
        raise SystemExit(f"unknown --state-weight {state_weight!r}")
    model.v_mean.copy_(torch.from_numpy(np.concatenate([z_mean, s_mean])))
    model.v_std.copy_(torch.from_numpy(np.concatenate([z_div, s_std / w]).astype(np.float32)))
    zn = torch.from_numpy((z - z_mean) / z_div)
    sn = torch.from_numpy((s - s_mean) / (s_std / w)).float()
    if len(zn) > points:
        sel = torch.randperm(len(zn), generator=gen)[:points]
        zn, sn = zn[sel], sn[sel]
    si = model.cfg.state_index
    state_pos = list(range(si, si + state_codebooks)) if state_codebooks else []
    order = [k for k in range(mini2.K) if k not in state_pos]
    n_lat = len(order)
    res_info = []
    r = zn.clone()
    total = float((r ** 2).sum())
    for j, k in enumerate(order):
        t0 = time.time()
        cb = kmeans(r, mini2.CARD, iters, gen)
        model.codebooks[k, :, : mini2.Z_DIM].copy_(cb)
        r = r - cb[assign(r, cb)]
        res_info.append(round(float((r ** 2).sum()) / total, 4))
        LOG.info("latent codebook %d/%d (position %d): residual %.4f (%.0f s)", j + 1, n_lat, k, res_info[-1],
                 time.time() - t0)
    info["latent_residual"] = res_info
    rs = sn.clone()
    for k in state_pos:                       # residual k-means on the weighted state
        cb = kmeans(rs, mini2.CARD, iters, gen)
        model.codebooks[k, :, mini2.Z_DIM:].copy_(cb)
        rs = rs - cb[assign(rs, cb)]
        info.setdefault("state_residual", []).append(round(float((rs ** 2).sum() / (sn ** 2).sum()), 4))
        LOG.info("state codebook (position %d): residual %.4f", k, info["state_residual"][-1])
    return model, info


def export_tokens(cache: Path, codec_dir: Path, out: Path) -> int:
    """Tokens of the train and valid clips -> out/<clip>_<split>.npy (int16 [8, F]), for
    `gr-largesc train-lm --tokens out` (held-out clips are never written)."""
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
    ap.add_argument("--points", type=int, default=300000, help="frames sampled for k-means")
    ap.add_argument("--iters", type=int, default=15, help="Lloyd iterations per codebook")
    ap.add_argument("--latent-norm", default="global", help="global | zscore | dred-qN")
    ap.add_argument("--state-weight", default="effect", help="effect | none | dred-qN")
    ap.add_argument("--state-index", type=int, default=1, help="position of the state codebook (0..7)")
    ap.add_argument("--state-codebooks", type=int, default=1,
                    help="codebooks on the state (a residual VQ from --state-index on; 0: 8 latent codebooks, mean state)")
    ap.add_argument("--window", type=int, default=1, help="default decoder window W (frames, 0..3)")
    ap.add_argument("--effect-frames", type=int, default=400, help="windows sampled to weigh the state")
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
    t0 = time.time()
    z, s, clips = load_frames(Path(args.cache))
    LOG.info("%d frame vectors (real speech counted twice) from %d clips", len(z), len(clips))
    model, info = fit(z, s, clips, points=args.points, iters=args.iters, seed=args.seed,
                      latent_norm=args.latent_norm, state_weight=args.state_weight, state_index=args.state_index,
                      window=args.window, effect_frames=args.effect_frames,
                      state_codebooks=args.state_codebooks)
    mini2.save_mini2(model, args.out, {"frames": int(len(z)), "clips": len(clips), "points": args.points,
                                       "iters": args.iters, "seed": args.seed, "fit_s": round(time.time() - t0),
                                       **info})
    LOG.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
