"""Fault injection (docs/reliability.md) where the other test files do not already cover it.

Covered elsewhere: the recovery model raises / misses its deadline (tests/test_recovery_moshi.py,
python/largesc/qa_token_recovery.py); a sender restart with a new epoch, a same-epoch restart
and a single forged far packet (tests/test_reassembly.py); hostile bytes (tests/test_fuzz_*).
Here: a burst of garbage packets, stragglers from an old epoch, the feedback channel going
silent, and an audio source that stalls and resumes.
"""
import random
import time

import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr

from gnuradio.largesc.core.link import frames
from gnuradio.largesc.core.link.controller import LossRateInput
from gnuradio.largesc.core.link.packet import Packetizer
from gnuradio.largesc.core.link.reassembly import Reassembler

RESYNC_BOUND = 2          # docs/packet-format.md: a new stream is followed within 2 received packets


def stream(n, epoch, seed, d=1):
    """n one-frame packets of a sender (epoch), with their tokens and N per frame."""
    rng = random.Random(seed)
    pk = Packetizer(d=d, epoch=epoch)
    pkts, toks, ns = [], [], []
    for _ in range(n):
        t = [rng.randrange(2048) for _ in range(8)]
        n_send = rng.randint(4, 8)
        pkts.append(pk.push(t, n_send, 0))
        toks.append(t)
        ns.append(n_send)
    return pkts, toks, ns


def assert_frames_match(out, toks, ns, epoch):
    for f in out:
        assert f.epoch == epoch and f.received
        assert f.tokens[:ns[f.index]] == tuple(toks[f.index][:ns[f.index]])


# ------------------------------------------------------------------ packets
def test_garbage_burst_then_the_stream_goes_on():
    pkts, toks, ns = stream(200, epoch=1, seed=1)
    ra = Reassembler(d=1, d_max=2, packet_format="v1")
    out = []
    for p in pkts[:100]:
        out += ra.push(p)
    rng = random.Random(7)
    for _ in range(2000):                              # a burst of line noise
        out += ra.push(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40))))
    after = []
    for p in pkts[100:]:
        after += ra.push(p)
    out += after + ra.flush(200)
    assert [f.index for f in out] == list(range(200))  # every frame once, in order, none added
    assert ra.counters["bad"] > 1900
    assert_frames_match([f for f in out if f.index >= 100 + RESYNC_BOUND], toks, ns, 1)
    assert ra.counters["resyncs"] == 0


def test_old_epoch_stragglers_after_a_restart():
    old, _, _ = stream(300, epoch=1, seed=2)
    new, toks, ns = stream(60, epoch=2, seed=3)
    ra = Reassembler(d=1, packet_format="v1")
    for p in old:
        ra.push(p)
    out = []
    for p in new[:10]:                                 # restart: resync within the bound
        out += ra.push(p)
    assert ra.counters["resyncs"] == 1 and out[0].index == 0
    far = ra.counters["far"]
    out += ra.push(old[150])                           # one straggler: held as a candidate only
    assert ra.counters["far"] == far + 1 and ra.counters["resyncs"] == 1
    for p in new[10:30]:
        out += ra.push(p)
    assert_frames_match(out, toks, ns, 2)
    assert [f.index for f in out] == list(range(30))
    # A replayed burst of old-epoch packets may take the receiver over (two consistent far
    # packets are a restart by the rules); the live epoch is back within the bound after it.
    for p in old[200:210]:
        ra.push(p)
    back = []
    for p in new[30:60]:
        back += ra.push(p)
    live = [f for f in back if f.epoch == 2]
    assert live and live[-1].index == 59
    assert_frames_match([f for f in live if f.index >= 30 + RESYNC_BOUND], toks, ns, 2)


def test_depacketizer_block_survives_a_garbage_burst():
    from gnuradio.largesc.depacketizer import depacketizer
    from gnuradio.largesc.gr_support.pdu import make_pdu
    dp = depacketizer(d=1, d_max=1, packet_format="v1")
    rng = random.Random(11)
    for _ in range(500):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 30)))
        dp.handle_pdu(make_pdu(data, {}))
        dp.handle_pdu(pmt.intern("noise"))
    pkts, _, _ = stream(5, epoch=0, seed=4)
    for p in pkts:
        dp.handle_pdu(make_pdu(p, {}))
    s = dp.get_stats()
    # garbage that carries the text marker is dropped by the text parser (docs/text-channel.md)
    assert s["bad"] + s["text_bad"] + s["bad_messages"] >= 900 and s["pending_frames"] == 5


# ------------------------------------------------------------------ feedback channel goes silent
def test_loss_rate_input_expires_to_the_configured_value():
    li = LossRateInput(configured=0.05, timeout_frames=10)
    assert [li.tick() for _ in range(3)] == [0.05] * 3
    li.report(0.4)
    ps = [li.tick() for _ in range(12)]
    assert ps == [0.4] * 10 + [0.05] * 2               # holds 10 frames, then the safe default
    assert li.counters == {"reports": 1, "expired": 1}
    li.report(0.2)                                     # feedback resumes: applies at once
    assert li.tick() == 0.2
    li.set_configured(0.1)                             # the operator's value replaces a report
    assert li.tick() == 0.1
    never = LossRateInput(0.0, timeout_frames=0)
    never.report(0.3)
    assert {never.tick() for _ in range(10000)} == {0.3}
    with pytest.raises(ValueError):
        LossRateInput(0.0, timeout_frames=-1)


def run_controller(ctl, n_frames):
    toks = np.random.default_rng(0).integers(0, 2048, size=(n_frames, 8)).astype(np.int32)
    act = [-60.0] * 5 + [-20.0] * (n_frames - 5)       # quiet start (noise floor), then speech
    from gnuradio.largesc.packet_erasure_channel import packet_erasure_channel
    tb = gr.top_block()
    chan = packet_erasure_channel(p=0.0)
    s0 = blocks.vector_source_i(toks.ravel().tolist(), False, 8)
    s1 = blocks.vector_source_f(act, False)
    dbg = blocks.message_debug()
    tb.connect(s0, (ctl, 0))
    tb.connect(s1, (ctl, 1))
    tb.msg_connect(ctl, "pdus", chan, "pdus")
    tb.msg_connect(chan, "pdus", dbg, "store")
    tb.run()
    return [pmt.to_python(pmt.car(dbg.get_message(i))) for i in range(dbg.num_messages() - 1)]


def test_controller_decays_to_configured_loss_rate_when_feedback_stops():
    from gnuradio.largesc.adaptive_controller import adaptive_controller
    ctl = adaptive_controller(bandwidth_bps=1100.0, loss_rate=0.0, feedback_timeout=40, epoch=0)
    ctl.handle_feedback(pmt.to_pmt({"loss_rate": 0.3}))   # one report, then silence
    assert ctl.get_stats()["feedback_active"] == 1
    metas = run_controller(ctl, 100)
    reps = [m["n_repeat"] for m in metas]
    assert sum(reps[6:40]) > 0                           # protected while the report holds
    assert sum(reps[40:]) == 0                           # back to p = 0 after 40 silent frames
    st = ctl.get_stats()
    assert (st["loss_rate"], st["feedback_expired"], st["feedback_active"]) == (0.0, 1, 0)


# ------------------------------------------------------------------ audio source stalls and resumes
class bursty_source(gr.sync_block):
    """Delivers `x` in odd-sized chunks with pauses (a source that stalls and resumes)."""

    def __init__(self, x, chunk=1500, stall_every=5, stall_s=0.15):
        gr.sync_block.__init__(self, name="bursty_source", in_sig=None, out_sig=[np.float32])
        self.x, self.pos, self.chunk = np.asarray(x, np.float32), 0, chunk
        self.calls, self.stall_every, self.stall_s, self.stalls = 0, stall_every, stall_s, 0

    def work(self, input_items, output_items):
        if self.pos >= len(self.x):
            return -1
        self.calls += 1
        if self.calls % self.stall_every == 0:
            time.sleep(self.stall_s)
            self.stalls += 1
            return 0
        n = min(len(output_items[0]), self.chunk, len(self.x) - self.pos)
        output_items[0][:n] = self.x[self.pos:self.pos + n]
        self.pos += n
        return n


def loopback(src, n_frames):
    from gnuradio.largesc.largesc_rx import largesc_rx
    from gnuradio.largesc.largesc_tx import largesc_tx
    from gnuradio.largesc.packet_erasure_channel import packet_erasure_channel
    tb = gr.top_block()
    tx = largesc_tx(profile="tiny", bandwidth_bps=1650, loss_rate=0.2, seed=3, frame_by_frame=True)
    ch = packet_erasure_channel("bernoulli", 0.2, seed=3)
    rx = largesc_rx(profile="tiny", d=1, d_max=2, recovery="repeat", seed=3, frame_by_frame=True, packet_format="v1")
    snk = blocks.vector_sink_f()
    tb.connect(src, tx)
    tb.msg_connect(tx, "pdus", ch, "pdus")
    tb.msg_connect(ch, "pdus", rx, "pdus")
    tb.connect(rx, snk)
    tx.pace_with(rx, max_lead_frames=8)
    tb.run()
    return np.array(snk.data(), np.float32), rx.get_stats()


def test_audio_source_stalls_and_resumes_without_drift():
    n_frames = 30
    rng = np.random.default_rng(5)
    x = (0.1 * rng.standard_normal(n_frames * frames.FRAME_SAMPLES)).astype(np.float32)
    ref, _ = loopback(blocks.vector_source_f(x.tolist(), False), n_frames)
    src = bursty_source(x)
    y, st = loopback(src, n_frames)
    assert src.stalls >= 3
    assert len(y) == len(ref) == len(x)                  # one output frame per input frame
    assert st["depacketizer"]["frames_out"] == n_frames
    np.testing.assert_array_equal(y, ref)                # stalls change nothing: no drift


def clocked_link(stall_frames, made_up):
    """Clocked receiver, sender at one frame per 80 ms; the audio stalls for `stall_frames`.
    made_up: the stalled audio arrives late in a burst (the TX catches up) or is lost."""
    pk = Packetizer(d=1, epoch=1)
    ra = Reassembler(d=1, d_max=1, clocked=True, frame_period=0.08, timeout=0.16, packet_format="v1")
    out, t = [], 0.0

    def send(now):
        return ra.push(pk.push([1] * 8, 4, 0), now)

    for i in range(50):
        t = i * 0.08
        out += send(t) + ra.tick(t + 0.04)
    for k in range(1, stall_frames + 1):                 # the source is silent
        out += ra.tick(t + k * 0.08)
    t0 = t + stall_frames * 0.08
    if made_up:
        for _ in range(stall_frames):                    # the backlog, sent at once
            out += send(t0)
    for i in range(1, 51):
        t = t0 + i * 0.08
        out += send(t) + ra.tick(t + 0.04)
    return out


def test_clocked_receiver_after_a_stall_that_is_made_up():
    out = clocked_link(12, made_up=True)
    assert sum(f.received for f in out[-40:]) == 40      # back in step: no lasting loss


def test_clocked_receiver_after_a_stall_whose_audio_is_lost():
    out = clocked_link(12, made_up=False)
    assert sum(f.received for f in out[-40:]) == 40


def test_turning_feedback_off_drops_the_report():
    from gnuradio.largesc.adaptive_controller import adaptive_controller
    ctl = adaptive_controller(loss_rate=0.1, epoch=0)
    ctl.handle_feedback(pmt.to_pmt({"loss_rate": 0.4}))
    assert ctl.loss_rate == 0.4
    ctl.use_feedback = False                           # largesc_tx.set_use_feedback(False)
    assert ctl.loss_rate == 0.1
    ctl.handle_feedback(pmt.to_pmt({"loss_rate": 0.4}))
    assert ctl.loss_rate == 0.1 and ctl.get_stats()["feedback_msgs"] == 2
