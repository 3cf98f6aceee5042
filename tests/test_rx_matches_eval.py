"""LargeSC RX decodes what the evaluation decodes (issue 21, item 2).

The same tokens, loss trace and recovery strategy through the blocks (largesc_rx: depacketizer
-> token recovery -> decoder, default profile, 24 kHz) and through the evaluation path
(evaluation/largesc_system.py: Reassembler -> core.recovery.recover -> decode_recovered) give
the same audio, for every strategy. Before the fix the RX decoder ignored the codebook states,
so codebooks left unfilled (`prefix`, or fill_not_sent False) reached it as token 0.
"""
import time

import numpy as np
import pytest
from gnuradio import blocks, gr

from gnuradio.largesc.app.run_options import BUNDLED_CLIP
from gnuradio.largesc.core import audio_io
from gnuradio.largesc.core.link import frames
from gnuradio.largesc.core.link.packet import Packetizer
from gnuradio.largesc.core.link.packet_formats import DEFAULT_FORMAT, get_format
from gnuradio.largesc.core.link.reassembly import Reassembler, frames_to_arrays
from gnuradio.largesc.core.profiles import DEFAULT_PROFILE, LM_PROFILES
from gnuradio.largesc.core.recovery import STRATEGIES, build, recover, recover_lookahead
from gnuradio.largesc.core.recovery.registry import REGISTRY
from gnuradio.largesc.evaluation import largesc_system as ls
from gnuradio.largesc.gr_support.latency import decoder_delay_frames

D, EPOCH, SEED, P = 1, 1, 0, 0.3
# the LM strategies use the default profile's LM, or tiny's where it has none (the LM only
# proposes tokens; the decode under test is the default codec's)
LM = DEFAULT_PROFILE if DEFAULT_PROFILE in LM_PROFILES else "tiny"


@pytest.fixture(scope="module")
def link():
    """(codes, packets kept by the trace, frame count): 2 s of the clip, adaptive allocation at
    p = 0.3, one frame per packet, a fixed loss pattern (every codebook-0 loss kind occurs)."""
    x, rate = audio_io.read_wav(BUNDLED_CLIP)
    x24 = audio_io.resample(x[: 2 * rate], rate, frames.SAMPLE_RATE)
    codes, act = ls.encode(DEFAULT_PROFILE, x24)
    nfr = codes.shape[1]
    allocs = ls.allocations(act, "adaptive", 1100.0, P, D)
    lost = np.random.default_rng(7).random(nfr) < P
    pk = Packetizer(d=D, epoch=EPOCH, fmt=get_format(DEFAULT_FORMAT))     # the default format, as the blocks
    kept = []
    for f in range(nfr):
        pkt = pk.push(codes[:, f], *allocs[f])
        if pkt is not None and not lost[f]:
            kept.append(pkt)
    assert 0 < lost.sum() < nfr and any(n < frames.NUM_CODEBOOKS for n, _ in allocs)
    return codes, kept, nfr


def eval_path(kept, nfr, strategy, fill_not_sent, overlap=True):
    codec = ls.get_codec(DEFAULT_PROFILE)
    ra = Reassembler(d=D)
    out = []
    for pkt in kept:
        out += ra.push(pkt)
    out += ra.flush(until=nfr)
    tokens, states = frames_to_arrays(out[:nfr])
    kw = {"fill_not_sent": fill_not_sent} if strategy != "prefix" else {}
    if REGISTRY[strategy].uses_codec:
        kw["codec"] = codec
    if strategy.startswith("moshi"):
        kw.update(profile=LM, seed=SEED)
    rec = build(strategy, **kw)
    nxt = None
    if overlap and REGISTRY[strategy].latency:
        tok, st, *nxt = recover_lookahead(rec, tokens, states)
    else:
        tok, st = recover(rec, tokens, states)
    y24, prefix_decode = ls.decode_recovered(codec, tok, st, nxt)
    assert prefix_decode
    return y24, st


def block_path(kept, nfr, strategy, fill_not_sent, overlap=True):
    from gnuradio.largesc.gr_support.pdu import PDUS, eos_pdu, make_pdu
    from gnuradio.largesc.largesc_rx import largesc_rx
    tb = gr.top_block()
    rx = largesc_rx(samp_rate=frames.SAMPLE_RATE, profile=DEFAULT_PROFILE, d=D, d_max=D, recovery=strategy,
                    seed=SEED, fill_not_sent=fill_not_sent, frame_by_frame=True,
                    lm_profile=LM if strategy.startswith("moshi") and LM != DEFAULT_PROFILE else "",
                    overlap=overlap)
    audio, states = blocks.vector_sink_f(), blocks.vector_sink_b(frames.NUM_CODEBOOKS)
    tb.connect((rx, 0), audio)
    tb.connect((rx, 1), states)
    tb.start()
    for pkt in kept:
        rx.depacketizer._post(PDUS, make_pdu(pkt, {}))
    time.sleep(0.05)
    rx.depacketizer._post(PDUS, eos_pdu(nfr, EPOCH))
    tb.wait()
    y = np.array(audio.data(), np.float32)
    st = np.array(states.data(), np.uint8).reshape(-1, frames.NUM_CODEBOOKS).T
    lead = (decoder_delay_frames(rx.decoder.codec) - rx.overlap_frames) * frames.FRAME_SAMPLES   # decoder lead-in
    return y[lead:], st


# prefix and latent never fill not-sent codebooks: one case covers each
CASES = [(s, f) for s in STRATEGIES for f in (True, False) if not (s in ("prefix", "latent") and f)]


@pytest.mark.parametrize("strategy,fill_not_sent", CASES)
def test_block_output_equals_the_evaluation(link, strategy, fill_not_sent):
    codes, kept, nfr = link
    y_eval, st_eval = eval_path(kept, nfr, strategy, fill_not_sent)
    y_blk, st_blk = block_path(kept, nfr, strategy, fill_not_sent)
    assert st_blk.shape == st_eval.shape and (st_blk == st_eval).all()
    unfilled = ~np.isin(st_eval, frames.DECODABLE_STATES)
    if strategy in ("prefix", "latent") or not fill_not_sent:
        assert unfilled.any()              # the case that the decoder must decode as a prefix
    # the decoder's streaming output stops its look-ahead short of the end: compare what came out
    n = len(y_blk)
    assert n >= (nfr - 1 - decoder_delay_frames(ls.get_codec(DEFAULT_PROFILE))) * frames.FRAME_SAMPLES
    err = np.abs(y_blk - y_eval[:n]).max()
    assert err <= 1e-4 * max(1e-3, np.abs(y_eval).max()), (strategy, fill_not_sent, err)


@pytest.mark.parametrize("strategy", ["latent", "interp"])
def test_sequential_order_matches_too(link, strategy):
    """overlap=False (the sequential order: hold, then the decoder's look-ahead) also equals the
    evaluation's sequential decode, and differs from the overlapped one only where a frame's
    successor was not whole when it went out."""
    codes, kept, nfr = link
    y_eval, _ = eval_path(kept, nfr, strategy, False, overlap=False)
    y_blk, _ = block_path(kept, nfr, strategy, False, overlap=False)
    n = len(y_blk)
    assert np.abs(y_blk - y_eval[:n]).max() <= 1e-4 * max(1e-3, np.abs(y_eval).max())
    y_ov, _ = eval_path(kept, nfr, strategy, False, overlap=True)
    assert np.abs(y_ov - y_eval).max() > 0           # the loss pattern has lost successors
