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
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "rec.pdurec")

    def tearDown(self):
        self.dir.cleanup()

    def test_records_pdus_with_metadata_and_counts_the_rest(self):
        tb = gr.top_block()
        rec = pdu_recorder(self.path)
        tb.msg_connect(rec, "stats", blocks.message_debug(), "store")
        tb.start()
        msgs = [make_pdu(b"\x01\x02", {"seq": 1}), pmt.intern("junk"), make_pdu(b"\x03", {"seq": 2, "n_send": 4})]
        for m in msgs:
            rec._post(PDUS, m)
        deadline = time.monotonic() + 10
        while rec.get_stats()["records"] + rec.get_stats()["bad_messages"] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        rec._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
        tb.wait()
        recs = F.read_all(self.path)
        self.assertEqual([r.payload for r in recs], [b"\x01\x02", b"\x03"])
        self.assertEqual(pmt.to_python(recs[1].meta())["n_send"], 4)
        st = rec.get_stats()
        self.assertEqual((st["records"], st["bad_messages"]), (2, 1))

    def test_bad_file_name_is_refused(self):
        with self.assertRaisesRegex(ValueError, "record_file"):
            pdu_recorder(os.path.join(self.dir.name, "no", "such", "dir.pdurec"))


if __name__ == "__main__":
    gr_unittest.run(qa_pdu_recorder)
