"""QA for packet_phy_tx: PDUs in -> GMSK bursts out, tagged with their length; bad messages counted."""
import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.gr_support.hier import release_hier_blocks
from gnuradio.largesc.gr_support.pdu import DONE, PDUS, SYSTEM, eos_pdu, make_pdu
from gnuradio.largesc.gr_support.phy_framing import CRC_BYTES, HEADER_BYTES, LEN_TAG
from gnuradio.largesc.packet_phy_tx import packet_phy_tx


class qa_packet_phy_tx(gr_unittest.TestCase):

    def setUp(self):
        self.tb = gr.top_block()
        self.hier = []

    def tearDown(self):
        self.tb.stop()
        self.tb.wait()
        release_hier_blocks(*self.hier)
        self.tb = None

    def run_tx(self, msgs, **kw):
        tx = packet_phy_tx(**kw)
        self.hier.append(tx)
        snk = blocks.vector_sink_c()
        self.tb.connect(tx, snk)
        self.tb.start()
        for m in msgs:
            tx.framer._post(PDUS, m)
        tx.framer._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
        self.tb.wait()
        return tx, snk

    def test_bursts_are_tagged_sized_and_constant_envelope(self):
        sps, pre, post, ramp = 4, 16, 24, 8
        payloads = [bytes(range(19)), bytes(19)]
        tx, snk = self.run_tx([make_pdu(p, {}) for p in payloads] + [eos_pdu(2, 0)],
                              sps=sps, pre_padding=pre, post_padding=post, ramp=ramp)
        y = np.array(snk.data())
        tags = sorted((t.offset, pmt.to_long(t.value)) for t in snk.tags() if pmt.symbol_to_string(t.key) == LEN_TAG)
        st = tx.get_stats()
        self.assertEqual((st["packets"], st["eos_bursts"], st["sync_bursts"]), (2, 3, 2))
        self.assertEqual(len(tags), st["bursts"])                 # sync, 2 packets, 3 eos copies, flush
        self.assertEqual(sum(n for _, n in tags), len(y))         # bursts back to back, nothing else
        self.assertEqual([o for o, _ in tags], np.cumsum([0] + [n for _, n in tags[:-1]]).tolist())
        # every burst: 8 * sps samples per byte on air, plus the zero guards
        on_air = 8 * sps * (st["bytes"]) + st["bursts"] * (pre + post)
        self.assertEqual(len(y), on_air)
        data_burst = tags[1][1] - pre - post                      # the first packet (after sync)
        self.assertEqual(data_burst, 8 * sps * (4 + HEADER_BYTES + 1 + len(payloads[0]) + CRC_BYTES + 2))
        body = np.abs(y[np.abs(y) > 0.99])
        self.assertGreater(len(body), 0.5 * len(y))               # GMSK: constant envelope
        self.assertLess(np.abs(y).max(), 1.0 + 1e-3)                 # ramps never overshoot

    def test_bad_messages_are_counted_not_sent(self):
        tx, _ = self.run_tx([pmt.intern("junk"), make_pdu(b"", {}), make_pdu(bytes(19), {}), eos_pdu(1, 0)])
        st = tx.get_stats()
        self.assertEqual((st["packets"], st["bad_messages"]), (1, 2))

    def test_bad_parameters_are_refused(self):
        for kw, name in (({"sps": 1}, "sps"), ({"bt": 0.0}, "bt"), ({"pre_padding": -1}, "pre_padding"),
                         ({"ramp": 1}, "ramp"), ({"eos_copies": 0}, "eos_copies")):
            with self.assertRaisesRegex(ValueError, name):
                packet_phy_tx(**kw)


if __name__ == "__main__":
    gr_unittest.run(qa_packet_phy_tx)
