"""Cache of Opus DRED latents and LPCNet features of the corpus, for the `mini` v2 codec.

``python -m gnuradio.largesc.training.dred_cache [--corpus cache/corpus] [--out cache/corpus/dred]``

Per clip (train, valid and held-out splits; trainers never read held-out ones): one .npz with
``z`` [F, 42] (the two DRED latents of each 80 ms frame: 20 ms steps 1 and 3 of its four, each
covering 40 ms of features), ``s`` [F, 19] (the encoder state after step 3: where Opus's DRED
decoder starts to decode the frame backwards) and ``feats`` [8 F, 20] (the frame's eight 10 ms
LPCNet feature frames), from 16 kHz audio. Re-running skips clips already cached.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from ..core.audio_io import resample
from ..core.codec import opus_dnn
from .corpus import DEFAULT_OUT, load_audio_24k, read_manifest

LOG = logging.getLogger("largesc.dred_cache")
FEATS_PER_FRAME = 8        # 10 ms feature frames per 80 ms codec frame
STEPS_PER_FRAME = 4        # 20 ms encoder steps per 80 ms codec frame
Z_STEPS = (1, 3)           # the steps whose latents a frame carries (each covers 40 ms)
Z_DIM = opus_dnn.LATENT_DIM * len(Z_STEPS)


def frame_latents(lat: np.ndarray, num_frames: int) -> np.ndarray:
    """[steps, 21] latents -> [F, 42]: steps 4f+1 and 4f+3 of each frame f."""
    idx = STEPS_PER_FRAME * np.arange(num_frames)[:, None] + np.array(Z_STEPS)[None, :]
    return lat[idx].reshape(num_frames, Z_DIM)


def analyse_24k(x24: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """24 kHz audio -> (z [F, 42], s [F, 19], feats [8 F, 20]) over its whole 80 ms frames."""
    x16 = resample(np.asarray(x24, np.float32), 24000, 16000)
    an = opus_dnn.Analyzer()
    feats, lat = an.process(x16)
    nfr = min(len(lat) // STEPS_PER_FRAME, len(feats) // FEATS_PER_FRAME)
    states = an.states[STEPS_PER_FRAME * np.arange(nfr) + Z_STEPS[-1]]
    return frame_latents(lat, nfr), states, feats[: FEATS_PER_FRAME * nfr]


def clip_key(row: dict) -> str:
    return row["path"].replace("/", "__").rsplit(".", 1)[0]


def build(corpus: Path, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    rows = read_manifest(corpus, splits=("train", "valid", "heldout"))
    done = 0
    for i, r in enumerate(rows):
        f = out / (clip_key(r) + ".npz")
        if f.is_file():
            continue
        z, st, feats = analyse_24k(load_audio_24k(corpus / r["path"]))
        tmp = f.with_suffix(".tmp.npz")
        np.savez(tmp, z=z.astype(np.float32), s=st.astype(np.float32), feats=feats.astype(np.float32))
        tmp.rename(f)
        done += 1
        if i % 500 == 0:
            LOG.info("%d/%d", i, len(rows))
    (out / "index.json").write_text(json.dumps(
        [{"key": clip_key(r), "split": r.get("split", "train"), "speaker": r.get("speaker", ""),
          "source": r.get("source", ""), "lang": r.get("lang", ""), "text": r.get("text", ""), "path": r["path"]}
         for r in rows], indent=0))
    return done


def load_split(out: Path, splits=("train",)) -> list[tuple[dict, np.ndarray, np.ndarray, np.ndarray]]:
    """[(index row, z, s, feats)] of the cached clips in `splits`."""
    index = json.loads((out / "index.json").read_text())
    res = []
    for r in index:
        if r["split"] in splits:
            d = np.load(out / (r["key"] + ".npz"))
            if len(d["z"]):
                res.append((r, d["z"], d["s"], d["feats"]))
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(DEFAULT_OUT))
    ap.add_argument("--out", default=None, help="default: <corpus>/dred")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    corpus = Path(a.corpus)
    n = build(corpus, Path(a.out) if a.out else corpus / "dred")
    LOG.info("cached %d new clips", n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
