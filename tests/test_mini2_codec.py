"""The `mini` v2 codec (core/codec/mini2.py): Mimi's token interface over Opus DRED latents and
FARGAN. Interface tests with codebooks drawn from a clip; quality on the shipped weights."""
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


def small_codec(clip24, seed=0):
    """Codebooks drawn from the clip's own (normalised) vectors: a working codec, not a trained one."""
    torch.manual_seed(seed)
    m = mini2.Mini2Model()
    c = mini2.Mini2Codec(m.eval())
    _, vn = c.encode_latent(clip24)                      # normalisation 0 / 1: vn is the raw vector
    v = torch.from_numpy(vn.T.copy())
    m.v_mean.copy_(v.mean(0))
    m.v_std.copy_(v.std(0) + 1e-6)
    r = (v - m.v_mean) / m.v_std
    for k in range(8):
        m.codebooks[k].copy_(r[torch.randint(0, len(r), (2048,))] * 0.5 ** k)
    return c


def test_interface_prefixes_and_streaming_equal_offline(clip24):
    c = small_codec(clip24)
    codes, z = c.encode_latent(clip24)
    nfr = len(clip24) // frames.FRAME_SAMPLES
    assert codes.shape == (8, nfr) and z.shape == (mini2.VEC_DIM, nfr)
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
    assert c.stream_delay_frames == 0 and len(ys) == nfr * frames.FRAME_SAMPLES
    assert np.allclose(ys, y, atol=1e-5)
    c.stop_streaming()
    with pytest.raises(RuntimeError, match="start_streaming"):
        c.stream_decode(codes[:, :1])
    with pytest.raises(ValueError, match="2048"):
        c.decode(codes + 2048)


def test_quantizer_space_helpers(clip24):
    c = small_codec(clip24)
    codes, z = c.encode_latent(clip24)
    nfr = codes.shape[1]
    v = c.dequantize(codes)
    assert v.shape == (mini2.VEC_DIM, nfr)
    assert (c.requantize(v, codes, np.full(nfr, 8)) == codes).all()
    re = c.requantize(z, np.zeros_like(codes), np.zeros(nfr, int))
    assert (re == codes).all()                     # the encoder's greedy RVQ, from the same target


def test_missing_library_names_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("LARGESC_OPUS_DNN_LIB", str(tmp_path / "nope.so"))
    monkeypatch.setattr(opus_dnn, "_LIB", None)
    with pytest.raises(opus_dnn.OpusDnnMissing, match="nope.so"):
        opus_dnn.Analyzer()


def test_profile_mini_loads_a_v2_folder_by_its_config(clip24, tmp_path):
    from gnuradio.largesc.core.codec import load_codec
    c = small_codec(clip24)
    mini2.save_mini2(c.model, tmp_path)
    loaded = load_codec("mini", mimi_weights=tmp_path)
    assert isinstance(loaded, mini2.Mini2Codec)
    codes, _ = c.encode_latent(clip24)
    assert (loaded.encode_latent(clip24)[0] == codes).all()        # fp16 codebooks: same choices here
    (tmp_path / mini2.WEIGHTS_NAME).write_bytes(b"truncated")
    from gnuradio.largesc.core.codec import ModelFileError
    with pytest.raises(ModelFileError, match="mini v2"):
        load_codec("mini", mimi_weights=tmp_path)
