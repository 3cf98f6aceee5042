"""QA for packet_phy_framer: link framing of PDUs, eos copies, waiting for the eos mark."""
import struct
import time

import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.gr_support.pdu import DONE, PDUS, SYSTEM, eos_pdu, make_pdu
from gnuradio.largesc.gr_support.phy_framing import MAX_PACKET_BYTES, SYNC_PAYLOAD, TYPE_DATA, TYPE_EOS
from gnuradio.largesc.packet_phy_deframer import packet_phy_deframer
from gnuradio.largesc.packet_phy_framer import packet_phy_framer


def _payloads(dbg):
    out = []
    for i in range(dbg.num_messages()):
        m = dbg.get_message(i)
        out.append((pmt.to_python(pmt.car(m)), bytes(pmt.u8vector_elements(pmt.cdr(m)))))
    return out


class qa_packet_phy_framer(gr_unittest.TestCase):

    def setUp(self):
        self.tb = gr.top_block()

    def tearDown(self):
        self.tb.stop()
        self.tb.wait()
        self.tb = None

    def test_link_payloads_sync_data_eos_copies_flush(self):
        fr = packet_phy_framer(eos_copies=3, eos_grace_s=5.0)
        dbg = blocks.message_debug()
        self.tb.msg_connect(fr, "pdus", dbg, "store")
        self.tb.start()
        data = [bytes([i, 7, 9]) for i in range(4)]
        for d in data:
            fr._post(PDUS, make_pdu(d, {"seq": 0}))
        for bad in (pmt.intern("junk"), make_pdu(b"", {}), make_pdu(bytes(MAX_PACKET_BYTES + 1), {})):
            fr._post(PDUS, bad)
        fr._post(PDUS, eos_pdu(4, 2))
        fr._post(PDUS, make_pdu(b"late", {}))                    # after the eos mark: ignored
        fr._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
        self.tb.wait()
        got = [p for _, p in _payloads(dbg)]
        mark = bytes([TYPE_EOS]) + struct.pack(">IB", 4, 2)
        self.assertEqual(got, [SYNC_PAYLOAD] + [bytes([TYPE_DATA]) + d for d in data]
                         + [mark] * 3 + [SYNC_PAYLOAD])
        c = fr.counters
        self.assertEqual((c["packets"], c["eos_bursts"], c["sync_bursts"], c["bursts"], c["bad_messages"]),
                         (4, 3, 2, len(got), 3))

    def test_framer_deframer_carry_packets_eos_and_feedback(self):
        fr = packet_phy_framer(eos_copies=2)
        de = packet_phy_deframer(end_on_eos=True, upstream_edges=1)
        pk, fb = blocks.message_debug(), blocks.message_debug()
        self.tb.msg_connect(fr, "pdus", de, "pdus")
        self.tb.msg_connect(de, "pdus", pk, "store")
        self.tb.msg_connect(de, "feedback", fb, "store")
        self.tb.start()
        for i in range(5):
            fr._post(PDUS, make_pdu(bytes([i, 1, 2, 3]), {"seq": i}))
        fr._post(pmt.intern("feedback"), pmt.to_pmt({"loss_rate": 0.25, "window_loss": 0.5}))
        fr._post(pmt.intern("feedback"), pmt.to_pmt({"nonsense": 1}))
        time.sleep(0.2)                     # ports are served one after another: feedback first
        fr._post(PDUS, eos_pdu(5, 2))
        fr._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
        self.tb.wait()                                            # the deframer ends on eos
        got = _payloads(pk)
        self.assertEqual([p for _, p in got[:5]], [bytes([i, 1, 2, 3]) for i in range(5)])
        self.assertEqual(got[5][0], {"eos": True, "n_frames": 5, "epoch": 2})
        self.assertEqual(len(got), 6)                             # the second eos copy is dropped
        self.assertEqual(pmt.to_python(fb.get_message(0)), {"loss_rate": 0.25, "window_loss": 0.5})
        self.assertEqual((fr.counters["feedback"], fr.counters["bad_messages"]), (1, 1))
        self.assertEqual(de.counters["eos_in_band"], 1)
        self.assertEqual(de.counters["sync_bursts"], 2)      # sync first, flush after eos

    def test_framer_waits_for_eos_after_upstream_done(self):
        fr = packet_phy_framer(eos_grace_s=5.0)
        dbg = blocks.message_debug()
        self.tb.msg_connect(fr, "pdus", dbg, "store")
        self.tb.start()
        fr._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))       # done before the eos mark
        time.sleep(0.2)
        fr._post(PDUS, eos_pdu(0, 0))
        t0 = time.monotonic()
        self.tb.wait()
        self.assertLess(time.monotonic() - t0, 3.0)               # ended on eos, not the grace
        self.assertEqual(fr.counters["eos_bursts"], 3)

    def test_bad_parameters_are_refused(self):
        for kw, name in (({"preamble_bytes": 0}, "preamble_bytes"), ({"postamble_bytes": 65}, "postamble_bytes"),
                         ({"eos_copies": 0}, "eos_copies"), ({"eos_grace_s": -1.0}, "eos_grace_s")):
            with self.assertRaisesRegex(ValueError, name):
                packet_phy_framer(**kw)


if __name__ == "__main__":
    gr_unittest.run(qa_packet_phy_framer)
