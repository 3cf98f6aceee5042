"""QA for packet_phy_deframer: garbage is counted and dropped, the stream ends."""

import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.gr_support.pdu import DONE, PDUS, SYSTEM, make_pdu
from gnuradio.largesc.packet_phy_deframer import packet_phy_deframer


class qa_packet_phy_deframer(gr_unittest.TestCase):

    def test_deframer_drops_garbage(self):
        tb = gr.top_block()
        de = packet_phy_deframer(upstream_edges=1)
        dbg = blocks.message_debug()
        tb.msg_connect(de, "pdus", dbg, "store")
        tb.start()
        for m in (pmt.intern("x"), make_pdu(b"", {}), make_pdu(b"\x07abc", {}),
                  make_pdu(b"\x01\x00", {}), make_pdu(b"\x03" + bytes(8) + b"x", {})):
            de._post(PDUS, m)
        de._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
        tb.wait()
        self.assertEqual(dbg.num_messages(), 0)
        self.assertEqual(de.counters["bad_messages"], 5)


if __name__ == "__main__":
    gr_unittest.run(qa_packet_phy_deframer)
