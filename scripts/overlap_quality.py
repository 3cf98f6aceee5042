#!/usr/bin/env python3
"""What the overlap of the recovery hold and the decoder's look-ahead costs in quality.

    .venv/bin/python scripts/overlap_quality.py --out docs/eval/overlap-mini [--utterances N]

The same utterances, loss traces, allocation and recovered tokens decoded two ways
(evaluation/largesc_system.py `run(..., overlap=True/False)`): overlapped (each frame with its
successor as received, LargeSC RX's default) and sequential (with its successor as recovered).
Default profile and its `auto` strategy, B = 1100 bps, Bernoulli p in {0, 0.2, 0.4}, speech set
`unseen`; STOI, PLCMOS and Whisper-base WER (clips with transcripts). Writes rows.jsonl and
summary.md: means and paired differences (overlapped - sequential) with 95 % bootstrap
intervals (WER: summed errors over summed words, resampled per utterance).

`--provisional-state` (a route measured and not taken, docs/latency.md): when the successor of a
frame is a provisional fill, let the mini v2 decoder run back from the fill's *predicted* state
codebook instead of the frame's own received state.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from gnuradio.largesc.core.profiles import DEFAULT_PROFILE, auto_recovery


def _boot(a: np.ndarray, b: np.ndarray, words: np.ndarray | None, n: int = 5000) -> tuple[float, float, float]:
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(a), (n, len(a)))
    if words is None:
        d = a - b
        m = d[idx].mean(1)
        return float(d.mean()), float(np.percentile(m, 2.5)), float(np.percentile(m, 97.5))
    ea, eb = a * words, b * words                     # WER x words = errors
    m = (ea[idx].sum(1) - eb[idx].sum(1)) / words[idx].sum(1)
    return float((ea.sum() - eb.sum()) / words.sum()), float(np.percentile(m, 2.5)), float(np.percentile(m, 97.5))


def _use_predicted_state() -> None:
    """Patch mini v2's provisional frames so that a filled state codebook counts as a state."""
    from gnuradio.largesc.core.codec import mini2
    from gnuradio.largesc.core.link import frames
    received_state_only = mini2.Mini2Codec._provisional

    def _provisional(self, codes, states):
        v, _, present = received_state_only(self, codes, states)
        pre = np.maximum(frames.decodable_prefixes(np.asarray(states, np.uint8)), 1)
        return v, self.model.has_state(pre) & present, present
    mini2.Mini2Codec._provisional = _provisional


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--profile", default=DEFAULT_PROFILE)
    ap.add_argument("--recovery", default="auto")
    ap.add_argument("--speech", default="unseen")
    ap.add_argument("--utterances", type=int, default=None)
    ap.add_argument("--p", default="0,0.2,0.4")
    ap.add_argument("--bandwidth", type=float, default=1100.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--provisional-state", action="store_true",
                    help="the decoder uses a provisional fill's predicted state (route not taken)")
    args = ap.parse_args(argv)
    if args.provisional_state:
        _use_predicted_state()
    from gnuradio.largesc.evaluation import largesc_system as ls
    from gnuradio.largesc.evaluation import losstrace, metrics, speech
    rec = auto_recovery(args.profile) if args.recovery == "auto" else args.recovery
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    utts = speech.load(speech.resolve(args.speech), args.utterances)
    t0 = time.time()
    rows = []
    for u in utts:
        x = u["audio"]
        dur = len(x) / 16000
        y0, _ = ls.run(x, losstrace.LossTrace.none(int(dur * 50) + 100), profile=args.profile,
                       bandwidth_bps=args.bandwidth, recovery="repeat")
        lag = metrics.estimate_lag(x, y0)
        mets = ("stoi", "plcmos") + (("wer",) if u.get("text") else ())
        for p in (float(v) for v in args.p.split(",")):
            trace = losstrace.make_trace(u["id"], dur, "bernoulli", p, args.seed, 160.0)
            for overlap in (True, False):
                y, _ = ls.run(x, trace, profile=args.profile, bandwidth_bps=args.bandwidth, p=p, recovery=rec,
                              seed=args.seed, overlap=overlap)
                sc = metrics.score(x, y, lag, u.get("text", ""), mets, seed=args.seed)
                rows.append({"utterance": u["id"], "p": p, "overlap": overlap, "words": len(u.get("text", "").split()),
                             "scores": sc})
        print(f"[{time.time() - t0:6.0f} s] {u['id']}", file=sys.stderr)
    (out / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    lines = [f"# Overlapped - sequential decode ({args.profile}, recovery {rec}, B = {args.bandwidth:g} bps, "
             f"{len(utts)} utterances of `{args.speech}`)", "",
             f"Command: `.venv/bin/python scripts/overlap_quality.py --out {args.out}`; wall time "
             f"{time.time() - t0:.0f} s.", "",
             "| p | metric | overlapped | sequential | overlapped - sequential [95 % CI] |", "|---|---|---|---|---|"]
    for p in sorted({r["p"] for r in rows}):
        for m in ("stoi", "plcmos", "wer"):
            pairs = {}
            for r in rows:
                if r["p"] == p and m in r["scores"] and np.isfinite(r["scores"][m]):
                    pairs.setdefault(r["utterance"], {})[r["overlap"]] = (r["scores"][m], r["words"])
            us = [k for k, v in pairs.items() if len(v) == 2]
            if not us:
                continue
            a = np.array([pairs[k][True][0] for k in us])
            b = np.array([pairs[k][False][0] for k in us])
            w = np.array([pairs[k][True][1] for k in us], float) if m == "wer" else None
            d, lo, hi = _boot(a, b, w)
            ma, mb = ((a * w).sum() / w.sum(), (b * w).sum() / w.sum()) if w is not None else (a.mean(), b.mean())
            lines.append(f"| {p:g} | {m} | {ma:.3f} | {mb:.3f} | {d:+.4f} [{lo:+.4f}, {hi:+.4f}] |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    (out / "meta.json").write_text(json.dumps({     # read by tests/test_report_freshness.py
        "command": " ".join(["scripts/overlap_quality.py", *(argv if argv is not None else sys.argv[1:])]),
        "profile": args.profile, "recovery": rec, "model": ls.model_description(args.profile, rec),
        "speech": args.speech, "wall_s": round(time.time() - t0, 1)}, indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
