#!/usr/bin/env python3
"""Token recovery benchmark: per-frame time of every strategy on `tiny`, and token accuracy.

    .venv/bin/python benchmarks/bench_recovery.py [--lora DIR | --train-steps N] [--full]

Strategies run on the same received streams (synthetic Markov tokens, frames lost i.i.d. with
probability p, half of the lost frames keeping codebook 0 through a UEP copy, and codebooks 5-7
not sent in every third second). The `moshi` rows use the tiny LM: untrained unless an adapter
is given (--lora) or trained here first (--train-steps). "not-sent acc" compares generating the
not-sent codebooks with the clean tokens; in prefix mode they are not decoded at all. "sampled
context" feeds generated tokens back to the LM instead of -1 (the default, as in training).

--full adds one streaming step of the `kyutai-arch` LM (7.7 B, random weights) on CPU, built on
the meta device and materialised in bf16 (measured before: 317 s and 17.5 GB to build, 2.2 s per
step on 2 cores). It is not for CI.
"""
import argparse
import os
import resource
import sys
import tempfile
import time

os.environ.setdefault("NO_TORCH_COMPILE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from gnuradio.largesc.core import recovery as R
from gnuradio.largesc.core.link import frames  # noqa: E402
from gnuradio.largesc.core.recovery import lm as L
from gnuradio.largesc.training import token_data as D

BUDGET_MS = frames.FRAME_SECONDS * 1e3


def streams(num, num_frames, p, seed):
    src = D.MarkovTokenSource(seed=0)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num):
        clean = src.sample(num_frames, rng)
        states = D.erasure_states(num_frames, p, rng)
        for start in range(0, num_frames, 3 * 13):
            states[5:, start:start + 13] = frames.STATE_NOT_SENT
        out.append((clean, states))
    return out


def run(make, data):
    times, lost_hits, ns_hits = [], [], []
    for clean, states in data:
        rec = make()
        tokens = np.where(np.isin(states, frames.KNOWN_STATES), clean, 0)
        outs = []
        for f in range(tokens.shape[1]):
            t0 = time.perf_counter()
            outs += rec.push(tokens[:, f], states[:, f])
            times.append(time.perf_counter() - t0)
        outs += rec.flush()
        out = np.stack([t for t, _ in outs], 1)
        lost_hits.append((out == clean)[states == frames.STATE_LOST])
        ns_hits.append((out == clean)[states == frames.STATE_NOT_SENT])
    ms = np.array(times[len(data):]) * 1e3        # drop each stream's first (warm-up) frame
    return ms, np.concatenate(lost_hits).mean(), np.concatenate(ns_hits).mean()


def bench_tiny(args):
    torch.set_num_threads(args.threads)
    lora = args.lora
    if lora is None and args.train_steps:
        from gnuradio.largesc.training import train_lora
        lora = tempfile.mkdtemp(prefix="bench_lora_")
        t0 = time.time()
        train_lora.main(["--out", lora, "--steps", str(args.train_steps), "--batch", "4", "--frames", "32",
                         "--eval-every", "0", "--eval-batches", "2", "--no-progress"])
        print(f"(trained a tiny adapter: {args.train_steps} steps in {time.time() - t0:.0f} s)")
    lm = L.load_lm("tiny", lora=lora)
    data = streams(args.streams, args.frames, args.p, seed=7)
    rows = [
        ("zero", lambda: R.build("zero")),
        ("repeat", lambda: R.build("repeat")),
        ("prefix", lambda: R.build("prefix")),
        ("moshi greedy, generate", lambda: R.build("moshi", lm=lm, temperature=0.0)),
        ("moshi T=0.8 k=250, generate", lambda: R.build("moshi", lm=lm, seed=1)),
        ("moshi greedy, prefix", lambda: R.build("moshi", lm=lm, temperature=0.0, fill_not_sent=False)),
        ("moshi greedy, sampled context", lambda: R.build("moshi", lm=lm, temperature=0.0,
                                                                 feedback="sampled")),
    ]
    print(f"\ntiny LM ({'adapter ' + str(lora) if lora else 'untrained'}), {args.streams} x {args.frames} frames, "
          f"p = {args.p}, {args.threads} thread(s), CPU; budget {BUDGET_MS:.0f} ms per frame")
    print(f"{'strategy':30s} {'mean ms':>8s} {'p95 ms':>8s} {'max ms':>8s} {'x real time':>11s} "
          f"{'lost acc':>9s} {'not-sent acc':>12s}")
    for name, make in rows:
        ms, acc, ns = run(make, data)
        ns_txt = "not decoded" if "prefix" in name else f"{ns:.3f}"
        print(f"{name:30s} {ms.mean():8.3f} {np.percentile(ms, 95):8.3f} {ms.max():8.3f} "
              f"{BUDGET_MS / ms.mean():11.1f} {acc:9.3f} {ns_txt:>12s}")


def bench_kyutai_arch(args):
    from gnuradio.largesc.core.recovery.moshi import MoshiRecovery
    torch.set_num_threads(args.threads)
    print("\nkyutai-arch LM (7.7 B, random weights) on CPU: building on meta, materialising in bf16 ...")
    t0 = time.time()
    lm = L.load_lm("kyutai-arch", device="cpu", dtype=torch.bfloat16)
    build = time.time() - t0
    n = sum(p.numel() for p in lm.parameters())
    rec = MoshiRecovery(lm, temperature=0.8, top_k=250)
    tokens = np.arange(8) * 100
    states = np.array([frames.STATE_COPY] + [frames.STATE_LOST] * 7, dtype=np.uint8)
    step_s = []
    for _ in range(3):
        t0 = time.time()
        rec.push(tokens, states)
        step_s.append(time.time() - t0)
    rec.close()
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"params {n / 1e9:.2f} B, dtype {lm.dtype}, build {build:.0f} s, peak RSS {peak_gb:.1f} GB")
    print(f"one streaming step (codebook 0 received, 7 sampled): first {step_s[0]:.2f} s, then "
          f"{np.mean(step_s[1:]):.2f} s = {np.mean(step_s[1:]) / frames.FRAME_SECONDS:.1f} x the 80 ms frame")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lora", help="tiny adapter for the moshi rows")
    p.add_argument("--train-steps", type=int, default=0, help="train a tiny adapter first (if no --lora)")
    p.add_argument("--streams", type=int, default=3)
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--p", type=float, default=0.3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--full", action="store_true", help="also time the kyutai-arch LM on CPU (minutes, ~18 GB)")
    args = p.parse_args(argv)
    bench_tiny(args)
    if args.full:
        bench_kyutai_arch(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
