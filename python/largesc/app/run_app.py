"""`gr-largesc run`: the whole LargeSC loopback on a wav file, headless, as a GNU Radio flowgraph.

    wav -> largesc_tx -> packet_erasure_channel -> largesc_rx -> wav     (--channel erasure)
                      or packet_phy (GMSK + CRC + AWGN/multipath at --snr) (--channel phy)
               ^------------- feedback (loss rate) ------------'

With --channel phy the packets cross a simulated radio link built from GNU Radio's own blocks
(python/largesc/packet_phy.py): the PHY, not a coin, loses them, and the summary gives the
on-air rate with the PHY's framing overhead (preamble, access code, length header, CRC-32) beside
the payload rate.

The flowgraph is built in Python (gr-dvbs2rx `apps/` style) and runs unthrottled: TX is paced
by RX (largesc_tx.pace_with) so memory stays flat, and the sender's end-of-stream PDU ends the
run with one output frame per input frame. The output wav has the input's duration, at the
input's rate or at --out-rate.
Progress goes to stderr; the summary (frames, packets, payload and header bits and bps, lost
frames, tokens by source, latency) to stdout as a table, or as JSON with --json.

From Python: `run(options) -> dict`, where options is an argparse.Namespace from
`build_parser()` or a dict with the same keys (missing keys take the parser's defaults).

Reproducibility: --seed fixes the channel's losses, the packet epoch and the recovery's
sampling, and the codec runs one frame per call, so the same seed gives the same output bytes
(--batch trades that for speed). That holds with --feedback oracle
(the default: the controller uses the configured loss rate). With --feedback loop the
controller follows the receiver's loss reports, whose arrival time depends on thread
scheduling, so two runs can differ in a few frames' allocation. --channel phy keeps it too: the
PHY's noise is seeded and its bursts follow one another in the sample stream whatever the
thread timing, so the same seed loses the same packets.
"""
from __future__ import annotations

import json
import sys

from .loopback import run
from .run_options import build_parser
from .run_summary import format_summary


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        s = run(args)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"gr-largesc run: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(s, indent=1) if args.json else format_summary(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
