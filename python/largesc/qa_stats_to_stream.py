"""QA for stats_to_stream: one item per message on each key's output, values held between messages."""
import threading

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.gr_support.pdu import DONE, FEEDBACK, STATS, SYSTEM, make_pdu
from gnuradio.largesc.stats_to_stream import stats_to_stream


class qa_stats_to_stream(gr_unittest.TestCase):

    def setUp(self):
        self.tb = gr.top_block()

    def tearDown(self):
        self.tb.stop()
        self.tb.wait()
        self.tb = None

    def feed(self, block, msgs, port):
        sinks = [blocks.vector_sink_f() for _ in block.keys]
        for i, s in enumerate(sinks):
            self.tb.connect((block, i), s)
        self.tb.start()
        for m in msgs:
            block._post(port, m)
        block._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
        th = threading.Thread(target=self.tb.wait, daemon=True)
        th.start()
        th.join(30)
        self.assertFalse(th.is_alive(), "did not finish after done")
        return [np.array(s.data()) for s in sinks]

    def test_values_per_key_held_and_junk_counted(self):
        blk = stats_to_stream(keys=["loss_rate", "frames"], qt_batch=False)
        msgs = [pmt.to_pmt({"loss_rate": 0.25, "frames": 10}), pmt.intern("junk"),
                pmt.to_pmt({"frames": 20}), pmt.to_pmt({"other": 1.0}), pmt.to_pmt({"loss_rate": float("nan")}),
                make_pdu(b"\x01", {"loss_rate": 0.5, "frames": 30})]
        a, b = self.feed(blk, msgs, STATS)
        np.testing.assert_allclose(a, [0.25, 0.25, 0.5])
        np.testing.assert_allclose(b, [10, 20, 30])
        st = blk.get_stats()
        self.assertEqual((st["messages"], st["ignored"], st["items"]), (len(msgs), 3, 3))

    def test_feedback_port_passes_every_value(self):
        values = [0.1, 0.2, 0.3, 0.05]
        blk = stats_to_stream(keys=["loss_rate"], qt_batch=False)
        (a,) = self.feed(blk, [pmt.to_pmt({"loss_rate": v, "window_loss": 1.0}) for v in values], FEEDBACK)
        np.testing.assert_allclose(a, values, rtol=1e-6)
        self.assertEqual(blk.get_stats()["ignored"], 0)

    def test_bad_parameters_are_refused(self):
        for kw, name in (({"keys": []}, "keys"), ({"keys": "loss_rate"}, "keys"), ({"keys": ["a", "a"]}, "keys"),
                         ({"window": 0}, "window"), ({"qt_batch": "no"}, "qt_batch"),
                         ({"stats_interval": 0}, "stats_interval")):
            with self.assertRaisesRegex(ValueError, name):
                stats_to_stream(**kw)


if __name__ == "__main__":
    gr_unittest.run(qa_stats_to_stream)
