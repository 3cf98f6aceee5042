"""The `mini` v2 codec (core/codec/mini2.py): Mimi's token interface over Opus DRED latents + a
state codebook, voiced by FARGAN. Interface tests with codebooks drawn from a clip; quality,
delay and silence on the shipped weights."""
import json

import numpy as np
import pytest
import torch

from gnuradio.largesc.app.run_options import BUNDLED_CLIP
from gnuradio.largesc.core import audio_io
from gnuradio.largesc.core.codec import mini2, opus_dnn
from gnuradio.largesc.core.link import frames
from gnuradio.largesc.core.profiles import models_dir

pytestmark = pytest.mark.skipif(not opus_dnn.available(), reason=(
    f"{opus_dnn.library_path()} is not built (scripts/install_env.sh runs scripts/build_opus_dnn.sh)"))
SHIPPED = models_dir() / "mini" / "codec"


@pytest.fixture(scope="module")
def clip24():
    x, rate = audio_io.read_wav(BUNDLED_CLIP)
    return audio_io.resample(x, rate, frames.SAMPLE_RATE)[: 37 * frames.FRAME_SAMPLES]


def small_codec(clip24, seed=0, window=1, state_index=1):
    """Codebooks drawn from the clip's own normalised vectors (latent codebooks zero in the state
    part, the state codebook zero in the latent part): a working codec, not a trained one."""
    torch.manual_seed(seed)
    m = mini2.Mini2Model(mini2.Mini2Config(state_index=state_index, window=window))
    c = mini2.Mini2Codec(m.eval())
    _, vn = c.encode_latent(clip24)                      # normalisation 0 / 1: vn is the raw vector
    v = torch.from_numpy(vn.T.copy())
    m.v_mean.copy_(v.mean(0))
    m.v_std.copy_(v.std(0) + 1e-6)
    r = (v - m.v_mean) / m.v_std
    lat = [k for k in range(8) if k != state_index]
    for j, k in enumerate(lat):
        m.codebooks[k, :, : mini2.Z_DIM] = r[torch.randint(0, len(r), (2048,)), : mini2.Z_DIM] * 0.5 ** j
    m.codebooks[state_index, :, mini2.Z_DIM:] = r[torch.randint(0, len(r), (2048,)), mini2.Z_DIM:]
    return c


@pytest.mark.parametrize("window", [0, 1, 2, 3])
def test_interface_prefixes_and_streaming_equal_offline(clip24, window):
    c = small_codec(clip24, window=window)
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
    # streaming, one frame per call: the same codes, and the same samples over the same windows
    c.start_streaming()
    sc = np.concatenate([c.stream_encode(clip24[i * 1920:(i + 1) * 1920])[0] for i in range(nfr)], 1)
    assert (sc == codes).all()
    parts = [c.stream_decode(codes[:, i:i + 1]) for i in range(nfr)]
    assert all(len(p) == 0 for p in parts[:window]) and all(len(p) == 1920 for p in parts[window:])
    ys = np.concatenate(parts)
    assert c.stream_delay_frames == window and len(ys) == (nfr - window) * frames.FRAME_SAMPLES
    assert np.allclose(ys, y[: len(ys)], atol=1e-5)
    c.stop_streaming()
    with pytest.raises(RuntimeError, match="start_streaming"):
        c.stream_decode(codes[:, :1])
    with pytest.raises(ValueError, match="2048"):
        c.decode(codes + 2048)


def test_window_is_checked(clip24):
    c = small_codec(clip24)
    for bad in (-1, 4):
        with pytest.raises(ValueError, match="window"):
            c.window = bad


def test_prefix_without_the_state_decodes_from_the_newest_known_state(clip24):
    """Frame t's decode uses the state of the newest frame of its window whose prefix carries the
    state codebook; with none in the window, the mean state."""
    c = small_codec(clip24, window=1)
    codes, _ = c.encode_latent(clip24)
    v, hs = c.vectors(codes, np.array([8, 1] + [8] * (codes.shape[1] - 2)))
    assert hs.tolist()[:3] == [True, False, True]
    f0 = c.window_features(v[:2], hs[:2])              # frame 1 has no state: decode from frame 0's
    lat0 = v[0, : mini2.Z_DIM].reshape(-1, mini2.LAT)[::-1]
    assert np.allclose(f0, opus_dnn.dred_decode(v[0, mini2.Z_DIM:], lat0)[:8])
    v1, hs1 = c.vectors(codes[:1, :2])                  # no state anywhere: the mean state
    assert not hs1.any()
    assert np.allclose(v1[:, mini2.Z_DIM:], c.model.v_mean[mini2.Z_DIM:].numpy(), atol=1e-5)


def test_only_a_received_state_starts_the_decoder(clip24):
    """With the token states, a generated state codebook keeps its vector but does not start the
    DRED decoder: the window takes the newest received state (docs/recovery.md)."""
    from gnuradio.largesc.core.link import frames as fr
    c = small_codec(clip24, window=1)
    codes, _ = c.encode_latent(clip24)
    n = codes.shape[1]
    st = np.full((n, 8), fr.STATE_ORIGINAL, np.uint8)
    st[3, :] = fr.STATE_GENERATED                       # frame 3 lost and filled by recovery
    st[5, 1] = fr.STATE_COPY                            # a copy counts as received
    v, hs = c.vectors(codes, None, st)
    assert not hs[3] and hs[2] and hs[4] and hs[5]
    assert np.allclose(v, c.vectors(codes)[0])          # the vectors are the same either way
    y_states, y_plain = c.decode(codes, None, st), c.decode(codes)
    seg = slice(3 * 1920, 4 * 1920)
    assert not np.allclose(y_states[seg], y_plain[seg]) and np.allclose(y_states[:2 * 1920], y_plain[:2 * 1920])
    with pytest.raises(ValueError, match="states"):
        c.vectors(codes, None, st[:, :4])


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
    from gnuradio.largesc.core.codec import ModelFileError, load_codec
    c = small_codec(clip24)
    mini2.save_mini2(c.model, tmp_path)
    loaded = load_codec("mini", mimi_weights=tmp_path)
    assert isinstance(loaded, mini2.Mini2Codec) and loaded.window == 1
    assert load_codec("mini", mimi_weights=tmp_path, window=3).stream_delay_frames == 3
    with pytest.raises(ValueError, match="window"):
        load_codec("mini", mimi_weights=tmp_path, window=7)
    with pytest.raises(ValueError, match="mini v2 codec only"):
        load_codec("tiny", window=1)
    codes, _ = c.encode_latent(clip24)
    assert (loaded.encode_latent(clip24)[0] == codes).all()        # fp16 codebooks: same choices here
    (tmp_path / mini2.WEIGHTS_NAME).write_bytes(b"truncated")
    with pytest.raises(ModelFileError, match="mini v2"):
        load_codec("mini", mimi_weights=tmp_path)


# ---------------------------------------------------------------------------- the shipped weights
@pytest.fixture(scope="module")
def shipped():
    return mini2.load_mini2(SHIPPED)


def test_default_profile_is_v2_with_one_frame_of_look_ahead(shipped):
    from gnuradio.largesc.core.codec import load_codec
    c = load_codec()
    assert isinstance(c, mini2.Mini2Codec)
    assert c.window == 1 and c.stream_delay_frames == 1 and c.encoder_delay_frames == 0
    cfg = json.loads((SHIPPED / "config.json").read_text())
    assert cfg["latent_norm"] == "global" and cfg["state_weight"] == "effect" and cfg["state_index"] == 1


def test_declared_sub_frame_delay_matches_the_measured_one(clip24, shipped):
    """Copy synthesis through the codec's own resamplers, analysis and vocoder: the decoded audio
    lags the input by sub_frame_delay_samples (+-1 ms), found by waveform cross-correlation."""
    from scipy.signal import correlate
    feats, _ = opus_dnn.Analyzer().process(mini2.StreamResampler(2, 3).process(clip24))
    y = mini2.StreamResampler(3, 2).process(opus_dnn.Vocoder().process(feats))
    c = correlate(y, clip24[: len(y)], mode="full")
    lags = np.arange(-len(y) + 1, len(y))
    k = np.abs(lags) < 2400
    assert abs(int(lags[k][np.argmax(c[k])]) - shipped.sub_frame_delay_samples) <= 24


def test_shipped_codec_keeps_a_pause_silent(clip24, shipped):
    """Two stretches of speech with 640 ms of digital silence between them: the decode of the
    pause (its middle 400 ms) stays at least 40 dB below the speech (the mean-state decoder of
    the first v2 invented speech there)."""
    n = frames.FRAME_SAMPLES
    a, b = clip24[: 12 * n], clip24[20 * n: 32 * n]
    x = np.concatenate([a, np.zeros(8 * n, np.float32), b])
    y = shipped.decode(shipped.encode(x))
    d = shipped.sub_frame_delay_samples
    pause = y[12 * n + n + d: 20 * n - 2 * n + d]
    speech = np.concatenate([y[d: 12 * n], y[20 * n + d:]])
    ratio_db = 10 * np.log10(np.mean(pause ** 2) + 1e-12) - 10 * np.log10(np.mean(speech ** 2))
    assert ratio_db < -40, ratio_db


def test_shipped_codec_stoi_floor(shipped):
    """STOI of the shipped codec at its default window on CMU ARCTIC a0007 (speaker clb, held out,
    shipped in the pysptk wheel) stays above the floor recorded in data/mini_codec_floor.json."""
    pytest.importorskip("pystoi")
    from pathlib import Path

    import pysptk
    from pystoi import stoi
    floor = json.loads((Path(__file__).resolve().parents[1] / "data" / "mini_codec_floor.json").read_text())
    x, rate = audio_io.read_wav(Path(pysptk.__file__).parent / "example_audio_data" / "arctic_a0007.wav")
    x = audio_io.resample(x, rate, frames.SAMPLE_RATE)
    y = shipped.decode(shipped.encode(x))
    d = shipped.sub_frame_delay_samples
    n = min(len(x), len(y) - d)
    assert stoi(x[:n], y[d: d + n], frames.SAMPLE_RATE) >= floor["mini_v2"]["floor"]
