#!/usr/bin/env python3
"""Encode/decode real-time factor of the codec profiles, streaming (1 frame per call) and batched.

Usage: .venv/bin/python benchmarks/bench_codec.py [--seconds 4] [--threads 1] [--profiles tiny kyutai-arch]
RTF = compute time / audio duration (< 1 is faster than real time). Ratios are against `tiny`
batched, measured in the same run.
"""
import argparse
import os
import time

os.environ.setdefault("NO_TORCH_COMPILE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

from gnuradio.largesc.core import codec
from gnuradio.largesc.core.link import frames
from gnuradio.largesc.core.profiles import DEFAULT_PROFILE


def bench(c, x, chunk_frames):
    """Returns (encode_s, decode_s) for x; chunk_frames=None means one offline call."""
    if chunk_frames is None:
        c.encode(x)                                 # warm-up
        t0 = time.perf_counter()
        codes = c.encode(x)
        t1 = time.perf_counter()
        c.decode(codes)
        return t1 - t0, time.perf_counter() - t1
    step = chunk_frames * frames.FRAME_SAMPLES
    enc = dec = 0.0
    c.start_streaming()
    try:
        for i in range(0, len(x) - step + 1, step):
            t0 = time.perf_counter()
            codes, _ = c.stream_encode(x[i:i + step])
            t1 = time.perf_counter()
            c.stream_decode(codes)
            enc += t1 - t0
            dec += time.perf_counter() - t1
    finally:
        c.stop_streaming()
    return enc, dec


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profiles", nargs="+", default=[DEFAULT_PROFILE, "tiny", "kyutai-arch"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n = int(args.seconds * frames.SAMPLE_RATE) // frames.FRAME_SAMPLES * frames.FRAME_SAMPLES
    x = (0.1 * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
    print(f"{args.seconds:.1f} s of audio, {args.threads} torch thread(s), torch {torch.__version__}")
    print(f"{'profile':12s} {'mode':22s} {'enc RTF':>8s} {'dec RTF':>8s} {'total':>8s} {'x tiny-batch':>12s}")
    base = None
    for profile in args.profiles:
        c = codec.load_codec(profile)
        for label, chunk in (("batched (offline)", None), ("streaming 1 frame/call", 1),
                             ("streaming 5 frames/call", 5)):
            enc, dec = bench(c, x, chunk)
            total = (enc + dec) / args.seconds
            base = base or total
            print(f"{profile:12s} {label:22s} {enc / args.seconds:8.3f} {dec / args.seconds:8.3f} "
                  f"{total:8.3f} {total / base:12.1f}")


if __name__ == "__main__":
    main()
