"""Train the `mini` LM (docs/models/mini.md): ``gr-largesc train-lm`` / ``python -m gnuradio.largesc.training.train_lm``.

The "foundation" step of the paper at small scale: moshi's own ``LMModel`` with a small config
(``lm.mini_lm_kwargs``: Moshi's stream layout, text + 8 generated codebooks of 2048, delays 0/1,
no user stream) trained as a plain continuation model on `mini` tokens of the corpus. The
recovery adapter then comes from ``train-lora --profile mini`` on top of it.

Tokens: ``--feats`` (default ``cache/corpus/feats``, the WORLD feature shards of the corpus)
are encoded with the `mini` codec (``--codec``, default the shipped one) into ``OUT/tokens``
once; ``--tokens DIR`` uses a folder of ``*.npy`` token files instead. Held-out clips are never
in the feature shards (the corpus and ``feature_cache`` keep them out). The loss is moshi's own
``LMModel.forward`` cross-entropy on the audio codebooks, codebook 0 weighted ``--cb0-weight``.

Checkpoints (``OUT/model.safetensors``, ``OUT/optim.safetensors``, ``OUT/state.json``) every
``--ckpt-minutes`` and at exit; the same command resumes. ``--export DIR`` writes the shippable
model (config.json + model.safetensors in fp16 + largesc.json) and exits. CUDA when present.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import time
from pathlib import Path

import numpy as np

from ..core.profiles import models_dir
from .workspace import CACHE

LOG = logging.getLogger("largesc.train_lm")
K = 8


def encode_feature_shards(feat_dir: Path, codec_dir: Path, out: Path) -> int:
    """Encode every clip of the feature shards with the mini codec's encoder -> out/*.npy (int16 [8, F])."""
    import torch

    from ..core.codec.mini import load_mini_codec
    from .feature_cache import list_shards, load_shard
    out.mkdir(parents=True, exist_ok=True)
    done = out / "DONE"
    if done.exists():
        return len(list(out.glob("*.npy")))
    codec = load_mini_codec(codec_dir)
    n = 0
    for shard in list_shards(feat_dir):
        feats, paths, splits = load_shard(shard)
        for i, (f, split) in enumerate(zip(feats, splits)):
            if split == "heldout" or len(f) < 16 * 2:
                continue
            f = f[: len(f) // 16 * 16]
            with torch.no_grad():
                codes, _ = codec._encode_feats(f)
            np.save(out / f"{shard.stem}_{i:05d}_{split}.npy", codes.cpu().numpy().astype(np.int16)[:K])
            n += 1
    done.write_text(json.dumps({"codec": str(codec_dir), "files": n}))
    return n


def lm_loss(lm, codes, cb0_weight: float = 2.0):
    """Continuation cross-entropy of moshi's LMModel.forward on [B, 8, T] audio tokens (text = padding)."""
    import torch
    import torch.nn.functional as F
    B, _, T = codes.shape
    text = torch.full((B, 1, T), lm.text_padding_token_id, dtype=torch.long, device=codes.device)
    out = lm.forward(torch.cat([text, codes], 1))
    logits, mask = out.logits[:, :K], out.mask[:, :K]                # [B, 8, T, card], [B, 8, T]
    ce = F.cross_entropy(logits.float().flatten(0, 2)[mask.flatten()], codes[:, :K].flatten()[mask.flatten()],
                         reduction="none")
    w = torch.ones(B, K, T, device=codes.device)
    w[:, 0] = cb0_weight
    w = w[mask]
    per_cb = [float(F.cross_entropy(logits[:, k][mask[:, k]].float(), codes[:, k][mask[:, k]]).detach())
              for k in (0, K - 1)]
    return (ce * w).sum() / w.sum(), per_cb


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gr-largesc train-lm", description=__doc__.split("\n\n")[0])
    p.add_argument("--feats", default=str(CACHE / "corpus" / "feats"))
    p.add_argument("--codec", default=str(models_dir() / "mini-v1" / "codec"),
                   help="mini codec folder used to tokenise --feats")
    p.add_argument("--tokens", default=None, help="folder of *.npy token files (skips --feats)")
    p.add_argument("--out", default=str(CACHE / "train" / "lm_mini"))
    p.add_argument("--dim", type=int, default=160)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--dep-dim", type=int, default=96)
    p.add_argument("--dep-layers", type=int, default=1)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--frames", type=int, default=48, help="sequence length in 80 ms frames")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--total-steps", type=int, default=6000, help="cosine decay to 10%% at this step")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--cb0-weight", type=float, default=2.0)
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    p.add_argument("--valid-every", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default=None)
    p.add_argument("--export", default=None,
                   help="export the best-validated checkpoint (else the latest; fp16) to this folder and exit")
    return p


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch
    from safetensors.torch import load_file

    from ..core import torch_env  # noqa: F401  (NO_TORCH_COMPILE before moshi)
    from ..core.recovery import lm as lm_mod
    from . import token_data
    from .run_folder import load_optim, open_run, save_run, save_weights

    dev, out, state = open_run(a.out, a.threads, a.device)
    if state is None:
        kwargs = lm_mod.mini_lm_kwargs(dim=a.dim, num_layers=a.layers, depformer_dim=a.dep_dim,
                                       depformer_num_layers=a.dep_layers)
        state = {"step": 0, "wall_s": 0.0, "lm_kwargs": kwargs, "history": [], "args": vars(a)}
    lm = lm_mod.random_lm(state["lm_kwargs"], seed=a.seed, device=dev)
    if a.export:
        best = state.get("best")
        weights = out / ("best.safetensors" if best else "model.safetensors")
        lm.load_state_dict(load_file(str(weights), device=str(dev)))
        step = best["step"] if best else state["step"]
        lm_mod.save_mini_lm(lm, state["lm_kwargs"], a.export,
                            info={"train_step": step, "train_wall_s": round(state["wall_s"]), "best": best,
                                  "history": state["history"][-3:], "codec": state.get("codec")})
        LOG.info("exported step %d -> %s", step, a.export)
        return 0
    if (out / "model.safetensors").exists():
        lm.load_state_dict(load_file(str(out / "model.safetensors"), device=str(dev)))

    if a.tokens:
        tok_dir = Path(a.tokens)
    else:
        tok_dir = out / "tokens"
        n = encode_feature_shards(Path(a.feats), Path(a.codec), tok_dir)
        state["codec"] = str(a.codec)
        LOG.info("tokens: %d clips in %s", n, tok_dir)
    files = sorted(tok_dir.glob("*.npy"))
    valid_files = [f for f in files if f.stem.endswith("_valid")] or files[-max(1, len(files) // 20):]
    train = token_data.TokenCorpus([f for f in files if f not in valid_files] or files, a.frames)
    valid = token_data.TokenCorpus(valid_files, a.frames)
    vrng = np.random.default_rng(123)
    vbatches = [torch.as_tensor(valid.batch(a.batch, a.frames, vrng), device=dev) for _ in range(4)]

    opt = torch.optim.AdamW(lm.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=a.weight_decay)
    load_optim(opt, out, state, dev)
    for g in opt.param_groups:                  # this run's --weight-decay, not a saved one
        g["weight_decay"] = a.weight_decay
    LOG.info("LM %.2f M params, %d train clips, device %s, step %d", sum(p.numel() for p in lm.parameters()) / 1e6,
             len(train.arrays), dev, state["step"])

    def save():
        save_run(out, state, lm, opt)

    @torch.no_grad()
    def validate():
        lm.eval()
        vals = [lm_loss(lm, b, a.cb0_weight) for b in vbatches]
        lm.train()
        return float(np.mean([float(v[0]) for v in vals])), [float(np.mean([v[1][i] for v in vals])) for i in (0, 1)]

    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(flag=True))
    max_steps = a.max_steps or a.total_steps
    t0, t_ckpt, wall0 = time.time(), time.time(), state["wall_s"]
    lm.train()
    while state["step"] < max_steps and not stop["flag"]:
        if a.max_minutes and time.time() - t0 > a.max_minutes * 60:
            break
        step = state["step"]
        lr = a.lr * min(1.0, (step + 1) / a.warmup)
        lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / a.total_steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        rng = np.random.default_rng([a.seed, step])
        codes = torch.as_tensor(train.batch(a.batch, a.frames, rng), device=dev)
        loss, _ = lm_loss(lm, codes, a.cb0_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        opt.step()
        state["step"] = step + 1
        state["wall_s"] = wall0 + time.time() - t0
        if state["step"] % 50 == 0:
            LOG.info("step %d loss %.4f lr %.2e wall %.0f s", state["step"], float(loss), lr, state["wall_s"])
        if state["step"] % a.valid_every == 0:
            v, per = validate()
            state["history"].append({"step": state["step"], "wall_s": round(state["wall_s"]), "valid": round(v, 4),
                                     "valid_cb0": round(per[0], 4), "valid_cb7": round(per[1], 4)})
            LOG.info("valid step %d: %.4f (cb0 %.3f, cb7 %.3f)", state["step"], v, per[0], per[1])
            if state.get("best") is None or v < state["best"]["valid"]:      # early stopping by copy
                state["best"] = {"step": state["step"], "valid": round(v, 4)}
                save_weights(lm, out / "best.safetensors")
                save()                       # state.json names the best step together with its file
        if time.time() - t_ckpt > a.ckpt_minutes * 60:
            save()
            t_ckpt = time.time()
    save()
    LOG.info("saved step %d to %s", state["step"], out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
