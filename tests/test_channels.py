"""Erasure channels: seeded reproducibility, loss statistics, burst length, trace replay, set_p."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnuradio.largesc.core.link import channels as C


def pattern(ch, n):
    return [ch.drop() for _ in range(n)]


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["bernoulli", "gilbert_elliott"]), st.floats(0, 0.6), st.integers(0, 2**31))
def test_same_seed_same_losses(model, p, seed):
    a = C.make_channel(model, p, 3.0, seed=seed)
    b = C.make_channel(model, p, 3.0, seed=seed)
    assert pattern(a, 300) == pattern(b, 300)
    assert a.counters == b.counters and a.counters["sent"] == 300


@pytest.mark.parametrize("p", [0.0, 0.1, 0.3, 0.5])
def test_bernoulli_rate(p):
    ch = C.BernoulliChannel(p, seed=1)
    lost = pattern(ch, 20000)
    assert abs(sum(lost) / 20000 - p) < 0.015
    assert ch.counters["dropped"] == sum(lost)


def bursts(lost):
    out, run = [], 0
    for x in lost + [False]:
        if x:
            run += 1
        elif run:
            out.append(run)
            run = 0
    return out


@pytest.mark.parametrize("p,L", [(0.1, 2.0), (0.3, 4.0), (0.2, 1.0)])
def test_gilbert_elliott_mean_loss_and_burst(p, L):
    lost = pattern(C.GilbertElliottChannel(p, L, seed=5), 60000)
    assert abs(sum(lost) / len(lost) - p) < 0.02
    b = bursts(lost)
    assert abs(sum(b) / len(b) - L) < 0.15 * L


def test_set_p_changes_rate_while_running():
    for ch in (C.BernoulliChannel(0.0, seed=2), C.GilbertElliottChannel(0.0, 2.0, seed=2)):
        assert not any(pattern(ch, 500))
        ch.set_p(0.4)
        assert abs(sum(pattern(ch, 20000)) / 20000 - 0.4) < 0.03
        with pytest.raises(ValueError):
            ch.set_p(1.5)


def test_gilbert_elliott_rejects_impossible_burst():
    with pytest.raises(ValueError):
        C.GilbertElliottChannel(0.8, 1.0)            # mean burst 1 allows at most p = 0.5


def test_trace_file_replay_and_loop(tmp_path):
    f = tmp_path / "loss.txt"
    f.write_text("# loss trace\n0 1 1\n0,0\n1\n")
    ch = C.make_channel("trace", trace=str(f))
    assert pattern(ch, 12) == [False, True, True, False, False, True] * 2
    assert ch.counters == {"sent": 12, "dropped": 6}
    with pytest.raises(ValueError):
        ch.set_p(0.1)


def test_trace_file_rejects_garbage(tmp_path):
    f = tmp_path / "bad.txt"
    f.write_text("0 1 x\n")
    with pytest.raises(ValueError):
        C.read_trace(str(f))
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ValueError):
        C.read_trace(str(tmp_path / "empty.txt"))
