#!/usr/bin/env python3
"""qa for token_recovery: one frame out per frame in, in order, eos flush, tags, stats, setters."""
import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.core.link import frames
from gnuradio.largesc.token_recovery import token_recovery

K = frames.NUM_CODEBOOKS


def received(num_frames, seed, p=0.4):
    rng = np.random.default_rng(seed)
    clean = rng.integers(0, 2048, (num_frames, K)).astype(np.int32)
    states = np.full((num_frames, K), frames.STATE_ORIGINAL, np.uint8)
    lost = rng.random(num_frames) < p
    states[lost] = frames.STATE_LOST
    states[lost & (rng.random(num_frames) < 0.5), 0] = frames.STATE_COPY
    states[3, 5:] = frames.STATE_NOT_SENT
    return np.where(np.isin(states, frames.KNOWN_STATES), clean, 0).astype(np.int32), states


class qa_token_recovery(gr_unittest.TestCase):

    def setUp(self):
        self.tb = gr.top_block()

    def tearDown(self):
        self.tb = None

    def run_graph(self, blk, tokens, states, eos=True, extra_tags=()):
        tags = [gr.tag_utils.python_to_tag((len(tokens) - 1, pmt.intern("eos"), pmt.PMT_T))] if eos else []
        tags += [gr.tag_utils.python_to_tag(t) for t in extra_tags]
        self.src_t = blocks.vector_source_i(tokens.reshape(-1).tolist(), False, K, tags)
        self.src_s = blocks.vector_source_b(states.reshape(-1).tolist(), False, K)
        self.snk_t = blocks.vector_sink_i(K)
        self.snk_s = blocks.vector_sink_b(K)
        self.dbg = blocks.message_debug()
        self.blk = blk
        self.tb.connect(self.src_t, (blk, 0), self.snk_t)
        self.tb.connect(self.src_s, (blk, 1))
        self.tb.connect((blk, 1), self.snk_s)
        self.tb.msg_connect(blk, "stats", self.dbg, "store")
        self.tb.run()
        out_t = np.array(self.snk_t.data(), dtype=np.int64).reshape(-1, K)
        out_s = np.array(self.snk_s.data(), dtype=np.uint8).reshape(-1, K)
        return out_t, out_s

    def check_rules(self, tokens, states, out_t, out_s):
        self.assertEqual(out_t.shape, tokens.shape)           # one frame out per frame in
        known = np.isin(states, frames.KNOWN_STATES)
        self.assertTrue((out_t[known] == tokens[known]).all())  # frame k is frame k, untouched
        self.assertTrue((out_s[known] == states[known]).all())
        self.assertTrue(((out_t >= 0) & (out_t < 2048)).all())
        self.assertTrue((out_s[~known] == frames.STATE_GENERATED).all())

    def test_moshi_one_frame_per_frame_with_eos(self):
        tokens, states = received(30, 0)
        blk = token_recovery(strategy="moshi", profile="tiny", seed=3, top_k=50)
        out_t, out_s = self.run_graph(blk, tokens, states,
                                      extra_tags=[(7, pmt.intern("mark"), pmt.from_long(7))])
        self.check_rules(tokens, states, out_t, out_s)
        tags = {pmt.symbol_to_string(t.key): t for t in self.snk_t.tags()}
        self.assertEqual(tags["eos"].offset, len(tokens) - 1)   # passed on with the last frame
        self.assertEqual(tags["mark"].offset, 7)                # input tags keep their frame
        gen = [t for t in self.snk_t.tags() if pmt.symbol_to_string(t.key) == "generated"]
        self.assertEqual(sorted(t.offset for t in gen),
                         sorted(np.flatnonzero((out_s == frames.STATE_GENERATED).any(1)).tolist()))
        stats = blk.get_stats()
        self.assertEqual((stats["frames_in"], stats["frames_out"]), (30, 30))
        self.assertEqual(stats["tokens_generated"], int((out_s == frames.STATE_GENERATED).sum()))
        self.assertGreaterEqual(self.dbg.num_messages(), 1)        # at stop
        last = pmt.to_python(self.dbg.get_message(self.dbg.num_messages() - 1))
        self.assertEqual(last["frames_out"], 30)

    def test_many_small_work_calls_keep_tags_and_frames(self):
        tokens, states = received(60, 6)
        blk = token_recovery(strategy="moshi", profile="mini-v1", temperature=0.0)
        blk.set_max_noutput_items(3)
        marks = [(k, pmt.intern("mark"), pmt.from_long(k)) for k in range(0, 60, 7)]
        out_t, out_s = self.run_graph(blk, tokens, states, extra_tags=marks)
        self.check_rules(tokens, states, out_t, out_s)
        got = [(t.offset, pmt.to_long(t.value)) for t in self.snk_t.tags() if pmt.symbol_to_string(t.key) == "mark"]
        self.assertEqual(sorted(got), [(k, k) for k in range(0, 60, 7)])

    def test_moshi_same_seed_same_bytes(self):
        tokens, states = received(12, 1)
        a = self.run_graph(token_recovery(strategy="moshi", profile="mini-v1", seed=5), tokens, states)
        self.tb = gr.top_block()
        b = self.run_graph(token_recovery(strategy="moshi", profile="mini-v1", seed=5), tokens, states)
        self.assertEqual(a[0].tobytes(), b[0].tobytes())
        self.assertEqual(a[1].tobytes(), b[1].tobytes())

    def test_moshi_without_eos_holds_last_frame(self):
        tokens, states = received(10, 2)
        out_t, _ = self.run_graph(token_recovery(strategy="moshi", profile="mini-v1"), tokens, states, eos=False)
        self.assertEqual(len(out_t), len(tokens) - 1)
        self.assertEqual(self.blk.get_stats()["latency_frames"], 1)

    def test_auto_is_the_profiles_measured_best(self):
        self.assertEqual(token_recovery().strategy, "latent")             # mini (v2): its latent predictor
        self.assertEqual(token_recovery(profile="tiny").strategy, "moshi")
        self.assertEqual(token_recovery(profile="mini-v1").strategy, "moshi-mmse")
        with self.assertRaisesRegex(ValueError, "profile"):
            token_recovery(strategy="moshi")                               # mini has no LM

    def test_baselines_need_no_eos(self):
        tokens, states = received(20, 3)
        for strategy in ("repeat", "zero"):
            self.tb = gr.top_block()
            out_t, out_s = self.run_graph(token_recovery(strategy=strategy), tokens, states, eos=False)
            self.check_rules(tokens, states, out_t, out_s)

    def test_prefix_and_not_sent_switch(self):
        tokens, states = received(20, 4, p=0.0)
        out_t, out_s = self.run_graph(token_recovery(strategy="moshi", profile="mini-v1", fill_not_sent=False), tokens, states)
        self.assertTrue((out_s[3, 5:] == frames.STATE_NOT_SENT).all() and (out_t[3, 5:] == 0).all())

    def test_model_failure_falls_back_and_is_counted(self):
        tokens, states = received(16, 5, p=0.6)
        blk = token_recovery(strategy="moshi", profile="mini-v1")
        lm = blk.rec.lm
        real = lm.forward_depformer
        calls = {"n": 0}

        def flaky(*args):
            calls["n"] += 1
            if calls["n"] == 4:
                raise RuntimeError("injected")
            return real(*args)
        lm.forward_depformer = flaky
        out_t, out_s = self.run_graph(blk, tokens, states)
        self.assertEqual(len(out_t), len(tokens))
        stats = blk.get_stats()
        self.assertEqual(stats["model_errors"], 1)
        self.assertEqual(stats["reprimes"], 1)
        self.assertGreaterEqual(stats["tokens_fallback"], 1)
        fb = [t for t in self.snk_t.tags() if pmt.symbol_to_string(t.key) == "fallback"]
        self.assertEqual(len(fb), stats["frames_fallback"])

    def test_setters_and_bad_parameters(self):
        blk = token_recovery(strategy="moshi", profile="mini-v1")
        blk.set_temperature(0.0)
        blk.set_top_k(10)
        blk.set_fill_not_sent(False)
        blk.set_deadline_ms(50)
        self.assertEqual((blk.rec.sampler.temperature, blk.rec.sampler.top_k), (0.0, 10))
        self.assertEqual((blk.rec.fill_not_sent, blk.rec.deadline_ms), (False, 50.0))
        with self.assertRaises(ValueError):
            token_recovery(strategy="magic")
        with self.assertRaises(ValueError):
            token_recovery(num_threads=0)
        with self.assertRaisesRegex(RuntimeError, "27x slower"):
            token_recovery(strategy="moshi", profile="kyutai", device="cpu")


if __name__ == "__main__":
    gr_unittest.run(qa_token_recovery)
