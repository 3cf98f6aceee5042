"""`gr-largesc` command line: info, codec, demo (and the training / evaluation commands)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..core import profiles
from ..core.link.packet_formats import DEFAULT_FORMAT, FORMATS
from ..core.profiles import DEFAULT_PROFILE, PROFILE_NAMES

os.environ.setdefault("NO_TORCH_COMPILE", "1")

from .run_options import BUNDLED_CLIP, RECOVERY_CHOICES


def cmd_info(args) -> int:
    """Versions, which profiles can load here, where weights are cached."""
    import moshi
    import numpy
    import torch
    from gnuradio import gr
    from huggingface_hub import constants, try_to_load_from_cache

    from ..core import codec
    from ..core.codec.mimi import KYUTAI_MIMI_FILE, KYUTAI_REPO
    print(f"gr-largesc   {_version()}")
    print(f"python       {sys.version.split()[0]} ({sys.executable})")
    print(f"gnuradio     {gr.version()}")
    print(f"numpy        {numpy.__version__}")
    print(f"torch        {torch.__version__} (CUDA {'available' if torch.cuda.is_available() else 'not available'})")
    print(f"moshi        {moshi.__version__}")
    print(f"HF cache     {constants.HF_HUB_CACHE} (offline: {constants.HF_HUB_OFFLINE})")
    cached = try_to_load_from_cache(KYUTAI_REPO, KYUTAI_MIMI_FILE)
    avail = {
        "kyutai": f"cached at {cached}" if isinstance(cached, str) else
                  f"not in cache ({KYUTAI_REPO}/{KYUTAI_MIMI_FILE}); download it or pass --mimi-weights",
        "kyutai-arch": "available (random weights)",
        "tiny": "available (random weights)",
        "mini": _mini_status(codec.mini_weights_dir(profile="mini")),
        "mini-v1": _mini_status(codec.mini_weights_dir(profile="mini-v1"), with_lm=True),
    }
    from ..core.codec import opus_dnn
    print(f"opus DNNs    {opus_dnn.library_path()} ({'built' if opus_dnn.available() else 'not built: scripts/build_opus_dnn.sh'}; "
          "DRED + FARGAN of the default mini v2 codec)")
    print("profiles:")
    for name, text in profiles.PROFILES.items():
        print(f"  {name:12s} {text}\n  {'':12s} -> {avail[name]}")
    return 0


def _mini_status(codec_dir, with_lm: bool = False) -> str:
    """Which parts of a `mini`-family profile are on this machine (codec, and LM + LoRA for v1)."""
    from ..core.recovery import lm
    parts = {"codec": codec_dir / "config.json"}
    if with_lm:
        parts.update({"LM": lm.MINI_LM_DIR / lm.MINI_LM_WEIGHTS, "LoRA": lm.MINI_LORA_DIR / lm.PEFT_ADAPTER_FILE})
    have = [k for k, f in parts.items() if f.is_file()]
    missing = [k for k in parts if k not in have]
    text = f"available: {', '.join(have)} ({codec_dir.parent})" if have else f"not shipped ({codec_dir.parent})"
    return text + (f"; missing: {', '.join(missing)}" if have and missing else "")


def cmd_codec(args) -> int:
    """Encode and decode a wav file; writes 24 kHz audio."""
    from ..core import audio_io, codec
    from ..core.codec import file_loopback as codec_file
    from ..core.link import frames
    x, rate = audio_io.read_wav(args.input)
    x24 = audio_io.to_codec_rate(x, rate)
    c = codec.load_codec(args.profile, mimi_weights=args.mimi_weights, device=args.device)
    run = codec_file.loopback(c, x24, args.codebooks, progress=not args.quiet and sys.stderr.isatty())
    audio_io.write_wav(args.output, run.audio, frames.SAMPLE_RATE)
    dur = len(x24) / frames.SAMPLE_RATE
    print(json.dumps({"in": str(args.input), "out": str(args.output), "profile": args.profile,
                      "codebooks": args.codebooks, "payload_bps": frames.tokens_to_bps(args.codebooks),
                      "seconds": round(dur, 3), "frames": int(run.codes.shape[1]),
                      "rtf": round((run.encode_s + run.decode_s) / max(dur, 1e-9), 3)}, indent=1))
    return 0


def cmd_demo(args) -> int:
    """The main job: the bundled clip through TX -> lossy packet channel -> RX, with a report."""
    from . import loopback, run_summary
    note = ""
    if args.recovery == "auto":
        # the measured best strategy of each profile (docs/recovery.md); `mini` (v2) has no LM yet
        args.recovery = profiles.auto_recovery(args.profile)
        if args.profile == "mini-v1":
            from ..core.recovery import lm
            if not (lm.MINI_LM_DIR / lm.MINI_LM_WEIGHTS).is_file():
                args.recovery = "repeat"
                note = ("**Note:** the `mini-v1` LM is not on this machine (docs/models/mini.md), so lost "
                        "tokens are filled by `repeat`.\n\n")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s = loopback.run({"input": str(BUNDLED_CLIP), "output": str(out_dir / "decoded.wav"),
                     "profile": args.profile, "bandwidth": args.bandwidth, "loss": args.loss,
                     "recovery": args.recovery, "seed": args.seed, "device": args.device,
                     "out_rate": 24000, "quiet": not sys.stderr.isatty(),
                     "packet_format": args.packet_format, "png": str(out_dir / "report.png"),
                     "callsign": args.callsign})
    text = run_summary.format_summary(s)
    if args.profile in ("tiny", "kyutai-arch"):
        note += (f"**Note:** profile `{args.profile}` has random weights: the audio is noise-like by design; "
                "this run shows the chain, its rates, losses and latencies, not speech quality.\n\n")
    picture = ("![input and output spectrograms over the per-frame codebook states](report.png)\n\n"
               if s.get("png") else "")
    (out_dir / "report.md").write_text("# gr-largesc demo report\n\n" + note + picture + text + "\n")
    (out_dir / "report.json").write_text(json.dumps(s, indent=1) + "\n")
    print(note + text)
    print(f"\nwrote {s['output']} ({s['output_samples']} samples, the input's length), {out_dir / 'report.md'}"
          + (f" and {s['png']}" if s.get("png") else ""))
    return 0


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("gr-largesc")
    except Exception:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gr-largesc", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("info", help="versions, available model profiles, weight cache")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("codec", help="encode + decode a wav file with a token codec")
    s.add_argument("--in", dest="input", required=True, help="input wav (any rate, resampled to 24 kHz)")
    s.add_argument("--out", dest="output", required=True, help="output wav (24 kHz)")
    s.add_argument("--profile", choices=PROFILE_NAMES, default=DEFAULT_PROFILE)
    s.add_argument("--codebooks", type=int, choices=range(1, 9), default=8, metavar="K",
                   help="decode the first K codebooks (1..8; K x 137.5 bps)")
    s.add_argument("--mimi-weights", default=None, help="local Mimi safetensors file (kyutai profile)")
    s.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_codec)

    s = sub.add_parser("demo", help="the main job: bundled speech clip over a lossy link; writes audio and a report")
    s.add_argument("--profile", choices=PROFILE_NAMES, default=DEFAULT_PROFILE)
    s.add_argument("--bandwidth", type=float, default=1100.0, help="payload budget in bps (550..2062.5)")
    s.add_argument("--loss", type=float, default=0.2, help="packet loss probability (Bernoulli)")
    s.add_argument("--recovery", default="auto", choices=RECOVERY_CHOICES,
                   help="auto: the profile's measured best strategy (mini: latent, mini-v1: moshi-mmse, others: moshi)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out-dir", default="out/demo")
    s.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    s.add_argument("--packet-format", default=DEFAULT_FORMAT, choices=list(FORMATS),
                   help="packet format (docs/packet-format.md); the report shows payload, header and on-air bps")
    s.add_argument("--callsign", default="N0CALL",
                   help="call sign on the text side channel ('' for none); the report shows what RX heard and its bits")
    s.set_defaults(func=cmd_demo)
    for name, (_, text) in DELEGATED.items():
        sub.add_parser(name, add_help=False, help=f"{text} ({name} --help)")
    return p


# Commands with their own argument parsers, in the modules that implement them.
DELEGATED = {
    "prepare-corpus": ("gnuradio.largesc.training.corpus", "build the offline training corpus for the mini models"),
    "train-codec": ("gnuradio.largesc.training.train_codec", "train the mini token codec (resumable)"),
    "cache-dred": ("gnuradio.largesc.training.dred_cache", "cache Opus DRED latents + LPCNet features of the corpus (mini v2)"),
    "train-codec2": ("gnuradio.largesc.training.train_mini2", "fit the mini v2 codec (DRED latents + state codebook, FARGAN)"),
    "train-latent": ("gnuradio.largesc.training.train_latent", "train the latent recovery predictor on the mini codec's tokens"),
    "eval-codec": ("gnuradio.largesc.evaluation.codec_compare",
                   "clean-channel codec comparison on >= 40 unseen clips (v1, v2 windows, Codec 2; paired)"),
    "train-lm": ("gnuradio.largesc.training.train_lm", "train the mini LM on mini tokens (resumable)"),
    "eval": ("gnuradio.largesc.evaluation", "quality vs loss and bitrate against Opus, AAC and Codec 2 (needs the eval extra)"),
    "run": ("gnuradio.largesc.app.run_app", "the whole lossy link (TX -> channel -> RX) as a headless flowgraph"),
    "train-lora": ("gnuradio.largesc.training.train_lora", "LoRA fine-tuning of Moshi's LM for token recovery"),
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] and argv[0] in DELEGATED:
        import importlib
        return importlib.import_module(DELEGATED[argv[0]][0]).main(argv[1:]) or 0
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"gr-largesc {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
