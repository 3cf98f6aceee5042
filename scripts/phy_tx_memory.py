#!/usr/bin/env python3
"""RSS of the Packet PHY transmitter under a PDU flood: does it level off? (docs/reliability.md)

    .venv/bin/python scripts/phy_tx_memory.py tx 160000

Variants: `tx` (packet_phy_tx, fed through its framer), `ts` (one PDU to Tagged Stream),
`ts_mod`, `ts_mod_scale`, `ts_mod_scale_shape` (the same path with the GMSK modulator, the
length scaling and the burst shaper added). Prints the RSS after 20 % of the packets (drained)
and at the end (drained), and the growth per packet in between.
"""
import sys
import time

import numpy as np
import pmt
from gnuradio import blocks, digital, gr, pdu

from gnuradio.largesc.gr_support.pdu import PDUS, make_pdu
from gnuradio.largesc.gr_support.phy_framing import LEN_TAG
from gnuradio.largesc.packet_phy_tx import packet_phy_tx


def rss():
    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 1e6
variant = sys.argv[1]
N = int(sys.argv[2])
tb = gr.top_block()
if variant == "tx":
    tx = packet_phy_tx(); tb.connect(tx, blocks.null_sink(gr.sizeof_gr_complex)); post = lambda m: tx.framer._post(PDUS, m)
elif variant == "ts":      # pdu_to_tagged_stream -> null
    b = pdu.pdu_to_tagged_stream(gr.types.byte_t, LEN_TAG); tb.connect(b, blocks.null_sink(1)); post = lambda m: b._post(pmt.intern("pdus"), m)
elif variant == "ts_mod":
    b = pdu.pdu_to_tagged_stream(gr.types.byte_t, LEN_TAG); mod = digital.gmsk_mod(samples_per_symbol=2, bt=0.35)
    tb.connect(b, mod, blocks.null_sink(gr.sizeof_gr_complex)); post = lambda m: b._post(pmt.intern("pdus"), m)
elif variant == "ts_mod_scale":
    b = pdu.pdu_to_tagged_stream(gr.types.byte_t, LEN_TAG); mod = digital.gmsk_mod(samples_per_symbol=2, bt=0.35)
    sc = blocks.tagged_stream_multiply_length(gr.sizeof_gr_complex, LEN_TAG, 16)
    tb.connect(b, mod, sc, blocks.null_sink(gr.sizeof_gr_complex)); post = lambda m: b._post(pmt.intern("pdus"), m)
elif variant == "ts_mod_scale_shape":
    b = pdu.pdu_to_tagged_stream(gr.types.byte_t, LEN_TAG); mod = digital.gmsk_mod(samples_per_symbol=2, bt=0.35)
    sc = blocks.tagged_stream_multiply_length(gr.sizeof_gr_complex, LEN_TAG, 16)
    sh = digital.burst_shaper_cc(np.hanning(18)[1:-1].tolist(), 32, 64, False, LEN_TAG)
    tb.connect(b, mod, sc, sh, blocks.null_sink(gr.sizeof_gr_complex)); post = lambda m: b._post(pmt.intern("pdus"), m)
tb.start()
payload = bytes(range(30))
r0 = None
for i in range(N):
    post(make_pdu(payload, {}) if variant == "tx" else pmt.cons(pmt.make_dict(), pmt.init_u8vector(30, list(payload))))
    if i % 200 == 199:
        time.sleep(0.05)
    if i == N // 5:
        t0=time.time()
        while variant == "tx" and tx.framer.counters["packets"] < i and time.time()-t0 < 60: time.sleep(0.1)
        time.sleep(1.0); r0 = rss()
t0=time.time()
while variant == "tx" and tx.framer.counters["packets"] < N and time.time()-t0 < 120: time.sleep(0.2)
time.sleep(2.0)
r1 = rss()
tb.stop(); tb.wait()
print(variant, N, f"rss {r0:.1f} -> {r1:.1f} MB, {(r1 - r0) * 1e6 / (0.8 * N):.0f} B/packet")
