"""Adaptive controller: exact rates, the window budget, DTX, redundancy vs p, importance."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnuradio.largesc.core.link import controller as C
from gnuradio.largesc.core.link.frames import TOKEN_BPS, tokens_to_bps


def test_rates_are_exact():
    assert (tokens_to_bps(4), tokens_to_bps(8), tokens_to_bps(15)) == (550.0, 1100.0, 2062.5)


def run(ctl, importances, ps, acts=None):
    return [ctl.step(0.0, p, importance=i) for i, p in zip(importances, ps)]


def test_550_bps_forces_4_tokens_and_no_redundancy():
    ctl = C.AdaptiveController(550.0)
    allocs = run(ctl, [1.0, 0.0] * 50, [0.5] * 100)
    assert {(a.n_send, a.n_repeat) for a in allocs} == {(4, 0)}
    assert ctl.average_bps() == 550.0


def test_2062_bps_reaches_15_tokens():
    ctl = C.AdaptiveController(2062.5)
    allocs = run(ctl, [1.0] * 30, [1.0] * 30)
    assert allocs[-1].tokens == 15 and (allocs[-1].n_send, allocs[-1].n_repeat) == (8, 7)
    assert allocs[0].n_repeat == 0                  # nothing to repeat before frame d


def test_1100_bps_clean_channel_sends_8_codebooks():
    allocs = run(C.AdaptiveController(1100.0), [1.0] * 40, [0.0] * 40)
    assert all((a.n_send, a.n_repeat) == (8, 0) for a in allocs)


@settings(max_examples=60, deadline=None)
@given(st.floats(550.0, 2300.0), st.integers(1, 40), st.booleans(), st.integers(1, 3),
       st.integers(0, 3),
       st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=120))
def test_window_average_never_exceeds_budget(b, window, dtx, d, dtx_tokens, seq):
    ctl = C.AdaptiveController(b, window=window, d=d, dtx=dtx, dtx_tokens=dtx_tokens)
    allocs = run(ctl, [i for i, _ in seq], [p for _, p in seq])
    tot = [a.tokens for a in allocs]
    cap = window * min(b, 15 * TOKEN_BPS) / TOKEN_BPS
    for n in range(len(tot)):
        assert sum(tot[max(0, n - window + 1): n + 1]) <= cap + 1e-9
    for n, a in enumerate(allocs):
        speech = a.importance >= 0.5
        assert 0 <= a.n_repeat <= 7 and a.n_send <= 8 and a.tokens <= 15
        assert a.n_send >= (4 if speech or not dtx else dtx_tokens)
        assert a.n_repeat <= (allocs[n - d].n_send if n >= d else 0)


@settings(max_examples=100, deadline=None)
@given(st.floats(4.0, 15.0), st.integers(1, 30), st.lists(st.floats(0, 1), max_size=150),
       st.integers(0, 3))
def test_rate_window_room_is_always_safe(budget, window, draws, low):
    """Taking anything in [low, room] every frame never breaks a window, and room >= 4."""
    rw = C.RateWindow(budget, window)
    taken = []
    for u in draws:
        room = rw.room()
        padded = [0] * (window - 1) + taken                 # brute force: every future window
        past = padded[len(padded) - (window - 1):] if window > 1 else []
        assert room == min(rw.cap - sum(past[k:]) - C.MIN_TOKENS * k for k in range(window))
        assert room >= C.MIN_TOKENS
        t = low + int(u * (room - low))
        rw.push(t)
        taken.append(t)
        assert sum(taken[-window:]) <= rw.cap


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.integers(4, 15), st.integers(4, 15),
       st.integers(0, 8), st.booleans())
def test_redundancy_grows_with_demand(imp, p1, p2, target, room, n_prev, prev_speech):
    lo, hi = sorted((p1, p2))
    r_lo = C.allocate(imp, lo, target, room, n_prev, prev_speech)[1]
    r_hi = C.allocate(imp, hi, target, room, n_prev, prev_speech)[1]
    assert r_lo <= r_hi


def test_mean_redundancy_grows_with_p():
    means = []
    for p in (0.0, 0.05, 0.1, 0.2, 0.3, 0.5):
        allocs = run(C.AdaptiveController(1100.0), [1.0, 1.0, 0.0] * 40, [p] * 120)
        means.append(sum(a.n_repeat for a in allocs) / len(allocs))
    assert means[0] == 0 and all(a <= b for a, b in zip(means, means[1:])) and means[-1] > 2


def test_quiet_frames_give_bits_to_speech_frames():
    imp = [1.0 if n % 2 else 0.0 for n in range(200)]
    ctl = C.AdaptiveController(1100.0)
    allocs = run(ctl, imp, [0.3] * 200)
    # tokens spent on speech frame n: its N plus its copies carried by (quiet) packet n + 1
    speech = [allocs[n].n_send + allocs[n + 1].n_repeat for n in range(50, 199) if imp[n]]
    assert sum(speech) / len(speech) > 8.5          # more than B / 137.5 per speech frame
    assert all(allocs[n].n_send == 4 for n in range(200) if not imp[n])
    assert ctl.average_bps() <= 1100.0


def test_copies_protect_low_codebooks_before_more_originals():
    n, r = C.allocate(1.0, 1.0, target=6, room=6, n_prev=8, prev_speech=True)
    assert (n, r) == (4, 2)
    n, r = C.allocate(1.0, 1.0, target=6, room=6, n_prev=8, prev_speech=False)
    assert (n, r) == (6, 0)                         # a quiet frame n-d is not protected


def test_dtx_goes_below_550_bps():
    imp = [0.0] * 6 + [1.0] * 4
    plain, dtx = C.AdaptiveController(550.0), C.AdaptiveController(550.0, dtx=True, dtx_tokens=1)
    run(plain, imp * 20, [0.0] * 200)
    run(dtx, imp * 20, [0.0] * 200)
    assert plain.average_bps() == 550.0
    assert dtx.average_bps() == pytest.approx((6 * 1 + 4 * 4) / 10 * TOKEN_BPS)
    assert dtx.counters["dtx_frames"] == 120


def test_dtx_savings_buy_protection_at_550():
    imp = [0.0] * 4 + [1.0] * 4
    ctl = C.AdaptiveController(550.0, dtx=True, dtx_tokens=1)
    allocs = run(ctl, imp * 20, [0.3] * 160)
    assert sum(a.n_repeat for a in allocs) > 0 and ctl.average_bps() <= 550.0


def test_activity_importance_tracks_noise_floor():
    imp = C.ActivityImportance()
    quiet = [imp.update(-60.0 + 0.5 * (n % 3)) for n in range(30)]
    loud = [imp.update(-25.0) for _ in range(5)]
    assert max(quiet) < 0.1 and min(loud) > 0.9
    assert imp.update(math.nan) == loud[-1]        # non-finite input keeps the last value
    tail = [imp.update(-60.0) for _ in range(4)]
    assert min(tail[:2]) >= 0.5 and max(tail[2:]) < 0.1    # 2 frames of hangover
    for _ in range(2000):                           # a long loud stretch raises the floor
        imp.update(-25.0)
    assert imp.update(-25.0) < 0.5


def test_bandwidth_below_550_rejected():
    with pytest.raises(ValueError):
        C.AdaptiveController(500.0)


def test_rate_report_dtx_savings():
    acts = ([-60.0] * 6 + [-20.0] * 4) * 10          # 60 % pauses
    rep = C.rate_report(acts, 550.0, dtx_tokens=1)
    speech = 4 + 9 * (4 + 2)                         # + 2 hangover frames after each burst
    assert rep["bps"] == 550.0 and rep["speech_frames"] == speech
    assert rep["bps_dtx"] == pytest.approx(((100 - speech) * 1 + speech * 4) / 100 * TOKEN_BPS)
    assert rep["saved_fraction"] == pytest.approx(1 - rep["bps_dtx"] / 550.0)
