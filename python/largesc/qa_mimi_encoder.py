#!/usr/bin/env python3
"""qa for largesc.mimi_encoder: frame counts, NaN handling, parameter checks, stats port."""
import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.core import codec
from gnuradio.largesc.core.link import frames
from gnuradio.largesc.mimi_encoder import mimi_encoder


def tone(n, seed=0):
    t = np.arange(n) / frames.SAMPLE_RATE
    rng = np.random.default_rng(seed)
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)
            + 0.01 * rng.standard_normal(n)).astype(np.float32)


class qa_mimi_encoder(gr_unittest.TestCase):
    def setUp(self):
        self.tb = gr.top_block()

    def tearDown(self):
        self.tb = None

    def run_encoder(self, x, stats_interval=125, profile="tiny"):
        src = blocks.vector_source_f(x.tolist(), False)
        self.enc = mimi_encoder(profile=profile, stats_interval=stats_interval)
        tok, act = blocks.vector_sink_i(frames.NUM_CODEBOOKS), blocks.vector_sink_f()
        dbg = blocks.message_debug()
        self.tb.connect(src, self.enc)
        self.tb.connect((self.enc, 0), tok)
        self.tb.connect((self.enc, 1), act)
        self.tb.msg_connect((self.enc, "stats"), (dbg, "store"))
        self.tb.run()
        return np.array(tok.data()).reshape(-1, 8), np.array(act.data()), dbg

    def test_one_frame_per_1920_samples_matching_core(self):
        x = tone(10 * frames.FRAME_SAMPLES + 500)
        toks, act, _ = self.run_encoder(x)
        self.assertEqual(toks.shape, (10, 8))
        self.assertEqual(act.shape, (10,))
        ref_codes, ref_latent = codec.load_codec("tiny").encode_latent(x[: 10 * frames.FRAME_SAMPLES])
        np.testing.assert_array_equal(toks.T, ref_codes)
        np.testing.assert_allclose(act, codec.latent_activity_db(ref_latent), rtol=1e-4, atol=1e-4)

    def test_mini_activity_is_the_input_level_aligned_with_its_delayed_tokens(self):
        """mini's latent level does not follow speech: its activity is the frame's input level,
        delayed with its tokens (one frame of encoder look-ahead: output frame j <-> input j - 1)."""
        x = tone(10 * frames.FRAME_SAMPLES)
        x[4 * frames.FRAME_SAMPLES: 6 * frames.FRAME_SAMPLES] *= 0.01          # two quiet frames
        toks, act, _ = self.run_encoder(x, profile="mini")
        mini = codec.load_codec("mini")
        delay = mini.encoder_delay_frames
        level = codec.frame_level_db(x)
        np.testing.assert_allclose(act[delay:], level[: len(act) - delay], atol=1e-3)
        self.assertTrue((act[:delay] == -100.0).all())
        self.assertLess(act[5 + delay], act[1 + delay] - 30)                   # a quiet frame

    def test_nonfinite_input_is_zeroed_and_counted(self):
        x = tone(4 * frames.FRAME_SAMPLES)
        clean = x.copy()
        clean[[5, 700, 4000]] = 0.0
        x[[5, 700]] = np.nan
        x[4000] = np.inf
        toks, _, dbg = self.run_encoder(x, stats_interval=1)
        self.assertEqual(self.enc.get_stats()["nonfinite_samples"], 3)
        np.testing.assert_array_equal(toks.T, codec.load_codec("tiny").encode(clean))
        self.assertGreaterEqual(dbg.num_messages(), 1)
        first = pmt.to_python(dbg.get_message(0))
        self.assertGreaterEqual(first["frames"], 1)
        self.assertGreaterEqual(first["nonfinite_samples"], 2)   # the NaNs lie in frame 0

    def test_wrong_sample_rate_is_refused(self):
        with self.assertRaisesRegex(ValueError, "samp_rate must be 24000"):
            mimi_encoder(profile="tiny", samp_rate=16000)

    def test_bad_parameters_are_refused(self):
        with self.assertRaisesRegex(ValueError, "num_threads"):
            mimi_encoder(profile="tiny", num_threads=0)
        with self.assertRaisesRegex(ValueError, "mimi_encoder: profile must be one of"):
            mimi_encoder(profile="nope")


if __name__ == "__main__":
    gr_unittest.run(qa_mimi_encoder)
