"""Packet loss of the GMSK packet PHY at an SNR, measured by sending random packets through it
(scripts/phy_snr_table.py prints the table; the tests use it too)."""
import time

import numpy as np
import pmt
from gnuradio import blocks, gr

from ..gr_support.pdu import DONE, PDUS, SYSTEM, eos_pdu, make_pdu
from ..packet_phy import packet_phy


def measure_loss(snr_db, packets=200, nbytes=19, freq_offset=0.0, taps=(1.0,), seed=0, timeout_s=60.0):
    """Send `packets` random `nbytes`-byte packets through packet_phy at `snr_db`, then the eos
    mark. Returns (sent, received intact, eos came in band, PHY counters)."""
    rng = np.random.default_rng(seed)
    payloads = [bytes(rng.integers(0, 256, nbytes, dtype=np.uint8)) for _ in range(packets)]
    tb = gr.top_block()
    phy = packet_phy(snr_db=snr_db, freq_offset=freq_offset, taps=list(taps), seed=seed + 1)
    sink = blocks.message_debug()
    tb.msg_connect(phy, "pdus", sink, "store")
    tb.start()
    for p in payloads:
        phy.tx.framer._post(PDUS, make_pdu(p, {}))
    phy.tx.framer._post(PDUS, eos_pdu(packets, 0))
    phy.tx.framer._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not (phy.rx.deframer.counters["eos_in_band"]
                                               or phy.rx.deframer.counters["eos_sim"]):
        time.sleep(0.02)
    c = phy.rx.deframer.counters                          # let the sink take what the deframer sent
    while time.monotonic() < deadline and sink.num_messages() < c["packets"] + c["eos_in_band"] + c["eos_sim"]:
        time.sleep(0.02)
    tb.stop()
    tb.wait()
    got = set()
    for i in range(sink.num_messages()):
        msg = sink.get_message(i)
        if pmt.length(pmt.cdr(msg)):
            got.add(bytes(pmt.u8vector_elements(pmt.cdr(msg))))
    ok = sum(p in got for p in payloads)
    return packets, ok, bool(phy.rx.deframer.counters["eos_in_band"]), phy.get_stats()
