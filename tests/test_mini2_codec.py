"""The `mini` v2 codec (core/codec/mini2.py): Mimi's token interface over Opus DRED latents and
FARGAN. Interface tests on a small random model; quality on the shipped weights."""
import numpy as np
import pytest
import torch

from gnuradio.largesc.app.run_options import BUNDLED_CLIP
from gnuradio.largesc.core import audio_io
from gnuradio.largesc.core.codec import mini2, opus_dnn
from gnuradio.largesc.core.link import frames

pytestmark = pytest.mark.skipif(not opus_dnn.available(), reason=(
    f"{opus_dnn.library_path()} is not built (scripts/install_env.sh runs scripts/build_opus_dnn.sh)"))


@pytest.fixture(scope="module")
def clip24():
    x, rate = audio_io.read_wav(BUNDLED_CLIP)
    return audio_io.resample(x, rate, frames.SAMPLE_RATE)[: 37 * frames.FRAME_SAMPLES]


def small_codec(lookahead=1, seed=0):
    torch.manual_seed(seed)
    m = mini2.Mini2Model(mini2.Mini2Config(hidden=32, layers=1, lookahead=lookahead))
    m.codebooks.normal_(0, 0.4)
    return mini2.Mini2Codec(m.eval())


@pytest.mark.parametrize("lookahead", [0, 1])
def test_interface_prefixes_and_streaming_equal_offline(clip24, lookahead):
    c = small_codec(lookahead)
    codes, z = c.encode_latent(clip24)
    nfr = len(clip24) // frames.FRAME_SAMPLES
    assert codes.shape == (8, nfr) and z.shape == (mini2.Z_DIM, nfr)
    assert codes.min() >= 0 and codes.max() < 2048
    y = c.decode(codes)
    assert y.shape == (nfr * frames.FRAME_SAMPLES,) and np.isfinite(y).all()
    for k in (1, 4):
        assert c.decode(codes[:k]).shape == y.shape
    prefix = np.random.default_rng(0).integers(1, 9, nfr)
    masked = np.where(np.arange(8)[:, None] < prefix[None, :], codes, 0)
    assert np.allclose(c.decode(codes, prefix), c.decode(masked, prefix))
    # streaming, one frame per call: the same codes, and the same samples once the look-ahead is in
    c.start_streaming()
    sc = np.concatenate([c.stream_encode(clip24[i * 1920:(i + 1) * 1920])[0] for i in range(nfr)], 1)
    assert (sc == codes).all()
    ys = np.concatenate([c.stream_decode(codes[:, i:i + 1]) for i in range(nfr)])
    assert len(ys) == (nfr - lookahead) * frames.FRAME_SAMPLES == (nfr - c.stream_delay_frames) * 1920
    assert np.allclose(ys, y[: len(ys)], atol=1e-5)
    c.stop_streaming()
    with pytest.raises(RuntimeError, match="start_streaming"):
        c.stream_decode(codes[:, :1])
    with pytest.raises(ValueError, match="2048"):
        c.decode(codes + 2048)


def test_quantizer_space_helpers(clip24):
    c = small_codec()
    codes, z = c.encode_latent(clip24)
    nfr = codes.shape[1]
    v = c.dequantize(codes)
    assert v.shape == (mini2.Z_DIM, nfr)
    assert (c.requantize(v, codes, np.full(nfr, 8)) == codes).all()
    re = c.requantize(z, np.zeros_like(codes), np.zeros(nfr, int))
    assert (re == codes).all()                     # the encoder's greedy RVQ, from the same target


def test_missing_library_names_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("LARGESC_OPUS_DNN_LIB", str(tmp_path / "nope.so"))
    monkeypatch.setattr(opus_dnn, "_LIB", None)
    with pytest.raises(opus_dnn.OpusDnnMissing, match="nope.so"):
        opus_dnn.Analyzer()
