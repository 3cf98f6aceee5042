#!/usr/bin/env python3
"""Paired comparison of two systems from `gr-largesc eval` results.csv files.

    .venv/bin/python scripts/paired_compare.py A.csv:system_a B.csv:system_b [--metrics plcmos,wer]

Pairs rows by (utterance, loss model, p) and prints, per condition and metric, the mean of
A - B over utterances with a 95 % bootstrap interval (10,000 resamples, seeded) and how many
utterances A wins. Both systems see the same loss trace per utterance (the harness's common
trace), so the pairing removes the utterance-to-utterance spread that dominates the per-system
intervals of the report. WER: lower is better, so a negative difference favours A.
"""
import argparse
import csv
from collections import defaultdict

import numpy as np

LOWER_IS_BETTER = {"wer"}


def load(spec):
    path, system = spec.rsplit(":", 1)
    out = defaultdict(dict)
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["system"] == system:
                key = (r["loss_model"], float(r["p"]))          # systems without a budget have no B
                out[(key, r["metric"])][r["utterance"]] = float(r["value"])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--metrics", default="plcmos,wer,stoi,visqol")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    A, B = load(a.a), load(a.b)
    rng = np.random.default_rng(a.seed)
    print(f"A = {a.a}, B = {a.b}: mean(A - B) [95 % bootstrap], A better on n of N utterances\n")
    print("| condition | metric | mean A | mean B | A - B [95 % CI] | A better |")
    print("|---|---|---|---|---|---|")
    for metric in a.metrics.split(","):
        for (cond, m) in sorted(k for k in A if k[1] == metric):
            if (cond, m) not in B:
                continue
            utts = sorted(set(A[(cond, m)]) & set(B[(cond, m)]))
            if not utts:
                continue
            x = np.array([A[(cond, m)][u] for u in utts])
            y = np.array([B[(cond, m)][u] for u in utts])
            d = x - y
            boot = d[rng.integers(0, len(d), (10000, len(d)))].mean(axis=1)
            lo, hi = np.percentile(boot, [2.5, 97.5])
            better = int(np.sum(d < 0) if metric in LOWER_IS_BETTER else np.sum(d > 0))
            print(f"| {cond[0]} p={cond[1]:g} | {metric} | {x.mean():.3f} | {y.mean():.3f} | "
                  f"{d.mean():+.3f} [{lo:+.3f}, {hi:+.3f}] | {better} of {len(d)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
