"""QA for packet_phy_deframer: link payloads -> PDUs, feedback and one eos mark; garbage counted."""
import struct

import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.gr_support.pdu import DONE, PDUS, SYSTEM, eos_pdu, make_pdu
from gnuradio.largesc.gr_support.phy_framing import (
    EOS_SIM,
    FAIL,
    SYNC_PAYLOAD,
    TYPE_DATA,
    TYPE_EOS,
    TYPE_FEEDBACK,
)
from gnuradio.largesc.packet_phy_deframer import packet_phy_deframer


def _pdus(dbg):
    return [(pmt.to_python(pmt.car(m)), bytes(pmt.u8vector_elements(pmt.cdr(m))))
            for m in (dbg.get_message(i) for i in range(dbg.num_messages()))]


class qa_packet_phy_deframer(gr_unittest.TestCase):

    def setUp(self):
        self.tb = gr.top_block()

    def tearDown(self):
        self.tb.stop()
        self.tb.wait()
        self.tb = None

    def _graph(self, de):
        self.pk, self.fb = blocks.message_debug(), blocks.message_debug()
        self.tb.msg_connect(de, "pdus", self.pk, "store")
        self.tb.msg_connect(de, "feedback", self.fb, "store")

    def test_payload_types_are_decoded_and_the_eos_mark_passed_once(self):
        de = packet_phy_deframer(end_on_eos=True, upstream_edges=1)
        self._graph(de)
        data = [bytes([i, 2 * i, 3]) for i in range(6)]
        mark = bytes([TYPE_EOS]) + struct.pack(">IB", len(data), 5)
        msgs = ([SYNC_PAYLOAD] + [bytes([TYPE_DATA]) + d for d in data]
                + [bytes([TYPE_FEEDBACK]) + struct.pack(">ff", 0.125, 0.5)] + [mark] * 3)
        for m in msgs:
            de._post(PDUS, make_pdu(m, {}))
        self.tb.start()
        self.tb.wait()                                            # ends on the eos mark
        got = _pdus(self.pk)
        self.assertEqual([p for _, p in got[:-1]], data)
        self.assertEqual(got[-1], ({"eos": True, "epoch": 5, "n_frames": len(data)}, b""))
        self.assertEqual(pmt.to_python(self.fb.get_message(0)), {"loss_rate": 0.125, "window_loss": 0.5})
        c = de.counters
        self.assertEqual((c["packets"], c["sync_bursts"], c["feedback"], c["eos_in_band"], c["bad_messages"]),
                         (len(data), 1, 1, 1, 0))

    def test_garbage_is_counted_and_dropped(self):
        de = packet_phy_deframer(upstream_edges=1)
        self._graph(de)
        bad = (pmt.intern("x"), make_pdu(b"", {}), make_pdu(b"\x07abc", {}), make_pdu(b"\x00", {}),
               make_pdu(b"\x01\x00", {}), make_pdu(bytes([TYPE_FEEDBACK]) + bytes(8) + b"x", {}),
               make_pdu(bytes([TYPE_FEEDBACK]) + struct.pack(">ff", 2.0, 0.0), {}))
        for m in bad:
            de._post(PDUS, m)
        de._post(PDUS, make_pdu(bytes([TYPE_DATA]) + b"ok", {}))
        de._post(FAIL, make_pdu(b"\x00broken", {}))              # failed its CRC: counted only
        self.tb.start()
        de._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
        self.tb.wait()
        self.assertEqual([p for _, p in _pdus(self.pk)], [b"ok"])
        self.assertEqual(self.fb.num_messages(), 0)
        self.assertEqual((de.counters["bad_messages"], de.counters["packets"]), (len(bad), 1))
        self.assertEqual(de.counters["crc_fail"], 1)

    def test_simulated_eos_is_passed_on_after_the_last_upstream_done(self):
        de = packet_phy_deframer(upstream_edges=2)
        self._graph(de)
        de._post(PDUS, make_pdu(bytes([TYPE_DATA]) + b"abc", {}))
        de._post(EOS_SIM, eos_pdu(9, 3))
        self.tb.start()
        de._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
        de._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))       # one per upstream edge
        self.tb.wait()
        got = _pdus(self.pk)
        self.assertEqual([p for _, p in got], [b"abc", b""])
        self.assertEqual(got[1][0], {"eos": True, "epoch": 3, "n_frames": 9})
        self.assertEqual((de.counters["eos_sim"], de.counters["eos_in_band"]), (1, 0))

    def test_bad_parameters_are_refused(self):
        for kw, name in (({"upstream_edges": 0}, "upstream_edges"), ({"eos_grace_s": -1.0}, "eos_grace_s"),
                         ({"end_on_eos": "yes"}, "end_on_eos")):
            with self.assertRaisesRegex(ValueError, name):
                packet_phy_deframer(**kw)


if __name__ == "__main__":
    gr_unittest.run(qa_packet_phy_deframer)
