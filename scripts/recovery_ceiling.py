#!/usr/bin/env python3
"""The recovery ceiling: what each recovery strategy gives against the oracle, per condition.

    .venv/bin/python scripts/recovery_ceiling.py --out docs/recovery/ceiling-mini \
        [--profile mini] [--strategies zero,prefix,repeat,interp,latent,oracle] [--utterances N] [--jobs 2]

LargeSC with UEP on (the adaptive controller), at B = 1100 and 2062.5 bps, under Bernoulli p in
{0.1, 0.2, 0.4} and Gilbert-Elliott bursts (mean 160 ms and 400 ms, p = 0.2), on the held-out
speech set `unseen` (64 clips of unseen speakers, evaluation/speech.py; `--speech heldout` for the
older 20-clip set). Every strategy sees the same loss trace per
utterance (the eval harness's common trace), so differences are paired. `oracle` fills every
lost token with the true one: the most any recovery can give at that allocation.

Besides STOI, PLCMOS, ViSQOL and WER per utterance, it measures where the gains are: the
log-spectral distance (dB, 80 ms frames, 16 kHz, log-mel) between the input and the output on the
frames the channel left whole (class 0), partial (codebook 0 known, e.g. from a copy: class 1)
and lost (codebook 0 lost: class 2).

Writes tasks/<run>/<utterance>.jsonl per utterance as it finishes (dask LocalCluster, --jobs
workers; a rerun skips those done, so a killed run resumes), results.jsonl (their lines: one per
utterance x condition x B x strategy), results.csv (the eval harness's columns, for
scripts/paired_compare.py) and summary.md (means, and paired differences against `repeat` and
`oracle` with 95 % bootstrap intervals).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from gnuradio.largesc.core.profiles import DEFAULT_PROFILE

CONDITIONS = [("bernoulli", 0.1, 160.0), ("bernoulli", 0.2, 160.0), ("bernoulli", 0.4, 160.0),
              ("gilbert_elliott", 0.2, 160.0), ("gilbert_elliott", 0.2, 400.0)]
CLASSES = ("whole", "partial", "lost")


def cond_name(model: str, p: float, burst: float) -> str:
    return f"bernoulli p={p:g}" if model == "bernoulli" else f"GE {burst:g} ms p={p:g}"


def log_mel_frames(x: np.ndarray, nfr: int) -> np.ndarray:
    """[nfr, 40] log-mel energies (dB) of 80 ms frames of 16 kHz audio."""
    import librosa
    hop = 1280
    x = np.pad(np.asarray(x, np.float32), (0, max(0, nfr * hop - len(x))))[: nfr * hop]
    m = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=1024, hop_length=320, n_mels=40, center=False)
    m = m[:, : 4 * nfr] if m.shape[1] >= 4 * nfr else np.pad(m, ((0, 0), (0, 4 * nfr - m.shape[1])))
    return 10 * np.log10(m.reshape(40, nfr, 4).mean(2).T + 1e-8)


def class_lsd(ref: np.ndarray, deg: np.ndarray, frame_class: np.ndarray) -> dict:
    """Mean log-mel distance (dB) per frame class; NaN where a class has no frame."""
    nfr = len(frame_class)
    d = np.sqrt(np.mean((log_mel_frames(ref, nfr) - log_mel_frames(deg, nfr)) ** 2, axis=1))
    return {f"lsd_{c}": float(d[frame_class == i].mean()) if (frame_class == i).any() else float("nan")
            for i, c in enumerate(CLASSES)}


def utterance_rows(u: dict, args) -> list[dict]:
    """Every condition x B x strategy of one utterance (one task)."""
    import os
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(v, "1")
    from gnuradio.largesc.evaluation import largesc_system, losstrace, metrics
    x = u["audio"]
    dur = len(x) / 16000
    bws = [float(b) for b in args.bandwidths.split(",")]
    mets = tuple(args.metrics.split(","))
    y0, _ = largesc_system.run(x, losstrace.LossTrace.none(int(dur * 50) + 100), profile=args.profile,
                               bandwidth_bps=bws[0], recovery="repeat")
    lag = metrics.estimate_lag(x, y0)
    rows = []
    for model, p, burst in CONDITIONS:
        trace = losstrace.make_trace(u["id"], dur, model, p, args.seed, burst)
        for bw in bws:
            for s in args.strategies.split(","):
                y, info = largesc_system.run(x, trace, profile=args.profile, bandwidth_bps=bw, p=p,
                                             recovery=s, seed=args.seed)
                sc = metrics.score(x, y, lag, u.get("text", ""), mets, seed=args.seed)
                r, dd = metrics.shift(x, y, lag)
                sc.update(class_lsd(r, dd, info["frame_class"]))
                fc = np.bincount(info["frame_class"], minlength=3)
                rows.append({"utterance": u["id"], "group": u.get("group", ""), "condition": cond_name(model, p, burst),
                             "loss_model": model, "p": p, "burst_ms": burst, "bandwidth_bps": bw, "strategy": s,
                             "payload_bps": info["payload_bps"], "frames": dict(zip(CLASSES, fc.tolist())),
                             "scores": sc})
    return rows


def _task(u: dict, args, path: str) -> int:
    rows = utterance_rows(u, args)
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    tmp.replace(path)
    return len(rows)


def run(args) -> None:
    """One task per utterance, each written to tasks/<utterance>.jsonl when done (a rerun skips
    them: a killed run resumes), on a dask LocalCluster of --jobs workers (or in this process
    with --jobs 1); then results.jsonl is their concatenation and summary.md is rewritten."""
    from gnuradio.largesc.evaluation import speech
    out = Path(args.out)
    tasks = out / "tasks" / f"{args.profile}_{args.strategies.replace(',', '-')}_{args.bandwidths}_{args.seed}"
    tasks.mkdir(parents=True, exist_ok=True)
    utts = speech.load(speech.resolve(args.speech), args.utterances)
    todo = [(u, tasks / (u["id"] + ".jsonl")) for u in utts if not (tasks / (u["id"] + ".jsonl")).is_file()]
    t0 = time.time()
    print(f"{len(utts)} utterances, {len(todo)} to run ({tasks})", file=sys.stderr)
    if todo and args.jobs > 1:
        from dask.distributed import Client, LocalCluster, as_completed
        with LocalCluster(n_workers=args.jobs, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            futs = [client.submit(_task, u, args, str(path), pure=False) for u, path in todo]
            for i, f in enumerate(as_completed(futs), 1):
                f.result()
                if not args.quiet:
                    print(f"[{time.time() - t0:7.0f} s] {i}/{len(todo)} utterances", file=sys.stderr)
    else:
        for i, (u, path) in enumerate(todo, 1):
            _task(u, args, str(path))
            if not args.quiet:
                print(f"[{time.time() - t0:7.0f} s] {i}/{len(todo)} {u['id']}", file=sys.stderr)
    with open(out / "results.jsonl", "w") as f:
        for u in utts:
            f.write((tasks / (u["id"] + ".jsonl")).read_text())
    (out / "wall_time.txt").write_text(f"{time.time() - t0:.0f} s for {len(todo)} utterances with --jobs {args.jobs}\n")
    from gnuradio.largesc.evaluation.largesc_system import model_description
    strategies = args.strategies.split(",")
    models = model_description(args.profile, "latent" if "latent" in strategies else strategies[0])
    lm = next((s for s in strategies if s in ("moshi", "moshi-mmse")), None)
    if lm:          # the LM's and LoRA's sha256 too
        models += "; " + model_description(args.profile, lm).split("; ", 1)[-1]
    (out / "meta.json").write_text(json.dumps({        # read by tests/test_report_freshness.py
        "command": "scripts/recovery_ceiling.py " + " ".join(sys.argv[1:]), "profile": args.profile,
        "strategies": strategies, "model": models}, indent=1))
    summarise(out)


def _boot(d: np.ndarray, rng, n: int = 10000) -> tuple[float, float]:
    if len(d) < 2:
        return float("nan"), float("nan")
    idx = rng.integers(0, len(d), (n, len(d)))
    m = d[idx].mean(1)
    return float(np.percentile(m, 2.5)), float(np.percentile(m, 97.5))


def summarise(out: Path, strategies: list[str] | None = None) -> None:
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    strategies = strategies or sorted({r["strategy"] for r in rows})
    table = defaultdict(dict)         # (cond, bw, metric) -> strategy -> {utt: value}
    frames_by = defaultdict(lambda: np.zeros(3, int))
    for r in rows:
        for m, v in r["scores"].items():
            table[(r["condition"], r["bandwidth_bps"], m)].setdefault(r["strategy"], {})[r["utterance"]] = v
        if r["strategy"] == strategies[0]:
            frames_by[(r["condition"], r["bandwidth_bps"])] += np.array([r["frames"][c] for c in CLASSES])
    # csv in the eval harness's columns (scripts/paired_compare.py reads it)
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["utterance", "system", "recovery", "loss_model", "p", "bandwidth_bps", "metric", "value"])
        for r in rows:
            model = r["loss_model"] if r["loss_model"] == "bernoulli" else f"ge{r['burst_ms']:g}"
            for m, v in r["scores"].items():
                w.writerow([r["utterance"], f"largesc-{r['strategy']}", r["strategy"], model, r["p"],
                            r["bandwidth_bps"], m, v])
    rng = np.random.default_rng(0)
    metrics = sorted({k[2] for k in table}, key=lambda m: (m.startswith("lsd"), m))
    lines = [f"# Recovery ceiling ({len({r['utterance'] for r in rows})} utterances)", "",
             "Means per strategy; `Δ repeat`, `Δ prefix` and `Δ oracle`: paired mean difference of the best non-oracle "
             "strategy, with its 95 % bootstrap interval. WER and LSD (dB): lower is better. Frame classes: "
             "whole / partial (codebook 0 known) / lost.", ""]
    for cond, bw in sorted({(k[0], k[1]) for k in table}):
        fc = frames_by[(cond, bw)]
        lines += [f"## {cond}, B = {bw:g} bps (frames whole / partial / lost: {fc[0]} / {fc[1]} / {fc[2]})", "",
                  "| metric | " + " | ".join(strategies) + " | best | Δ repeat [95 % CI] | Δ prefix [95 % CI] | Δ oracle [95 % CI] |",
                  "|---|" + "---|" * (len(strategies) + 4)]
        for m in metrics:
            per = table[(cond, bw, m)]
            means = {s: np.nanmean(list(per[s].values())) if per.get(s) else float("nan") for s in strategies}
            lower = m.startswith(("wer", "lsd"))
            cands = [s for s in strategies if s not in ("oracle",) and np.isfinite(means[s])]
            best = (min if lower else max)(cands, key=lambda s: means[s]) if cands else ""

            def diff(a, b):
                if not (per.get(a) and per.get(b)):
                    return "–"
                us = sorted(set(per[a]) & set(per[b]))
                d = np.array([per[a][u] - per[b][u] for u in us])
                d = d[np.isfinite(d)]
                if not len(d):
                    return "–"
                lo, hi = _boot(d, rng)
                return f"{d.mean():+.3f} [{lo:+.3f}, {hi:+.3f}]"
            lines.append(f"| {m} | " + " | ".join(f"{means[s]:.3f}" for s in strategies)
                         + f" | {best} | {diff(best, 'repeat')} | {diff(best, 'prefix')} | {diff(best, 'oracle')} |")
        lines.append("")
    (out / "summary.md").write_text("\n".join(lines))
    print(f"wrote {out / 'summary.md'}", file=sys.stderr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--profile", default=DEFAULT_PROFILE, help="codec + LM profile")
    ap.add_argument("--strategies", default="zero,prefix,repeat,interp,latent,oracle")
    ap.add_argument("--bandwidths", default="1100,2062.5")
    ap.add_argument("--metrics", default="stoi,plcmos,visqol,wer")
    ap.add_argument("--speech", default="unseen", help="speech set (evaluation/speech.py) or manifest")
    ap.add_argument("--jobs", type=int, default=2, help="dask LocalCluster workers (1: in this process)")
    ap.add_argument("--utterances", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--summary-only", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.summary_only:
        summarise(Path(args.out))
    else:
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
