"""Recovery interface and the baselines (zero, repeat, prefix): rules every strategy keeps."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnuradio.largesc.core import recovery as R
from gnuradio.largesc.core.link import frames

KNOWN = frames.KNOWN_STATES
O, C, L, N = frames.STATE_ORIGINAL, frames.STATE_COPY, frames.STATE_LOST, frames.STATE_NOT_SENT
G = frames.STATE_GENERATED

streams = st.integers(1, 12).flatmap(lambda f: st.tuples(
    st.lists(st.lists(st.integers(0, 2047), min_size=8, max_size=8), min_size=f, max_size=f),
    st.lists(st.lists(st.sampled_from([O, C, L, N]), min_size=8, max_size=8), min_size=f, max_size=f)))


@settings(max_examples=60, deadline=None)
@given(streams, st.sampled_from(["zero", "repeat", "prefix"]), st.booleans())
def test_baseline_rules(stream, strategy, fill_not_sent):
    tokens, states = (np.array(x).T for x in stream)
    rec = R.build(strategy, fill_not_sent=fill_not_sent)
    out_t, out_s = R.recover(rec, tokens, states)
    known = np.isin(states, KNOWN)
    assert out_t.shape == tokens.shape
    assert (out_t[known] == tokens[known]).all() and (out_s[known] == states[known]).all()
    assert ((out_t >= 0) & (out_t < 2048)).all()
    filled = out_s == G
    assert not (filled & known).any()
    assert (out_t[~known & ~filled] == 0).all()           # unfilled: value 0, state kept
    assert (out_s[~known & ~filled] == states[~known & ~filled]).all()
    if strategy != "prefix":
        want = ~known & (fill_not_sent | (states != N))
        assert (filled == want).all()
    assert R.decodable_prefix(out_s[:, 0]) >= 1 or strategy != "prefix"
    stats = rec.get_stats()
    assert stats["frames_in"] == stats["frames_out"] == tokens.shape[1]


def test_repeat_repeats_last_token_per_codebook():
    tokens = np.array([[5, 0, 0, 9], [6, 7, 0, 0]] + [[1, 1, 1, 1]] * 6)
    states = np.full((8, 4), O)
    states[0, 1:3] = L
    states[1, 2:] = L
    out, st_ = R.recover(R.RepeatRecovery(), tokens, states)
    assert out[0].tolist() == [5, 5, 5, 9]
    assert out[1].tolist() == [6, 7, 7, 7]
    assert (st_[states == L] == G).all()


def test_zero_uses_its_code_and_rejects_bad_codes():
    states = np.full((8, 2), L)
    out, _ = R.recover(R.ZeroRecovery(code=123), np.zeros((8, 2), int), states)
    assert (out == 123).all()
    with pytest.raises(ValueError):
        R.ZeroRecovery(code=2048)


def test_prefix_fills_only_codebook0():
    tokens = np.arange(16).reshape(8, 2)
    states = np.full((8, 2), O)
    states[3:, 0] = N
    states[:, 1] = L
    out, st_ = R.recover(R.PrefixRecovery(), tokens, states)
    assert R.decodable_prefix(st_[:, 0]) == 3
    assert R.decodable_prefix(st_[:, 1]) == 1 and out[0, 1] == tokens[0, 0]
    assert (st_[1:, 1] == L).all()


def test_fill_not_sent_switch():
    tokens = np.full((8, 3), 7)
    states = np.full((8, 3), O)
    states[4:, 1] = N
    on, s_on = R.recover(R.RepeatRecovery(fill_not_sent=True), tokens, states)
    off, s_off = R.recover(R.RepeatRecovery(fill_not_sent=False), tokens, states)
    assert (s_on[4:, 1] == G).all() and (on[4:, 1] == 7).all()
    assert (s_off[4:, 1] == N).all() and (off[4:, 1] == 0).all()
    assert R.decodable_prefix(s_off[:, 1]) == 4 and R.decodable_prefix(s_on[:, 1]) == 8


def test_bad_input_is_counted_and_treated_as_lost():
    rec = R.RepeatRecovery()
    rec.push(np.full(8, 3), np.full(8, O))
    (t, s), = rec.push(np.array([5000, -3, 4, 4, 4, 4, 4, 4]), np.array([O, O, 9, O, O, O, O, O]))
    assert t[:3].tolist() == [3, 3, 3] and (s[:3] == G).all()
    assert rec.get_stats()["bad_input_tokens"] == 3
    with pytest.raises(ValueError):
        rec.push(np.zeros(7), np.zeros(7))


def test_unknown_strategy_and_moshi_with_unknown_lm_profile():
    with pytest.raises(ValueError, match="unknown recovery strategy"):
        R.build("magic")
    with pytest.raises(ValueError, match="unknown LM profile"):
        R.build("moshi", profile="nope")


def test_token_accuracy():
    ref = np.array([[1, 2, 3]])
    assert R.token_accuracy(ref, np.array([[1, 0, 3]]), np.array([[True, True, False]])) == 0.5
    assert np.isnan(R.token_accuracy(ref, ref, np.zeros((1, 3), bool)))
