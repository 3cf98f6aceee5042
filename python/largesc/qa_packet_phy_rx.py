"""QA for packet_phy_rx: packet_phy_tx -> packet_phy_rx without noise gives back the same PDUs."""
import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.gr_support.hier import release_hier_blocks
from gnuradio.largesc.gr_support.pdu import DONE, FEEDBACK, PDUS, SYSTEM, eos_pdu, make_pdu
from gnuradio.largesc.packet_phy_rx import packet_phy_rx
from gnuradio.largesc.packet_phy_tx import packet_phy_tx


class qa_packet_phy_rx(gr_unittest.TestCase):

    def setUp(self):
        self.tb = gr.top_block()
        self.hier = []

    def tearDown(self):
        self.tb.stop()
        self.tb.wait()
        release_hier_blocks(*self.hier)
        self.tb = None

    def _rx(self, **kw):
        rx = packet_phy_rx(**kw)
        self.hier.append(rx)
        self.pk, self.fb = blocks.message_debug(), blocks.message_debug()
        self.tb.msg_connect(rx, "pdus", self.pk, "store")
        self.tb.msg_connect(rx, "feedback", self.fb, "store")
        return rx

    def test_loopback_gives_back_every_packet_feedback_and_the_eos_mark(self):
        sps = 4
        rng = np.random.default_rng(0)
        payloads = [bytes(rng.integers(0, 256, int(n), dtype=np.uint8)) for n in rng.integers(1, 200, 10)]
        tx = packet_phy_tx(sps=sps)
        self.hier.append(tx)
        rx = self._rx(sps=sps)
        self.tb.connect(tx, rx)
        self.tb.start()
        for i, p in enumerate(payloads):
            tx.framer._post(PDUS, make_pdu(p, {"seq": i}))
        tx.framer._post(FEEDBACK, pmt.to_pmt({"loss_rate": 0.25, "window_loss": 0.75}))
        tx.framer._post(PDUS, eos_pdu(len(payloads), 4))
        tx.framer._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
        self.tb.wait()
        got = [(pmt.to_python(pmt.car(m)), bytes(pmt.u8vector_elements(pmt.cdr(m))))
               for m in (self.pk.get_message(i) for i in range(self.pk.num_messages()))]
        self.assertEqual([p for _, p in got[:-1]], payloads)
        self.assertEqual(got[-1][0], {"eos": True, "epoch": 4, "n_frames": len(payloads)})
        if self.fb.num_messages():                                # ports are served in any order
            self.assertEqual(pmt.to_python(self.fb.get_message(0)), {"loss_rate": 0.25, "window_loss": 0.75})
        st, tst = rx.get_stats(), tx.get_stats()
        self.assertEqual((st["packets"], st["eos_in_band"], st["crc_fail"]), (len(payloads), 1, 0))
        self.assertEqual(st["feedback"], tst["feedback"])
        self.assertEqual(st["sync_bursts"], tst["sync_bursts"])

    def test_noise_alone_gives_nothing(self):
        rng = np.random.default_rng(1)
        y = (rng.normal(size=20000) + 1j * rng.normal(size=20000)).astype(np.complex64)
        rx = self._rx()
        self.tb.connect(blocks.vector_source_c(y.tolist()), rx)
        self.tb.run()
        st = rx.get_stats()
        self.assertEqual((st["packets"], st["eos_in_band"], self.pk.num_messages()), (0, 0, 0))

    def test_bad_parameters_are_refused(self):
        for kw, name in (({"sps": 1}, "sps"), ({"threshold": 17}, "threshold"),
                         ({"samp_rate": 0.5}, "samp_rate"), ({"eos_grace_s": -1.0}, "eos_grace_s")):
            with self.assertRaisesRegex(ValueError, name):
                packet_phy_rx(**kw)


if __name__ == "__main__":
    gr_unittest.run(qa_packet_phy_rx)
