"""QA for packet_phy_framer: link framing of PDUs, eos copies, waiting for the eos mark."""
import time

import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.gr_support.pdu import DONE, PDUS, SYSTEM, eos_pdu, make_pdu
from gnuradio.largesc.packet_phy_deframer import packet_phy_deframer
from gnuradio.largesc.packet_phy_framer import packet_phy_framer


def _payloads(dbg):
    out = []
    for i in range(dbg.num_messages()):
        m = dbg.get_message(i)
        out.append((pmt.to_python(pmt.car(m)), bytes(pmt.u8vector_elements(pmt.cdr(m)))))
    return out


class qa_packet_phy_framer(gr_unittest.TestCase):

    def test_framer_deframer_carry_packets_eos_and_feedback(self):
        tb = gr.top_block()
        fr = packet_phy_framer(eos_copies=2)
        de = packet_phy_deframer(end_on_eos=True, upstream_edges=1)
        pk, fb = blocks.message_debug(), blocks.message_debug()
        tb.msg_connect(fr, "pdus", de, "pdus")
        tb.msg_connect(de, "pdus", pk, "store")
        tb.msg_connect(de, "feedback", fb, "store")
        tb.start()
        for i in range(5):
            fr._post(PDUS, make_pdu(bytes([i, 1, 2, 3]), {"seq": i}))
        fr._post(pmt.intern("feedback"), pmt.to_pmt({"loss_rate": 0.25, "window_loss": 0.5}))
        fr._post(pmt.intern("feedback"), pmt.to_pmt({"nonsense": 1}))
        fr._post(PDUS, make_pdu(bytes(5000), {}))                # too long for the link
        time.sleep(0.2)                     # ports are served one after another: feedback first
        fr._post(PDUS, eos_pdu(5, 2))
        fr._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
        tb.wait()                                                 # the deframer ends on eos
        got = _payloads(pk)
        self.assertEqual([p for _, p in got[:5]], [bytes([i, 1, 2, 3]) for i in range(5)])
        self.assertEqual(got[5][0], {"eos": True, "n_frames": 5, "epoch": 2})
        self.assertEqual(len(got), 6)                             # the second eos copy is dropped
        self.assertEqual(pmt.to_python(fb.get_message(0)), {"loss_rate": 0.25, "window_loss": 0.5})
        self.assertEqual(fr.counters["bad_messages"], 2)
        self.assertEqual(de.counters["eos_in_band"], 1)
        self.assertEqual(de.counters["sync_bursts"], 2)      # sync first, flush after eos

    def test_framer_waits_for_eos_after_upstream_done(self):
        tb = gr.top_block()
        fr = packet_phy_framer(eos_grace_s=5.0)
        dbg = blocks.message_debug()
        tb.msg_connect(fr, "pdus", dbg, "store")
        tb.start()
        fr._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))       # done before the eos mark
        time.sleep(0.2)
        fr._post(PDUS, eos_pdu(0, 0))
        t0 = time.monotonic()
        tb.wait()
        self.assertLess(time.monotonic() - t0, 3.0)               # ended on eos, not the grace
        self.assertEqual(fr.counters["eos_bursts"], 3)


if __name__ == "__main__":
    gr_unittest.run(qa_packet_phy_framer)
