#!/usr/bin/env python3
"""QA for the largesc_tx hier block: packets per frame, resampling, setters, feedback port."""
import re
import threading
import time
import unittest
from pathlib import Path

import numpy as np
import pmt
import yaml
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.core.link import frames
from gnuradio.largesc.gr_support.rates import rational_ratio
from gnuradio.largesc.largesc_tx import largesc_tx
from gnuradio.largesc.packet_erasure_channel import packet_erasure_channel


def yaml_callbacks(block_id):
    """Setter names that grc/<block_id>.block.yml calls at run time."""
    path = Path(__file__).resolve().parents[2] / "grc" / f"{block_id}.block.yml"
    if not path.exists():                           # installed copy without the source tree
        raise unittest.SkipTest(f"{path} not found")
    cbs = yaml.safe_load(path.read_text())["templates"].get("callbacks", [])
    return sorted(re.match(r"\s*(\w+)\(", c).group(1) for c in cbs)


def audio(num_frames, samp_rate, seed=0):
    rng = np.random.default_rng(seed)
    n = num_frames * samp_rate * frames.FRAME_SAMPLES // frames.SAMPLE_RATE
    return (0.2 * rng.standard_normal(n)).astype(np.float32)


class qa_largesc_tx(gr_unittest.TestCase):

    def setUp(self):
        self.tb = gr.top_block()

    def tearDown(self):
        self.tb = None

    def _run(self, tx, x):
        # GNU Radio's `done` can overtake the eos PDU sent in the controller's stop(); the
        # erasure channel (p = 0) holds `done` until eos has passed, as in a real chain
        self.src = blocks.vector_source_f(x.tolist(), False)
        self.ch = packet_erasure_channel("bernoulli", 0.0)
        self.dbg = blocks.message_debug()
        self.tb.connect(self.src, tx)
        self.tb.msg_connect(tx, "pdus", self.ch, "pdus")
        self.tb.msg_connect(self.ch, "pdus", self.dbg, "store")
        self.tb.run()
        msgs = [pmt.to_python(pmt.car(self.dbg.get_message(i))) for i in range(self.dbg.num_messages())]
        return msgs

    def test_one_packet_per_frame_then_eos(self):
        tx = largesc_tx(samp_rate=24000, profile="tiny", bandwidth_bps=1100, d=1, seed=2)
        self.assertIsNone(tx.resampler)
        metas = self._run(tx, audio(12, 24000))
        self.assertEqual(len(metas), 13)
        self.assertEqual([m["seq"] for m in metas[:-1]], list(range(12)))
        self.assertTrue(all(m["epoch"] == 2 for m in metas[:-1]))      # seed fixes the epoch
        self.assertEqual((metas[-1]["eos"], metas[-1]["n_frames"]), (True, 12))
        s = tx.get_stats()
        self.assertEqual(s["encoder"]["frames"], 12)
        self.assertEqual(s["controller"]["packets"], 12)
        self.assertEqual(s["pacer"]["waits"], 0)

    def test_common_rates_resample_to_24k(self):
        self.assertEqual(rational_ratio(16000), (3, 2))
        self.assertEqual(rational_ratio(44100), (80, 147))
        self.assertEqual(rational_ratio(8000), (3, 1))
        with self.assertRaises(ValueError):
            rational_ratio(44101)                       # 24000/44101 has no small ratio
        for rate in (8000, 16000, 44100, 48000):
            with self.subTest(rate=rate):
                self.tb = gr.top_block()
                tx = largesc_tx(samp_rate=rate, profile="tiny", seed=0)
                interp, decim = rational_ratio(rate)
                self.assertEqual((tx.resampler.interpolation(), tx.resampler.decimation()),
                                 (interp, decim))
                metas = self._run(tx, audio(6, rate))
                # the resampler's filter keeps its last few samples: 5 or 6 whole frames come out
                self.assertIn(metas[-1]["n_frames"], (5, 6))

    def test_setters_reach_the_controller(self):
        tx = largesc_tx(profile="tiny", bandwidth_bps=1100, loss_rate=0.0)
        tx.set_bandwidth(2000)
        self.assertEqual(tx.controller.ctl.bandwidth_bps, 2000)
        self.assertEqual(tx.get_bandwidth(), 2000)
        tx.set_loss_rate(0.25)
        self.assertEqual(tx.controller.loss_rate, 0.25)
        self.assertEqual(tx.get_loss_rate(), 0.25)
        with self.assertRaises(ValueError):
            tx.set_loss_rate(1.5)
        tx.set_dtx(True)
        self.assertTrue(tx.controller.ctl.dtx)
        tx.set_use_feedback(False)
        self.assertFalse(tx.controller.use_feedback)

    def test_setters_from_another_thread_while_running(self):
        tx = largesc_tx(profile="tiny", bandwidth_bps=1100, seed=1)
        errors, stop = [], threading.Event()

        def gui():
            i = 0
            while not stop.is_set():
                try:
                    tx.set_bandwidth(550 + (i % 10) * 150)
                    tx.set_loss_rate((i % 5) / 10)
                except Exception as exc:            # noqa: BLE001
                    errors.append(exc)
                i += 1
                time.sleep(0.001)

        th = threading.Thread(target=gui)
        th.start()
        try:
            metas = self._run(tx, audio(40, 24000))
        finally:
            stop.set()
            th.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(metas), 41)
        tx.set_bandwidth(1650)
        self.assertEqual(tx.controller.get_stats()["bandwidth_bps"], 1650)

    def test_feedback_port_reaches_the_controller(self):
        tx = largesc_tx(profile="tiny", loss_rate=0.0, use_feedback=True)
        strobe = blocks.message_strobe(pmt.to_pmt({"loss_rate": 0.4}), 20)
        src = blocks.vector_source_f(audio(400, 24000).tolist(), True)      # runs until stopped
        self.tb.connect(src, tx)
        self.tb.msg_connect(strobe, "strobe", tx, "feedback")
        self.tb.start()
        t0 = time.monotonic()
        while tx.controller.counters["feedback_msgs"] == 0 and time.monotonic() - t0 < 10:
            time.sleep(0.02)
        self.tb.stop()
        self.tb.wait()
        self.assertGreater(tx.controller.counters["feedback_msgs"], 0)
        self.assertEqual(tx.get_loss_rate(), 0.4)

    def test_pace_with_checks_the_lead(self):
        tx = largesc_tx(profile="tiny", d=2)

        class FakeRx:
            d_max = 3
            progress = staticmethod(lambda: (0, 0))

        with self.assertRaises(ValueError):
            tx.pace_with(FakeRx(), max_lead_frames=4)
        tx.pace_with(FakeRx(), max_lead_frames=5)
        tx.pace_with(None)

    def test_yaml_callbacks_are_the_tested_setters(self):
        names = yaml_callbacks("largesc_largesc_tx")
        self.assertEqual(names, ["set_bandwidth", "set_dtx", "set_loss_rate", "set_use_feedback"])
        tx = largesc_tx(profile="tiny")
        for n in names:
            self.assertTrue(callable(getattr(tx, n)))


if __name__ == "__main__":
    gr_unittest.run(qa_largesc_tx)
