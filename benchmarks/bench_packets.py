#!/usr/bin/env python3
"""Packets per second for packetize + depacketize in Python (target >= 20,000/s).

Usage: bench_packets.py [--packets 20000] [--repeat 3]

Packetize = controller decision + Packetizer.push (bit packing + CRC); depacketize =
Reassembler.push (validation + CRC + merge + ordered emission). Two allocation mixes: the
controller at 1100 bps with p = 0.1 (typical), and always N=8, R=7 (15 tokens, worst case).
Also timed: the PMT wrapping the blocks add (make_pdu + parse_pdu). Best of --repeat runs.
"""
import argparse
import random
import time

from gnuradio.largesc.core.link.controller import AdaptiveController
from gnuradio.largesc.core.link.packet import Packetizer
from gnuradio.largesc.core.link.reassembly import Reassembler


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run(n, repeat, worst):
    rng = random.Random(0)
    toks = [[rng.randrange(2048) for _ in range(8)] for _ in range(256)]
    acts = [rng.choice([-60.0, -20.0]) for _ in range(256)]
    pkts = []

    def packetize():
        pkts.clear()
        ctl, pz = AdaptiveController(2062.5 if worst else 1100.0), Packetizer(d=1)
        for i in range(n):
            if worst:
                nr = (8, 7 if i else 0)
            else:
                a = ctl.step(acts[i & 255], 0.1)
                nr = (a.n_send, a.n_repeat)
            pkts.append(pz.push(toks[i & 255], *nr))

    def depacketize():
        ra = Reassembler(d=1, packet_format="v1")     # the v1 packets above
        for p in pkts:
            ra.push(p)
        ra.flush()

    t_pack = best(packetize, repeat)
    t_depack = best(depacketize, repeat)
    return t_pack, t_depack, pkts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    n = args.packets
    for label, worst in (("controller 1100 bps, p=0.1", False), ("N=8 R=7 (15 tokens)", True)):
        t_pack, t_depack, pkts = run(n, args.repeat, worst)
        size = sum(map(len, pkts)) / len(pkts)
        print(f"{label:28s} packetize {n / t_pack:9,.0f}/s  depacketize {n / t_depack:9,.0f}/s"
              f"  both {n / (t_pack + t_depack):9,.0f}/s  (mean packet {size:.1f} bytes)")
    try:
        from gnuradio.largesc.gr_support.pdu import make_pdu, parse_pdu
    except Exception:                                # noqa: BLE001 - GNU Radio missing
        return
    t = best(lambda: [parse_pdu(make_pdu(p, {"seq": 1, "n_send": 8})) for p in pkts], args.repeat)
    print(f"{'PMT wrap (blocks)':28s} make_pdu + parse_pdu {n / t:9,.0f}/s")


if __name__ == "__main__":
    main()
