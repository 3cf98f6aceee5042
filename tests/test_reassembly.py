"""Receiver reassembly: output equals ground truth under loss, duplicates, reordering, wrap."""
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnuradio.largesc.core.link import packet as P
from gnuradio.largesc.core.link.frames import STATE_COPY, STATE_LOST, STATE_NOT_SENT, STATE_ORIGINAL
from gnuradio.largesc.core.link.reassembly import Reassembler as _Reassembler
from gnuradio.largesc.core.link.reassembly import frames_to_arrays


def Reassembler(*args, packet_format="v1", **kwargs):      # noqa: N802 - the class, pinned to v1
    """The streams here are v1 (P.Packetizer) unless a test names a format."""
    return _Reassembler(*args, packet_format=packet_format, **kwargs)


def make_stream(n_frames, d, rng, seq0=0, epoch=0):
    """Random tokens and allocations -> (packets, tokens, allocs) with R <= N of frame n-d."""
    pz = P.Packetizer(d=d, epoch=epoch, seq0=seq0)
    toks = [[rng.randrange(2048) for _ in range(8)] for _ in range(n_frames)]
    allocs, pkts = [], []
    for n in range(n_frames):
        n_send = rng.randrange(0, 9)
        r = rng.randrange(0, min(7, allocs[n - d][0]) + 1) if n >= d else 0
        allocs.append((n_send, r))
        pkts.append(pz.push(toks[n], n_send, r))
    return pkts, toks, allocs


def expected(n, toks, allocs, delivered, d):
    """Ground truth (tokens, states) of frame n given which packets arrived."""
    if delivered[n]:
        k = allocs[n][0]
        return (tuple(toks[n][:k]) + (0,) * (8 - k),
                (STATE_ORIGINAL,) * k + (STATE_NOT_SENT,) * (8 - k))
    r = allocs[n + d][1] if n + d < len(allocs) and delivered[n + d] else 0
    return (tuple(toks[n][:r]) + (0,) * (8 - r), (STATE_COPY,) * r + (STATE_LOST,) * (8 - r))


def _seq(data):
    try:
        return P.unpack(data).seq
    except P.PacketError:
        return None


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 3), st.integers(0, 2**32), st.floats(0, 0.6), st.floats(0, 0.3),
       st.floats(0, 0.3), st.integers(1, 80), st.sampled_from([0, 4070]))
def test_output_equals_ground_truth(d, seed, p_loss, p_dup, p_swap, n_frames, seq0):
    rng = random.Random(seed)
    pkts, toks, allocs = make_stream(n_frames, d, rng, seq0=seq0)
    delivered = [rng.random() >= p_loss for _ in pkts]
    timed = []                                      # (arrival time in frames, bytes)
    for n, pkt in enumerate(pkts):
        late = rng.uniform(0, 1.9) if rng.random() < p_swap else 0.0
        if delivered[n]:
            timed.append((n + late, pkt))
            if rng.random() < p_dup:
                timed.append((n + late + rng.uniform(0, 1.9), pkt))
        if rng.random() < 0.1:                      # garbage that can never pass the checks
            timed.append((n + 0.5, bytes([rng.randrange(256)]) * rng.randrange(4)))
            timed.append((n + 0.7, pkt[:-1] + bytes([pkt[-1] ^ 0x5A])))
    wire = [w for _, w in sorted(timed, key=lambda x: x[0])]
    ra = Reassembler(d=d, d_max=d + 2)             # copies may arrive < 2 frames late
    out = []
    for w in wire:
        out += ra.push(w)
    out += ra.flush(until=seq0 + n_frames)
    arrived = [seq0 + (_seq(w) - seq0) % P.SEQ_MOD for w in wire if _seq(w) is not None]
    if not arrived:
        return
    first = arrived[0] if seq0 > ra.join_window else 0     # late joiner starts at 1st packet
    assert [f.index for f in out] == list(range(first, seq0 + n_frames))
    for f in out[max(0, seq0 - first):]:
        n = f.index - seq0
        assert (f.tokens, f.states) == expected(n, toks, allocs, delivered, d)
        assert f.received == delivered[n]


def test_waits_d_max_frames_for_a_copy():
    rng = random.Random(1)
    pkts, toks, allocs = make_stream(10, 2, rng)
    ra = Reassembler(d=2, d_max=3)
    assert len(ra.push(pkts[0])) == 1
    for n in (2, 3):                                # frame 1 lost; its copy rides in packet 3
        assert ra.push(pkts[n]) == []
    out = ra.push(pkts[4])                          # 4 >= 1 + d_max: frame 1 final
    assert [f.index for f in out] == [1, 2, 3, 4]
    assert out[0].states[:allocs[3][1]] == (STATE_COPY,) * allocs[3][1]


def test_clocked_mode_declares_loss_without_later_packets():
    rng = random.Random(2)
    pkts, _, _ = make_stream(10, 1, rng)
    ra = Reassembler(d=1, d_max=1, clocked=True, frame_period=1.0, timeout=2.0)
    for n in range(5):
        assert [f.index for f in ra.push(pkts[n], now=float(n))] == [n]
    assert ra.tick(6.9) == []                       # frame 5 expected at 5, deadline 7
    out = ra.tick(9.0)
    assert [f.index for f in out] == [5, 6, 7]
    assert all(f.states == (STATE_LOST,) * 8 for f in out)
    assert [f.index for f in ra.push(pkts[8], now=9.1)] == [8]


def test_sequence_mode_never_emits_on_time_alone():
    ra = Reassembler(d=1)
    pkts, _, _ = make_stream(3, 1, random.Random(3))
    ra.push(pkts[0])
    assert ra.tick(1e9) == []


def test_sender_restart_resyncs_within_two_packets():
    rng = random.Random(4)
    old, _, _ = make_stream(300, 1, rng, epoch=1)
    new, toks, allocs = make_stream(20, 1, rng, epoch=2)
    ra = Reassembler(d=1)
    for pkt in old:
        ra.push(pkt)
    assert ra.push(new[0]) == []
    out = ra.push(new[1])
    assert ra.counters["resyncs"] == 1
    assert [(f.epoch, f.index) for f in out] == [(2, 0), (2, 1)]
    assert out[0].tokens[:allocs[0][0]] == tuple(toks[0][:allocs[0][0]])


def test_same_epoch_restart_far_behind_resyncs():
    rng = random.Random(5)
    old, _, _ = make_stream(1000, 1, rng, epoch=3)
    new, _, _ = make_stream(5, 1, rng, epoch=3)
    ra = Reassembler(d=1)
    for pkt in old:
        ra.push(pkt)
    out = ra.push(new[0]) + ra.push(new[1])
    assert [f.index for f in out] == [0, 1]


def test_single_forged_far_packet_is_not_trusted():
    rng = random.Random(6)
    pkts, _, _ = make_stream(50, 1, rng)
    ra = Reassembler(d=1)
    for pkt in pkts[:40]:
        ra.push(pkt)
    forged = P.pack(0, 2000, [P.PacketFrame((1, 2, 3, 4), ())])
    assert ra.push(forged) == [] and ra.counters["far"] == 1
    assert [f.index for f in ra.push(pkts[40])] == [40]


def test_flush_emits_trailing_lost_frames_and_arrays():
    pkts, _, _ = make_stream(5, 1, random.Random(7))
    ra = Reassembler(d=1)
    out = ra.push(pkts[0]) + ra.push(pkts[1]) + ra.flush(until=5)
    tokens, states = frames_to_arrays(out)
    assert tokens.shape == (8, 5) and tokens.dtype.name == "int64" and states.dtype.name == "uint8"
    assert (states[:, 2:] == STATE_LOST).all() and ra.counters["frames_lost"] == 3


def test_flush_is_bounded_for_absurd_until():
    from gnuradio.largesc.core.link.reassembly import MAX_FLUSH
    ra = Reassembler()
    assert len(ra.flush(until=10**15)) == MAX_FLUSH


@pytest.mark.parametrize("bad", [b"", b"\x00" * 3, b"\xff" * 40, "text", None, 12, [1, 2]])
def test_bad_input_counted_not_raised(bad):
    ra = Reassembler()
    assert ra.push(bad) == []
    assert ra.counters["bad"] == 1


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 4), st.integers(0, 2**32), st.floats(0, 0.5), st.integers(1, 60))
def test_multi_frame_packets_equal_ground_truth(fpp, seed, p_loss, n_frames):
    rng = random.Random(seed)
    d = fpp                                         # copies never share a packet with originals
    pz = P.Packetizer(d=d, epoch=1, fpp=fpp)
    toks = [[rng.randrange(2048) for _ in range(8)] for _ in range(n_frames)]
    allocs, wire, frame_pkt = [], [], []
    for n in range(n_frames):
        r = rng.randrange(0, min(7, allocs[n - d][0]) + 1) if n >= d else 0
        allocs.append((rng.randrange(0, 9), r))
        pkt = pz.push(toks[n], *allocs[n])
        frame_pkt.append(len(wire))
        if pkt is not None:
            wire.append(pkt)
    if len(wire) < -(-n_frames // fpp):
        wire.append(pz.flush())
    lost = {k for k in range(len(wire)) if rng.random() < p_loss}
    delivered = [frame_pkt[n] not in lost for n in range(n_frames)]
    ra = Reassembler(d=d, d_max=d)
    out = []
    for k, w in enumerate(wire):
        if k not in lost:
            out += ra.push(w)
    out += ra.flush(until=n_frames)
    assert [f.index for f in out] == list(range(n_frames))
    for f in out:
        assert (f.tokens, f.states) == expected(f.index, toks, allocs, delivered, d)


# ------------------------------------------------------------------ compact formats, d_max = d
def _compact_stream(n_frames, d, rng, fmt_name, seq0=0):
    from gnuradio.largesc.core.link.packet_formats import get_format
    fmt = get_format(fmt_name)
    pz = P.Packetizer(d=d, seq0=seq0, fmt=fmt)
    toks = [[rng.randrange(2048) for _ in range(8)] for _ in range(n_frames)]
    allocs, pkts = [], []
    for n in range(n_frames):
        n_send = rng.randrange(0, 9)
        r = rng.randrange(0, min(7, allocs[n - d][0]) + 1) if n >= d else 0
        allocs.append((n_send, r))
        pkts.append(pz.push(toks[n], n_send, r))
    return pkts, toks, allocs


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["compact", "compact_crc"]), st.integers(1, 3), st.integers(0, 2**32),
       st.floats(0, 0.6), st.floats(0, 0.3), st.integers(1, 700))
def test_compact_output_equals_ground_truth_across_wrap(fmt, d, seed, p_loss, p_dup, n_frames):
    """9-bit sequence: 700 frames wrap it; loss, duplicates and reordering by < 2 frames."""
    rng = random.Random(seed)
    pkts, toks, allocs = _compact_stream(n_frames, d, rng, fmt)
    delivered = [rng.random() >= p_loss for _ in pkts]
    timed = []
    for n, pkt in enumerate(pkts):
        if delivered[n]:
            late = rng.uniform(0, 1.9) if rng.random() < 0.1 else 0.0
            timed.append((n + late, pkt))
            if rng.random() < p_dup:
                timed.append((n + late + rng.uniform(0, 1.9), pkt))
    ra = Reassembler(d=d, d_max=d + 2, packet_format=fmt)
    out = []
    for _, w in sorted(timed, key=lambda x: x[0]):
        out += ra.push(w)
    out += ra.flush(until=n_frames)
    if not any(delivered):
        return
    # a burst longer than max_jump (64) resyncs as a long outage: still every index, in order
    assert [f.index for f in out] == list(range(n_frames))
    for f in out:
        assert (f.tokens, f.states) == expected(f.index, toks, allocs, delivered, d)


def test_compact_burst_of_one_second_and_more():
    """Bursts of 13 (1 s), 100 and 254 frames (20.3 s, the most a 9-bit sequence can span: the
    next packet is 255 ahead of the last one received) are placed right."""
    rng = random.Random(7)
    pkts, toks, allocs = _compact_stream(900, 1, rng, "compact")
    for burst in (13, 100, 254):
        ra = Reassembler(d=1, packet_format="compact")
        out = ra.push(pkts[0]) + ra.push(pkts[1 + burst]) + ra.push(pkts[2 + burst])
        assert [f.index for f in out] == list(range(3 + burst))
        assert all(not f.received for f in out[1:1 + burst]) and out[-1].received


def test_compact_receiver_rejects_v1_bytes_it_cannot_parse_or_misreads_them():
    """No version field: the receiver must be configured. A v1 packet never crashes it."""
    rng = random.Random(8)
    v1_pkts, _, _ = make_stream(50, 1, rng)
    ra = Reassembler(d=1, packet_format="compact_crc")
    for w in v1_pkts:
        ra.push(w)
    ra.flush()
    assert ra.counters["bad"] > 0 and ra.counters["packets"] == 50


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["v1", "compact"]), st.integers(1, 3), st.integers(0, 2**32),
       st.floats(0, 0.7), st.integers(1, 120))
def test_d_max_equal_d_loses_nothing_in_order(fmt, d, seed, p_loss, n_frames):
    """In-order delivery (one packet per frame): d_max = d gives the same frames as d + 1, and
    a lost frame is final one packet earlier (docs/latency.md)."""
    rng = random.Random(seed)
    pkts, _, _ = _compact_stream(n_frames, d, rng, fmt) if fmt != "v1" else make_stream(n_frames, d, rng)
    wire = [w for w in pkts if rng.random() >= p_loss]
    runs = {}
    for d_max in (d, d + 1):
        ra = Reassembler(d=d, d_max=d_max, packet_format=fmt)
        frames, when = [], []                       # when: packets pushed before the frame came out
        for i, w in enumerate(wire):
            out = ra.push(w)
            frames += out
            when += [i] * len(out)
        out = ra.flush(until=n_frames)
        runs[d_max] = (frames + out, when + [len(wire)] * len(out))
    assert runs[d][0] == runs[d + 1][0]
    assert all(a <= b for a, b in zip(runs[d][1], runs[d + 1][1]))


# ------------------------------------------------- duplicates and clock slips (clocked mode)
def _clocked(pkts, order, d=1, d_max=1):
    """Clocked receiver, one packet per frame period in `order`; (frames, push -> indices)."""
    ra = Reassembler(d=d, d_max=d_max, clocked=True, frame_period=1.0, timeout=2.0)
    out, when = [], []
    for t, n in enumerate(order):
        got = ra.push(pkts[n], now=float(t))
        out += got
        when.append([f.index for f in got])
    return ra, out, when


def test_clocked_duplicates_of_emitted_frames_are_dropped():
    """Delivery 0..5, 4, 5, 6..9: packets 4 and 5 again are duplicates (counted, dropped), not a
    clock slip: every frame comes out once, and frame 6 as soon as its packet arrives."""
    pkts, toks, allocs = make_stream(10, 1, random.Random(11))
    order = [0, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9]
    ra, out, when = _clocked(pkts, order)
    assert [f.index for f in out] == list(range(10))
    assert [f.sender_index for f in out] == list(range(10))
    assert all(f.received for f in out)
    assert ra.counters["duplicates"] == 2 and ra.counters["clock_slips"] == 0
    assert ra.counters["late"] == 0
    assert when[8] == [6]                           # no latency added


def test_duplicates_and_stragglers_never_slip_the_clock():
    """Stragglers (late copies of frames emitted as lost, older than the newest received
    frame) are late, and repeated packets duplicates: neither re-emits a frame."""
    pkts, _, _ = make_stream(12, 1, random.Random(12))
    order = [0, 1, 2, 5, 6, 3, 4, 7, 7, 6, 8, 9, 10, 11]
    ra, out, _ = _clocked(pkts, order)
    assert [f.index for f in out] == list(range(12))
    assert [f.received for f in out] == [n not in (3, 4) for n in range(12)]
    assert ra.counters["clock_slips"] == 0
    assert (ra.counters["late"], ra.counters["duplicates"]) == (2, 2)


def test_clock_slip_keeps_the_output_index_run():
    """The sender's clock falls behind (a stall whose audio never came): the receiver re-bases
    on its late packets without emitting any output index twice; sender_index tells where."""
    pkts, _, _ = make_stream(60, 1, random.Random(13))
    ra = Reassembler(d=1, d_max=1, clocked=True, frame_period=1.0, timeout=2.0)
    out = []
    for n in range(20):
        out += ra.push(pkts[n], now=float(n))
    out += ra.tick(30.0)                           # 10 periods of silence: frames 20..27 lost
    for k, n in enumerate(range(20, 60)):           # the sender goes on at frame 20
        out += ra.push(pkts[n], now=31.0 + k)
    out += ra.flush(until=60)
    assert [f.index for f in out] == list(range(len(out)))      # one run, no index twice
    rx = [f.sender_index for f in out if f.received]
    assert rx == list(range(60))                                 # every sent frame, once
    assert ra.counters["clock_slips"] == 1
    assert out[-1].index - out[-1].sender_index == len(out) - 60  # the latency the stall added


# -------------------------------------------------- the sender's timeline (long gaps, leading loss)
def _timeline(fmt, n_frames, lost, hint=None, d=1, seed=21):
    """A file run (not clocked): frames `lost` dropped; hint: None, 'frame' or 'rx_time'."""
    rng = random.Random(seed)
    pkts, toks, allocs = _compact_stream(n_frames, d, rng, fmt) if fmt != "v1" \
        else make_stream(n_frames, d, rng)
    ra = Reassembler(d=d, d_max=d, packet_format=fmt, frame_period=0.08)
    out = []
    for n, w in enumerate(pkts):
        if n not in lost:
            kw = {} if hint is None else {"frame": n} if hint == "frame" else {"rx_time": 100.0 + 0.08 * n}
            out += ra.push(w, **kw)
    out += ra.flush(until=n_frames)
    delivered = [n not in lost for n in range(n_frames)]
    return out, toks, allocs, delivered


@pytest.mark.parametrize("fmt", ["compact", "compact_crc", "v1"])
@pytest.mark.parametrize("outage,hint", [(256, None), (300, None), (440, None), (300, "frame"),
                                         (600, "frame"), (1100, "frame"), (600, "rx_time"),
                                         (1100, "rx_time")])
def test_long_outage_keeps_the_senders_timeline(fmt, outage, hint):
    """An outage of >= 256 frames is no sender restart: 1500 frames in, 1500 out, each at its
    place (was, compact: 1712 out, the stream restarted at the first packet after the gap).
    Without hints the sequence numbers show gaps up to 512 - 64 frames (compact), 2048 (v1)."""
    if fmt == "v1" and hint is None and outage >= 2048:
        pytest.skip("v1 without hints reads a gap of >= 2048 frames as a restart")
    n_frames = max(1500, 900 + outage)
    lost = set(range(500, 500 + outage))
    out, toks, allocs, delivered = _timeline(fmt, n_frames, lost, hint)
    assert [f.index for f in out] == list(range(n_frames))
    for f in out:
        assert (f.tokens, f.states) == expected(f.index, toks, allocs, delivered, 1)


@pytest.mark.parametrize("fmt", ["compact", "v1"])
@pytest.mark.parametrize("leading", [65, 100, 300, 700])
def test_lost_leading_packets_keep_the_senders_timeline(fmt, leading):
    """More than join_window (64) lost leading packets: with the sender's frame index (PDU
    metadata `frame`) a file run still starts at frame 0 (was: 1430 of 1500 frames, shifted)."""
    out, toks, allocs, delivered = _timeline(fmt, 1500, set(range(leading)), "frame")
    assert [f.index for f in out] == list(range(1500))
    assert not any(f.received for f in out[:leading]) and out[leading].received
    for f in out:
        assert (f.tokens, f.states) == expected(f.index, toks, allocs, delivered, 1)


def test_frame_hint_tells_a_restart_from_an_outage():
    """Compact has no epoch: with the metadata frame index a restarted sender (frame 0 again)
    resyncs at once; a wrong hint (not matching the sequence number) is ignored and counted."""
    rng = random.Random(22)
    old, _, _ = _compact_stream(400, 1, rng, "compact")
    new, _, _ = _compact_stream(5, 1, rng, "compact")
    ra = Reassembler(d=1, packet_format="compact")
    for n, w in enumerate(old):
        ra.push(w, frame=n)
    out = ra.push(new[0], frame=0) + ra.push(new[1], frame=1)
    assert [f.index for f in out][-2:] == [0, 1] and ra.counters["resyncs"] == 1
    ra.push(new[2], frame=7)
    assert ra.counters["bad_hints"] == 1
