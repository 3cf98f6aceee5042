#!/usr/bin/env python3
"""What DTX saves on a clip: mean payload rate without and with DTX at a bandwidth budget.

Activity per 80 ms frame comes from the codec's own source, as the encoder block gives it
(`--activity codec`: Mimi's latent level, mini's input level; core.codec.activity_db) or always
from the waveform's frame energy in dB (`--activity energy`). Default clip: the bundled LibriVox sentence.

    .venv/bin/python scripts/dtx_report.py --profile mini --bandwidth 550
"""
import argparse
import json
import os

os.environ.setdefault("NO_TORCH_COMPILE", "1")

import numpy as np

from gnuradio.largesc.app.cli import BUNDLED_CLIP
from gnuradio.largesc.core import audio_io, codec
from gnuradio.largesc.core.link import controller
from gnuradio.largesc.core.profiles import DEFAULT_PROFILE


def activity(x24: np.ndarray, source: str, profile: str) -> np.ndarray:
    if source == "energy":
        return codec.frame_level_db(x24)
    c = codec.load_codec(profile)
    _, latent = c.encode_latent(x24)
    return codec.activity_db(c, x24, latent)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wavs", nargs="*", default=[str(BUNDLED_CLIP)])
    ap.add_argument("--activity", choices=["codec", "energy"], default="codec")
    ap.add_argument("--profile", default=DEFAULT_PROFILE)
    ap.add_argument("--bandwidth", type=float, default=550.0)
    ap.add_argument("--dtx-tokens", type=int, default=1)
    ap.add_argument("--loss", type=float, default=0.0)
    args = ap.parse_args(argv)
    for wav in args.wavs:
        x, rate = audio_io.read_wav(wav)
        act = activity(audio_io.to_codec_rate(x, rate), args.activity, args.profile)
        rep = controller.rate_report(act, args.bandwidth, p=args.loss, dtx_tokens=args.dtx_tokens)
        rep.update(clip=os.path.basename(wav), activity=args.activity,
                   profile=args.profile if args.activity == "codec" else None, bandwidth_bps=args.bandwidth)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in rep.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
