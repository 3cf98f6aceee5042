"""QA for the adaptive_controller block (controller + packetizer)."""
import re
import threading
import time
import unittest
from pathlib import Path

import numpy as np
import pmt
import yaml
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.adaptive_controller import adaptive_controller
from gnuradio.largesc.core.link.packet import unpack
from gnuradio.largesc.core.link.packet_formats import DEFAULT_FORMAT, get_format
from gnuradio.largesc.packet_erasure_channel import packet_erasure_channel


def run_controller(ctl, n_frames=60, activity=None, seed=0):
    rng = np.random.default_rng(seed)
    toks = rng.integers(0, 2048, size=(n_frames, 8)).astype(np.int32)
    if activity is None:                            # 5 quiet frames, then speech
        activity = [-60.0] * 5 + [-20.0] * (n_frames - 5)
    act = np.asarray(activity, np.float32)
    tb = gr.top_block()
    # message_debug stops on GNU Radio's `done`, which overtakes the eos sent in stop(); the
    # erasure channel (p = 0) holds `done` until eos has passed, as in a real chain.
    chan = packet_erasure_channel(p=0.0)
    s0 = blocks.vector_source_i(toks.ravel().tolist(), False, 8)
    s1 = blocks.vector_source_f(act.tolist(), False)
    dbg = blocks.message_debug()
    tb.connect(s0, (ctl, 0))
    tb.connect(s1, (ctl, 1))
    tb.msg_connect(ctl, "pdus", chan, "pdus")
    tb.msg_connect(chan, "pdus", dbg, "store")
    tb.run()
    msgs = [dbg.get_message(i) for i in range(dbg.num_messages())]
    return toks, [(pmt.to_python(pmt.car(m)), bytes(pmt.u8vector_elements(pmt.cdr(m))))
                  for m in msgs]


def yaml_callbacks(block_id):
    """Setter names that grc/<block_id>.block.yml calls at run time."""
    path = Path(__file__).resolve().parents[2] / "grc" / f"{block_id}.block.yml"
    if not path.exists():                           # installed copy without the source tree
        raise unittest.SkipTest(f"{path} not found")
    cbs = yaml.safe_load(path.read_text())["templates"].get("callbacks", [])
    return sorted(re.match(r"\s*(\w+)\(", c).group(1) for c in cbs)


class qa_adaptive_controller(gr_unittest.TestCase):

    def test_one_packet_per_frame_then_eos(self):
        ctl = adaptive_controller(bandwidth_bps=1100.0, d=1, loss_rate=0.2, epoch=2, packet_format="v1")
        act = [-60.0] * 10 + [-20.0] * 50
        toks, msgs = run_controller(ctl, 60, act)
        self.assertEqual(len(msgs), 61)
        meta, data = msgs[-1]
        self.assertTrue(meta["eos"])
        self.assertEqual((meta["n_frames"], meta["epoch"], data), (60, 2, b""))
        prev_n = None
        for n, (meta, data) in enumerate(msgs[:-1]):
            pkt = unpack(data)
            f = pkt.frames[0]
            self.assertEqual((pkt.seq, pkt.epoch, meta["seq"]), (n, 2, n))
            self.assertEqual((len(f.tokens), len(f.copies)), (meta["n_send"], meta["n_repeat"]))
            self.assertEqual(list(f.tokens), toks[n, :len(f.tokens)].tolist())
            if f.copies:
                self.assertEqual(list(f.copies), toks[n - 1, :len(f.copies)].tolist())
            self.assertLessEqual(len(f.copies), prev_n if prev_n is not None else 0)
            self.assertEqual(meta["payload_bits"], 11 * (len(f.tokens) + len(f.copies)))
            prev_n = len(f.tokens)
        st = ctl.get_stats()
        self.assertEqual(st["frames"], 60)
        self.assertLessEqual(st["payload_bps"], 1100.0)
        self.assertGreater(st["repeat_tokens"], 0)

    def test_set_bandwidth_callback(self):
        ctl = adaptive_controller(bandwidth_bps=2062.5, loss_rate=0.3)
        ctl.set_bandwidth(550.0)
        _, msgs = run_controller(ctl, 30)
        self.assertEqual({(m["n_send"], m["n_repeat"]) for m, _ in msgs[:-1]}, {(4, 0)})
        with self.assertRaises(ValueError):
            ctl.set_bandwidth(100.0)

    def test_set_loss_rate_callback(self):
        ctl = adaptive_controller(bandwidth_bps=1100.0, loss_rate=0.0)
        ctl.set_loss_rate(0.3)
        _, msgs = run_controller(ctl, 30)
        self.assertGreater(sum(m["n_repeat"] for m, _ in msgs[:-1]), 0)
        ctl2 = adaptive_controller(bandwidth_bps=1100.0, loss_rate=0.3)
        ctl2.set_loss_rate(0.0)
        _, msgs = run_controller(ctl2, 30)
        self.assertEqual(sum(m["n_repeat"] for m, _ in msgs[:-1]), 0)

    def test_set_dtx_callback(self):
        ctl = adaptive_controller(bandwidth_bps=550.0, dtx_tokens=1)
        ctl.set_dtx(True)
        _, msgs = run_controller(ctl, 40, [-60.0] * 40)
        self.assertEqual({m["n_send"] for m, _ in msgs[:-1]}, {1})
        self.assertEqual(ctl.get_stats()["dtx_frames"], 40)

    def test_feedback_message_sets_p_and_bad_ones_are_dropped(self):
        ctl = adaptive_controller(loss_rate=0.0)
        ctl.handle_feedback(pmt.to_pmt({"loss_rate": 0.25}))
        self.assertEqual(ctl.get_stats()["loss_rate"], 0.25)
        for bad in (pmt.intern("x"), pmt.to_pmt({"other": 1.0}), pmt.to_pmt({"loss_rate": 3.0}),
                    pmt.to_pmt({"loss_rate": "a"}), pmt.PMT_NIL, pmt.cons(pmt.PMT_NIL, pmt.PMT_T)):
            ctl.handle_feedback(bad)
        st = ctl.get_stats()
        self.assertEqual((st["loss_rate"], st["feedback_msgs"], st["bad_messages"]), (0.25, 1, 6))
        oracle = adaptive_controller(loss_rate=0.1, use_feedback=False)
        oracle.handle_feedback(pmt.to_pmt({"loss_rate": 0.5}))
        self.assertEqual(oracle.get_stats()["loss_rate"], 0.1)

    def test_use_feedback_setter_takes_the_lock(self):
        """use_feedback changes the loss input that work() reads under the block's lock: the
        setter waits for the lock (was: changed the state without it)."""
        ctl = adaptive_controller(loss_rate=0.1)
        ctl.handle_feedback(pmt.to_pmt({"loss_rate": 0.4}))
        done = threading.Event()

        def turn_off():
            ctl.use_feedback = False
            done.set()
        with ctl._lock:                             # work() is in the middle of a frame
            t = threading.Thread(target=turn_off, daemon=True)
            t.start()
            self.assertFalse(done.wait(0.3))
            self.assertEqual(ctl.loss.value, 0.4)   # unchanged while work() holds the lock
        self.assertTrue(done.wait(5.0))
        t.join()
        self.assertEqual((ctl.use_feedback, ctl.loss_rate), (False, 0.1))
        with self.assertRaises(ValueError):
            ctl.use_feedback = "yes"

    def test_feedback_is_checked_under_the_lock(self):
        """A report that was waiting for the lock while use_feedback was turned off is not
        applied (was: checked before taking the lock, so it landed after the switch)."""
        ctl = adaptive_controller(loss_rate=0.1)
        with ctl._lock:
            t = threading.Thread(target=ctl.handle_feedback,
                                 args=(pmt.to_pmt({"loss_rate": 0.4}),), daemon=True)
            t.start()
            time.sleep(0.2)                         # the handler waits for the lock
            ctl._use_feedback = False               # what the setter does once it has the lock
            ctl.loss.feedback = None
        t.join(5.0)
        self.assertEqual(ctl.loss_rate, 0.1)
        self.assertEqual(ctl.get_stats()["feedback_msgs"], 1)

    def test_bad_tokens_are_clipped_and_counted(self):
        ctl = adaptive_controller()
        tb = gr.top_block()
        s0 = blocks.vector_source_i([5000, -1, 3, 4, 5, 6, 7, 8], False, 8)
        s1 = blocks.vector_source_f([-20.0], False)
        dbg = blocks.message_debug()
        tb.connect(s0, (ctl, 0))
        tb.connect(s1, (ctl, 1))
        tb.msg_connect(ctl, "pdus", dbg, "store")
        tb.run()
        pkt = get_format(DEFAULT_FORMAT).unpack(bytes(pmt.u8vector_elements(pmt.cdr(dbg.get_message(0)))))
        self.assertEqual(tuple(pkt.frames[0].tokens[:2]), (2047, 0))
        self.assertEqual(ctl.get_stats()["bad_tokens"], 1)

    def test_ctrl_message_applies_all_or_nothing(self):
        ctl = adaptive_controller(bandwidth_bps=1100.0, loss_rate=0.0)
        ctl.handle_ctrl(pmt.to_pmt({"bandwidth_bps": 2062.5, "loss_rate": 0.2, "dtx": True}))
        st = ctl.get_stats()
        self.assertEqual((st["bandwidth_bps"], st["loss_rate"], ctl.ctl.dtx), (2062.5, 0.2, True))
        for bad in (pmt.to_pmt({"bandwidth_bps": 600.0, "loss_rate": 7.0}),
                    pmt.to_pmt({"dtx": 1}), pmt.to_pmt({"unknown": 1.0}), pmt.intern("x"),
                    pmt.to_pmt({}), pmt.cons(pmt.PMT_NIL, pmt.init_u8vector(1, [1]))):
            ctl.handle_ctrl(bad)
        st = ctl.get_stats()
        self.assertEqual((st["bandwidth_bps"], st["loss_rate"]), (2062.5, 0.2))
        self.assertEqual((st["ctrl_msgs"], st["bad_messages"]), (1, 6))

    def test_frames_per_packet(self):
        ctl = adaptive_controller(d=2, frames_per_packet=2, loss_rate=0.2, packet_format="v1")
        toks, msgs = run_controller(ctl, 31)
        self.assertEqual(len(msgs), 16 + 1)            # 15 pairs, one single, eos
        pkts = [unpack(data) for _, data in msgs[:-1]]
        self.assertEqual([len(p.frames) for p in pkts], [2] * 15 + [1])
        self.assertEqual([p.seq for p in pkts], list(range(0, 31, 2)))
        last = pkts[-1].frames[0].tokens
        self.assertEqual(last, tuple(toks[30, :len(last)]))

    def test_yaml_callbacks_are_the_tested_setters(self):
        names = yaml_callbacks("largesc_adaptive_controller")
        self.assertEqual(names, ['set_bandwidth', 'set_dtx', 'set_loss_rate'])
        blk = adaptive_controller()
        for n in names:
            self.assertTrue(callable(getattr(blk, n)))


if __name__ == "__main__":
    gr_unittest.run(qa_adaptive_controller)
