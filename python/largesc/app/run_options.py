"""The options of `gr-largesc run` (and of `loopback.run()`): parser, defaults and checks."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..core.link.packet_formats import DEFAULT_FORMAT, FORMATS
from ..core.profiles import DEFAULT_PROFILE, PROFILE_NAMES
from ..core.recovery.registry import CHOICES as RECOVERY_CHOICES  # auto + every strategy

LOSS_MODELS = {"bernoulli": "bernoulli", "gilbert": "gilbert_elliott", "trace": "trace"}
BUNDLED_CLIP = Path(__file__).resolve().parents[1] / "data" / "speech_librivox_16k.wav"


def build_parser(prog: str = "gr-largesc run") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="LargeSC loopback on a wav file: "
                                "TX -> packet erasure channel -> RX, as a GNU Radio flowgraph.")
    p.add_argument("--in", dest="input", default=str(BUNDLED_CLIP),
                   help="input wav (any common rate; default: the bundled speech clip)")
    p.add_argument("--out", dest="output", default="out/run/decoded.wav",
                   help="output wav (input duration; input rate unless --out-rate)")
    p.add_argument("--out-rate", type=int, default=0,
                   help="output sample rate in Hz (0: the input's; 24000: Mimi's, no resampling)")
    p.add_argument("--profile", choices=PROFILE_NAMES, default=DEFAULT_PROFILE, help="model profile")
    p.add_argument("--lm-profile", default="", help="profile of the recovery LM if not --profile")
    p.add_argument("--bandwidth", type=float, default=1100.0,
                   help="payload budget B in bps (550..2062.5)")
    p.add_argument("--loss", type=float, default=0.0, help="mean packet loss probability p")
    p.add_argument("--loss-model", choices=list(LOSS_MODELS), default="bernoulli")
    p.add_argument("--burst", type=float, default=2.0, help="mean burst length (gilbert), packets")
    p.add_argument("--trace", default="", help="loss trace file for --loss-model trace "
                   "('0'/'1' per packet)")
    p.add_argument("--channel", choices=["erasure", "phy"], default="erasure",
                   help="erasure: packet erasure channel (--loss, --loss-model); phy: GMSK packet "
                        "PHY + channel model (--snr, --freq-offset, --taps; --loss is then only the "
                        "controller's first loss estimate, --feedback loop follows RX)")
    p.add_argument("--snr", type=float, default=20.0,
                   help="--channel phy: SNR per sample in dB (about 0%% loss at 18, 30%% at 13)")
    p.add_argument("--freq-offset", type=float, default=0.0,
                   help="--channel phy: frequency offset in cycles per sample")
    p.add_argument("--taps", default="1.0",
                   help="--channel phy: multipath taps, comma-separated (e.g. 1,0.3,0.1)")
    p.add_argument("--recovery", choices=RECOVERY_CHOICES, default="auto",
                   help="token recovery; auto: the profile's measured best (mini: latent, mini-v1: moshi-mmse, "
                        "other LM profiles: moshi)")
    p.add_argument("--codec-window", type=int, default=-1,
                   help="mini v2 decoder look-ahead, 0..3 frames (-1: the codec's default, 1; docs/models/mini.md)")
    p.add_argument("--sequential", action="store_true",
                   help="RX decodes after the recovery hold instead of overlapping its look-ahead with it "
                        "(docs/latency.md; the default overlaps them: one wait)")
    p.add_argument("--d", type=int, default=1, help="copy distance d (frames)")
    p.add_argument("--d-max", type=int, default=0,
                   help="frames RX waits for copies (0: d, enough with one packet per frame and "
                        "in-order delivery; more only helps a copy overtaken by later packets)")
    p.add_argument("--packet-format", choices=list(FORMATS), default=DEFAULT_FORMAT,
                   help="v1: 24-bit header + CRC-8; compact: 12-bit header, no CRC (the erasure "
                        "channel and the GMSK PHY check frames); compact_crc: 12-bit header + CRC-8")
    p.add_argument("--dtx", action="store_true", help="discontinuous transmission")
    p.add_argument("--callsign", default="", help="station call sign sent on the text side channel "
                   "(start, every 10 s, end of over; up to 16 of A-Z, 0-9, '/', '-'; docs/text-channel.md)")
    p.add_argument("--text", action="append", default=[], metavar="TEXT",
                   help="a text message (1..200 UTF-8 bytes) sent on the text side channel; repeatable")
    p.add_argument("--text-share", type=float, default=0.05,
                   help="share of B text may take from speech frames (0..0.5; silent frames go first)")
    p.add_argument("--feedback", choices=["oracle", "loop"], default="oracle",
                   help="controller's loss rate: the configured p (reproducible) or RX reports")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--threads", type=int, default=1, help="torch threads per model block")
    p.add_argument("--max-lead", type=int, default=25,
                   help="frames TX may run ahead of RX (flow control of the file run)")
    p.add_argument("--batch", action="store_true",
                   help="let GNU Radio hand the codec several frames per call: faster on small "
                        "models, but not bit-exact from run to run (last-bit rounding)")
    p.add_argument("--stats-interval", type=float, default=0.0, metavar="S",
                   help="also print every block's counters as one JSON line on stderr every S s")
    p.add_argument("--png", default="", help="per-frame picture (spectrograms + codebook states): a path, "
                   "'' for beside --out (y.png), 'none' for no picture")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def _options(options) -> argparse.Namespace:
    defaults = vars(build_parser().parse_args([]))
    given = vars(options) if isinstance(options, argparse.Namespace) else dict(options or {})
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(f"unknown option(s): {', '.join(sorted(unknown))}")
    return argparse.Namespace(**{**defaults, **given})


def _taps(text):
    """'1,0.3,0.1j' -> [1, 0.3, 0.1j] (complex multipath taps)."""
    try:
        taps = [complex(t.strip().replace(" ", "")) for t in str(text).split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--taps must be comma-separated numbers, got {text!r}") from None
    if not taps or not any(taps) or not all(math.isfinite(abs(t)) for t in taps):
        raise ValueError(f"--taps needs finite numbers and a nonzero tap, got {text!r}")
    return taps


def checked_options(options):
    """(Namespace, d_max): the options with defaults filled in and checked (ValueError if bad)."""
    from ..core.profiles import resolve_recovery
    o = _options(options)
    o.recovery = resolve_recovery(o.profile, o.recovery)
    if not 0.0 <= o.loss <= 1.0:
        raise ValueError(f"--loss must be in [0, 1], got {o.loss}")
    if o.d < 1 or o.d_max < 0 or (o.d_max and o.d_max < o.d):
        raise ValueError(f"need d >= 1 and d_max >= d (or 0), got d = {o.d}, d_max = {o.d_max}")
    from ..core.link.text import check_callsign, check_text
    check_callsign(o.callsign)
    for t in o.text:
        check_text(t)
    if not 0.0 <= o.text_share <= 0.5:
        raise ValueError(f"--text-share must be in [0, 0.5], got {o.text_share}")
    if o.packet_format not in FORMATS:
        raise ValueError(f"--packet-format must be one of {', '.join(FORMATS)}, got {o.packet_format!r}")
    if o.channel == "phy":
        _taps(o.taps)
        if not abs(o.freq_offset) < 0.5:
            raise ValueError(f"--freq-offset must be in (-0.5, 0.5) cycles per sample, got {o.freq_offset}")
    elif o.loss_model == "trace" and not o.trace:
        raise ValueError("--loss-model trace needs --trace FILE")
    return o, (o.d_max if o.d_max > 0 else o.d)
