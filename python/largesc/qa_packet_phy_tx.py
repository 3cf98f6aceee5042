"""QA for packet_phy_tx: PDUs in -> GMSK bursts out, tagged with their length; bad messages counted."""
import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.gr_support.pdu import DONE, PDUS, SYSTEM, eos_pdu, make_pdu
from gnuradio.largesc.gr_support.phy_framing import LEN_TAG
from gnuradio.largesc.packet_phy_tx import packet_phy_tx


class qa_packet_phy_tx(gr_unittest.TestCase):

    def run_tx(self, msgs, **kw):
        tb = gr.top_block()
        tx = packet_phy_tx(**kw)
        snk = blocks.vector_sink_c()
        tb.connect(tx, snk)
        tb.start()
        for m in msgs:
            tx.framer._post(PDUS, m)
        tx.framer._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
        tb.wait()
        return tx, snk

    def test_bursts_are_tagged_and_unit_amplitude(self):
        tx, snk = self.run_tx([make_pdu(bytes(range(19)), {}), make_pdu(bytes(19), {}), eos_pdu(2, 0)])
        y = np.array(snk.data())
        tags = [t for t in snk.tags() if pmt.symbol_to_string(t.key) == LEN_TAG]
        st = tx.get_stats()
        self.assertEqual(st["packets"], 2)
        # every burst (sync, the 2 packets, eos copies, flush) carries its length tag
        self.assertEqual(len(tags), st["bursts"])
        self.assertGreaterEqual(st["bursts"], st["sync_bursts"] + 2 + st["eos_bursts"])
        self.assertEqual(sum(pmt.to_long(t.value) for t in tags), len(y))
        body = np.abs(y[np.abs(y) > 0.99])
        self.assertGreater(len(body), 0.5 * len(y))               # GMSK: constant envelope

    def test_bad_messages_are_counted_not_sent(self):
        tx, _ = self.run_tx([pmt.intern("junk"), make_pdu(b"", {}), make_pdu(bytes(19), {}), eos_pdu(1, 0)])
        st = tx.get_stats()
        self.assertEqual(st["packets"], 1)
        self.assertEqual(st["bad_messages"], 2)

    def test_bad_parameters_are_refused(self):
        with self.assertRaisesRegex(ValueError, "sps"):
            packet_phy_tx(sps=0)


if __name__ == "__main__":
    gr_unittest.run(qa_packet_phy_tx)
