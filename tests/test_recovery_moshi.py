"""`moshi` recovery on the tiny LM: alignment with LMModel.forward, rules, seeds, faults."""
import numpy as np
import pytest
import torch

from gnuradio.largesc.core import recovery as R
from gnuradio.largesc.core.link import frames
from gnuradio.largesc.core.recovery import lm as L
from gnuradio.largesc.core.recovery.moshi import MoshiRecovery
from gnuradio.largesc.training import token_data as D
from gnuradio.largesc.training.train_lora import recovery_forward

O, L_, N = frames.STATE_ORIGINAL, frames.STATE_LOST, frames.STATE_NOT_SENT
G, FB = frames.STATE_GENERATED, frames.STATE_FALLBACK


@pytest.fixture(scope="module")
def lm():
    torch.set_num_threads(1)
    return L.load_lm("tiny")


def full_codes(lm, moshi_stream: np.ndarray) -> torch.Tensor:
    """[8, F] Moshi-stream tokens (-1 allowed) -> LMModel codes [1, 17, F]: text pad, user -1."""
    F = moshi_stream.shape[1]
    codes = torch.full((1, lm.num_codebooks, F), -1, dtype=torch.long)
    codes[0, 0] = lm.text_padding_token_id
    codes[0, 1:9] = torch.as_tensor(moshi_stream)
    return codes


def random_stream(F, seed, p=0.0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, 2048, (8, F))
    states = D.erasure_states(F, p, rng) if p else np.full((8, F), O, np.uint8)
    return np.where(np.isin(states, frames.KNOWN_STATES), tokens, 0), states, tokens


def test_streamed_logits_equal_forward_logits(lm):
    tokens, states, _ = random_stream(10, 0)
    rec = MoshiRecovery(lm, temperature=0.0)
    rec.gen.capture = []
    R.recover(rec, tokens, states)
    streamed = torch.stack(rec.gen.capture).view(10, 8, -1)        # [step, codebook, card]
    with torch.no_grad():
        ref = lm(full_codes(lm, tokens)).logits[0]                   # [codebook, frame, card]
    # step t carries codebook 0 of frame t and codebooks 1..7 of frame t-1
    torch.testing.assert_close(streamed[:, 0], ref[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(streamed[1:, 1:], ref[1:, :9].transpose(0, 1), atol=1e-4, rtol=1e-4)
    assert ref[1:, 9].isnan().all()          # the last frame's acoustics need one more step


def test_output_frame_k_is_input_frame_k(lm):
    """Greedy fills equal the argmax of the training forward at the same frame (no shift)."""
    F = 14
    tokens, states, _ = random_stream(F, 1, p=0.4)
    out_t, out_s = R.recover(MoshiRecovery(lm, temperature=0.0), tokens, states)
    assert out_t.shape == (8, F)
    known = np.isin(states, frames.KNOWN_STATES)
    assert (out_t[known] == tokens[known]).all()
    with torch.no_grad():
        logits, valid = recovery_forward(lm, full_codes(lm, np.where(known, tokens, -1)), full_codes(lm, out_t))
    greedy = logits[0].argmax(-1).numpy()
    check = (out_s == G) & valid[0].numpy()
    assert check.sum() > 10
    assert (out_t[check] == greedy[check]).all()
    shifted = np.roll(greedy, 1, axis=1)
    assert not (out_t[check] == shifted[check]).all()


@pytest.mark.parametrize("fill_not_sent", [True, False])
def test_rules_known_kept_range_states(lm, fill_not_sent):
    rng = np.random.default_rng(2)
    F = 20
    clean = rng.integers(0, 2048, (8, F))
    states = D.corrupt(F, rng, p=0.4)
    states[5:, 3:9] = N
    tokens = np.where(np.isin(states, frames.KNOWN_STATES), clean, 0)
    out_t, out_s = R.recover(MoshiRecovery(lm, top_k=50, fill_not_sent=fill_not_sent), tokens, states)
    known = np.isin(states, frames.KNOWN_STATES)
    assert (out_t[known] == tokens[known]).all() and (out_s[known] == states[known]).all()
    assert ((out_t >= 0) & (out_t < 2048)).all()
    lost = states == L_
    assert (out_s[lost] == G).all()
    if fill_not_sent:
        assert (out_s[states == N] == G).all()
    else:
        assert (out_s[states == N] == N).all() and (out_t[states == N] == 0).all()


def test_same_seed_same_bytes_and_global_rng_untouched(lm):
    tokens, states, _ = random_stream(16, 3, p=0.5)
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    a = R.recover(MoshiRecovery(lm, seed=7), tokens, states)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(99)                          # a different global RNG changes nothing
    b = R.recover(MoshiRecovery(lm, seed=7), tokens, states)
    c = R.recover(MoshiRecovery(lm, seed=8), tokens, states)
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    assert a[0].tobytes() != c[0].tobytes()


def test_fully_lost_frames_are_sampled_and_flush_restarts(lm):
    tokens = np.zeros((8, 6), int)
    states = np.full((8, 6), L_, np.uint8)
    rec = MoshiRecovery(lm, top_k=0, seed=1)
    out, st_ = R.recover(rec, tokens, states)
    assert (st_ == G).all() and len(np.unique(out)) > 8
    assert rec.get_stats()["frames_out"] == 6 and rec._pending is None
    out2, _ = R.recover(rec, tokens, states)        # a second stream on the same instance
    assert out2.shape == (8, 6)


def _fail_on_call(monkeypatch, lm, n):
    calls = {"n": 0}
    real = lm.forward_depformer

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise RuntimeError("injected fault")
        return real(*args, **kwargs)
    monkeypatch.setattr(lm, "forward_depformer", flaky)


def test_exception_falls_back_to_repeat(lm, monkeypatch):
    tokens, states, _ = random_stream(8, 4)
    states[:, 5] = L_                               # frame 5 entirely lost
    tokens[:, 5] = 0
    rec = MoshiRecovery(lm, temperature=0.0)
    _fail_on_call(monkeypatch, lm, 1)               # the first depformer call: step 5, codebook 0
    out, st_ = R.recover(rec, tokens, states)
    stats = rec.get_stats()
    assert stats["fallbacks"] == 1 and stats["model_errors"] == 1 and stats["reprimes"] == 1
    assert st_[0, 5] == FB and out[0, 5] == tokens[0, 4]          # cb0: repeat of frame 4
    assert (st_[1:, 5] == G).all()                                # acoustics: next step, model
    assert stats["frames_fallback"] == 1


def test_after_exception_model_is_reset_and_reprimed(lm, monkeypatch):
    """After a fault the LM state equals a fresh LM fed the last `prime_frames` frames."""
    F, P, bad = 12, 4, 6
    tokens, states, _ = random_stream(F, 5)
    rec = MoshiRecovery(lm, temperature=0.0, prime_frames=P)
    rec.gen.capture = []
    for f in range(bad):
        rec.push(tokens[:, f], states[:, f])
    _fail_on_call(monkeypatch, lm, 3)               # mid-step: after 2 of 8 depformer calls
    rec.push(tokens[:, bad], states[:, bad])
    monkeypatch.undo()
    assert rec.get_stats()["model_errors"] == 1 and rec._dirty
    rec.gen.capture = []
    for f in range(bad + 1, F):
        rec.push(tokens[:, f], states[:, f])
    assert rec.get_stats()["reprimes"] == 1
    rec.close()                                      # the LM leaves streaming mode for forward()
    streamed = torch.stack(rec.gen.capture).view(F - bad - 1, 8, -1)
    start = bad + 1 - P                              # first frame of the replayed window
    with torch.no_grad():
        ref = lm(full_codes(lm, tokens[:, start:])).logits[0]
    local = np.arange(bad + 1, F) - start
    torch.testing.assert_close(streamed[:, 0], ref[0, local], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(streamed[:, 1:], ref[1:, local - 1].transpose(0, 1), atol=1e-4, rtol=1e-4)
    with torch.no_grad():                            # without re-priming the context would differ
        cold = lm(full_codes(lm, tokens[:, bad + 1:])).logits[0]
    assert (streamed[0, 0] - cold[0, 0]).abs().max() > 1e-3


@pytest.mark.parametrize("feedback,reprimes", [("masked", 0), ("sampled", 1)])
def test_deadline_miss_falls_back(lm, feedback, reprimes):
    tokens, states, _ = random_stream(6, 6, p=0.0)
    states[1:, 2] = L_
    rec = MoshiRecovery(lm, deadline_ms=1e-6, feedback=feedback)
    out, st_ = R.recover(rec, tokens, states)
    stats = rec.get_stats()
    assert stats["deadline_misses"] >= 1 and stats["fallbacks"] == stats["deadline_misses"]
    assert stats.get("model_errors", 0) == 0
    assert (st_[1:, 2] == FB).all() and (out[1:, 2] == tokens[1:, 1]).all()
    assert (stats.get("reprimes", 0) > 0) == bool(reprimes)


def test_rejects_wrong_lm(lm):
    small = L.random_lm({**L.tiny_lm_kwargs(), "dep_q": 4, "delays": [0] * 17})
    with pytest.raises(ValueError, match="8 codebooks"):
        MoshiRecovery(small)
