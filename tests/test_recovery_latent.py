"""Latent-domain recovery (`interp`) and the codecs' quantizer-space helpers (core/codec/rvq.py),
on `tiny` (Mimi's split RVQ, random) and the shipped `mini` codec."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnuradio.largesc.app.run_options import BUNDLED_CLIP
from gnuradio.largesc.core import audio_io
from gnuradio.largesc.core import recovery as R
from gnuradio.largesc.core.codec import load_codec
from gnuradio.largesc.core.link import frames

O, C, L, N = frames.STATE_ORIGINAL, frames.STATE_COPY, frames.STATE_LOST, frames.STATE_NOT_SENT
G = frames.STATE_GENERATED
CLIP = audio_io.read_wav(BUNDLED_CLIP)


@pytest.fixture(scope="module", params=["tiny", "mini"])
def codec_and_codes(request):
    codec = load_codec(request.param)
    x, rate = CLIP
    codes = codec.encode(audio_io.resample(x, rate, frames.SAMPLE_RATE)[: 4 * frames.SAMPLE_RATE])
    return codec, codes


def test_requantize_keeps_the_known_prefix_and_approaches_the_target(codec_and_codes):
    codec, codes = codec_and_codes
    nfr = codes.shape[1]
    v = codec.dequantize(codes)
    assert v.shape[1] == nfr and np.isfinite(v).all()
    assert (codec.requantize(v, codes, np.full(nfr, 8)) == codes).all()      # all known: unchanged
    rng = np.random.default_rng(0)
    prefix = rng.integers(0, 8, nfr)
    noisy = np.where(np.arange(8)[:, None] < prefix[None, :], codes, rng.integers(0, 2048, codes.shape))
    re = codec.requantize(v, noisy, prefix)
    keep = np.arange(8)[:, None] < prefix[None, :]
    assert (re[keep] == codes[keep]).all()
    err_re = np.linalg.norm(codec.dequantize(re) - v)
    err_noisy = np.linalg.norm(codec.dequantize(noisy) - v)
    assert err_re < 0.7 * err_noisy                  # re-chosen codebooks approach the target
    # a longer prefix adds its codebooks' entries: the error to the full vector does not grow
    errs = [np.linalg.norm(codec.dequantize(codes, np.full(nfr, k)) - v) for k in range(1, 9)]
    assert errs[-1] < 1e-4 * (1 + np.linalg.norm(v)) and errs[0] > errs[-1]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.sampled_from([O, C, L, N]), min_size=8, max_size=8), min_size=1, max_size=10),
       st.booleans())
def test_interp_keeps_the_rules(states_list, fill_not_sent):
    _check_rules(R.build("interp", codec=load_codec("tiny"), fill_not_sent=fill_not_sent), states_list, fill_not_sent)


def _check_rules(rec, states_list, fill_not_sent):
    """The base rules (core/recovery/base.py) for a one-frame-hold strategy on random states."""
    states = np.array(states_list).T
    rng = np.random.default_rng(len(states_list))
    tokens = rng.integers(0, 2048, states.shape)
    out_t, out_s = R.recover(rec, tokens, states)
    known = np.isin(states, frames.KNOWN_STATES)
    assert (out_t[known] == tokens[known]).all() and (out_s[known] == states[known]).all()
    assert ((out_t >= 0) & (out_t < 2048)).all()
    want = ~known & (fill_not_sent | (states != N))
    assert ((out_s == G) == want).all()
    assert (out_t[~known & ~want] == 0).all()
    assert rec.latency == 1 and rec.get_stats()["frames_out"] == states.shape[1]


def test_interp_between_two_frames_is_nearer_than_repeat():
    """A lost frame between two received ones: its vector is nearer the true one than repeat's
    (on mini, the shipped codec, over a real clip)."""
    codec = load_codec("mini")
    x, rate = CLIP
    codes = codec.encode(audio_io.resample(x, rate, frames.SAMPLE_RATE))
    nfr = codes.shape[1]
    states = np.full(codes.shape, O, np.uint8)
    lost = np.arange(3, nfr - 1, 4)                  # every 4th frame, never two in a row
    states[:, lost] = L
    out = {}
    for name in ("interp", "repeat"):
        rec = R.build(name, codec=codec) if name == "interp" else R.build(name)
        out[name], _ = R.recover(rec, np.where(states == O, codes, 0), states)
    truth = codec.dequantize(codes[:, lost])
    err = {k: np.linalg.norm(codec.dequantize(v[:, lost]) - truth) for k, v in out.items()}
    assert err["interp"] < 0.9 * err["repeat"], err


def test_mmse_decision_follows_the_lm_when_sure_and_the_mean_when_not():
    import torch

    from gnuradio.largesc.core.recovery.moshi import MmseSampler
    codec = load_codec("tiny")
    vec = [torch.from_numpy(codec.codebook_vectors(k)) for k in range(8)]
    assert vec[0].shape[0] == 2048 and vec[3].shape == vec[1].shape
    s = MmseSampler(vec, temperature=1.0)
    sure = torch.full((2, 2048), -30.0)
    sure[0, 17], sure[1, 1999] = 30.0, 30.0
    assert s(sure, 2).tolist() == [17, 1999]                      # a sure LM: its top token
    flat = torch.zeros(1, 2048)
    mean = vec[2].float().mean(0, keepdim=True)
    assert int(s(flat, 2)[0]) == int(torch.cdist(mean, vec[2].float()).argmin())   # unsure: nearest the mean
    # Mimi's split RVQ: codebook 0 lives in the first space, codebooks 1.. in the second
    d0 = codec._split_layers()[0][0].decode(torch.zeros(1, 1, dtype=torch.long)).shape[1]
    assert vec[0][:, d0:].abs().max() == 0 and vec[0][:, :d0].abs().max() > 0
    assert vec[5][:, :d0].abs().max() == 0 and vec[5][:, d0:].abs().max() > 0


def test_interp_keeps_a_running_mean_when_the_sender_leaves_codebooks_out():
    """The controller rarely sends all 8 codebooks: the mean still follows the received frames."""
    codec = load_codec("tiny")
    rec = R.build("interp", codec=codec)
    rng = np.random.default_rng(0)
    states = np.full(8, O, np.uint8)
    states[6:] = N
    for _ in range(5):
        rec.push(rng.integers(0, 2048, 8), states)
    assert rec._mean is not None


# -- `latent`: the learned predictor (core/recovery/latent_predictor.py), shipped for `mini` -----

@settings(max_examples=15, deadline=None)
@given(st.lists(st.lists(st.sampled_from([O, C, L, N]), min_size=8, max_size=8), min_size=1, max_size=8))
def test_latent_keeps_the_rules(states_list):
    rec = R.build("latent", codec=_mini(), fill_not_sent=True)       # ignored: latent never fills NOT_SENT
    _check_rules(rec, states_list, fill_not_sent=False)


_MINI = {}


def _mini():
    if "c" not in _MINI:
        _MINI["c"] = load_codec("mini")
    return _MINI["c"]


def _lost_frame_errors(names, lost_every=4, burst=1):
    """Quantizer-space error on lost frames (the clip's true vectors) for each strategy."""
    codec = _mini()
    x, rate = CLIP
    codes = codec.encode(audio_io.resample(x, rate, frames.SAMPLE_RATE))
    nfr = codes.shape[1]
    states = np.full(codes.shape, O, np.uint8)
    lost = np.concatenate([np.arange(s, min(s + burst, nfr - 1)) for s in range(3, nfr - 1, lost_every)])
    states[:, lost] = L
    truth = codec.dequantize(codes[:, lost])
    err = {}
    for name in names:
        rec = R.build(name, codec=codec) if name in ("interp", "latent") else R.build(name)
        out, _ = R.recover(rec, np.where(states == O, codes, 0), states)
        err[name] = float(np.linalg.norm(codec.dequantize(out[:, lost]) - truth))
    return err


def test_latent_is_nearer_than_interp_and_repeat_on_lost_frames():
    """Single lost frames and 2-frame bursts of the bundled clip (the predictor never saw it):
    the shipped predictor's vectors are nearer the truth than interpolation's and repeat's."""
    for burst in (1, 2):
        err = _lost_frame_errors(("latent", "interp", "repeat"), lost_every=5, burst=burst)
        assert err["latent"] < 0.9 * err["interp"] and err["latent"] < 0.8 * err["repeat"], (burst, err)


def test_latent_predictor_files_are_checked(tmp_path):
    import json

    from gnuradio.largesc.core.recovery.latent import LatentRecovery, predictor_dir
    from gnuradio.largesc.core.recovery.latent_predictor import (
        CONFIG_NAME,
        WEIGHTS_NAME,
        LatentPredictor,
        PredictorConfig,
        load_predictor,
        save_predictor,
    )
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_predictor(tmp_path)
    shipped = predictor_dir("mini")
    cfg = json.loads((shipped / CONFIG_NAME).read_text())
    (tmp_path / CONFIG_NAME).write_text(json.dumps(cfg))
    (tmp_path / WEIGHTS_NAME).write_bytes((shipped / WEIGHTS_NAME).read_bytes()[:1000])     # truncated
    with pytest.raises(ValueError, match="does not load"):
        load_predictor(tmp_path)
    (tmp_path / CONFIG_NAME).write_text(json.dumps({**cfg, "hidden": 64}))                  # wrong shapes
    (tmp_path / WEIGHTS_NAME).write_bytes((shipped / WEIGHTS_NAME).read_bytes())
    with pytest.raises(ValueError, match="does not load"):
        load_predictor(tmp_path)
    other = tmp_path / "other"
    save_predictor(LatentPredictor(PredictorConfig(dim=32, hidden=16)), other)             # another codec's
    with pytest.raises(ValueError, match="train it for this codec"):
        LatentRecovery(_mini(), load_predictor(other))
    assert load_predictor(shipped).cfg.codec_sha256 == _codec_sha()


def _codec_sha():
    import hashlib

    from gnuradio.largesc.core.profiles import models_dir
    return hashlib.sha256((models_dir() / "mini" / "codec" / "model.safetensors").read_bytes()).hexdigest()


def test_latent_without_a_predictor_names_the_missing_file(monkeypatch, tmp_path):
    monkeypatch.setenv("LARGESC_MODELS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="train-latent"):
        R.build("latent", codec=_mini(), profile="mini")
