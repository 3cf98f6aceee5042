"""QA for stats_to_stream: one item per message on each key's output, values held between messages."""
import threading

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.gr_support.pdu import DONE, FEEDBACK, STATS, SYSTEM
from gnuradio.largesc.stats_to_stream import stats_to_stream


class qa_stats_to_stream(gr_unittest.TestCase):

    def feed(self, block, msgs, port):
        tb = gr.top_block()
        sinks = [blocks.vector_sink_f() for _ in block.keys]
        for i, s in enumerate(sinks):
            tb.connect((block, i), s)
        tb.start()
        for m in msgs:
            block._post(port, m)
        block._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
        th = threading.Thread(target=tb.wait, daemon=True)
        th.start()
        th.join(30)
        self.assertFalse(th.is_alive(), "did not finish after done")
        return [np.array(s.data()) for s in sinks]

    def test_values_per_key_held_and_junk_counted(self):
        blk = stats_to_stream(keys=["loss_rate", "frames"], qt_batch=False)
        a, b = self.feed(blk, [pmt.to_pmt({"loss_rate": 0.25, "frames": 10}), pmt.intern("junk"),
                               pmt.to_pmt({"frames": 20})], STATS)
        np.testing.assert_allclose(a, [0.25, 0.25])
        np.testing.assert_allclose(b, [10, 20])
        self.assertEqual(blk.get_stats()["ignored"], 1)

    def test_feedback_port_and_bad_parameters(self):
        blk = stats_to_stream(keys=["loss_rate"], qt_batch=False)
        (a,) = self.feed(blk, [pmt.to_pmt({"loss_rate": v}) for v in (0.1, 0.2, 0.3)], FEEDBACK)
        np.testing.assert_allclose(a, [0.1, 0.2, 0.3], rtol=1e-6)
        with self.assertRaisesRegex(ValueError, "keys"):
            stats_to_stream(keys=[])


if __name__ == "__main__":
    gr_unittest.run(qa_stats_to_stream)
