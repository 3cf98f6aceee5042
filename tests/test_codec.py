"""Codec core: profiles, streaming vs offline, prefix decoding, loading errors."""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from gnuradio.largesc.core import codec
from gnuradio.largesc.core.codec import mimi
from gnuradio.largesc.core.link import frames


def speechlike(seconds=1.0, seed=0):
    """Harmonic tone with a moving pitch and an on/off envelope: frames differ from each other."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * frames.SAMPLE_RATE)) / frames.SAMPLE_RATE
    f0 = 120 + 40 * np.sin(2 * np.pi * 1.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / frames.SAMPLE_RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = (np.sin(2 * np.pi * 2 * t) > -0.3).astype(float)
    return (0.2 * x * env + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def tiny():
    return codec.load_codec("tiny")


def test_offline_shapes_and_range(tiny):
    x = speechlike(1.0)
    codes, latent = tiny.encode_latent(x)
    nfr = -(-len(x) // frames.FRAME_SAMPLES)
    assert codes.shape == (8, nfr) and codes.dtype == np.int64
    assert latent.shape == (tiny.latent_dim, nfr)
    assert codes.min() >= 0 and codes.max() < frames.CODEBOOK_SIZE
    # randomised codebooks: tokens vary with the audio (all-zero codebooks would give one code)
    assert len(np.unique(codes[0])) > 1 and len(np.unique(codes)) > 8


@pytest.mark.parametrize("chunk_frames", [1, 3])
def test_streaming_codes_equal_offline(tiny, chunk_frames):
    x = speechlike(1.2, seed=1)
    n = (len(x) // frames.FRAME_SAMPLES) * frames.FRAME_SAMPLES
    x = x[:n]
    offline = tiny.encode(x)
    tiny.start_streaming()
    try:
        step = chunk_frames * frames.FRAME_SAMPLES
        chunks = [tiny.stream_encode(x[i:i + step]) for i in range(0, n - step + 1, step)]
    finally:
        tiny.stop_streaming()
    streamed = np.concatenate([c for c, _ in chunks], axis=1)
    np.testing.assert_array_equal(streamed, offline[:, : streamed.shape[1]])


def test_reset_restarts_streaming_state(tiny):
    x = speechlike(0.8, seed=2)[: 8 * frames.FRAME_SAMPLES]
    tiny.start_streaming()
    try:
        first = tiny.stream_encode(x)[0]
        second = tiny.stream_encode(x)[0]          # continues with history
        tiny.reset()
        after_reset = tiny.stream_encode(x)[0]
    finally:
        tiny.stop_streaming()
    np.testing.assert_array_equal(first, after_reset)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("k", range(1, 9))
def test_prefix_decode_length(tiny, k):
    codes = tiny.encode(speechlike(0.5, seed=3))
    y = tiny.decode(codes[:k])
    assert y.shape == (codes.shape[1] * frames.FRAME_SAMPLES,) and np.isfinite(y).all()


def test_prefixes_decode_differently(tiny):
    codes = tiny.encode(speechlike(0.5, seed=4))
    assert not np.allclose(tiny.decode(codes[:4]), tiny.decode(codes[:8]))


def test_streaming_input_must_be_whole_frames(tiny):
    tiny.start_streaming()
    try:
        with pytest.raises(ValueError, match="multiple of 1920"):
            tiny.stream_encode(np.zeros(1000, np.float32))
    finally:
        tiny.stop_streaming()


def test_bad_codes_are_refused(tiny):
    with pytest.raises(ValueError, match=r"\[0, 2048\)"):
        tiny.decode(np.full((8, 2), 2048))
    with pytest.raises(ValueError, match="shape"):
        tiny.decode(np.zeros((9, 2), np.int64))


def test_num_codebooks_range(tiny):
    with pytest.raises(ValueError):
        tiny.num_codebooks = 0
    with pytest.raises(ValueError):
        tiny.num_codebooks = 9
    tiny.num_codebooks = 4
    assert tiny.encode(speechlike(0.2)).shape[0] == 4
    tiny.num_codebooks = 8


def test_unknown_profile_and_device():
    with pytest.raises(ValueError, match="unknown profile"):
        codec.load_codec("huge")
    with pytest.raises(ValueError, match="device"):
        codec.load_codec("tiny", device="tpu")
    assert codec.load_codec("tiny", device="auto").device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_same_seed_same_random_model():
    x = speechlike(0.5, seed=5)
    a = codec.load_codec("tiny", seed=7).encode(x)
    b = codec.load_codec("tiny", seed=7).encode(x)
    c = codec.load_codec("tiny", seed=8).encode(x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_kyutai_offline_error_names_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))          # empty cache
    with pytest.raises(codec.ModelFileError, match=mimi.KYUTAI_MIMI_FILE):
        codec.load_codec("kyutai")


def test_missing_and_unsafe_weight_files(tmp_path):
    with pytest.raises(codec.ModelFileError, match="nope.safetensors"):
        codec.load_codec("kyutai", mimi_weights=tmp_path / "nope.safetensors")
    pt = tmp_path / "weights.pt"
    pt.write_bytes(b"not a pickle")
    with pytest.raises(codec.ModelFileError, match="safetensors files only"):
        codec.load_codec("kyutai", mimi_weights=pt)


def test_local_weights_roundtrip_through_real_loader(tiny, tmp_path):
    """The `kyutai` loading path (moshi's get_mimi on a local safetensors + config) on tiny weights."""
    weights = tmp_path / "mimi.safetensors"
    save_file({k: v.contiguous() for k, v in tiny.model.state_dict().items()}, str(weights))
    cfg = tmp_path / "mimi_config.json"
    cfg.write_text(json.dumps(mimi.tiny_mimi_config()))
    loaded = codec.load_codec("kyutai", mimi_weights=weights, mimi_config=cfg)
    x = speechlike(0.5, seed=6)
    np.testing.assert_array_equal(loaded.encode(x), tiny.encode(x))


def test_weights_that_do_not_fit_name_the_file(tmp_path):
    weights = tmp_path / "other.safetensors"
    save_file({"encoder.bogus": torch.zeros(3)}, str(weights))
    with pytest.raises(codec.ModelFileError, match="other.safetensors"):
        codec.load_codec("kyutai", mimi_weights=weights, mimi_config=mimi.tiny_mimi_config())


def test_latent_activity_per_frame(tiny):
    _, latent = tiny.encode_latent(speechlike(0.8, seed=7))
    act = codec.latent_activity_db(latent)
    assert act.shape == (latent.shape[1],) and act.dtype == np.float32 and np.isfinite(act).all()
    np.testing.assert_allclose(act[0], 10 * np.log10(np.mean(latent[:, 0].astype(np.float64) ** 2) + 1e-10), rtol=1e-5)


def test_full_size_architecture_one_second():
    """kyutai-arch: the real Mimi architecture (random weights) encodes and decodes 1 s."""
    m = codec.load_codec("kyutai-arch")
    assert m.latent_dim == 512
    x = speechlike(1.0, seed=8)
    codes = m.encode(x)
    assert codes.shape == (8, 13) and codes.min() >= 0 and codes.max() < 2048
    y = m.decode(codes)
    assert y.shape == (13 * frames.FRAME_SAMPLES,) and np.isfinite(y).all()


def test_per_frame_prefix_equals_uniform_prefix_decode(tiny):
    codes = tiny.encode(speechlike(0.6, seed=9))
    nfr = codes.shape[1]
    for k in (1, 3, 8):
        np.testing.assert_allclose(tiny.decode(codes, prefix=np.full(nfr, k)), tiny.decode(codes[:k]), atol=1e-5)


def test_per_frame_prefix_mixes_frames(tiny):
    """Each frame decodes with its own prefix; frames are causal, so frame f equals the uniform-k
    decode of frame f when all frames up to f share that prefix."""
    codes = tiny.encode(speechlike(0.8, seed=10))
    nfr = codes.shape[1]
    prefix = np.full(nfr, 8)
    prefix[nfr // 2:] = 2
    mixed = tiny.decode(codes, prefix=prefix)
    half = nfr // 2 * frames.FRAME_SAMPLES
    full = tiny.decode(codes)
    np.testing.assert_allclose(mixed[:half], full[:half], atol=1e-6)
    # the random tiny decoder reacts weakly to fine codebooks (~1e-4), but it does react
    assert np.abs(mixed[half:] - full[half:]).max() > 1e-5
    with pytest.raises(ValueError, match="one entry per frame"):
        tiny.decode(codes, prefix=np.full(nfr + 1, 2))


def test_streaming_per_frame_prefix_matches_offline(tiny):
    codes = tiny.encode(speechlike(0.8, seed=11))
    prefix = np.random.default_rng(0).integers(1, 9, codes.shape[1])
    offline = tiny.decode(codes, prefix=prefix)
    tiny.start_streaming()
    try:
        streamed = np.concatenate([tiny.stream_decode(codes[:, i:i + 1], prefix[i:i + 1])
                                   for i in range(codes.shape[1])])
    finally:
        tiny.stop_streaming()
    np.testing.assert_allclose(streamed, offline, atol=1e-4)


def test_truncated_weights_file_names_the_file(tiny, tmp_path):
    weights = tmp_path / "mimi.safetensors"
    save_file({k: v.contiguous() for k, v in tiny.model.state_dict().items()}, str(weights))
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(codec.ModelFileError, match="mimi.safetensors"):
        codec.load_codec("kyutai", mimi_weights=weights, mimi_config=mimi.tiny_mimi_config())
