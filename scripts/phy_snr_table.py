#!/usr/bin/env python3
"""Print the packet loss of gr-largesc's GMSK packet PHY (python/largesc/packet_phy.py) against SNR.

Each point sends --packets random packets of --bytes bytes (a LargeSC packet at B = 1100 bps is
about 19 bytes) through packet_phy (GMSK, sps 2, CRC-32, channel_model with AWGN at the SNR, a
frequency offset and multipath taps) and counts the packets that come out with a good CRC. SNR is
per sample (unit-power signal, noise power 10^(-SNR/10)); Eb/N0 = SNR + 10 log10(sps).

    .venv/bin/python scripts/phy_snr_table.py                   # default sweep, Markdown table
    .venv/bin/python scripts/phy_snr_table.py --snr 4 6 8 --packets 500 --taps 1 --freq 0
"""
import argparse
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))   # not needed when installed


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snr", type=float, nargs="+", default=[10, 12, 13, 14, 15, 16, 18, 20])
    ap.add_argument("--packets", type=int, default=300)
    ap.add_argument("--bytes", type=int, default=19, help="LargeSC packet bytes (19 at B = 1100 bps)")
    ap.add_argument("--freq", type=float, default=0.001, help="frequency offset, cycles per sample")
    ap.add_argument("--taps", type=complex, nargs="+", default=[1.0, 0.3, 0.1],
                    help="multipath taps (normalised to unit energy)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    os.environ.setdefault("NO_TORCH_COMPILE", "1")
    from gnuradio.largesc.app.phy_loss import measure_loss
    print(f"GMSK sps 2, BT 0.35, CRC-32, {a.bytes}-byte packets, {a.packets} per point, "
          f"frequency offset {a.freq} cycles/sample, taps {[str(t) for t in a.taps]}")
    print("")
    print("| SNR (dB) | Eb/N0 (dB) | packets lost | loss |")
    print("|---|---|---|---|")
    for snr in a.snr:
        n, ok = measure_loss(snr, a.packets, a.bytes, a.freq, a.taps, a.seed)[:2]
        print(f"| {snr:g} | {snr + 10 * math.log10(2):.1f} | {n - ok} / {n} | {(n - ok) / n:.1%} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
