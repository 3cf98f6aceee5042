"""QA for the packet_erasure_channel block."""
import re
import tempfile
import time
import unittest
from pathlib import Path

import pmt
import yaml
from gnuradio import gr, gr_unittest

from gnuradio.largesc.gr_support.pdu import eos_pdu, make_pdu
from gnuradio.largesc.packet_erasure_channel import packet_erasure_channel


def pdu(i):
    return make_pdu(bytes([i % 256, 1, 2]), {"seq": i})


class Collector(gr.basic_block):
    """Keeps the seq of every PDU it receives (works as a message sink with no done race)."""

    def __init__(self):
        gr.basic_block.__init__(self, "collector", None, None)
        self.message_port_register_in(pmt.intern("pdus"))
        self.set_msg_handler(pmt.intern("pdus"), self.handle)
        self.got = []

    def handle(self, msg):
        self.got.append(pmt.to_python(pmt.car(msg)))


def yaml_callbacks(block_id):
    """Setter names that grc/<block_id>.block.yml calls at run time."""
    path = Path(__file__).resolve().parents[2] / "grc" / f"{block_id}.block.yml"
    if not path.exists():                           # installed copy without the source tree
        raise unittest.SkipTest(f"{path} not found")
    cbs = yaml.safe_load(path.read_text())["templates"].get("callbacks", [])
    return sorted(re.match(r"\s*(\w+)\(", c).group(1) for c in cbs)


class qa_packet_erasure_channel(gr_unittest.TestCase):

    def delivered(self, ch, n=400):
        out = []
        ch.message_port_pub = lambda port, msg: out.append(pmt.to_python(pmt.car(msg)))
        for i in range(n):
            ch.handle_pdu(pdu(i))
        return [m["seq"] for m in out if "seq" in m]

    def test_seeded_and_rate(self):
        a = self.delivered(packet_erasure_channel("bernoulli", 0.3, seed=4))
        b = self.delivered(packet_erasure_channel("bernoulli", 0.3, seed=4))
        c = self.delivered(packet_erasure_channel("bernoulli", 0.3, seed=5))
        self.assertEqual(a, b)
        self.assertNotEqual(a, c)
        self.assertTrue(0.2 < 1 - len(a) / 400 < 0.4)

    def test_set_p_callback_and_counters(self):
        ch = packet_erasure_channel("gilbert_elliott", 0.0, 3.0, seed=1)
        self.assertEqual(len(self.delivered(ch, 100)), 100)
        ch.set_p(0.5)
        got = self.delivered(ch, 2000)
        st = ch.get_stats()
        self.assertEqual((st["sent"], st["dropped"]), (2100, 2100 - 100 - len(got)))
        self.assertAlmostEqual(st["p"], 0.5)
        self.assertTrue(0.4 < st["dropped"] / 2000 < 0.6)
        with self.assertRaises(ValueError):
            ch.set_p(2.0)

    def test_trace_model(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "loss.txt"
            path.write_text("0 1 1 0\n")
            got = self.delivered(packet_erasure_channel("trace", trace_file=str(path)), 8)
        self.assertEqual(got, [0, 3, 4, 7])

    def test_eos_always_passes_and_bad_input_is_dropped(self):
        ch = packet_erasure_channel("bernoulli", 1.0)
        out = []
        ch.message_port_pub = lambda port, msg: out.append(msg)
        for bad in (pmt.intern("x"), pmt.cons(pmt.PMT_NIL, pmt.init_s32vector(1, [1])),
                    pmt.cons(pmt.from_long(3), pmt.init_u8vector(1, [1])), pmt.PMT_NIL):
            ch.handle_pdu(bad)
        ch.handle_pdu(pdu(1))
        ch.handle_pdu(eos_pdu(2, 0))
        self.assertEqual(len(out), 1)
        self.assertTrue(pmt.to_python(pmt.car(out[0]))["eos"])
        st = ch.get_stats()
        self.assertEqual((st["bad_messages"], st["sent"], st["dropped"], st["eos"]), (4, 1, 1, 1))

    def test_flowgraph_holds_done_until_eos(self):
        tb = gr.top_block()
        ch = packet_erasure_channel("bernoulli", 0.0, eos_grace_s=5.0)
        col = Collector()
        tb.msg_connect(ch, "pdus", col, "pdus")
        tb.start()
        ch._post(pmt.intern("system"), pmt.cons(pmt.intern("done"), pmt.from_long(1)))
        for i in range(3):
            ch._post(pmt.intern("pdus"), pdu(i))
        ch._post(pmt.intern("pdus"), eos_pdu(3, 0))
        t0 = time.monotonic()
        tb.wait()                                        # ends once eos passed, not after 5 s
        self.assertLess(time.monotonic() - t0, 4.0)
        self.assertEqual([m.get("seq", "eos") for m in col.got], [0, 1, 2, "eos"])

    def test_ctrl_message_sets_p(self):
        ch = packet_erasure_channel("bernoulli", 0.0)
        ch.handle_ctrl(pmt.to_pmt({"p": 1.0}))
        self.assertEqual(self.delivered(ch, 50), [])
        for bad in (pmt.to_pmt({"p": 3.0}), pmt.to_pmt({"q": 0.1}), pmt.intern("p")):
            ch.handle_ctrl(bad)
        st = ch.get_stats()
        self.assertEqual((st["p"], st["ctrl_msgs"], st["bad_messages"]), (1.0, 1, 3))

    def test_yaml_callbacks_are_the_tested_setters(self):
        names = yaml_callbacks("largesc_packet_erasure_channel")
        self.assertEqual(names, ['set_p'])
        blk = packet_erasure_channel()
        for n in names:
            self.assertTrue(callable(getattr(blk, n)))


if __name__ == "__main__":
    gr_unittest.run(qa_packet_erasure_channel)
