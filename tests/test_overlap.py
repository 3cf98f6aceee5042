"""Overlap of the recovery hold and the decoder's look-ahead (docs/latency.md), default profile:
the codec's streaming and offline overlapped decodes agree, a clean stream decodes as without
overlap, token recovery's look-ahead outputs carry the next frame as received, and LargeSC RX's
latency table counts one wait."""
import numpy as np
import pytest
from gnuradio import blocks, gr

from gnuradio.largesc.app.run_options import BUNDLED_CLIP
from gnuradio.largesc.core import audio_io
from gnuradio.largesc.core.codec import load_codec
from gnuradio.largesc.core.link import frames
from gnuradio.largesc.core.profiles import DEFAULT_PROFILE
from gnuradio.largesc.core.recovery import build, recover_lookahead
from gnuradio.largesc.gr_support.latency import OVERLAP_STAGE, latency_totals

O, L, N = frames.STATE_ORIGINAL, frames.STATE_LOST, frames.STATE_NOT_SENT
G = frames.STATE_GENERATED


def provisional_next(codes, st):
    """Each frame's successor as received (the last one's lost): look-ahead test data."""
    nt = np.concatenate([np.where(np.isin(st, frames.KNOWN_STATES), codes, 0)[:, 1:], np.zeros((8, 1), np.int64)], 1)
    ns = np.concatenate([st[:, 1:], np.full((8, 1), L, np.uint8)], 1)
    return nt, ns


@pytest.fixture(scope="module")
def clip_codes():
    codec = load_codec(DEFAULT_PROFILE)
    x, rate = audio_io.read_wav(BUNDLED_CLIP)
    return codec, codec.encode(audio_io.resample(x, rate, frames.SAMPLE_RATE)[: 3 * frames.SAMPLE_RATE])


def _lossy_states(n, seed):
    rng = np.random.default_rng(seed)
    st = np.full((8, n), O, np.uint8)
    st[:, rng.random(n) < 0.3] = L
    st[4:, rng.random(n) < 0.4] = N
    return st


@pytest.mark.parametrize("window", [0, 1, 2, 3])
def test_streaming_overlap_equals_offline(clip_codes, window):
    codec, codes = clip_codes
    assert codec.supports_overlap
    codec.window = window
    try:
        n = codes.shape[1]
        st = _lossy_states(n, window)
        pre = np.clip(frames.decodable_prefixes(st.T), 1, 8)
        nt, ns = provisional_next(codes, st)
        off = codec.decode_overlap(codes, pre, st.T, nt, ns.T)
        codec.start_streaming()
        out = [codec.stream_decode_overlap(codes[:, j:j + 4], pre[j:j + 4], st.T[j:j + 4], nt[:, j:j + 4], ns.T[j:j + 4])
               for j in range(0, n, 4)]
        codec.stop_streaming()
        y = np.concatenate(out)
        assert len(y) == (n - max(0, window - 1)) * frames.FRAME_SAMPLES       # W - 1 lead-in frames, not W
        assert np.abs(y - off[: len(y)]).max() == 0.0
    finally:
        codec.window = 1


def test_clean_stream_decodes_as_without_overlap(clip_codes):
    """Every frame whole: the provisional successor is the final one, so the audio is the same."""
    codec, codes = clip_codes
    n = codes.shape[1]
    st = np.full((8, n), O, np.uint8)
    nt, ns = provisional_next(codes, st)
    seq = codec.decode(codes, np.full(n, 8), st.T)
    assert np.array_equal(codec.decode_overlap(codes, np.full(n, 8), st.T, nt, ns.T), seq)


def _recover_with_lookahead(strategy, toks, sts):
    from gnuradio.largesc.token_recovery import token_recovery
    tb = gr.top_block()
    src_t = blocks.vector_source_i(toks.T.reshape(-1).tolist(), False, 8)
    src_s = blocks.vector_source_b(sts.T.reshape(-1).tolist(), False, 8)
    rec = token_recovery(strategy=strategy, lookahead=True)
    sinks = [blocks.vector_sink_i(8), blocks.vector_sink_b(8), blocks.vector_sink_i(8), blocks.vector_sink_b(8)]
    tb.connect(src_t, (rec, 0))
    tb.connect(src_s, (rec, 1))
    for i, s in enumerate(sinks):
        tb.connect((rec, i), s)
    tb.run()
    return [np.array(s.data()).reshape(-1, 8).T for s in sinks]


def test_token_recovery_lookahead_is_the_provisional_next_frame(clip_codes):
    """latent: each output frame's look-ahead is its successor filled from the past alone (known
    codebooks as received, lost ones generated, not-sent ones left), and the block's look-ahead
    equals core.recovery.recover_lookahead's; repeat holds nothing: its look-ahead is all lost."""
    codec, codes = clip_codes
    n = 12
    st = _lossy_states(n, 5)
    st[:, 3] = L
    st[0, 7] = 9                                         # an invalid state: lost
    toks = np.where(np.isin(st, frames.KNOWN_STATES), codes[:, :n], 4095)      # garbage where unknown
    out = _recover_with_lookahead("latent", toks, st)
    assert out[0].shape[1] == n - 1                      # no eos tag: the last frame stays held
    for k in range(n - 1):
        s_in = np.where(st[:, k + 1] > N, L, st[:, k + 1])
        known = np.isin(s_in, frames.KNOWN_STATES)
        assert (out[3][known, k] == s_in[known]).all() and (out[2][known, k] == codes[known, k + 1]).all()
        assert (out[3][s_in == L, k] == G).all() and (out[3][s_in == N, k] == N).all()
    ref = recover_lookahead(build("latent", codec=codec), toks, st)
    for a, b in zip(out, ref):
        assert np.array_equal(a, b[:, : n - 1])
    rep = _recover_with_lookahead("repeat", toks, st)   # holds nothing: the next frame is not there yet
    assert rep[0].shape[1] == n and (rep[3] == L).all()


def test_rx_latency_counts_one_wait():
    """Default profile, d = 1: with latent (holds one frame) and overlap the received and the lost
    frame wait as with prefix (which holds none); sequential adds the hold."""
    from gnuradio.largesc.largesc_rx import largesc_rx
    tot = {}
    for rec, ov in (("latent", True), ("latent", False), ("prefix", True)):
        rx = largesc_rx(profile=DEFAULT_PROFILE, recovery=rec, overlap=ov, clocked=True)
        algo = rx.algorithmic_latency_ms()
        tot[(rec, ov)] = latency_totals(algo)
        assert rx.overlap_frames == (1 if (rec, ov) == ("latent", True) else 0)
        assert algo[OVERLAP_STAGE] == -80.0 * rx.overlap_frames
    approx = pytest.approx
    assert tot[("latent", True)][0] == approx(tot[("prefix", True)][0])
    assert tot[("latent", True)][0] == approx(tot[("latent", False)][0] - 80.0)
    assert tot[("latent", True)][1] == approx(tot[("latent", True)][0])      # the copy wait is the same wait
    assert tot[("latent", False)][1] == approx(tot[("latent", False)][0] + 80.0)
    assert tot[("latent", True)][0] + 80.0 <= 200.0        # + the TX's frame: the bar for one frame of look-ahead


def test_decoder_overlap_needs_states():
    from gnuradio.largesc.mimi_decoder import mimi_decoder
    with pytest.raises(ValueError, match="overlap"):
        mimi_decoder(overlap=True, use_states=False)
    assert mimi_decoder(overlap=True, use_states=True).overlap_active
    assert not mimi_decoder(profile="tiny", overlap=True, use_states=True).overlap_active


def test_mini_v1_overlap_equals_sequential_on_a_clean_stream():
    """mini-v1 (WORLD codec, one frame of decoder look-ahead) overlaps too: the provisional frame
    runs through a copy of the decoder's streaming state, so a clean stream decodes as the
    sequential decoder does (one frame earlier, no lead-in), and offline equals streaming."""
    codec = load_codec("mini-v1")
    assert codec.supports_overlap
    x, rate = audio_io.read_wav(BUNDLED_CLIP)
    codes = codec.encode(audio_io.resample(x, rate, frames.SAMPLE_RATE)[: 2 * frames.SAMPLE_RATE])
    n = codes.shape[1]
    st = np.full((8, n), O, np.uint8)
    nt, ns = provisional_next(codes, st)
    codec.start_streaming()
    seq = np.concatenate([codec.stream_decode(codes[:, j:j + 1]) for j in range(n)])
    codec.stop_streaming()
    codec.start_streaming()
    ov = np.concatenate([codec.stream_decode_overlap(codes[:, j:j + 3], None, st.T[j:j + 3], nt[:, j:j + 3], ns.T[j:j + 3])
                         for j in range(0, n, 3)])
    codec.stop_streaming()
    assert len(ov) == n * frames.FRAME_SAMPLES and len(seq) == (n - 1) * frames.FRAME_SAMPLES
    assert np.abs(ov[: len(seq)] - seq).max() <= 1e-5
    assert np.array_equal(codec.decode_overlap(codes, None, st.T, nt, ns.T), ov)


def test_mini_v1_latency_counts_one_wait():
    from gnuradio.largesc.largesc_rx import largesc_rx
    ov = largesc_rx(profile="mini-v1", recovery="repeat", overlap=True, clocked=True)
    assert ov.overlap_frames == 0                      # repeat holds nothing: nothing to overlap
    tot = {o: latency_totals(largesc_rx(profile="mini-v1", recovery="interp", overlap=o,
                                        clocked=True).algorithmic_latency_ms()) for o in (True, False)}
    assert tot[True][0] == pytest.approx(tot[False][0] - 80.0) and tot[True][1] == pytest.approx(tot[True][0])


def test_mini_v1_offline_overlap_leaves_a_stream_in_progress_alone():
    codec = load_codec("mini-v1")
    x, rate = audio_io.read_wav(BUNDLED_CLIP)
    codes = codec.encode(audio_io.resample(x, rate, frames.SAMPLE_RATE)[: frames.SAMPLE_RATE])
    n = codes.shape[1]
    st = np.full((8, n), O, np.uint8)
    nt, ns = provisional_next(codes, st)

    def stream(interrupt):
        codec.start_streaming()
        out = [codec.stream_decode(codes[:, : n // 2])]
        if interrupt:
            codec.decode_overlap(codes, None, st.T, nt, ns.T)
        out.append(codec.stream_decode(codes[:, n // 2:]))
        codec.stop_streaming()
        return np.concatenate(out)
    assert np.array_equal(stream(True), stream(False))


def test_mini_v1_offline_overlap_on_a_codec_that_never_streamed():
    """The evaluation's first call on a freshly loaded mini-v1 codec is the offline overlap
    decode (it raised AttributeError: no decoder history yet); it equals a second call."""
    import copy
    codec = copy.deepcopy(load_codec("mini-v1"))
    for k in ("_dec_hist", "_synth", "_dec_state", "_streaming"):    # as __init__ leaves it
        codec.__dict__.pop(k, None)
    x, rate = audio_io.read_wav(BUNDLED_CLIP)
    codes = codec.encode(audio_io.resample(x, rate, frames.SAMPLE_RATE)[: frames.SAMPLE_RATE])
    st = np.full((8, codes.shape[1]), O, np.uint8)
    nt, ns = provisional_next(codes, st)
    first = codec.decode_overlap(codes, None, st.T, nt, ns.T)
    assert np.array_equal(first, codec.decode_overlap(codes, None, st.T, nt, ns.T)) and len(first) > 0
