"""QA for pdu_replayer: a recording (made by pdu_recorder) plays back as the same PDUs, then ends."""
import os
import tempfile
import time

import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.gr_support import pdu_file as F
from gnuradio.largesc.gr_support.pdu import DONE, PDUS, SYSTEM, eos_pdu, make_pdu
from gnuradio.largesc.pdu_recorder import pdu_recorder
from gnuradio.largesc.pdu_replayer import pdu_replayer


class qa_pdu_replayer(gr_unittest.TestCase):

    def setUp(self):
        self.tb = gr.top_block()
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "rec.pdurec")

    def tearDown(self):
        self.tb.stop()
        self.tb.wait()
        self.tb = None
        self.dir.cleanup()

    def record(self, msgs):
        tb = gr.top_block()
        rec = pdu_recorder(self.path)
        tb.msg_connect(rec, "stats", blocks.message_debug(), "store")
        tb.start()
        for m in msgs:
            rec._post(PDUS, m)
        deadline = time.monotonic() + 10
        while rec.get_stats()["records"] < len(msgs) and time.monotonic() < deadline:
            time.sleep(0.01)
        rec._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
        tb.wait()

    def replay(self, **kw):
        rp = pdu_replayer(self.path, **kw)
        dbg = blocks.message_debug()
        self.tb.msg_connect(rp, "pdus", dbg, "store")
        self.tb.run()                                   # ends by itself after the last record
        return rp, [dbg.get_message(i) for i in range(dbg.num_messages())]

    def test_record_then_replay_gives_the_same_pdus_in_order(self):
        sent = [make_pdu(bytes([i, 2 * i % 256, 7]) * (1 + i % 3), {"seq": i, "n_send": i % 4}) for i in range(20)]
        sent.append(eos_pdu(20, 1))
        self.record(sent)
        rp, got = self.replay()
        self.assertEqual(len(got), len(sent))
        for s, g in zip(sent, got):
            self.assertEqual(bytes(pmt.u8vector_elements(pmt.cdr(g))), bytes(pmt.u8vector_elements(pmt.cdr(s))))
            self.assertEqual(pmt.to_python(pmt.car(g)), pmt.to_python(pmt.car(s)))
        st = rp.get_stats()
        self.assertEqual((st["records"], st["records_in_file"], st["corrupt_records"]), (len(sent), len(sent), 0))
        self.assertTrue(rp.done())

    def test_paced_replay_follows_the_recorded_times(self):
        gap = 0.1
        with open(self.path, "wb") as f:
            f.write(F.header_bytes())
            for i in range(4):
                meta = pmt.serialize_str(pmt.to_pmt({"seq": i}))
                f.write(F.encode_record(bytes([i]), meta, F.TIME_HOST, 0, 0.0, 1000.0 + gap * i))
        t0 = time.monotonic()
        rp, got = self.replay(pace=True)
        self.assertGreaterEqual(time.monotonic() - t0, 3 * gap * 0.9)
        self.assertEqual([bytes(pmt.u8vector_elements(pmt.cdr(m))) for m in got], [bytes([i]) for i in range(4)])

    def test_bad_parameters_are_refused(self):
        with open(self.path, "wb") as f:
            f.write(b"definitely not a recording")
        with self.assertRaisesRegex(ValueError, "record_file"):
            pdu_replayer(self.path)
        with self.assertRaisesRegex(ValueError, "record_file"):
            pdu_replayer(os.path.join(self.dir.name, "missing.pdurec"))
        with self.assertRaisesRegex(ValueError, "pace"):
            pdu_replayer(self.path, pace="yes")


if __name__ == "__main__":
    gr_unittest.run(qa_pdu_replayer)
