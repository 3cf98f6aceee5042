"""WORLD feature cache for codec training (docs/models/mini.md).

``python -m gnuradio.largesc.training.feature_cache [--corpus cache/corpus] [--out cache/corpus/feats]``
analyses every non-held-out clip of the corpus manifest with ``world_features.analyze`` and writes
shards ``shard_00000.npz`` (``feats``: float16 [N, 28] concatenated, ``lengths``, ``paths``) of
about ``--shard-minutes`` of audio each. Clips are taken in a seeded shuffled order, so the first
shards already mix every source; training can start on the first shards and picks up new ones as
they appear. Re-running skips finished shards.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

from ..core.codec import world_features as W
from .corpus import DEFAULT_OUT, load_audio_24k, read_manifest

LOG = logging.getLogger("largesc.feature_cache")


def plan_shards(rows: list[dict], shard_minutes: float, seed: int) -> list[list[dict]]:
    rows = sorted(rows, key=lambda r: r["path"])
    random.Random(seed).shuffle(rows)
    shards, cur, dur = [], [], 0.0
    for r in rows:
        cur.append(r)
        dur += r["duration"]
        if dur >= shard_minutes * 60:
            shards.append(cur)
            cur, dur = [], 0.0
    if cur:
        shards.append(cur)
    return shards


def list_shards(feat_dir: Path | str) -> list[Path]:
    return sorted(Path(feat_dir).glob("shard_*.npz"))


def load_shard(path: Path) -> tuple[list[np.ndarray], list[str], list[str]]:
    z = np.load(path, allow_pickle=False)
    feats, lengths = z["feats"], z["lengths"]
    offs = np.concatenate([[0], np.cumsum(lengths)])
    return ([feats[offs[i]:offs[i + 1]].astype(np.float32) for i in range(len(lengths))],
            [str(p) for p in z["paths"]], [str(s) for s in z["splits"]])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="feature-cache", description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(DEFAULT_OUT))
    ap.add_argument("--out", default=None, help="default: <corpus>/feats")
    ap.add_argument("--shard-minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    corpus = Path(a.corpus)
    out = Path(a.out) if a.out else corpus / "feats"
    out.mkdir(parents=True, exist_ok=True)
    rows = read_manifest(corpus, splits=("train", "valid"))
    shards = plan_shards(rows, a.shard_minutes, a.seed)
    LOG.info("%d clips, %.1f min, %d shards", len(rows), sum(r["duration"] for r in rows) / 60, len(shards))
    for k, shard in enumerate(shards):
        dst = out / f"shard_{k:05d}.npz"
        if dst.exists():
            continue
        t0 = time.time()
        feats, lengths, paths, splits = [], [], [], []
        for r in shard:
            x = load_audio_24k(corpus / r["path"])
            f = W.analyze(x)
            feats.append(f.astype(np.float16))
            lengths.append(len(f))
            paths.append(r["path"])
            splits.append(r["split"])
        tmp = out / f".shard_{k:05d}.tmp.npz"
        np.savez(tmp, feats=np.concatenate(feats), lengths=np.array(lengths), paths=np.array(paths),
                 splits=np.array(splits))
        os.replace(tmp, dst)
        LOG.info("shard %d/%d: %d clips, %.0f s", k + 1, len(shards), len(shard), time.time() - t0)
    (out / "DONE").write_text(json.dumps({"shards": len(shards)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
