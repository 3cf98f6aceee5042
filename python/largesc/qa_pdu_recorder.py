"""QA for pdu_recorder: PDUs go to the file as records (docs/recording.md), anything else is counted."""
import os
import tempfile
import time

import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.gr_support import pdu_file as F
from gnuradio.largesc.gr_support.pdu import DONE, PDUS, SYSTEM, make_pdu
from gnuradio.largesc.pdu_recorder import pdu_recorder


class qa_pdu_recorder(gr_unittest.TestCase):

    def setUp(self):
        self.tb = gr.top_block()
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "rec.pdurec")

    def tearDown(self):
        self.tb.stop()
        self.tb.wait()
        self.tb = None
        self.dir.cleanup()

    def record(self, msgs, **kw):
        rec = pdu_recorder(self.path, **kw)
        self.stats = blocks.message_debug()
        self.tb.msg_connect(rec, "stats", self.stats, "store")
        self.tb.start()
        for m in msgs:
            rec._post(PDUS, m)
        deadline = time.monotonic() + 10
        while sum(rec.get_stats()[k] for k in ("records", "bad_messages")) < len(msgs) \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        rec._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
        self.tb.wait()
        return rec

    def test_records_pdus_with_metadata_and_counts_the_rest(self):
        good = [(bytes([i, 255 - i]) * (i + 1), {"seq": i, "n_send": i % 5}) for i in range(12)]
        bad = [pmt.intern("junk"), pmt.PMT_NIL, pmt.cons(pmt.PMT_NIL, pmt.init_f32vector(1, [1.0]))]
        msgs = [make_pdu(p, m) for p, m in good[:6]] + bad + [make_pdu(p, m) for p, m in good[6:]]
        rec = self.record(msgs, stats_interval=5)
        recs = F.read_all(self.path)
        self.assertEqual([r.payload for r in recs], [p for p, _ in good])
        self.assertEqual([pmt.to_python(r.meta()) for r in recs], [m for _, m in good])
        st = rec.get_stats()
        self.assertEqual((st["records"], st["bad_messages"], st["write_errors"]), (len(good), len(bad), 0))
        self.assertEqual(st["host_time"], len(good))            # no rx_time in the metadata
        self.assertEqual(st["bytes"], os.path.getsize(self.path) - F.HEADER_SIZE)
        self.assertGreaterEqual(self.stats.num_messages(), len(good) // 5)

    def test_empty_run_leaves_a_valid_empty_recording(self):
        rec = self.record([])
        self.assertEqual(F.read_all(self.path), [])
        self.assertEqual(rec.get_stats()["records"], 0)

    def test_bad_parameters_are_refused(self):
        with self.assertRaisesRegex(ValueError, "record_file"):
            pdu_recorder(os.path.join(self.dir.name, "no", "such", "dir.pdurec"))
        with self.assertRaisesRegex(ValueError, "stats_interval"):
            pdu_recorder(self.path, stats_interval=0)


if __name__ == "__main__":
    gr_unittest.run(qa_pdu_recorder)
