"""QA for pdu_replayer: a recording plays back as the same PDUs, then the stream ends."""
import os
import tempfile

import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.gr_support import pdu_file as F
from gnuradio.largesc.pdu_replayer import pdu_replayer


class qa_pdu_replayer(gr_unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "rec.pdurec")

    def tearDown(self):
        self.dir.cleanup()

    def write(self, payloads):
        with open(self.path, "wb") as f:
            f.write(F.header_bytes())
            for i, p in enumerate(payloads):
                meta = pmt.serialize_str(pmt.to_pmt({"seq": i}))
                f.write(F.encode_record(p, meta, F.TIME_HOST, 0, 0.0, 1000.0 + 0.08 * i))

    def test_replays_every_record_in_order_and_ends(self):
        payloads = [bytes([i, 2 * i % 256, 7]) for i in range(20)]
        self.write(payloads)
        tb = gr.top_block()
        rp = pdu_replayer(self.path)
        dbg = blocks.message_debug()
        tb.msg_connect(rp, "pdus", dbg, "store")
        tb.run()                                   # ends by itself after the last record
        got = [dbg.get_message(i) for i in range(dbg.num_messages())]
        self.assertEqual([bytes(pmt.u8vector_elements(pmt.cdr(m))) for m in got], payloads)
        self.assertEqual([pmt.to_python(pmt.car(m))["seq"] for m in got], list(range(20)))
        self.assertEqual(rp.get_stats()["records"], 20)

    def test_not_a_recording_is_refused(self):
        with open(self.path, "wb") as f:
            f.write(b"definitely not a recording")
        with self.assertRaisesRegex(ValueError, "record_file"):
            pdu_replayer(self.path)


if __name__ == "__main__":
    gr_unittest.run(qa_pdu_replayer)
