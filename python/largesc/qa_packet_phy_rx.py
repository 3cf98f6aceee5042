"""QA for packet_phy_rx: GMSK bursts from packet_phy_tx, straight in, come out as the same PDUs."""
import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.gr_support.pdu import DONE, PDUS, SYSTEM, eos_pdu, make_pdu
from gnuradio.largesc.packet_phy_rx import packet_phy_rx
from gnuradio.largesc.packet_phy_tx import packet_phy_tx


def bursts(payloads):
    tb = gr.top_block()
    tx = packet_phy_tx()
    snk = blocks.vector_sink_c()
    tb.connect(tx, snk)
    tb.start()
    for p in payloads:
        tx.framer._post(PDUS, make_pdu(p, {}))
    tx.framer._post(PDUS, eos_pdu(len(payloads), 0))
    tx.framer._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
    tb.wait()
    return np.array(snk.data(), np.complex64)


class qa_packet_phy_rx(gr_unittest.TestCase):

    def test_clean_bursts_give_back_every_packet_and_the_eos_mark(self):
        rng = np.random.default_rng(0)
        payloads = [bytes(rng.integers(0, 256, 19, dtype=np.uint8)) for _ in range(8)]
        y = np.concatenate([np.zeros(200, np.complex64), bursts(payloads), np.zeros(2000, np.complex64)])
        tb = gr.top_block()
        src = blocks.vector_source_c(y.tolist())
        rx = packet_phy_rx()
        dbg = blocks.message_debug()
        tb.connect(src, rx)
        tb.msg_connect(rx, "pdus", dbg, "store")
        tb.run()
        got = [bytes(pmt.u8vector_elements(pmt.cdr(dbg.get_message(i)))) for i in range(dbg.num_messages())]
        self.assertEqual([g for g in got if g], payloads)
        st = rx.get_stats()
        self.assertEqual(st["packets"], 8)
        self.assertEqual(st["eos_in_band"], 1)

    def test_noise_alone_gives_nothing(self):
        rng = np.random.default_rng(1)
        y = (rng.normal(size=20000) + 1j * rng.normal(size=20000)).astype(np.complex64)
        tb = gr.top_block()
        rx = packet_phy_rx()
        dbg = blocks.message_debug()
        tb.connect(blocks.vector_source_c(y.tolist()), rx)
        tb.msg_connect(rx, "pdus", dbg, "store")
        tb.run()
        self.assertEqual(rx.get_stats()["packets"], 0)


if __name__ == "__main__":
    gr_unittest.run(qa_packet_phy_rx)
