"""Record and replay (docs/recording.md): PDU Recorder -> file (docs/recording.md) -> PDU Replayer.

A live loopback (TX -> erasure channel -> RX, with the recorder on the channel's output) and a
replay of its recording into a second RX give the same audio, bit for bit, when both receivers
decode one frame per model call (frame_by_frame); rx_time survives the file; paced replays keep
the recorded gaps; bad, truncated and torn files behave as docs/recording.md says; bad
parameters are refused.
"""
import os
import re
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pmt
import pytest
from flowgraph_util import run  # noqa: E402
from gnuradio import blocks, gr, pdu

from gnuradio.largesc.core import audio_io
from gnuradio.largesc.core.link import frames
from gnuradio.largesc.gr_support import pdu_file as F
from gnuradio.largesc.gr_support.pdu import DONE, PDUS, SYSTEM, eos_pdu, make_pdu
from gnuradio.largesc.pdu_recorder import pdu_recorder
from gnuradio.largesc.pdu_replayer import pdu_replayer

REPO = Path(__file__).resolve().parents[1]
SEED = 5


def audio(n_frames, seed=0):
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal(n_frames * frames.FRAME_SAMPLES)).astype(np.float32)


def rx_block(recovery, frame_by_frame=True):
    from gnuradio.largesc.largesc_rx import largesc_rx
    return largesc_rx(profile="tiny", d=1, d_max=2, recovery=recovery, seed=SEED,
                      frame_by_frame=frame_by_frame)


def live_run(path, n_frames, recovery, frame_by_frame=True):
    """wav-like source -> TX -> erasure channel -> RX -> sink, channel -> PDU Recorder."""
    from gnuradio.largesc.largesc_tx import largesc_tx
    from gnuradio.largesc.packet_erasure_channel import packet_erasure_channel
    tb = gr.top_block()
    src = blocks.vector_source_f(audio(n_frames).tolist(), False)
    tx = largesc_tx(profile="tiny", bandwidth_bps=1650, loss_rate=0.3, seed=SEED, frame_by_frame=True)
    ch = packet_erasure_channel("bernoulli", 0.3, seed=SEED)
    rx = rx_block(recovery, frame_by_frame)
    rec = pdu_recorder(str(path))
    snk = blocks.vector_sink_f()
    tb.connect(src, tx)
    tb.msg_connect(tx, "pdus", ch, "pdus")
    tb.msg_connect(ch, "pdus", rx, "pdus")
    tb.msg_connect(ch, "pdus", rec, "pdus")
    tb.msg_connect(rx, "feedback", tx, "feedback")
    tb.connect(rx, snk)
    tx.pace_with(rx, max_lead_frames=8)
    run(tb)
    return np.array(snk.data(), np.float32), rx.get_stats(), rec.get_stats(), ch.get_stats()


def replay_run(path, recovery, frame_by_frame=True, pace=False):
    tb = gr.top_block()
    rp = pdu_replayer(str(path), pace=pace)
    rx = rx_block(recovery, frame_by_frame)
    snk = blocks.vector_sink_f()
    tb.msg_connect(rp, "pdus", rx, "pdus")
    tb.connect(rx, snk)
    run(tb)
    return np.array(snk.data(), np.float32), rx.get_stats(), rp.get_stats()


@pytest.fixture(scope="module")
def live_repeat(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "live.pdurec"
    y, rx_stats, rec_stats, ch_stats = live_run(path, 40, "repeat")
    return path, y, rx_stats, rec_stats, ch_stats


# ------------------------------------------------------------------ replay = live
def test_replay_gives_the_live_audio(live_repeat):
    path, y_live, rx_live, rec, ch = live_repeat
    d_live = rx_live["depacketizer"]
    assert d_live["frames_lost"] > 0                             # the channel did drop packets
    # every packet the channel passed, plus the end-of-stream PDU, timed by the host clock
    assert rec["records"] == ch["sent"] - ch["dropped"] + 1 == d_live["accepted"] + 1
    assert rec["host_time"] == rec["records"] and rec["rx_time"] == 0
    y, rx_rep, rp = replay_run(path, "repeat")
    assert rp["records"] == rp["records_in_file"] == rec["records"]
    assert (rp["torn_records"], rp["corrupt_records"], rp["finished"]) == (0, 0, 1)
    assert len(y) == len(y_live) == 40 * frames.FRAME_SAMPLES
    np.testing.assert_array_equal(y, y_live)
    for k in ("frames_out", "frames_lost", "accepted", "copies_used", "eos"):
        assert rx_rep["depacketizer"].get(k) == d_live.get(k), k


def test_replay_gives_the_live_audio_with_moshi_recovery(tmp_path):
    # the LM samples with the seed, frame by frame: same packets in -> same tokens -> same audio
    y_live, rx_live, rec, _ = live_run(tmp_path / "m.pdurec", 16, "moshi")
    y, rx_rep, _ = replay_run(tmp_path / "m.pdurec", "moshi")
    assert rx_live["recovery"]["tokens_generated"] > 0
    np.testing.assert_array_equal(y, y_live)


def test_without_frame_by_frame_the_replay_differs_only_by_rounding(tmp_path):
    # The Mimi decoder then decodes whatever frames wait in its input buffer in one call; live
    # and replay schedule differently, so the batches differ and so does the float rounding
    # (docs/recording.md). Same frames, same tokens: the audio agrees to ~1e-6.
    y_live, _, _, _ = live_run(tmp_path / "b.pdurec", 40, "repeat", frame_by_frame=False)
    y, _, _ = replay_run(tmp_path / "b.pdurec", "repeat", frame_by_frame=False)
    assert len(y) == len(y_live)
    assert float(np.abs(y - y_live).max()) < 1e-4


def test_replay_rx_example_runs_headless(live_repeat, tmp_path):
    path, y_live, _, _, _ = live_repeat
    gen = tmp_path / "gen"
    gen.mkdir()
    env = dict(os.environ, GRC_BLOCKS_PATH=str(REPO / "grc"), HOME=str(tmp_path / "home"))
    env.pop("DISPLAY", None)
    r = subprocess.run(["grcc", "-o", str(gen), str(REPO / "examples" / "replay_rx.grc")], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "out.wav"
    r = subprocess.run([sys.executable, str(gen / "replay_rx.py"), "-i", str(path), "-o", str(out),
                        "-r", "24000", "-p", "tiny", "-c", "repeat", "-s", str(SEED), "-D", "2"],
                       capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert r.returncode == 0, r.stdout + r.stderr
    y, rate = audio_io.read_wav(out)
    assert rate == 24000 and len(y) == len(y_live)
    np.testing.assert_allclose(y, np.clip(y_live, -1, 1), atol=2.0 / 32768)     # 16-bit wav


# ------------------------------------------------------------------ rx_time
def u8(data):
    return pmt.init_u8vector(len(data), list(data))


def rx_time(full, frac):
    return pmt.make_tuple(pmt.from_uint64(full), pmt.from_double(frac))


def record(path, msgs, gap_s=0.0):
    """Post `msgs` to a PDU Recorder in a running flowgraph (gap_s apart), then end it."""
    tb = gr.top_block()
    rec = pdu_recorder(str(path))
    tb.msg_connect(rec, "stats", blocks.message_debug(), "store")
    tb.start()
    for m in msgs:
        rec._post(PDUS, m)
        if gap_s:
            time.sleep(gap_s)
    rec._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
    th = threading.Thread(target=tb.wait, daemon=True)
    th.start()
    th.join(30)
    assert not th.is_alive(), "recorder did not finish"
    return rec.get_stats()


class stamp_sink(gr.basic_block):
    """Message sink that keeps (monotonic time, PDU) per message."""

    def __init__(self):
        gr.basic_block.__init__(self, name="stamp_sink", in_sig=None, out_sig=None)
        self.got = []
        self.message_port_register_in(PDUS)
        self.set_msg_handler(PDUS, self.handle)

    def handle(self, msg):
        self.got.append((time.monotonic(), msg))


def replay_to_sink(path, pace):
    tb = gr.top_block()
    rp = pdu_replayer(str(path), pace=pace)
    sink = stamp_sink()
    tb.msg_connect(rp, "pdus", sink, "pdus")
    t0 = time.monotonic()
    run(tb, timeout=60)
    return rp, sink.got, time.monotonic() - t0


def test_rx_time_from_a_uhd_style_tag_round_trips(tmp_path):
    # UHD tags rx_time = (uint64 full secs, double frac secs); gr-pdu's Tagged Stream to PDU
    # puts the tags inside a packet into its metadata
    data = list(range(15))
    tags = [gr.tag_utils.python_to_tag((0, pmt.intern("packet_len"), pmt.from_long(5))),
            gr.tag_utils.python_to_tag((5, pmt.intern("packet_len"), pmt.from_long(5))),
            gr.tag_utils.python_to_tag((10, pmt.intern("packet_len"), pmt.from_long(5))),
            gr.tag_utils.python_to_tag((0, pmt.intern("rx_time"), rx_time(1700000000, 0.25))),
            gr.tag_utils.python_to_tag((10, pmt.intern("rx_time"), rx_time(1700000001, 0.5)))]
    path = tmp_path / "tagged.pdurec"
    tb = gr.top_block()
    src = blocks.vector_source_b(data, False, 1, tags)
    to_pdu = pdu.tagged_stream_to_pdu(gr.types.byte_t, "packet_len")
    rec = pdu_recorder(str(path))
    tb.connect(src, to_pdu)
    tb.msg_connect(to_pdu, "pdus", rec, "pdus")
    before = time.time()
    run(tb, timeout=30)
    recs = F.read_all(path)
    assert [r.source for r in recs] == [F.TIME_RX, F.TIME_HOST, F.TIME_RX]
    assert (recs[0].full, recs[0].frac) == (1700000000, 0.25)
    assert (recs[2].full, recs[2].frac) == (1700000001, 0.5)
    assert before - 1 <= recs[1].time <= time.time() + 1           # host time, marked as such
    assert all(before - 1 <= r.host_time <= time.time() + 1 for r in recs)
    assert [r.payload for r in recs] == [bytes(range(0, 5)), bytes(range(5, 10)), bytes(range(10, 15))]
    rp, got, _ = replay_to_sink(path, pace=False)
    assert len(got) == 3 and rp.time_source == "host"             # one record has no rx_time
    meta = pmt.car(got[0][1])
    t = pmt.dict_ref(meta, pmt.intern("rx_time"), pmt.PMT_NIL)
    assert pmt.is_uint64(pmt.tuple_ref(t, 0)) and pmt.to_uint64(pmt.tuple_ref(t, 0)) == 1700000000
    assert pmt.to_double(pmt.tuple_ref(t, 1)) == 0.25
    assert pmt.equal(meta, F.decode_pmt(recs[0].meta_bytes))
    assert not pmt.dict_has_key(pmt.car(got[1][1]), pmt.intern("rx_time"))
    assert [bytes(pmt.u8vector_elements(pmt.cdr(m))) for _, m in got] == [r.payload for r in recs]


def test_metadata_round_trips_exactly(tmp_path):
    meta = pmt.make_dict()
    for k, v in (("rx_time", rx_time(2 ** 40 + 1, 0.999)), ("seq", pmt.from_long(4095)),
                 ("neg", pmt.from_long(-2 ** 40)), ("eos", pmt.PMT_T), ("name", pmt.intern("héllo")),
                 ("c", pmt.from_complex(1 - 2j)), ("f32", pmt.init_f32vector(2, [0.5, -1.5])),
                 ("u64", pmt.init_u64vector(1, [2 ** 64 - 1])), ("c32", pmt.init_c32vector(1, [1j])),
                 ("list", pmt.list2(pmt.from_long(1), pmt.intern("x"))),
                 ("nested", pmt.dict_add(pmt.make_dict(), pmt.intern("a"), pmt.PMT_F))):
        meta = pmt.dict_add(meta, pmt.intern(k), v)
    path = tmp_path / "meta.pdurec"
    record(path, [pmt.cons(meta, u8(b"\x01\x02")), pmt.cons(pmt.PMT_NIL, u8(b"")), eos_pdu(7, 2)])
    _, got, _ = replay_to_sink(path, pace=False)
    assert len(got) == 3
    assert pmt.serialize_str(pmt.car(got[0][1])) == pmt.serialize_str(meta)
    assert pmt.equal(pmt.car(got[0][1]), meta)
    assert pmt.is_null(pmt.car(got[1][1])) and pmt.length(pmt.cdr(got[1][1])) == 0
    assert pmt.to_python(pmt.car(got[2][1])) == {"eos": True, "n_frames": 7, "epoch": 2}


# ------------------------------------------------------------------ pacing
def gaps(got):
    ts = [t for t, _ in got]
    return [b - a for a, b in zip(ts, ts[1:])]


def test_paced_replay_follows_the_recorded_rx_time(tmp_path):
    path = tmp_path / "paced.pdurec"
    times = [(100, 0.0), (100, 0.25), (100, 0.5), (101, 0.0)]            # recorded at once
    record(path, [pmt.cons(pmt.dict_add(pmt.make_dict(), pmt.intern("rx_time"), rx_time(*t)), u8(b"x"))
                  for t in times])
    rp, got, _ = replay_to_sink(path, pace=True)
    assert rp.time_source == "rx_time" and len(got) == 4
    g = gaps(got)
    assert g[0] >= 0.22 and g[1] >= 0.22 and g[2] >= 0.47, g        # never early
    assert sum(g) < 1.0 + 0.6, g                                    # nor much late (loaded CI)
    _, got, elapsed = replay_to_sink(path, pace=False)
    assert sum(gaps(got)) < 0.2 and len(got) == 4                   # as fast as possible


def test_paced_replay_follows_the_host_time(tmp_path):
    path = tmp_path / "host.pdurec"
    st = record(path, [make_pdu(bytes([i]), {"seq": i}) for i in range(3)], gap_s=0.3)
    assert st["host_time"] == 3
    recs = F.read_all(path)
    recorded = [b.host_time - a.host_time for a, b in zip(recs, recs[1:])]
    rp, got, _ = replay_to_sink(path, pace=True)
    assert rp.time_source == "host"
    for want, g in zip(recorded, gaps(got)):
        assert want - 0.03 <= g <= want + 0.3, (recorded, gaps(got))


# ------------------------------------------------------------------ bad and damaged files
def good_file(path, n=4):
    record(path, [make_pdu(bytes([i]) * (i + 3), {"seq": i}) for i in range(n)] + [eos_pdu(n, 1)])
    return path.read_bytes()


def record_offsets(blob):
    """Byte offsets of the records of a recording (and the file length at the end)."""
    offs, pos = [], F.HEADER_SIZE
    while pos < len(blob):
        offs.append(pos)
        pos += 4 + struct.unpack(">I", blob[pos:pos + 4])[0] + 4
    return offs + [len(blob)]


def forged_record(meta_bytes, payload=b"\x01"):
    """A record with a valid CRC around arbitrary metadata bytes."""
    body = F.FIXED.pack(0, 0, 0, 1, 0.5, 1.5, len(meta_bytes)) + meta_bytes + struct.pack(">I", len(payload)) + payload
    head = struct.pack(">I", len(body))
    return head + body + struct.pack(">I", zlib.crc32(head + body))


def expect_refused(path, *fragments):
    t0 = time.monotonic()
    with pytest.raises(ValueError) as info:
        pdu_replayer(str(path))
    msg = str(info.value)
    assert time.monotonic() - t0 < 10, "checking a bad file must not hang"
    assert msg.startswith("pdu_replayer: record_file must be"), msg
    assert str(path) in msg, msg
    for frag in fragments:
        assert frag in msg, msg
    return msg


@pytest.mark.parametrize("case", ["missing", "empty", "text", "magic", "version", "flags", "short_header"])
def test_a_file_that_is_not_a_recording_is_refused(tmp_path, case):
    path = tmp_path / f"{case}.pdurec"
    blob = good_file(tmp_path / "good.pdurec")
    if case == "missing":
        expect_refused(path, "existing file")
        return
    content = {"empty": b"", "text": b"hello, this is not a recording\n",
               "magic": b"X" + blob[1:], "version": blob[:8] + b"\x00\x02" + blob[10:],
               "flags": blob[:12] + b"\x00\x00\x00\x01" + blob[16:], "short_header": blob[:10]}[case]
    path.write_bytes(content)
    expect_refused(path, "PDU recording")


@pytest.mark.parametrize("where", ["crc", "length_huge", "length_small", "fields", "payload_length"])
def test_a_corrupt_record_is_refused_naming_file_and_offset(tmp_path, where):
    blob = bytearray(good_file(tmp_path / "good.pdurec"))
    offs = record_offsets(blob)
    o = offs[1]                                                      # the second record
    if where == "crc":
        blob[o + 4 + F.FIXED_SIZE - 1] ^= 0x40                       # a byte of its body
    elif where == "length_huge":
        blob[o:o + 4] = struct.pack(">I", 0xFFFFFFF0)
    elif where == "length_small":
        blob[o:o + 4] = struct.pack(">I", 3)
    else:
        body = bytes(blob[o + 4:offs[2] - 4])
        if where == "fields":
            body = bytes([7]) + body[1:]                             # time source 7
        else:                                                        # payload length too long
            plen = struct.unpack(">I", body[-8:-4])[0]
            assert plen == 4                                         # record 1: 4 payload bytes
            body = body[:-8] + struct.pack(">I", 200) + body[-4:]
        blob[o:offs[2]] = F.LENGTH.pack(len(body)) + body + F.CRC.pack(
            zlib.crc32(F.LENGTH.pack(len(body)) + body) & 0xFFFFFFFF)
    path = tmp_path / "bad.pdurec"
    path.write_bytes(bytes(blob))
    expect_refused(path, "record 1", f"byte {o}")


@pytest.mark.parametrize("meta", [
    bytes.fromhex("0c99000002"),                    # a tuple of 2.5e9 items (GNU Radio's own reader loops)
    bytes.fromhex("0a00ffffffff00"),                # a u8 vector longer than the data
    b"\x07" * 5000 + b"\x06",                       # nesting deeper than 32
    bytes.fromhex("0907020001610300000001") + b"\x03\x00\x00\x00\x01",     # a dict cell with an int tail
    bytes.fromhex("ff"),                            # unknown tag
    bytes.fromhex("020003ffff00"),                  # symbol not UTF-8
    bytes.fromhex("0601"),                          # bytes after the end
])
def test_malformed_metadata_is_refused_not_parsed_by_gnu_radio(tmp_path, meta):
    path = tmp_path / "meta.pdurec"
    path.write_bytes(F.header_bytes() + forged_record(meta))
    expect_refused(path, "record 0", "metadata")


@pytest.mark.parametrize("cut", [1, 2, 4, 9, -1])
def test_a_torn_last_record_is_dropped_and_counted(tmp_path, cut):
    blob = good_file(tmp_path / "good.pdurec", n=4)
    offs = record_offsets(blob)
    last = offs[-2]
    keep = last + (cut if cut > 0 else (offs[-1] - last) + cut)     # inside the last record
    path = tmp_path / "torn.pdurec"
    path.write_bytes(blob[:keep])
    rp, got, _ = replay_to_sink(path, pace=False)
    st = rp.get_stats()
    assert (st["records"], st["records_in_file"], st["torn_records"]) == (4, 4, 1)
    assert [pmt.to_python(pmt.car(m))["seq"] for _, m in got] == [0, 1, 2, 3]


def test_a_file_damaged_after_the_check_stops_the_replay_cleanly(tmp_path):
    path = tmp_path / "changing.pdurec"
    blob = bytearray(good_file(path, n=4))
    rp = pdu_replayer(str(path))
    offs = record_offsets(blob)
    blob[offs[2] + 10] ^= 0xFF                                       # record 2 now fails its CRC
    path.write_bytes(bytes(blob))
    tb = gr.top_block()
    sink = stamp_sink()
    tb.msg_connect(rp, "pdus", sink, "pdus")
    run(tb, timeout=30)
    st = rp.get_stats()
    assert (st["records"], st["corrupt_records"], st["finished"]) == (2, 1, 1)
    assert len(sink.got) == 2


def test_a_recording_without_records_replays_nothing_and_ends(tmp_path):
    path = tmp_path / "empty.pdurec"
    path.write_bytes(F.header_bytes())
    rp, got, elapsed = replay_to_sink(path, pace=True)
    assert got == [] and rp.get_stats()["finished"] == 1 and elapsed < 10


def test_a_recording_without_eos_still_ends_the_receiver(tmp_path, live_repeat):
    # e.g. a live USRP recording stopped with Ctrl-C: RX flushes after its grace period
    path, y_live, _, _, _ = live_repeat
    blob = path.read_bytes()
    offs = record_offsets(blob)
    cut = tmp_path / "no_eos.pdurec"
    cut.write_bytes(blob[:offs[-2]])                                 # drop the last record (eos)
    y, rx, rp = replay_run(cut, "repeat")
    assert rp["records"] == len(offs) - 2
    assert rx["depacketizer"]["eos"] == 0 and len(y) > 0
    np.testing.assert_array_equal(y, y_live[:len(y)])               # the same frames, up to the last one received


# ------------------------------------------------------------------ recorder behaviour
def test_recorder_keeps_pdus_drops_the_rest_and_flushes_each_record(tmp_path):
    path = tmp_path / "rec.pdurec"
    tb = gr.top_block()
    rec = pdu_recorder(str(path))
    tb.msg_connect(rec, "stats", blocks.message_debug(), "store")
    tb.start()
    for m in (make_pdu(b"\x01\x02", {"seq": 1}), pmt.intern("junk"),
              pmt.cons(pmt.make_dict(), pmt.init_f32vector(2, [1.0, 2.0])),
              pmt.cons(pmt.from_long(3), u8(b"x")), make_pdu(b"\x03", {"seq": 2})):
        rec._post(PDUS, m)
    deadline = time.monotonic() + 10
    while rec.get_stats()["records"] + rec.get_stats()["bad_messages"] < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r.payload for r in F.read_all(path)] == [b"\x01\x02", b"\x03"]   # on disk while running
    rec._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
    tb.wait()
    st = rec.get_stats()
    assert (st["records"], st["bad_messages"], st["write_errors"]) == (2, 3, 0)


def test_recorder_creates_the_file_at_start_not_when_built(tmp_path):
    path = tmp_path / "later.pdurec"
    pdu_recorder(str(path))
    assert not path.exists()
    path.write_bytes(b"old content")
    record(path, [])
    assert path.read_bytes() == F.header_bytes()                    # overwritten, header only


# ------------------------------------------------------------------ parameters
@pytest.mark.parametrize("kwargs,name", [
    ({"record_file": 123}, "record_file"), ({"record_file": None}, "record_file"),
    ({"record_file": ""}, "record_file"), ({"record_file": ["x"]}, "record_file"),
    ({"record_file": True}, "record_file"), ({"record_file": "/nonexistent/dir/x.pdurec"}, "record_file"),
    ({"record_file": "/tmp"}, "record_file"), ({"record_file": "/tmp/"}, "record_file"),
    ({"stats_interval": 0}, "stats_interval"), ({"stats_interval": 10 ** 6 + 1}, "stats_interval"),
    ({"stats_interval": 1.5}, "stats_interval"),
])
def test_recorder_refuses_bad_parameters(tmp_path, kwargs, name):
    kwargs = {"record_file": str(tmp_path / "ok.pdurec"), **kwargs}
    with pytest.raises(ValueError, match=rf"^pdu_recorder: {name} must be"):
        pdu_recorder(**kwargs)


@pytest.mark.parametrize("kwargs,name", [
    ({"record_file": 123}, "record_file"), ({"record_file": None}, "record_file"),
    ({"record_file": ""}, "record_file"), ({"record_file": "/nonexistent/x.pdurec"}, "record_file"),
    ({"record_file": "/tmp"}, "record_file"), ({"record_file": True}, "record_file"),
    ({"pace": "False"}, "pace"), ({"pace": 2}, "pace"), ({"pace": None}, "pace"),
    ({"stats_interval": 0}, "stats_interval"), ({"stats_interval": -1}, "stats_interval"),
])
def test_replayer_refuses_bad_parameters(tmp_path, kwargs, name):
    good = tmp_path / "ok.pdurec"
    good.write_bytes(F.header_bytes())
    kwargs = {"record_file": str(good), **kwargs}
    with pytest.raises(ValueError, match=rf"^pdu_replayer: {name} must be"):
        pdu_replayer(**kwargs)


# ------------------------------------------------------------------ the documented example
def test_the_example_in_docs_recording_md_decodes(tmp_path):
    text = (REPO / "docs" / "recording.md").read_text()
    block = re.search(r"```text\n(.*?)```", text, re.S).group(1)
    hexes = "".join(re.findall(r"^([0-9a-f ]+?)(?:\s{2,}.*)?$", block, re.M))
    blob = bytes.fromhex(hexes.replace(" ", ""))
    path = tmp_path / "doc.pdurec"
    path.write_bytes(blob)
    (r,) = F.read_all(path)
    assert (r.source, r.full, r.frac, r.host_time) == (F.TIME_RX, 1700000000, 0.25, 1700000000.375)
    assert r.payload == bytes.fromhex("5a4122")
    assert pmt.to_python(r.meta()) == {"rx_time": (1700000000, 0.25)}
    assert blob[:F.HEADER_SIZE] == F.header_bytes()
    assert blob[F.HEADER_SIZE:] == F.encode_record(r.payload, r.meta_bytes, r.source, r.full, r.frac, r.host_time)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_counted_not_raised():
    st = record("/dev/full", [make_pdu(b"\x01", {}), make_pdu(b"\x02", {})])
    assert st["records"] == 0 and st["write_errors"] == 3           # the header, then each PDU
