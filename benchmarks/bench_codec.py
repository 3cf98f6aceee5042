#!/usr/bin/env python3
"""Encode/decode real-time factor of the codec profiles, streaming (1 frame per call) and batched.

Usage: .venv/bin/python benchmarks/bench_codec.py [--seconds 4] [--threads 1] [--profiles mini mini-v1 tiny]
RTF = compute time / audio duration (< 1 is faster than real time). Ratios are against `mini-v1`
(the previous default codec) in the same mode, measured in the same run. The bundled speech clip
is the input.
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
    ap.add_argument("--profiles", nargs="+", default=[DEFAULT_PROFILE, "mini-v1", "tiny"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n = int(args.seconds * frames.SAMPLE_RATE) // frames.FRAME_SAMPLES * frames.FRAME_SAMPLES
    from gnuradio.largesc.app.run_options import BUNDLED_CLIP
    from gnuradio.largesc.core import audio_io
    clip, rate = audio_io.read_wav(BUNDLED_CLIP)
    clip = audio_io.resample(clip, rate, frames.SAMPLE_RATE)
    x = np.resize(clip, n).astype(np.float32)
    print(f"{args.seconds:.1f} s of audio, {args.threads} torch thread(s), torch {torch.__version__}")
    print(f"{'profile':12s} {'mode':22s} {'enc RTF':>8s} {'dec RTF':>8s} {'total':>8s} {'x mini-v1':>10s}")
    modes = (("batched (offline)", None), ("streaming 1 frame/call", 1), ("streaming 5 frames/call", 5))
    results = {}
    for profile in args.profiles:
        c = codec.load_codec(profile)
        for label, chunk in modes:
            enc, dec = bench(c, x, chunk)
            results[profile, label] = (enc / args.seconds, dec / args.seconds)
    for profile in args.profiles:
        for label, _ in modes:
            enc, dec = results[profile, label]
            ref = results.get(("mini-v1", label))
            ratio = f"{(enc + dec) / sum(ref):10.2f}" if ref else f"{'-':>10s}"
            print(f"{profile:12s} {label:22s} {enc:8.3f} {dec:8.3f} {enc + dec:8.3f} {ratio}")


if __name__ == "__main__":
    main()
