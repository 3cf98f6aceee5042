#!/usr/bin/env python3
"""Call sign trials: seeded `gr-largesc run`s of the bundled clip with and without a call sign.

Per seed, the same in-process path as `gr-largesc run` (app/loopback.run) twice, at p = --loss
(Bernoulli): with --callsign and without. Prints the share of runs whose RX heard the call sign
within --within s of the start, the share that heard the end of over, the mean STOI of each and
the mean paired STOI difference, and the text channel's bits (docs/text-channel.md).

    PYTHONPATH=... .venv/bin/python scripts/callsign_trials.py --runs 100 --loss 0.3
"""
import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("NO_TORCH_COMPILE", "1")

import numpy as np

from gnuradio.largesc.app import loopback
from gnuradio.largesc.app.run_options import BUNDLED_CLIP
from gnuradio.largesc.core import audio_io
from gnuradio.largesc.core.link.packet_formats import DEFAULT_FORMAT, FORMATS
from gnuradio.largesc.core.profiles import DEFAULT_PROFILE


def one_run(seed, loss, callsign, out, fmt, profile):
    s = loopback.run({"input": str(BUNDLED_CLIP), "output": str(out), "loss": loss, "seed": seed,
                      "callsign": callsign, "png": "none", "quiet": True, "packet_format": fmt,
                      "profile": profile})
    return s, audio_io.read_wav(out)[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--loss", type=float, default=0.3)
    ap.add_argument("--callsign", default="N0CALL")
    ap.add_argument("--within", type=float, default=2.0, help="seconds from the start")
    ap.add_argument("--packet-format", default=DEFAULT_FORMAT, choices=list(FORMATS))
    ap.add_argument("--profile", default=DEFAULT_PROFILE)
    ap.add_argument("--no-stoi", action="store_true", help="skip the runs without text and STOI")
    args = ap.parse_args(argv)
    from gnuradio.largesc.evaluation.metrics import stoi
    ref, rate = audio_io.read_wav(BUNDLED_CLIP)
    early = eoo = 0
    d_stoi, s_text, s_plain, text_bps, total_bps, b = [], [], [], [], [], None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "y.wav"
        for seed in range(args.runs):
            s, y = one_run(seed, args.loss, args.callsign, out, args.packet_format, args.profile)
            t = s["text"]
            b = s["bandwidth_bps"]
            early += any(h["kind"] == "callsign" and h["text"] == args.callsign and h["t_s"] <= args.within
                         for h in t["heard"])
            eoo += any(h["kind"] == "end_of_over" and h["text"] == args.callsign for h in t["heard"])
            text_bps.append(t["payload_bps"])
            total_bps.append(t["total_payload_bps"])
            if not args.no_stoi:
                s_text.append(stoi(ref, y[: len(ref)]))
                _, y0 = one_run(seed, args.loss, "", out, args.packet_format, args.profile)
                s_plain.append(stoi(ref, y0[: len(ref)]))
                d_stoi.append(s_plain[-1] - s_text[-1])
            sys.stderr.write(f"\rseed {seed}: early {early}, end of over {eoo}")
    sys.stderr.write("\n")
    n = args.runs
    res = {"runs": n, "loss": args.loss, "packet_format": args.packet_format,
           "callsign_within_s": args.within, "callsign_early_share": early / n,
           "end_of_over_share": eoo / n, "text_payload_bps_mean": round(float(np.mean(text_bps)), 2),
           "total_payload_bps_max": round(float(np.max(total_bps)), 2), "budget_bps": b}
    if d_stoi:
        res.update(stoi_with_text=round(float(np.mean(s_text)), 4), stoi_without=round(float(np.mean(s_plain)), 4),
                   stoi_drop_mean=round(float(np.mean(d_stoi)), 4), stoi_drop_max=round(float(np.max(d_stoi)), 4))
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
