#!/usr/bin/env python3
"""qa for largesc.mimi_decoder: length, prefix decoding and its callback, invalid tokens."""
import numpy as np
from gnuradio import blocks, gr, gr_unittest

from gnuradio.largesc.core import codec
from gnuradio.largesc.core.link import frames
from gnuradio.largesc.mimi_decoder import mimi_decoder


class qa_mimi_decoder(gr_unittest.TestCase):
    def setUp(self):
        self.tb = gr.top_block()
        rng = np.random.default_rng(0)
        self.codes = rng.integers(0, frames.CODEBOOK_SIZE, (8, 6))

    def tearDown(self):
        self.tb = None

    def run_decoder(self, codes, k=8):
        src = blocks.vector_source_i(codes.T.reshape(-1).astype(int).tolist(), False, frames.NUM_CODEBOOKS)
        self.dec = mimi_decoder(profile="tiny", num_codebooks=k)
        snk = blocks.vector_sink_f()
        self.tb.connect(src, self.dec, snk)
        self.tb.run()
        return np.array(snk.data(), dtype=np.float32)

    def test_length_and_equality_with_core(self):
        y = self.run_decoder(self.codes, k=8)
        self.assertEqual(len(y), 6 * frames.FRAME_SAMPLES)
        np.testing.assert_allclose(y, codec.load_codec("tiny").decode(self.codes), atol=1e-5)

    def test_prefix_decoding(self):
        y = self.run_decoder(self.codes, k=4)
        np.testing.assert_allclose(y, codec.load_codec("tiny").decode(self.codes[:4]), atol=1e-5)

    def test_set_num_codebooks_callback(self):
        dec = mimi_decoder(profile="tiny", num_codebooks=8)
        dec.set_num_codebooks(3)
        self.assertEqual(dec.num_codebooks, 3)
        with self.assertRaises(ValueError):
            dec.set_num_codebooks(9)
        with self.assertRaises(ValueError):
            dec.set_num_codebooks(0)

    def test_invalid_tokens_are_counted_not_decoded(self):
        bad = self.codes.copy()
        bad[2, 1] = 5000
        bad[0, 3] = -1
        y = self.run_decoder(bad)
        self.assertEqual(self.dec.get_stats()["invalid_tokens"], 2)
        fixed = np.where((bad < 0) | (bad >= 2048), 0, bad)
        np.testing.assert_allclose(y, codec.load_codec("tiny").decode(fixed), atol=1e-5)

    def test_states_input_decodes_each_frames_prefix(self):
        states = np.zeros((6, 8), np.uint8)                       # all original
        states[2, 3:] = frames.STATE_LOST                         # frame 2: prefix 3
        states[4, 5:] = frames.STATE_NOT_SENT                     # frame 4: prefix 5
        src = blocks.vector_source_i(self.codes.T.reshape(-1).astype(int).tolist(), False, 8)
        st = blocks.vector_source_b(states.reshape(-1).tolist(), False, 8)
        dec = mimi_decoder(profile="tiny", num_codebooks=8, use_states=True)
        snk = blocks.vector_sink_f()
        self.tb.connect(src, (dec, 0))
        self.tb.connect(st, (dec, 1))
        self.tb.connect(dec, snk)
        self.tb.run()
        prefix = np.array([8, 8, 3, 8, 5, 8])
        ref = codec.load_codec("tiny").decode(self.codes, prefix=prefix)
        np.testing.assert_allclose(np.array(snk.data()), ref, atol=1e-5)
        self.assertEqual(dec.get_stats()["prefix_frames"], 2)

    def test_default_profile_window_matches_the_offline_decode(self):
        """The default codec (mini v2) through the block at windows 0, 1, 2 and its default:
        W lead-in frames of silence, then the codec's offline decode over the same windows."""
        from .app.run_options import BUNDLED_CLIP
        from .core import audio_io
        x, rate = audio_io.read_wav(BUNDLED_CLIP)
        x = audio_io.resample(x, rate, frames.SAMPLE_RATE)[: 12 * frames.FRAME_SAMPLES]
        c = codec.load_codec()
        codes = c.encode(x)
        nfr = codes.shape[1]
        for w in (0, 1, 2, -1):
            self.tb = gr.top_block()
            src = blocks.vector_source_i(codes.T.reshape(-1).astype(int).tolist(), False, frames.NUM_CODEBOOKS)
            dec = mimi_decoder(codec_window=w)
            snk = blocks.vector_sink_f()
            self.tb.connect(src, dec, snk)
            self.tb.run()
            y = np.array(snk.data(), dtype=np.float32)
            ww = c.window if w < 0 else w
            self.assertEqual(dec.codec.stream_delay_frames, ww)
            c.window = ww
            ref = c.decode(codes)[: (nfr - ww) * frames.FRAME_SAMPLES]
            c.window = 1
            self.assertEqual(len(y), nfr * frames.FRAME_SAMPLES)
            np.testing.assert_array_equal(y[: ww * frames.FRAME_SAMPLES], 0.0)
            np.testing.assert_allclose(y[ww * frames.FRAME_SAMPLES:], ref, atol=1e-5)

    def test_bad_parameters_are_refused(self):
        with self.assertRaisesRegex(ValueError, "samp_rate must be 24000"):
            mimi_decoder(profile="tiny", samp_rate=48000)
        with self.assertRaisesRegex(ValueError, "num_codebooks"):
            mimi_decoder(profile="tiny", num_codebooks=9)
        for bad in (-2, 4, 1.5, "1"):
            with self.assertRaisesRegex(ValueError, "codec_window"):
                mimi_decoder(codec_window=bad)
        with self.assertRaisesRegex(ValueError, "mini v2 codec only"):
            mimi_decoder(profile="tiny", codec_window=1)
        with self.assertRaisesRegex(ValueError, "mini v2 codec only"):
            mimi_decoder(profile="mini-v1", codec_window=0)


if __name__ == "__main__":
    gr_unittest.run(qa_mimi_decoder)
