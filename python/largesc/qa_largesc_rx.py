#!/usr/bin/env python3
"""QA for the largesc_rx hier block, and for tx -> erasure channel -> rx as a whole:
output length = input length, end of stream, flat memory with a slow recovery, setters."""
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
from gnuradio.largesc.largesc_rx import largesc_rx
from gnuradio.largesc.largesc_tx import largesc_tx
from gnuradio.largesc.packet_erasure_channel import packet_erasure_channel

PDUS = pmt.intern("pdus")


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


class qa_largesc_rx(gr_unittest.TestCase):

    def setUp(self):
        self.tb = gr.top_block()

    def tearDown(self):
        self.tb = None

    def chain(self, x, samp_rate=24000, p=0.3, recovery="repeat", d=1, d_max=2, seed=5):
        """wav-like source -> tx -> erasure channel -> rx -> sink, with the feedback loop."""
        self.src = blocks.vector_source_f(x.tolist(), False)
        self.tx = largesc_tx(samp_rate=samp_rate, profile="tiny", bandwidth_bps=1650, d=d,
                             loss_rate=p, seed=seed)
        self.ch = packet_erasure_channel("bernoulli", p, seed=seed)
        self.rx = largesc_rx(samp_rate=samp_rate, profile="tiny", d=d, d_max=d_max,
                             recovery=recovery, seed=seed)
        self.snk = blocks.vector_sink_f()
        self.tb.connect(self.src, self.tx)
        self.tb.msg_connect(self.tx, "pdus", self.ch, "pdus")
        self.tb.msg_connect(self.ch, "pdus", self.rx, "pdus")
        self.tb.msg_connect(self.rx, "feedback", self.tx, "feedback")
        self.tb.connect(self.rx, self.snk)

    def test_file_run_output_length_equals_input_length(self):
        x = audio(40, 24000)
        self.chain(x, p=0.3, recovery="repeat")
        self.tb.run()
        y = np.array(self.snk.data(), np.float32)
        self.assertEqual(len(y), len(x))
        s = self.rx.get_stats()
        self.assertEqual(s["depacketizer"]["frames_out"], 40)
        self.assertGreater(s["depacketizer"]["frames_lost"], 0)
        self.assertEqual(s["recovery"]["frames_out"], 40)
        self.assertEqual(s["decoder"]["frames"], 40)
        self.assertEqual(self.ch.get_stats()["dropped"] + s["depacketizer"]["accepted"], 40)
        self.assertGreater(self.tx.get_stats()["controller"]["feedback_msgs"], 0)   # feedback loop
        self.assertTrue(np.isfinite(y).all() and np.abs(y).max() > 0)

    def test_moshi_file_run_flushes_the_held_frame(self):
        x = audio(16, 24000, seed=1)
        self.chain(x, p=0.3, recovery="moshi")
        self.assertTrue(self.rx.hold_last)
        self.tb.run()
        self.assertEqual(len(self.snk.data()), len(x))
        s = self.rx.get_stats()["recovery"]
        self.assertEqual((s["frames_in"], s["frames_out"]), (16, 16))
        self.assertGreater(s["tokens_generated"], 0)

    def test_resampled_file_run_keeps_the_input_length(self):
        n = 20 * 1280                                   # 20 frames at 16 kHz
        x = np.concatenate([audio(20, 16000, seed=2), np.zeros(2 * 1280, np.float32)])  # + 2 frames
        self.chain(x, samp_rate=16000, p=0.0, recovery="zero")
        self.tb.run()
        self.assertGreaterEqual(len(self.snk.data()), n)        # the pad absorbs both filters
        self.assertLessEqual(len(self.snk.data()), len(x))
        self.assertEqual(self.rx.get_stats()["depacketizer"]["frames_lost"], 0)

    def _slow_run(self, num_frames, pace):
        """Fast file source, recovery slowed to ~8 ms per frame; returns peak frames held in RX."""
        self.chain(audio(num_frames, 24000, seed=3), p=0.2, recovery="repeat")
        self.rx.depacketizer.set_max_output_buffer(16)  # so that a backlog shows in the block
        push = self.rx.recovery.rec.push

        def slow_push(tokens, states):
            time.sleep(0.008)
            return push(tokens, states)

        self.rx.recovery.rec.push = slow_push
        if pace:
            self.tx.pace_with(self.rx, max_lead_frames=25)
        peak, stop = [0], threading.Event()

        def watch():
            while not stop.is_set():
                held = self.rx.progress()[1] + self.rx.depacketizer.nmsgs(PDUS) \
                    + self.ch.nmsgs(PDUS)
                peak[0] = max(peak[0], held)
                time.sleep(0.005)

        th = threading.Thread(target=watch)
        th.start()
        try:
            self.tb.run()
        finally:
            stop.set()
            th.join()
        self.assertEqual(len(self.snk.data()), num_frames * frames.FRAME_SAMPLES)
        return peak[0]

    def test_memory_stays_flat_with_a_slow_recovery(self):
        peak = self._slow_run(250, pace=True)
        self.assertLessEqual(peak, 25 + 2)              # at most max_lead frames held in Python
        self.assertLessEqual(self.tx.get_stats()["pacer"]["max_lead_seen"], 25)
        self.assertGreater(self.tx.get_stats()["pacer"]["waits"], 0)

    def test_without_pacing_the_backlog_grows(self):
        # the reference for the test above: same run, no pacing -> frames pile up in RX, well past
        # the paced bound (how far depends on how fast the encoder runs on a loaded machine)
        self.assertGreater(self._slow_run(250, pace=False), 25 + 2 + 10)

    def test_depacketizer_hold_last_puts_eos_on_the_last_frame(self):
        # the eos mark arrives after every frame could have been written: only hold_last
        # keeps a frame back for the tag (token recovery flushes its held frame on it)
        from gnuradio.largesc.core.link.packet import Packetizer
        from gnuradio.largesc.depacketizer import depacketizer
        from gnuradio.largesc.gr_support.pdu import eos_pdu, make_pdu
        for hold_last in (True, False):
            with self.subTest(hold_last=hold_last):
                tb = gr.top_block()
                pz = Packetizer(d=1, epoch=1)
                dp = depacketizer(d=1, d_max=1, hold_last=hold_last, packet_format="v1")   # v1 packets
                k0, k1 = blocks.vector_sink_i(8), blocks.vector_sink_b(8)
                tb.connect((dp, 0), k0)
                tb.connect((dp, 1), k1)
                tb.start()
                for n in range(6):
                    dp._post(PDUS, make_pdu(pz.push([n] * 8, 8, 0), {}))
                time.sleep(0.3)
                dp._post(PDUS, eos_pdu(6, 1))
                tb.wait()
                self.assertEqual(len(k1.data()), 6 * 8)
                eos = [t.offset for t in k0.tags() if pmt.symbol_to_string(t.key) == "eos"]
                self.assertEqual(eos, [5] if hold_last else [])

    def test_setters_reach_the_inner_blocks(self):
        rx = largesc_rx(profile="tiny", recovery="moshi", temperature=0.8, top_k=250)
        rx.set_num_codebooks(4)
        self.assertEqual(rx.decoder.num_codebooks, 4)
        with self.assertRaises(ValueError):
            rx.set_num_codebooks(9)
        rx.set_temperature(0.5)
        self.assertEqual(rx.recovery.rec.sampler.temperature, 0.5)
        rx.set_top_k(20)
        self.assertEqual(rx.recovery.rec.sampler.top_k, 20)
        rx.set_fill_not_sent(False)
        self.assertFalse(rx.recovery.rec.fill_not_sent)
        rx.set_deadline_ms(40.0)
        self.assertEqual(rx.recovery.rec.deadline_ms, 40.0)

    def test_setters_from_another_thread_while_running(self):
        x = audio(30, 24000, seed=4)
        self.chain(x, p=0.2, recovery="repeat")
        errors, stop = [], threading.Event()

        def gui():
            i = 0
            while not stop.is_set():
                try:
                    self.rx.set_num_codebooks(1 + i % 8)
                    self.rx.set_fill_not_sent(bool(i % 2))
                    self.rx.set_temperature(0.5)         # no-ops on a baseline: must not fail
                    self.rx.set_top_k(10)
                    self.rx.set_deadline_ms(10.0)
                except Exception as exc:            # noqa: BLE001
                    errors.append(exc)
                i += 1
                time.sleep(0.001)

        th = threading.Thread(target=gui)
        th.start()
        try:
            self.tb.run()
        finally:
            stop.set()
            th.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(self.snk.data()), len(x))

    def test_bad_parameters_are_refused(self):
        with self.assertRaises(ValueError):
            largesc_rx(recovery="oracle")
        with self.assertRaises(ValueError):
            largesc_rx(d=3, d_max=2, recovery="zero")
        with self.assertRaises(ValueError):
            largesc_rx(samp_rate=44101, recovery="zero")

    def test_yaml_callbacks_are_the_tested_setters(self):
        names = yaml_callbacks("largesc_largesc_rx")
        self.assertEqual(names, ["set_deadline_ms", "set_fill_not_sent", "set_num_codebooks",
                                 "set_temperature", "set_top_k"])
        rx = largesc_rx(profile="tiny", recovery="zero")
        for n in names:
            self.assertTrue(callable(getattr(rx, n)))


if __name__ == "__main__":
    gr_unittest.run(qa_largesc_rx)
